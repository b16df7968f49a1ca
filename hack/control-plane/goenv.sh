# Sourced by the control-plane scripts: where Go keeps its downloads and build cache, and the
# flags every build uses. Kept under ~/.cache so a warm machine rebuilds nothing.
: "${APEX_CACHE:=${XDG_CACHE_HOME:-$HOME/.cache}/apex-ingestion-rollout}"
export GOMODCACHE="${GOMODCACHE_OVERRIDE:-$APEX_CACHE/go/mod}"
export GOCACHE="${GOCACHE_OVERRIDE:-$APEX_CACHE/go/build}"
export GOFLAGS="-trimpath -mod=mod"
export GOTOOLCHAIN=local
export CGO_ENABLED=0

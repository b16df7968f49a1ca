#!/usr/bin/env bash
# Builds the local control plane (kube-apiserver, kube-controller-manager, kube-scheduler,
# kubectl, etcd, helm, kwok) from the Go module proxy into a cache keyed by versions.env:
#   ~/.cache/apex-ingestion-rollout/control-plane/<key>/bin
# Nothing is downloaded from release sites; every source comes through `go` and is checked
# against the committed go.sum files.
#
#   build.sh             build what the cache lacks (a warm cache returns at once)
#   build.sh --print-dir print the bin directory (built or not) and exit
#   build.sh --check     exit 0 only if every binary is in the cache
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
source "$here/goenv.sh"

key="k8s-${KUBERNETES_VERSION}_etcd-${ETCD_VERSION}_helm-${HELM_VERSION}_kwok-${KWOK_VERSION}"
bin="${APEX_CONTROL_PLANE_DIR:-$APEX_CACHE/control-plane/$key/bin}"
binaries=(etcd helm kwok kubectl kube-apiserver kube-controller-manager kube-scheduler)

# helm reads the Kubernetes version of `helm template` and `helm lint` (no cluster) from ldflags
# that helm's Makefile sets; without them it says v1.20, below the chart's kubeVersion. A helm
# built without them (no stamp) is rebuilt once.
helm_stamp="$bin/.helm-kube-version"

complete() {
  local b
  for b in "${binaries[@]}"; do [ -x "$bin/$b" ] || return 1; done
  [ -f "$helm_stamp" ]
}

case "${1:-}" in
  --print-dir) echo "$bin"; exit 0 ;;
  --check) complete; exit $? ;;
  "") ;;
  *) echo "usage: $0 [--print-dir|--check]" >&2; exit 2 ;;
esac

if complete; then
  echo "control plane ${key}: cached in $bin"
  exit 0
fi
command -v go >/dev/null || { echo "build.sh needs Go (1.25 or newer) on PATH" >&2; exit 1; }
mkdir -p "$bin"
started=$SECONDS
step=0

# Each binary is built to a temporary name and renamed, so an interrupted build never leaves
# a half-written binary that --check would take for a finished one.
build() {
  local name=$1; shift
  step=$((step + 1))
  if [ -x "$bin/$name" ] && { [ "$name" != helm ] || [ -f "$helm_stamp" ]; }; then
    echo "[$step/${#binaries[@]}] $name: cached"
    return
  fi
  local t0=$SECONDS
  echo "[$step/${#binaries[@]}] $name: building ..."
  "$@"
  mv -f "$bin/.$name.tmp" "$bin/$name"
  echo "[$step/${#binaries[@]}] $name: built in $((SECONDS - t0)) s"
}

kube_ldflags() {
  local minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
  local pkg=k8s.io/component-base/version
  echo "-s -w -X $pkg.gitVersion=${KUBERNETES_VERSION} -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor" \
       "-X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
}

go_build_kube() {  # name
  (cd "$here/kube" && go build -ldflags "$(kube_ldflags)" -o "$bin/.$1.tmp" "k8s.io/kubernetes/cmd/$1")
}
go_build_etcd() {
  (cd "$here/etcd" && go build -ldflags "-s -w" -o "$bin/.etcd.tmp" .)
}
go_install_tool() {  # name module-path version [ldflags]
  local gobin; gobin="$(mktemp -d)"
  GOFLAGS="-trimpath" GOBIN="$gobin" go install -ldflags "${4:-}" "$2@$3"
  mv -f "$gobin/$1" "$bin/.$1.tmp"; rm -rf "$gobin"
}

helm_kube_ldflags() {  # what helm's Makefile adds: the minor of its k8s.io/client-go, 0.X -> 1.X
  local mod client minor pkg flags=""
  mod="$(go mod download -json "helm.sh/helm/v3@$HELM_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  client="$(awk '$1 == "k8s.io/client-go" {print $2}' "$mod")"
  minor=${client#v0.}; minor=${minor%%.*}
  [[ "$minor" =~ ^[0-9]+$ ]] || { echo "cannot read helm's k8s.io/client-go version" >&2; return 1; }
  for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    flags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$minor"
  done
  echo "$flags"
}

echo "building control plane ${key} into $bin (a cold build takes tens of minutes)"
build etcd go_build_etcd
helm_flags="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
[ -f "$helm_stamp" ] || helm_flags+="$(helm_kube_ldflags)"
build helm go_install_tool helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" "$helm_flags"
touch "$helm_stamp"
build kwok go_install_tool kwok sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION" "-s -w"
for cmd in kubectl kube-apiserver kube-controller-manager kube-scheduler; do
  build "$cmd" go_build_kube "$cmd"
done
echo "control plane ${key} ready in $bin ($((SECONDS - started)) s)"

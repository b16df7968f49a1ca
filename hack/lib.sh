# Shared by the kind scripts (source it; bash). Settings come from the environment:
#   CLUSTER_NAME  kind cluster          (default: apex)
#   NAMESPACE     release namespace     (default: apex)
#   RELEASE       Helm release name     (default: apex)
#   KIND_NODE_IMAGE  kindest/node image (default: kind's own; Kubernetes >= 1.29 needed)

CLUSTER_NAME="${CLUSTER_NAME:-apex}"
NAMESPACE="${NAMESPACE:-apex}"
RELEASE="${RELEASE:-apex}"
IMAGE="${IMAGE:-apex-ingestion-rollout}"
SANDBOX_IMAGE="${SANDBOX_IMAGE:-apex-ingestion-sandbox}"
CHART="helm/apex-ingestion-rollout"
CONTEXT="kind-${CLUSTER_NAME}"

log() { printf '\n\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

need() {  # need TOOL INSTALL-HINT
  command -v "$1" >/dev/null 2>&1 || die "$1 is not on PATH: $2"
}

# True when a Docker engine answers (not just a docker CLI).
docker_engine() {
  command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1
}

need_cluster_tools() {
  need kind "https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
  need kubectl "https://kubernetes.io/docs/tasks/tools/"
  need helm "https://helm.sh/docs/intro/install/ (Helm 3.14+ or 4)"
}

kc() { kubectl --context "$CONTEXT" "$@"; }

# The chart's resource prefix for RELEASE (templates/_helpers.tpl, apex.fullname).
fullname() {
  case "$RELEASE" in
    *ingestion*) printf '%s' "$RELEASE" ;;
    *) printf '%s-ingestion' "$RELEASE" ;;
  esac
}

# Build TARGET of the Dockerfile as NAME and print NAME:TAG, the tag taken from the image
# ID, so that a rebuilt image gets a new tag and `helm upgrade` rolls the pods.
build_image() {  # build_image NAME [TARGET]
  local name="$1" target="${2:-runtime}" id
  docker build --target "$target" -t "$name:build" . >&2
  id="$(docker image inspect --format '{{.Id}}' "$name:build")"
  id="${id#sha256:}"
  docker tag "$name:build" "$name:dev-${id:0:12}"
  printf '%s:dev-%s' "$name" "${id:0:12}"
}

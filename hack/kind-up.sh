#!/usr/bin/env bash
# Create (or reuse) a kind cluster, build the images, load them into kind and install the
# chart with the development values (Temporal, Prometheus, Neo4j and MinIO in the cluster).
#
#   hack/kind-up.sh [extra helm flags, e.g. --set api.replicas=2]
#
# Needs a Docker engine, kind, kubectl and helm. Settings: see hack/lib.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib.sh

docker_engine || die "no Docker engine answers (docker info failed): kind needs one"
need_cluster_tools

if kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
  log "reusing kind cluster $CLUSTER_NAME"
else
  log "creating kind cluster $CLUSTER_NAME"
  kind create cluster --name "$CLUSTER_NAME" --wait 180s ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"}
fi

log "building the images"
app_image="$(build_image "$IMAGE" runtime)"
sandbox_image="$(build_image "$SANDBOX_IMAGE" sandbox)"
log "loading $app_image and $sandbox_image into kind"
kind load docker-image --name "$CLUSTER_NAME" "$app_image" "$sandbox_image"

log "namespace $NAMESPACE and the dev credentials"
kc create namespace "$NAMESPACE" --dry-run=client -o yaml | kc apply -f -
hack/dev-secrets.sh "$NAMESPACE" "$CONTEXT"

log "helm upgrade --install $RELEASE ($CHART, values-dev.yaml)"
helm upgrade --install "$RELEASE" "$CHART" \
  --kube-context "$CONTEXT" --namespace "$NAMESPACE" \
  -f "$CHART/values-dev.yaml" \
  --set image.repository="${app_image%:*}" --set image.tag="${app_image##*:}" \
  --set devServices.temporal.image="$sandbox_image" \
  --wait --timeout 10m "$@"

kc -n "$NAMESPACE" get pods -o wide
cat >&2 <<NEXT

Ready. Next:
  kubectl --context $CONTEXT -n $NAMESPACE get pods
  kubectl --context $CONTEXT -n $NAMESPACE port-forward svc/$(fullname)-api 8080:80
  make e2e        # the rollout / fault / automatic-rollback scenario
NEXT

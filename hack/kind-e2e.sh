#!/usr/bin/env bash
# The kind end-to-end scenario (make e2e):
#   1. kind cluster, images built and loaded, chart installed with the dev values (kind-up.sh);
#   2. kubectl apply the rollout (hack/e2e/rollout.yaml) and drive traffic through the API
#      from a Job in the cluster (hack/e2e/traffic.py);
#   3. wait for a healthy step: the rollout raised the percentage and an analysis passed;
#   4. inject a fault: every Temporal-path write fails (worker FAULT_FAILURE_RATE=1);
#   5. assert the automatic rollback through `kubectl get ingestionrollouts` (phase
#      RolledBack, weight 0), the routing ConfigMap (0) and `kubectl get events` (RolledBack).
#
# Without a Docker engine it skips with a message and exits 0, unless E2E_REQUIRE_DOCKER=1
# (then it fails). KEEP_CLUSTER=1 keeps the cluster afterwards (default: deleted).
set -euo pipefail
cd "$(dirname "$0")/.."
export CLUSTER_NAME="${CLUSTER_NAME:-apex-e2e}"
source hack/lib.sh

if ! docker_engine; then
  message="no Docker engine answers (docker info failed): the kind e2e needs one"
  [[ "${E2E_REQUIRE_DOCKER:-0}" == 1 ]] && die "$message"
  echo "SKIPPED: $message" >&2
  exit 0
fi
need_cluster_tools

ROLLOUT=e2e-migration
WORKER=ingestion-temporal-worker
PREFIX="$(fullname)"
STEP_TIMEOUT="${STEP_TIMEOUT:-420}"

diagnostics() {
  log "diagnostics"
  kc -n "$NAMESPACE" get ingestionrollouts -o wide || true
  kc -n "$NAMESPACE" get pods -o wide || true
  kc -n "$NAMESPACE" get ingestionrollout "$ROLLOUT" -o yaml || true
  kc -n "$NAMESPACE" get events --sort-by=.lastTimestamp | tail -40 || true
  kc -n "$NAMESPACE" logs "deploy/$PREFIX-operator" --tail=80 || true
  kc -n "$NAMESPACE" logs job/e2e-traffic --tail=20 || true
}
finish() {
  local status=$?
  [[ $status -ne 0 ]] && diagnostics
  if [[ "${KEEP_CLUSTER:-0}" == 1 ]]; then
    log "keeping cluster $CLUSTER_NAME (KEEP_CLUSTER=1)"
  else
    kind delete cluster --name "$CLUSTER_NAME" || true
  fi
  exit $status
}
trap finish EXIT

jsonpath() { kc -n "$NAMESPACE" get ingestionrollout "$ROLLOUT" -o "jsonpath=$1"; }

# wait_for DESCRIPTION SECONDS COMMAND...: poll COMMAND every 5 s until it succeeds.
wait_for() {
  local what="$1" timeout="$2" start=$SECONDS
  shift 2
  log "waiting (up to ${timeout}s) for $what"
  until "$@"; do
    if (( SECONDS - start > timeout )); then
      die "timed out after ${timeout}s waiting for $what"
    fi
    kc -n "$NAMESPACE" get ingestionrollouts --no-headers 2>/dev/null || true
    sleep 5
  done
}

healthy_step() {
  local weight verdict
  weight="$(jsonpath '{.status.currentPercentage}')"
  verdict="$(jsonpath '{.status.lastAnalysis.verdict}')"
  [[ "${weight:-0}" -gt 0 && "$verdict" == Pass ]]
}
rolled_back() {
  [[ "$(jsonpath '{.status.phase}')" == RolledBack && "$(jsonpath '{.status.currentPercentage}')" == 0 ]]
}

# 1. cluster, images, chart
hack/kind-up.sh

# 2. the rollout and the traffic
log "kubectl apply the rollout $ROLLOUT"
sed "s#http://apex-ingestion-prometheus:9090#http://$PREFIX-prometheus:9090#" hack/e2e/rollout.yaml \
  | kc -n "$NAMESPACE" apply -f -

log "driving traffic through the API (Job e2e-traffic)"
image="$(kc -n "$NAMESPACE" get deploy "$PREFIX-api" -o jsonpath='{.spec.template.spec.containers[0].image}')"
kc -n "$NAMESPACE" create configmap e2e-traffic --from-file=traffic.py=hack/e2e/traffic.py \
  --dry-run=client -o yaml | kc -n "$NAMESPACE" apply -f -
kc -n "$NAMESPACE" delete job e2e-traffic --ignore-not-found
kc -n "$NAMESPACE" apply -f - <<YAML
apiVersion: batch/v1
kind: Job
metadata:
  name: e2e-traffic
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: traffic
          image: $image
          command: [python, /e2e/traffic.py]
          env:
            - {name: API_URL, value: "http://$PREFIX-api"}
            - {name: API_TOKEN, valueFrom: {secretKeyRef: {name: apex-ingestion-dev, key: api-token}}}
            - {name: S3_ENDPOINT_URL, value: "http://$PREFIX-minio:9000"}
            - {name: S3_REGION, value: us-east-1}
            - {name: DOCUMENTS_BUCKET, value: documents}
            - {name: DOCUMENTS_PREFIX, value: documents}
            - {name: AWS_ACCESS_KEY_ID, valueFrom: {secretKeyRef: {name: apex-ingestion-dev, key: s3-access-key}}}
            - {name: AWS_SECRET_ACCESS_KEY, valueFrom: {secretKeyRef: {name: apex-ingestion-dev, key: s3-secret-key}}}
            - {name: RATE, value: "4"}
            - {name: DURATION_SECONDS, value: "1200"}
          resources:
            requests: {cpu: 50m, memory: 128Mi}
            limits: {cpu: 500m, memory: 256Mi}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}
          volumeMounts:
            - {name: script, mountPath: /e2e, readOnly: true}
            - {name: tmp, mountPath: /tmp}
      volumes:
        - {name: script, configMap: {name: e2e-traffic}}
        - {name: tmp, emptyDir: {}}
YAML

# 3. a healthy step first: traffic moved to Temporal and an analysis passed
wait_for "a healthy step (weight > 0, analysis Pass)" "$STEP_TIMEOUT" healthy_step
kc -n "$NAMESPACE" get ingestionrollouts

# 4. the fault
log "injecting a fault: every Temporal-path graph write fails (FAULT_FAILURE_RATE=1)"
kc -n "$NAMESPACE" set env "deployment/$WORKER" FAULT_FAILURE_RATE=1
kc -n "$NAMESPACE" rollout status "deployment/$WORKER" --timeout=180s

# 5. the automatic rollback
wait_for "the automatic rollback (phase RolledBack, weight 0)" "$STEP_TIMEOUT" rolled_back
log "kubectl get ingestionrollouts"
kc -n "$NAMESPACE" get ingestionrollouts
routed="$(kc -n "$NAMESPACE" get configmap ingestion-routing -o jsonpath='{.data.temporalPercentage}')"
[[ "$routed" == 0 ]] || die "routing ConfigMap says $routed%, expected 0 after the rollback"
log "kubectl get events (reason RolledBack)"
events="$(kc -n "$NAMESPACE" get events \
  --field-selector "involvedObject.kind=IngestionRollout,involvedObject.name=$ROLLOUT,reason=RolledBack" \
  -o custom-columns=TYPE:.type,REASON:.reason,MESSAGE:.message --no-headers)"
[[ -n "$events" ]] || die "no RolledBack Event for $ROLLOUT"
printf '%s\n' "$events"
log "PASSED: the rollout advanced on healthy metrics and rolled back by itself on the fault"

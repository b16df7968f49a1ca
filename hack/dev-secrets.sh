#!/usr/bin/env bash
# Development only: create the Secret the dev values reference (values-dev.yaml:
# apex-ingestion-dev) with random credentials, once. An existing Secret is kept.
#
#   hack/dev-secrets.sh NAMESPACE [KUBECTL_CONTEXT]
set -euo pipefail
namespace="${1:?usage: hack/dev-secrets.sh NAMESPACE [KUBECTL_CONTEXT]}"
context="${2:-}"
kc() { kubectl ${context:+--context "$context"} "$@"; }
secret=apex-ingestion-dev

if kc -n "$namespace" get secret "$secret" >/dev/null 2>&1; then
  echo "secret $namespace/$secret exists; kept"
  exit 0
fi
# (a subshell without pipefail: tr is cut off by head's early exit, on purpose)
random() { (set +o pipefail; LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c "$1"); }
neo4j_password="$(random 24)"
kc -n "$namespace" create secret generic "$secret" \
  --from-literal=s3-access-key="dev$(random 12)" \
  --from-literal=s3-secret-key="$(random 32)" \
  --from-literal=neo4j-username=neo4j \
  --from-literal=neo4j-password="$neo4j_password" \
  --from-literal=neo4j-auth="neo4j/$neo4j_password" \
  --from-literal=api-token="$(random 32)"
kc -n "$namespace" label secret "$secret" app.kubernetes.io/part-of=apex-ingestion-rollout

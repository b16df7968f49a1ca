#!/usr/bin/env bash
# Delete the kind cluster made by hack/kind-up.sh (settings: hack/lib.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib.sh
need kind "https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
kind delete cluster --name "$CLUSTER_NAME"

"""`python -m ingestion_operator` (or `ingestion-operator`): run the operator, watching
OPERATOR_NAMESPACE or every namespace.

The settings are read here, at start-up, and the handlers registered with them
(handlers.registry). Standalone: one replica with leader election left to the
Deployment (no KopfPeering CRD). OPERATOR_LIVENESS_PORT serves kopf's liveness endpoint
(GET /healthz), which answers only while the event loop is alive and reports when the
last reconcile finished.
"""

from __future__ import annotations

import kopf

from ingestion_operator import handlers
from ingestion_operator.settings import get_settings


def main() -> None:
    """Read the settings, register the handlers with them, and hand the loop to kopf."""
    settings = get_settings()
    kopf.configure(log_format=kopf.LogFormat.FULL)  # what `kopf run` sets up for itself
    namespace = settings.namespace
    liveness = None
    if settings.liveness_port:
        liveness = f"http://{settings.bind_address}:{settings.liveness_port}/healthz"
    kopf.run(
        standalone=True,
        registry=handlers.registry(settings),
        namespaces=[namespace] if namespace else [],
        clusterwide=namespace is None,
        liveness_endpoint=liveness,
    )


if __name__ == "__main__":
    main()

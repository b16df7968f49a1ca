"""`python -m ingestion_operator`: run the operator (same as `kopf run --standalone -m
ingestion_operator.handlers`), watching OPERATOR_NAMESPACE or every namespace.

Standalone: one replica with leader election left to the Deployment (no KopfPeering CRD).
OPERATOR_LIVENESS_PORT serves kopf's liveness endpoint (GET /healthz), which answers
only while the event loop is alive and reports when the last reconcile finished.
"""

from __future__ import annotations

import kopf

import ingestion_operator.handlers  # noqa: F401  (the import registers the handlers)
from ingestion_operator.settings import get_settings


def main() -> None:
    """Import the handlers (registration) and hand the loop to kopf."""
    settings = get_settings()
    kopf.configure(log_format=kopf.LogFormat.FULL)  # what `kopf run` sets up for itself
    namespace = settings.namespace
    liveness = None
    if settings.liveness_port:
        liveness = f"http://{settings.bind_address}:{settings.liveness_port}/healthz"
    kopf.run(
        standalone=True,
        namespaces=[namespace] if namespace else [],
        clusterwide=namespace is None,
        liveness_endpoint=liveness,
    )


if __name__ == "__main__":
    main()

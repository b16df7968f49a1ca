"""`python -m ingestion_operator`: run the operator (same as `kopf run --standalone -m
ingestion_operator.handlers`), watching OPERATOR_NAMESPACE or every namespace.

Standalone: one replica with leader election left to the Deployment (no KopfPeering CRD).
"""

from __future__ import annotations

import kopf

import ingestion_operator.handlers  # noqa: F401  (the import registers the handlers)
from ingestion_operator.settings import get_settings


def main() -> None:
    """Import the handlers (registration) and hand the loop to kopf."""
    namespace = get_settings().namespace
    kopf.run(
        standalone=True,
        namespaces=[namespace] if namespace else [],
        clusterwide=namespace is None,
    )


if __name__ == "__main__":
    main()

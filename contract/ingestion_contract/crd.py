"""Where the IngestionRollout lives in the Kubernetes API, and the names it defaults to.

The operator watches and patches these objects, its kubectl plugin reads them, the
ingestion API reads the routing ConfigMap they name, and the sandbox serves them: one
spelling for all of them. The values are those of crds/ingestionrollouts.yaml (a test
compares them); the default object names come from the CRD's schema defaults through
the generated `crd_defaults`.
"""

from __future__ import annotations

from typing import Final

from ingestion_contract.crd_defaults import SPEC

GROUP: Final = "ingestion.apexmemory.io"
VERSION: Final = "v1alpha1"
PLURAL: Final = "ingestionrollouts"
SINGULAR: Final = "ingestionrollout"
KIND: Final = "IngestionRollout"
SHORT_NAME: Final = "ir"
API_VERSION: Final = f"{GROUP}/{VERSION}"

# Manual commands: annotating a rollout with one of these acts once (the operator removes it).
ANNOTATION_PREFIX: Final = f"{GROUP}/"
PROMOTE_ANNOTATION: Final = f"{ANNOTATION_PREFIX}promote"
ABORT_ANNOTATION: Final = f"{ANNOTATION_PREFIX}abort"
RETRY_ANNOTATION: Final = f"{ANNOTATION_PREFIX}retry"

# What a rollout with `spec: {}` drives (the chart creates objects with these names).
DEFAULT_ROUTING_CONFIGMAP: Final[str] = SPEC["routing"]["configMapName"]
DEFAULT_ROUTING_KEY: Final[str] = SPEC["routing"]["key"]
DEFAULT_WORKER_DEPLOYMENT: Final[str] = SPEC["workers"][0]["deploymentName"]

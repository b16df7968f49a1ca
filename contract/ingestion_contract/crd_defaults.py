"""The IngestionRollout CRD's schema defaults, generated from crds/ingestionrollouts.yaml.

Do not edit: run `python hack/gen_crd_defaults.py` after changing a default in the CRD
(tests/unit/test_crd_schema.py fails while the two disagree). Generated rather than read
at run time so that pure code (the operator's decisions and analysis, the API's settings)
has the defaults without reading a file, while the CRD stays their one source. Treat the
values as read-only.
"""

from __future__ import annotations

from typing import Any, Final

#: `spec: {}` after defaulting, as the API server stores it.
SPEC: Final[dict[str, Any]] = {
    "targetPercentage": 100,
    "steps": [10, 50, 100],
    "stepDuration": "10m",
    "workersReadyTimeout": "10m",
    "paused": False,
    "routing": {"configMapName": "ingestion-routing", "key": "temporalPercentage"},
    "workers": [
        {"deploymentName": "ingestion-temporal-worker", "minReplicas": 1, "maxReplicas": 10}
    ],
    "analysis": {
        "provider": "prometheus",
        "prometheusUrl": "http://prometheus-server:9090",
        "interval": "30s",
        "window": "2m",
        "counterWindow": "2m",
        "optionalRules": [],
        "judge": "threshold",
        "alpha": 0.01,
        "minSampleCount": 50,
        "failureLimit": 0,
        "consecutiveErrorLimit": 4,
        "onError": "Pause",
        "thresholds": {
            "maxErrorRate": 0.05,
            "maxLatencyRatio": 2.0,
            "latencyQuantile": 0.99,
            "minLatencyDeltaSeconds": 0.5,
            "maxQueueDepth": 1000,
            "maxDbConnectionErrorsPerMinute": 10,
        },
    },
}

#: One spec.workers[] entry's defaults (deploymentName is required).
WORKER: Final[dict[str, Any]] = {"minReplicas": 1, "maxReplicas": 10}

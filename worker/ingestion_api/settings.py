"""The ingestion API's settings (the pipeline's own come from ingestion_worker.settings,
read from the same environment, because the API runs the legacy path in-process)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ingestion_contract.envconfig import env_field, load_settings
from ingestion_contract.routing import PERCENTAGE_KEY


@dataclass(frozen=True)
class ApiSettings:
    host: str = env_field("API_HOST", "0.0.0.0", "Address the HTTP API listens on.")
    port: int = env_field("API_PORT", 8080, "Port the HTTP API listens on.")
    auth_token: str | None = env_field(
        "API_AUTH_TOKEN",
        None,
        "Bearer token required on write endpoints (mount it from a Secret); unset: no auth.",
    )
    max_in_flight: int = env_field(
        "API_MAX_IN_FLIGHT",
        256,
        "Documents accepted and not yet finished; past it new ones get 429 + Retry-After.",
    )
    legacy_threads: int = env_field(
        "API_LEGACY_THREADS", 16, "Threads running legacy-path documents in this process."
    )
    retry_after_seconds: int = env_field(
        "API_RETRY_AFTER_SECONDS", 1, "Retry-After sent with 429/503 answers."
    )
    max_batch: int = env_field("API_MAX_BATCH", 500, "Largest batch accepted at once.")
    routing_configmap: str | None = env_field(
        "ROUTING_CONFIGMAP",
        None,
        "ConfigMap holding the live percentage; unset: TEMPORAL_ROLLOUT_PERCENTAGE applies.",
    )
    routing_namespace: str = env_field(
        "ROUTING_NAMESPACE", "default", "Namespace of the routing ConfigMap."
    )
    routing_key: str = env_field(
        "ROUTING_KEY", PERCENTAGE_KEY, "ConfigMap key holding the percentage (0-100)."
    )
    kubeconfig: str | None = env_field(
        "KUBECONFIG", None, "Kubeconfig for the routing watch; unset: in-cluster config."
    )
    fallback_percentage: int = env_field(
        "TEMPORAL_ROLLOUT_PERCENTAGE", 0, "Percentage used without a ConfigMap (local runs)."
    )
    parallel: bool = env_field(
        "TEMPORAL_PARALLEL_EXECUTION",
        False,
        "Shadow mode without a ConfigMap: run sampled documents on both paths and compare.",
    )
    status_records: int = env_field(
        "API_STATUS_RECORDS", 100_000, "Legacy-path status records kept for GET (LRU)."
    )


@functools.cache
def get_api_settings() -> ApiSettings:
    return load_settings(ApiSettings)

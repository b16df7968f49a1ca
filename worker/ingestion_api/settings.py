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
    journal_path: str | None = env_field(
        "API_JOURNAL_PATH",
        None,
        "SQLite file recording every accepted document before its 202, resumed at start-up; "
        "unset: kept in memory only (a restart loses unfinished legacy-path documents).",
    )
    journal_sync: str = env_field(
        "API_JOURNAL_SYNC",
        "normal",
        "normal: a commit survives the process dying; full: also an OS crash or power loss "
        "(one fsync per commit).",
    )
    journal_max_records: int = env_field(
        "API_JOURNAL_MAX_RECORDS",
        100_000,
        "Finished documents whose status the journal keeps (oldest pruned first).",
    )
    journal_retention_seconds: float = env_field(
        "API_JOURNAL_RETENTION_SECONDS",
        7 * 24 * 3600.0,
        "Finished documents older than this are pruned from the journal.",
    )
    allowed_buckets: str = env_field(
        "API_ALLOWED_BUCKETS",
        "",
        "Comma-separated buckets documents may be read from, each optionally with a key "
        "prefix (bucket/prefix); empty: DOCUMENTS_BUCKET only, any key.",
    )
    temporal_start_timeout_seconds: float = env_field(
        "API_TEMPORAL_TIMEOUT_SECONDS",
        3.0,
        "Longest wait for Temporal to start a workflow or answer a status query; "
        "then 503 + Retry-After.",
    )
    max_body_bytes: int = env_field(
        "API_MAX_BODY_BYTES", 1024 * 1024, "Largest request body; larger ones get 413."
    )
    max_status_batch: int = env_field(
        "API_MAX_STATUS_BATCH",
        1000,
        "Most documents one POST /v1/documents:status reads at once.",
    )
    max_wait_seconds: float = env_field(
        "API_MAX_WAIT_SECONDS",
        60.0,
        "Longest ?wait= a status read honours; longer ones are capped to it.",
    )
    status_reuse_seconds: float = env_field(
        "API_STATUS_REUSE_SECONDS",
        0.2,
        "An open workflow's get_status answer is shared by every read of the document for "
        "this long (0.1-0.25 keeps statuses fresh; 0: only concurrent reads share).",
    )
    status_record_reuse_seconds: float = env_field(
        "API_STATUS_RECORD_REUSE_SECONDS",
        10.0,
        "A closed workflow's record read from Temporal (a document another replica "
        "accepted) is reused for this long before Temporal is asked again.",
    )
    status_queries_per_second: float = env_field(
        "API_STATUS_QUERIES_PER_SECOND",
        5.0,
        "Most get_status queries this process sends a second, however many documents are "
        "polled; past it a read gets the document's last answer (0: no bound).",
    )
    status_max_calls: int = env_field(
        "API_STATUS_MAX_CALLS",
        8,
        "Status calls to Temporal (queries, describes) in flight at once per API process; "
        "more reads wait their turn.",
    )


@functools.cache
def get_api_settings() -> ApiSettings:
    return load_settings(ApiSettings)

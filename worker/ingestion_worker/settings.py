"""The worker's (and the legacy path's) settings: every knob, its default and its meaning.

Loaded once from the environment by `get_settings()`; nothing else in the
package reads os.environ.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ingestion_contract.envconfig import env_field, load_settings


@dataclass(frozen=True)
class WorkerSettings:
    temporal_address: str = env_field(
        "TEMPORAL_ADDRESS", "localhost:7233", "Temporal frontend host:port."
    )
    temporal_namespace: str = env_field("TEMPORAL_NAMESPACE", "default", "Temporal namespace.")
    task_queue: str = env_field(
        "TEMPORAL_TASK_QUEUE", "document-ingestion", "Task queue the workflow and activities use."
    )
    s3_endpoint_url: str | None = env_field(
        "S3_ENDPOINT_URL", None, "S3 endpoint (MinIO, moto); unset means AWS."
    )
    s3_region: str = env_field("S3_REGION", "us-east-1", "S3 region.")
    documents_bucket: str = env_field(
        "DOCUMENTS_BUCKET", "documents", "Bucket documents are read from by default."
    )
    documents_prefix: str = env_field(
        "DOCUMENTS_PREFIX", "documents", "Key prefix: keys default to {prefix}/{source}/{id}."
    )
    artifact_bucket: str = env_field(
        "ARTIFACT_BUCKET",
        "ingestion-artifacts",
        "Bucket for intermediate results too large for a Temporal payload.",
    )
    inline_limit_bytes: int = env_field(
        "INLINE_LIMIT_BYTES",
        256 * 1024,
        "Largest content passed inline between activities; larger goes by S3 reference.",
    )
    inline_document_bytes: int = env_field(
        "INLINE_DOCUMENT_BYTES",
        256 * 1024,
        "Documents up to this size run download, parse, entities and embed as one local "
        "activity; larger ones run them as a chain of activities (0: always the chain).",
    )
    max_document_bytes: int = env_field(
        "MAX_DOCUMENT_BYTES", 200 * 1024 * 1024, "Larger documents are rejected (ValidationError)."
    )
    neo4j_uri: str = env_field("NEO4J_URI", "bolt://localhost:7687", "Neo4j Bolt URI.")
    neo4j_user: str | None = env_field("NEO4J_USER", None, "Neo4j user; unset means no auth.")
    neo4j_password: str | None = env_field("NEO4J_PASSWORD", None, "Neo4j password.")
    neo4j_database: str | None = env_field(
        "NEO4J_DATABASE", None, "Neo4j database (graph); unset means the server default."
    )
    neo4j_connection_timeout_seconds: float = env_field(
        "NEO4J_CONNECTION_TIMEOUT_SECONDS", 5.0, "Timeout to open one Bolt connection."
    )
    neo4j_max_message_bytes: int = env_field(
        "NEO4J_MAX_MESSAGE_BYTES",
        0,
        "Bound on one Bolt request (0: none). FalkorDB's Bolt port needs 4000.",
    )
    s3_retry_seconds: float = env_field(
        "S3_RETRY_SECONDS",
        120.0,
        "How long S3 errors other than 'not found' are retried (exponential backoff with "
        "jitter, both paths) before the document fails.",
    )
    graph_retry_seconds: float = env_field(
        "GRAPH_RETRY_SECONDS",
        120.0,
        "How long an unreachable graph database is retried (exponential backoff with jitter, "
        "both paths) before the document fails.",
    )
    openai_api_key: str | None = env_field(
        "OPENAI_API_KEY",
        None,
        "Key for the embeddings API; unset selects the offline hashing embedder (not semantic).",
    )
    openai_base_url: str | None = env_field(
        "OPENAI_BASE_URL", None, "OpenAI-compatible base URL (e.g. http://host/v1)."
    )
    embedding_model: str = env_field(
        "EMBEDDING_MODEL", "text-embedding-3-small", "Embeddings model name."
    )
    embedding_dimensions: int = env_field(
        "EMBEDDING_DIMENSIONS", 256, "Vector size requested from the API and used offline."
    )
    embedding_batch_size: int = env_field(
        "EMBEDDING_BATCH_SIZE", 64, "Chunks sent per embeddings request."
    )
    embedding_timeout_seconds: float = env_field(
        "EMBEDDING_TIMEOUT_SECONDS", 30.0, "Timeout of one embeddings request."
    )
    chunk_size: int = env_field("CHUNK_SIZE", 1000, "Characters per chunk.")
    chunk_overlap: int = env_field("CHUNK_OVERLAP", 100, "Characters shared by neighbour chunks.")
    entity_extractor: str = env_field(
        "ENTITY_EXTRACTOR", "patterns", "Registered entity extractor to use."
    )
    metrics_host: str = env_field("METRICS_HOST", "0.0.0.0", "Address of the /metrics server.")
    metrics_port: int = env_field("METRICS_PORT", 9464, "Port of the /metrics server; 0 disables.")
    max_concurrent_activities: int = env_field(
        "MAX_CONCURRENT_ACTIVITIES", 32, "Activities one worker process runs at once."
    )
    max_concurrent_workflow_tasks: int = env_field(
        "MAX_CONCURRENT_WORKFLOW_TASKS", 32, "Workflow tasks one worker process runs at once."
    )
    workflow_sandbox: bool = env_field(
        "WORKFLOW_SANDBOX",
        False,
        "Run the workflow in Temporal's sandbox (about twice the worker CPU per workflow task); "
        "off because the replay test proves determinism in CI.",
    )
    graceful_shutdown_seconds: float = env_field(
        "GRACEFUL_SHUTDOWN_SECONDS",
        30.0,
        "On SIGTERM, how long in-flight activities may finish before they are handed back.",
    )
    backlog_refresh_seconds: float = env_field(
        "BACKLOG_REFRESH_SECONDS", 2.0, "How often temporal_task_queue_backlog is refreshed."
    )
    fault_failure_rate: float = env_field(
        "FAULT_FAILURE_RATE",
        0.0,
        "Demo/chaos only: share of documents whose write step fails (0 disables).",
    )
    fault_delay_seconds: float = env_field(
        "FAULT_DELAY_SECONDS", 0.0, "Demo/chaos only: extra delay added to every write step."
    )
    fault_file: str | None = env_field(
        "FAULT_FILE",
        None,
        'Demo/chaos only: JSON file {"failureRate": r, "delaySeconds": s} overriding the two '
        "above, re-read when it changes (mount a ConfigMap to switch faults without restarts).",
    )


@functools.cache
def get_settings() -> WorkerSettings:
    """The process's settings, read from the environment on first use."""
    return load_settings(WorkerSettings)

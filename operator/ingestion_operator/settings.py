"""The operator's settings: every knob, its default and its meaning.

Loaded once from the environment by `get_settings()` when the process starts (as the
worker does), so a bad value fails at start-up with the variable's name rather than
inside a timer. Named apart from kopf.OperatorSettings, kopf's own configuration.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ingestion_contract.envconfig import env_field, load_settings


@dataclass(frozen=True)
class RolloutOperatorSettings:
    metrics_port: int = env_field(
        "OPERATOR_METRICS_PORT", 9465, "Port of the operator's /metrics server; 0 disables."
    )
    liveness_port: int = env_field(
        "OPERATOR_LIVENESS_PORT",
        8080,
        "Port of the liveness endpoint GET /healthz (kopf's probes); 0 disables.",
    )
    bind_address: str = env_field(
        "OPERATOR_BIND_ADDRESS",
        "0.0.0.0",
        "Address the /metrics and /healthz servers listen on (127.0.0.1 for a laptop).",
    )
    namespace: str | None = env_field(
        "OPERATOR_NAMESPACE", None, "Namespace to watch; unset watches all namespaces."
    )
    timer_interval_seconds: float = env_field(
        "TIMER_INTERVAL_SECONDS",
        5.0,
        "How often each rollout is revisited; analysis runs when spec.analysis.interval "
        "has elapsed since status.lastAnalysis.at.",
    )
    history_limit: int = env_field(
        "HISTORY_LIMIT", 50, "Entries kept in status.history (the CRD allows at most 50)."
    )


@functools.cache
def get_settings() -> RolloutOperatorSettings:
    """The process's settings, read from the environment on first use."""
    return load_settings(RolloutOperatorSettings)

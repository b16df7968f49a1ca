"""A real Prometheus (Debian's /usr/bin/prometheus) for tests and the sandbox.

The operator decides rollouts from PromQL over the worker's metrics, so the
tests need the real scraper and query engine, not a canned JSON answer. The
server gets a generated config, its own TSDB dir and the lifecycle API, so a
test can point it at the metrics endpoints it just started (set_targets) and
wait until a series appears (first data takes 5-7 s after start).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import yaml

from ingestion_sandbox.servers.common import LOCALHOST, ProcessService, find_binary, free_port

PROMETHEUS_HINT = (
    "apt-get install prometheus (Debian/Ubuntu package; it provides /usr/bin/prometheus)"
)


def _http(url: str, data: bytes | None = None, timeout: float = 5.0) -> bytes:
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body: bytes = response.read()
        return body


def wait_for_series(
    url: str, promql: str, timeout: float = 30.0, interval: float = 0.5
) -> list[dict[str, Any]]:
    """Poll /api/v1/query at `url` until `promql` has a non-empty result; return the result."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        query = urllib.parse.urlencode({"query": promql})
        try:
            answer = json.loads(_http(f"{url}/api/v1/query?{query}"))
            last = answer
            result = answer.get("data", {}).get("result", [])
            if answer.get("status") == "success" and result:
                return list(result)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise TimeoutError(f"no series for {promql!r} after {timeout:.1f}s (last: {last!r})")
        time.sleep(interval)


class PrometheusServer(ProcessService):
    """Prometheus on 127.0.0.1:P with a generated config and `--web.enable-lifecycle`.

    Attributes: url ("http://127.0.0.1:P"), port, config_path, scrape_interval, targets.
    """

    name = "prometheus"

    def __init__(
        self,
        port: int | None = None,
        scrape_interval: str = "1s",
        targets: dict[str, list[str]] | None = None,
        ready_timeout: float = 30.0,
        keep_dir: bool = False,
    ) -> None:
        super().__init__(ready_timeout=ready_timeout, keep_dir=keep_dir)
        self.binary = find_binary(
            "prometheus", PROMETHEUS_HINT, extra_paths=["/usr/bin/prometheus"]
        )
        self.port = port or free_port()
        self.scrape_interval = scrape_interval
        self.targets: dict[str, list[str]] = dict(targets or {})

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    @property
    def config_path(self) -> str:
        assert self.dir is not None, "start() first"
        return str(self.dir / "prometheus.yml")

    def render_config(self) -> str:
        config = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "evaluation_interval": self.scrape_interval,
            },
            "scrape_configs": [
                {
                    "job_name": job,
                    "static_configs": [{"targets": list(addresses)}],
                }
                for job, addresses in sorted(self.targets.items())
            ],
        }
        return yaml.safe_dump(config, sort_keys=False)

    def _write_config(self) -> None:
        with open(self.config_path, "w") as config:
            config.write(self.render_config())

    def command(self) -> list[str]:
        assert self.dir is not None
        if not (self.dir / "prometheus.yml").exists():
            self._write_config()
        return [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.dir / 'data'}",
            f"--web.listen-address={LOCALHOST}:{self.port}",
            "--web.enable-lifecycle",
            "--log.level=warn",
        ]

    def is_ready(self) -> bool:
        try:
            _http(f"{self.url}/-/ready", timeout=1.0)
        except (urllib.error.URLError, OSError):
            return False
        return True

    def set_targets(
        self, targets: dict[str, list[str]], scrape_interval: str | None = None
    ) -> None:
        """Scrape exactly these {job_name: ["host:port", ...]} from now on (rewrite + /-/reload)."""
        self.targets = {job: list(addresses) for job, addresses in targets.items()}
        if scrape_interval is not None:
            self.scrape_interval = scrape_interval
        self._write_config()
        _http(f"{self.url}/-/reload", data=b"", timeout=10.0)

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant query; the `data.result` list (possibly empty)."""
        query = urllib.parse.urlencode({"query": promql})
        answer = json.loads(_http(f"{self.url}/api/v1/query?{query}"))
        if answer.get("status") != "success":
            raise RuntimeError(f"query {promql!r} failed: {answer}")
        return list(answer["data"]["result"])

    def wait_for_series(self, promql: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Poll until `promql` returns a non-empty result (first data takes 5-7 s)."""
        return wait_for_series(self.url, promql, timeout=timeout)

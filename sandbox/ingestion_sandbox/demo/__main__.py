"""`python -m ingestion_sandbox.demo`: set up, tell the story, report, clean up, exit.

Exit status: 0 the story happened as told; 1 it did not (the summary says which
chapter); 2 a prerequisite is missing or a flag is wrong; 3 the sandbox itself broke;
130/143 interrupted by Ctrl-C/SIGTERM. Whatever happens, every process started is
stopped before exiting (SIGINT and SIGTERM are turned into an exception so the same
cleanup runs), and the process leaves with os._exit so the Temporal SDK's native
runtime cannot crash interpreter teardown.
"""

from __future__ import annotations

import signal
import time
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

import yaml
from ingestion_contract.process import exit_now

from ingestion_sandbox.demo import prereqs
from ingestion_sandbox.demo.console import Console, live_wanted
from ingestion_sandbox.demo.monitor import Metrics
from ingestion_sandbox.demo.options import DemoOptions, deviations, parse_options
from ingestion_sandbox.demo.report import (
    summarize,
    write_chart,
    write_documents,
    write_summary,
)
from ingestion_sandbox.demo.rollout import Kubectl, demo_rollout, names_of, write_rollout
from ingestion_sandbox.demo.sandbox import Sandbox
from ingestion_sandbox.demo.story import Observer, Story
from ingestion_sandbox.demo.timeline import Timeline, check_story
from ingestion_sandbox.demo.traffic import TrafficGenerator


class Interrupted(BaseException):
    """SIGINT or SIGTERM: stop the story and clean up."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.code = 128 + signum


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


def make_run_dir(root: Path) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = root / stamp
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = root / f"{stamp}-{suffix}"
    run_dir.mkdir(parents=True)
    return run_dir.resolve()


def main(argv: list[str] | None = None) -> None:
    exit_now(run(parse_options(argv)))


def run(options: DemoOptions) -> int:
    started = time.monotonic()
    run_dir = make_run_dir(options.output_dir)
    console = Console(live_wanted(options.live), run_dir / "demo.log", started)
    console.out(f"apex-ingestion-rollout demo. Run directory (logs, summary, chart): {run_dir}")
    try:
        binaries = prereqs.check(options.install_missing, console.out)
        base = yaml.safe_load(options.rollout_file.read_text())
        names = names_of(demo_rollout(base, options, "http://127.0.0.1:9090"))
    except (prereqs.MissingPrerequisite, OSError, ValueError, KeyError) as exc:
        console.out(f"Cannot start the demo: {exc}")
        return 2
    previous = {s: signal.signal(s, _interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    sandbox = Sandbox(options, run_dir, console.say, binaries.kubectl)
    generator: TrafficGenerator | None = None
    try:
        console.say("Starting the sandbox (servers on 127.0.0.1, free ports):")
        sandbox.start(names)
        generator = TrafficGenerator(
            sandbox.api_url, sandbox.temporal.address, sandbox.samples, options.rate, run_dir.name
        )
        return tell(options, sandbox, generator, binaries, base, console, started)
    except Interrupted as exc:
        console.close_panel()
        console.out(f"Interrupted ({exc}): stopping everything")
        return exc.code
    except Exception as exc:
        console.close_panel()
        console.out(f"The sandbox failed: {exc}")
        return 3
    finally:
        for signum in previous:  # a second Ctrl-C must not cut the cleanup short
            signal.signal(signum, lambda *_: console.out("still cleaning up..."))
        if generator is not None:
            generator.close()
        sandbox.stop()
        console.out(f"Everything stopped. Logs: {run_dir / 'logs'}")


def tell(
    options: DemoOptions,
    sandbox: Sandbox,
    generator: TrafficGenerator,
    binaries: prereqs.Binaries,
    base: dict[str, Any],
    console: Console,
    started: float,
) -> int:
    """The story, then the summary, the chart and the verdict."""
    startup = time.monotonic() - started
    kube = sandbox.kube
    console.say(
        f"Sandbox ready in {startup:.1f}s on the {kube.description}. kubectl works too: "
        f"export KUBECONFIG={sandbox.kubeconfig}"
        + (f" (kubectl: {kube.kubectl})" if kube.kubectl else "")
    )
    rollout = demo_rollout(base, options, sandbox.prometheus.url)
    path = write_rollout(rollout, options.rollout_file, sandbox.run_dir / "rollout.yaml")
    console.say(f"Judge: {options.judge}; the thresholds are the product's ({path.name} lists ")
    console.say("  every field the demo changed from the example)")
    for line in deviations(options):
        console.say(f"  {line}")
    kubectl = Kubectl(kube.kubectl, sandbox.kubeconfig, sandbox.cluster, console.say)
    kubectl.validate = kube.validates
    timeline = Timeline()  # every time in the run: seconds since `started`
    metrics = Metrics(sandbox.prometheus, options.window_seconds)
    observer = Observer(sandbox, metrics, generator, timeline, console, started)
    Story(options, observer, kubectl, (path, rollout)).run()
    console.close_panel()
    extra = {
        "run_dir": str(sandbox.run_dir),
        "startup_seconds": round(startup, 1),
        "story_seconds": round(time.monotonic() - started - startup, 1),
        "total_seconds": round(time.monotonic() - started, 1),
        "chart": "chart.png",
        "rollout_file": str(path),
        "worker_restarts": sandbox.kubelet.restarts,
        "kubernetes": kube.description,
    }
    return report(rollout["spec"]["analysis"], sandbox, observer, console, extra)


def report(
    analysis: dict[str, Any],
    sandbox: Sandbox,
    observer: Observer,
    console: Console,
    extra: dict[str, Any],
) -> int:
    """Check the story, write summary, chart and documents; 0 if the story held."""
    timeline, run_dir = observer.timeline, sandbox.run_dir
    problems = check_story(timeline)
    extra["samples"] = [vars(s) for s in observer.samples]
    summary = summarize(timeline, observer.samples, problems, analysis, extra)
    chart = write_chart(observer.samples, timeline, run_dir / "chart.png")
    write_documents(observer.generator.snapshot(), observer.t0, run_dir / "documents.csv")
    console.out(write_summary(summary, run_dir))
    console.out(
        f"Story: {extra['story_seconds']}s. Summary: {run_dir / 'summary.txt'}; chart: {chart}"
    )
    if problems:
        console.out(f"Last lines of the operator's log:\n{sandbox.children['operator'].tail(20)}")
        return 1
    return 0


if __name__ == "__main__":
    main()

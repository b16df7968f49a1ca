"""The API's status reads without servers: the one status shape and its step, the legacy
progress tracker, `?wait=` parsing, single-flight reads, shared waits, the journal's
terminal record with its timings (issue 17)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from ingestion_api.journal import Journal
from ingestion_api.shared_reads import Budget, SharedReads, Watches
from ingestion_api.status_view import (
    LegacyProgress,
    from_query,
    from_record,
    parse_wait,
    step_during,
)
from ingestion_worker.models import IngestionStatus, IngestionStatusView, StepTiming


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("status", "step"),
    [
        ("pending", None),
        ("downloading", "download"),
        ("downloaded", "parse"),
        ("parsed", "extract_entities"),
        ("entities_extracted", "embed"),
        ("embeddings_generated", "write_graph"),
        ("completed", None),
    ],
)
def test_the_step_in_progress_follows_the_step_table(status: str, step: str | None) -> None:
    assert step_during(status) == step


def test_a_failure_is_in_the_last_step_it_ran() -> None:
    assert step_during("failed", [("download", 0.1), ("parse", 0.2)]) == "parse"
    assert step_during("failed", []) is None


def test_legacy_progress_times_each_step_and_shows_a_retry_in_its_step() -> None:
    """Given the callbacks a legacy run makes, with a retried download, then the status is
    the retry's reason while it waits, the step stays download, and each step is timed from
    the status that opened it to the one that closed it."""
    clock = Clock()
    progress = LegacyProgress(clock)
    assert progress.view().status == "pending" and progress.view().step is None
    progress(IngestionStatus.DOWNLOADING)
    clock.now += 1.0
    progress("retrying: TransientStorageError: throttled (attempt 2 in 0.7 s)")
    view = progress.view()
    assert (view.status, view.step) == (
        "retrying: TransientStorageError: throttled (attempt 2 in 0.7 s)",
        "download",
    )
    clock.now += 0.5
    for status in ("downloaded", "parsed", "entities_extracted", "embeddings_generated"):
        progress(status)
        clock.now += 0.25
    view = progress.view()
    assert (view.status, view.step, view.path) == ("embeddings_generated", "write_graph", "legacy")
    assert view.timings == (
        ("download", 1.5),
        ("parse", 0.25),
        ("extract_entities", 0.25),
        ("embed", 0.25),
    )
    progress("failed")
    assert progress.view().step == "write_graph" and progress.view().finished


def test_the_workflow_query_reads_as_the_same_shape() -> None:
    view = from_query(
        IngestionStatusView(
            status=IngestionStatus.DOWNLOADING,
            document_id="d",
            source="s",
            timings=[StepTiming("download", 0.1), StepTiming("cleanup", 0.2)],
            retrying="retrying: GraphUnavailableError: down (attempt 2 in 1.0 s)",
        )
    )
    assert view.status.startswith("retrying: GraphUnavailableError")
    assert (view.step, view.timings, view.path) == ("download", (("download", 0.1),), "temporal")
    body = view.body("s", "d")
    assert body["timings"] == [{"step": "download", "seconds": 0.1}]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("500ms", 0.5), ("1m", 60.0), ("2", 2.0), ("0.25", 0.25), ("90m", 60.0)],
)
def test_wait_durations(text: str, seconds: float) -> None:
    assert parse_wait(text, 60.0) == seconds


# "\uff11s": a full-width digit, which \d would take
@pytest.mark.parametrize("text", ["", "soon", "-1", "1h", "1e3", " 1s", "1s\n", "\uff11s"])
def test_malformed_waits_say_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match="500ms, 30s, 1m"):
        parse_wait(text, 60.0)


async def test_concurrent_reads_share_one_fetch_and_reuse_it_for_its_time() -> None:
    """Given 20 concurrent reads of one key, then one fetch answers all; a read within the
    reuse time gets it too; after it, a new fetch runs."""
    clock, fetched = Clock(), []
    reads = SharedReads(clock=clock)
    release = asyncio.Event()

    async def fetch() -> tuple[str, float]:
        fetched.append(1)
        await release.wait()
        return f"answer {len(fetched)}", 0.2

    pending = [asyncio.create_task(reads.get("k", fetch)) for _ in range(20)]
    await asyncio.sleep(0)
    release.set()
    assert set(await asyncio.gather(*pending)) == {"answer 1"}
    clock.now += 0.1
    assert await reads.get("k", fetch) == "answer 1"
    clock.now += 0.2
    assert await reads.get("k", fetch) == "answer 2"
    assert len(fetched) == reads.fetches == 2


async def test_a_failed_fetch_is_shared_but_not_kept() -> None:
    reads, calls = SharedReads(), []

    async def failing() -> tuple[str, float]:
        calls.append(1)
        await asyncio.sleep(0.01)
        raise RuntimeError("temporal down")

    results = await asyncio.gather(
        *(reads.get("k", failing) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, RuntimeError) for r in results) and len(calls) == 1

    async def working() -> tuple[str, float]:
        return "up", 1.0

    assert await reads.get("k", working) == "up"


async def test_reads_keep_a_bounded_number_of_values() -> None:
    clock = Clock()
    reads = SharedReads(max_entries=3, clock=clock)
    for key in "abcd":

        async def fetch(key: str = key) -> tuple[str, float]:
            return key, 10.0

        await reads.get(key, fetch)
    assert len(reads._values) == 3 and "a" not in reads._values


async def test_waiters_share_one_long_poll_that_stops_with_the_last_of_them() -> None:
    """Given three waiters on one key and a long-poll started for each (one runs), when the
    document finishes they all wake; when every waiter of another key leaves, its
    long-poll is cancelled; after close, a new watch is already resolved."""
    watches, polls = Watches(), []
    finish = asyncio.Event()

    async def long_poll() -> None:
        polls.append(1)
        await finish.wait()

    futures = [watches.watch("k") for _ in range(3)]
    for _ in futures:
        watches.poll("k", long_poll)
    await asyncio.sleep(0)
    finish.set()
    await asyncio.wait_for(asyncio.gather(*futures), 1)
    assert polls == [1]
    for _ in futures:
        watches.unwatch("k")
    assert watches.watched == 0

    forever = asyncio.Event()

    async def never() -> None:
        await forever.wait()

    watches.watch("other")
    watches.poll("other", never)
    poller = watches._pollers["other"]
    watches.unwatch("other")
    await asyncio.sleep(0)
    assert poller.cancelled()

    pending = watches.watch("late")
    watches.close()
    assert pending.done() and watches.watch("later").done()


def test_a_finished_record_keeps_its_timings_and_reads_as_a_status(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path / "j.sqlite3"))
    journal.accept("crm", "d", "legacy", None, None)
    journal.finish("crm", "d", "failed", "GraphWriteError", "refused", '[["download", 0.5]]')
    record = journal.get("crm", "d")
    assert record is not None
    view = from_record(
        record.path, record.status, record.error_type, record.error_message, record.timings
    )
    assert (view.status, view.step, view.timings) == ("failed", "download", (("download", 0.5),))
    journal.accept("crm", "d", "legacy", None, None)  # accepted again: the old result goes
    assert journal.get("crm", "d").timings is None  # type: ignore[union-attr]


def test_a_journal_of_schema_1_is_brought_up_to_date(tmp_path: Path) -> None:
    """Given a file the previous API version wrote (schema 1, no timings), when this API
    opens it, then its records are kept and finished documents can store their timings."""
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE documents (source TEXT NOT NULL, document_id TEXT NOT NULL, "
            "path TEXT NOT NULL, bucket TEXT, key TEXT, status TEXT NOT NULL, error_type TEXT, "
            "error_message TEXT, accepted_at REAL NOT NULL, finished_at REAL, "
            "runs INTEGER NOT NULL DEFAULT 1, PRIMARY KEY (source, document_id)) WITHOUT ROWID;"
            "INSERT INTO documents (source, document_id, path, status, accepted_at) "
            "VALUES ('crm', 'old', 'legacy', 'pending', 1.0);"
            "PRAGMA user_version=1;"
        )
    journal = Journal(str(path))
    assert [r.document_id for r in journal.unfinished()] == ["old"]
    journal.finish("crm", "old", "completed", None, None, '[["download", 1.0]]')
    assert journal.get("crm", "old").timings == '[["download", 1.0]]'  # type: ignore[union-attr]
    journal.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (2,)


async def test_the_query_budget_allows_a_seconds_worth_then_paces() -> None:
    """Given a budget of 4 a second, then 4 calls go at once, the 5th waits for a refill,
    and a second later there are 4 again; 0 means no bound."""
    clock = Clock()
    budget = Budget(4.0, clock)
    for _ in range(4):
        assert budget.available()
        await budget.take()
    assert not budget.available()
    waiting = asyncio.create_task(budget.take())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    clock.now += 0.25
    await asyncio.wait_for(waiting, 1)
    clock.now += 1.0
    assert budget.available()
    unbounded = Budget(0.0, clock)
    for _ in range(100):
        await unbounded.take()
    assert unbounded.available()

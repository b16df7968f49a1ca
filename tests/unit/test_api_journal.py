"""The API's acceptance journal (a real SQLite file): what it keeps, what a restart reads
back, and how it bounds itself."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from ingestion_api.journal import Journal, JournalError


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_an_accepted_document_outlives_the_journal_object(tmp_path: Path) -> None:
    """Given a document accepted and another finished, when the file is opened again
    (a restarted process), then only the unfinished one is to resume, and both keep status."""
    path = str(tmp_path / "sub" / "journal.sqlite3")
    journal = Journal(path)
    journal.accept("crm", "open", "legacy", "bucket-a", "k/1")
    journal.accept("crm", "done", "temporal", None, None)
    journal.finish("crm", "done", "completed", None, None)
    journal.close()

    reopened = Journal(path)
    unfinished = reopened.unfinished()
    assert [(r.document_id, r.path, r.bucket, r.key) for r in unfinished] == [
        ("open", "legacy", "bucket-a", "k/1")
    ]
    done = reopened.get("crm", "done")
    assert done is not None and done.finished and done.status == "completed"
    reopened.resumed("crm", "open")
    record = reopened.get("crm", "open")
    assert record is not None and record.runs == 2 and record.status == "pending"


def test_accepting_again_replaces_a_finished_record(tmp_path: Path) -> None:
    """Given a failed document, when it is accepted again, then it is unfinished once more."""
    journal = Journal(str(tmp_path / "j.sqlite3"))
    journal.accept("crm", "d", "legacy", None, None)
    journal.finish("crm", "d", "failed", "DocumentNotFoundError", "missing")
    journal.accept("crm", "d", "temporal", None, None)
    record = journal.get("crm", "d")
    assert record is not None and not record.finished and record.path == "temporal"
    assert record.error_type is None


def test_forget_drops_only_an_unfinished_record(tmp_path: Path) -> None:
    journal = Journal(None)
    journal.accept("crm", "refused", "legacy", None, None)
    journal.accept("crm", "kept", "legacy", None, None)
    journal.finish("crm", "kept", "completed", None, None)
    journal.forget("crm", "refused")
    journal.forget("crm", "kept")
    assert journal.get("crm", "refused") is None
    assert journal.get("crm", "kept") is not None


def test_finished_records_are_pruned_by_age_and_count_never_unfinished_ones() -> None:
    """Given 5 finished records a second apart and one unfinished, when pruned to 2 records
    and 10 s, then the 2 newest finished stay; past 10 s of age they go too."""
    clock = Clock()
    journal = Journal(None, max_records=2, retention_seconds=10.0, clock=clock)
    journal.accept("crm", "open", "legacy", None, None)
    for i in range(5):
        clock.now += 1
        journal.accept("crm", f"d{i}", "legacy", None, None)
        journal.finish("crm", f"d{i}", "completed", None, None)
    assert journal.prune() == 3
    kept = [f"d{i}" for i in range(5) if journal.get("crm", f"d{i}") is not None]
    assert kept == ["d3", "d4"]
    clock.now += 60
    assert journal.prune() == 2
    assert [r.document_id for r in journal.unfinished()] == ["open"]


def test_wal_mode_and_the_sync_setting_are_applied(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    Journal(str(path), sync="full").close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    with pytest.raises(JournalError, match="sync mode"):
        Journal(str(path), sync="sometimes")


def test_a_journal_of_another_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    Journal(str(path)).close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version=99")
    with pytest.raises(JournalError, match="schema 99"):
        Journal(str(path))


def test_an_unwritable_location_fails_with_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(JournalError, match=str(blocker)):
        Journal(str(blocker / "journal.sqlite3"))

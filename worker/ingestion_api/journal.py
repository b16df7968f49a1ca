"""The API's durable record of what it accepted, so that a 202 outlives the process.

Legacy-path documents run inside the API process: before this journal, a SIGKILL lost
every accepted document that had not finished, and a restart forgot every status. Now
the API commits a record here before it answers 202, marks it finished with the
document's result, and at start-up reads back every record without a result and runs
that document again. The graph write is an idempotent MERGE, so a document that was
half written before the crash is written exactly once.

Why SQLite in WAL mode: it is in the standard library, needs no server, and one commit
costs tens of microseconds, which keeps the POST -> 202 overhead under 2 ms. With
`synchronous=normal` a commit survives the process dying (the WAL is in the OS page
cache; only an OS crash or power loss can lose the last commits); `synchronous=full`
adds one fsync per commit, for a journal on a PersistentVolume that must survive the
node. The journal is one file per API replica (its own volume): SQLite must not be
shared over a network filesystem.

What is written: acceptance (path, bucket, key) and the terminal result (status, error,
the time each step took). Progress between the two (downloading, parsed, retrying...)
stays in memory: a resumed document starts again from its first step, so a stored
progress would only be stale. Finished records are what status reads of finished
documents answer from (status_reader.py), on both paths, without asking Temporal; they
are kept bounded by count and by age.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("ingestion_api")

SYNC_MODES = ("normal", "full")
MEMORY = ":memory:"
SCHEMA_VERSION = 2
#: Schema changes an older file is brought up to date with, by the version they lead to.
_MIGRATIONS = {2: "ALTER TABLE documents ADD COLUMN timings TEXT"}
PRUNE_EVERY = 1000  # finished documents between two prunes
CHECKPOINT_SECONDS = 1.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    source TEXT NOT NULL,
    document_id TEXT NOT NULL,
    path TEXT NOT NULL,
    bucket TEXT,
    key TEXT,
    status TEXT NOT NULL,
    error_type TEXT,
    error_message TEXT,
    accepted_at REAL NOT NULL,
    finished_at REAL,
    runs INTEGER NOT NULL DEFAULT 1,
    timings TEXT,
    PRIMARY KEY (source, document_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS documents_finished_at ON documents (finished_at);
"""
_COLUMNS = (
    "source, document_id, path, bucket, key, status, error_type, error_message, "
    "accepted_at, finished_at, runs, timings"
)


class JournalError(Exception):
    """The journal file cannot be used (wrong schema version, unwritable)."""


@dataclass(frozen=True)
class JournalRecord:
    source: str
    document_id: str
    path: str
    bucket: str | None
    key: str | None
    status: str
    error_type: str | None
    error_message: str | None
    accepted_at: float
    finished_at: float | None
    #: How many times this API started the document (1 + resumes).
    runs: int
    #: The steps' times of a finished document, JSON [[step, seconds], ...].
    timings: str | None = None

    @property
    def finished(self) -> bool:
        return self.finished_at is not None


class Journal:
    """One SQLite file (or memory), shared by the event loop and the legacy threads."""

    def __init__(
        self,
        path: str | None,
        *,
        sync: str = "normal",
        max_records: int = 100_000,
        retention_seconds: float = 7 * 24 * 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if sync not in SYNC_MODES:
            raise JournalError(f"journal sync mode {sync!r} is not one of {SYNC_MODES}")
        self.path = path or MEMORY
        self.durable = self.path != MEMORY
        self._max_records = max_records
        self._retention = retention_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._finished_since_prune = 0
        try:
            if self.durable:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={sync.upper()}")
            self._db.executescript(_SCHEMA)
            self._check_version()
        except (sqlite3.Error, OSError) as exc:
            raise JournalError(f"cannot open the API journal {self.path}: {exc}") from exc
        self.prune()
        self._closed = threading.Event()
        if self.durable:
            # A checkpoint copies the WAL back into the database and fsyncs both: tens of
            # milliseconds on a busy disk. Done here, a commit would pay for it now and then
            # (p99 1.4 ms, max 38 ms measured); a thread of its own keeps it off the 202.
            self._db.execute("PRAGMA wal_autocheckpoint=0")
            threading.Thread(
                target=self._checkpoints, name="journal-checkpoint", daemon=True
            ).start()

    def _check_version(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version == 0:
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            return
        if 0 < version < SCHEMA_VERSION:  # a file an older API wrote: bring it up to date
            for target in range(version + 1, SCHEMA_VERSION + 1):
                self._db.execute(_MIGRATIONS[target])
                self._db.execute(f"PRAGMA user_version={target}")
            return
        if version != SCHEMA_VERSION:
            raise JournalError(
                f"{self.path} has journal schema {version}, this API reads {SCHEMA_VERSION}"
            )

    def accept(
        self, source: str, document_id: str, path: str, bucket: str | None, key: str | None
    ) -> None:
        """Record an accepted document (replacing a finished record of the same document)."""
        now = self._clock()
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO documents (source, document_id, path, bucket, key, "
                "status, accepted_at) VALUES (?, ?, ?, ?, ?, 'pending', ?)",
                (source, document_id, path, bucket, key, now),
            )

    def resumed(self, source: str, document_id: str) -> None:
        """Count one more run of an unfinished document (after a restart)."""
        with self._lock:
            self._db.execute(
                "UPDATE documents SET runs = runs + 1 WHERE source = ? AND document_id = ?",
                (source, document_id),
            )

    def finish(
        self,
        source: str,
        document_id: str,
        status: str,
        error_type: str | None,
        error_message: str | None,
        timings: str | None = None,
    ) -> None:
        """Record the document's terminal result (`timings`: JSON [[step, seconds], ...])."""
        now = self._clock()
        with self._lock:
            self._db.execute(
                "UPDATE documents SET status = ?, error_type = ?, error_message = ?, "
                "timings = ?, finished_at = ? WHERE source = ? AND document_id = ?",
                (status, error_type, error_message, timings, now, source, document_id),
            )
            self._finished_since_prune += 1
            due = self._finished_since_prune >= PRUNE_EVERY
        if due:
            self.prune()

    def forget(self, source: str, document_id: str) -> None:
        """Drop an unfinished record whose document was refused after all."""
        with self._lock:
            self._db.execute(
                "DELETE FROM documents WHERE source = ? AND document_id = ? "
                "AND finished_at IS NULL",
                (source, document_id),
            )

    def get(self, source: str, document_id: str) -> JournalRecord | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM documents WHERE source = ? AND document_id = ?",
                (source, document_id),
            ).fetchone()
        return JournalRecord(*row) if row else None

    def unfinished(self) -> list[JournalRecord]:
        """Every accepted document without a result, oldest first (what a restart resumes)."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM documents WHERE finished_at IS NULL ORDER BY accepted_at"
            ).fetchall()
        return [JournalRecord(*row) for row in rows]

    def prune(self) -> int:
        """Drop finished records past the age or count bound; returns how many went."""
        cutoff = self._clock() - self._retention
        with self._lock:
            self._finished_since_prune = 0
            by_age = self._db.execute(
                "DELETE FROM documents WHERE finished_at IS NOT NULL AND finished_at < ?",
                (cutoff,),
            ).rowcount
            by_count = self._db.execute(
                "DELETE FROM documents WHERE finished_at IS NOT NULL AND finished_at <= ("
                "SELECT finished_at FROM documents WHERE finished_at IS NOT NULL "
                "ORDER BY finished_at DESC LIMIT 1 OFFSET ?)",
                (self._max_records,),
            ).rowcount
        return by_age + by_count

    def _checkpoints(self) -> None:
        db = sqlite3.connect(self.path, check_same_thread=False)
        try:
            while not self._closed.wait(CHECKPOINT_SECONDS):
                db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:  # the writes go on; the WAL only grows until a restart
            log.warning("journal checkpoints stopped: %s", exc)
        finally:
            db.close()

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            self._db.close()

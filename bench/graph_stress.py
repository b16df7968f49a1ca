"""How often FalkorDB's Bolt port dies under the pipeline's own graph writes (README: Testing
against real servers).

The pipeline benchmark lost runs to FalkorDB crashing under load (a glibc assertion in
pthread_mutex_lock, SIGSEGV in its Bolt handler). This takes the benchmark out of it: each
trial starts a fresh FalkorDB exactly as the rig does and lets many threads write documents
through the project's GraphWriter (half to the default database, half to "legacy", as the two
paths do) for a fixed time, then says whether the server survived, how many documents it took,
and the crash report's first lines when it did not. Never a test: it prints numbers.

    .venv/bin/python bench/graph_stress.py [--trials 5] [--threads 32] [--seconds 60]
"""

from __future__ import annotations

import argparse
import logging
import random
import threading
import time
from dataclasses import dataclass, field

from _stats import crash_lines
from ingestion_sandbox.servers.services import FalkorDBServer
from ingestion_worker.entities import Entity
from ingestion_worker.graph import ChunkRecord, GraphWriter

MAX_MESSAGE_BYTES = 4000  # as the rig: FalkorDB's Bolt port crashes on larger requests


@dataclass
class Trial:
    documents: int = 0
    errors: int = 0
    survived: bool = True
    last_words: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, documents: int, errors: int) -> None:
        with self.lock:
            self.documents += documents
            self.errors += errors


def write_until(writer: GraphWriter, thread: int, deadline: float, trial: Trial) -> None:
    """Write 10 KB-like documents (3 chunks, 10 entity mentions) until the deadline."""
    rnd = random.Random(thread)
    index = documents = errors = 0
    while time.monotonic() < deadline and trial.survived:
        chunks = [ChunkRecord(k, "x" * 1000, [rnd.random() for _ in range(256)]) for k in range(3)]
        entities = [Entity("ORG", f"org{rnd.randrange(500)}", 1) for _ in range(10)]
        try:
            writer.write_document(
                source="s3://stress",
                document_id=f"{thread}-{index}",
                content_type="text/plain",
                content_hash=str(index),
                chunks=chunks,
                entities=entities,
            )
            documents += 1
        except Exception:  # counted; the server's state decides the trial
            errors += 1
        index += 1
    trial.count(documents, errors)


def one_trial(threads: int, seconds: float) -> Trial:
    trial = Trial()
    with FalkorDBServer() as server:
        # Never closed: a GOODBYE makes FalkorDB drop later handshakes (graph.py).
        writer = GraphWriter.connect(
            server.bolt_uri, None, None, max_message_bytes=MAX_MESSAGE_BYTES
        )
        writers = [writer, writer.for_database("legacy")]
        deadline = time.monotonic() + seconds
        pool = [
            threading.Thread(target=write_until, args=(writers[t % 2], t, deadline, trial))
            for t in range(threads)
        ]
        for thread in pool:
            thread.start()
        while any(t.is_alive() for t in pool):
            trial.survived = server.running
            time.sleep(0.5)
        trial.survived = server.running
        if not trial.survived:
            trial.last_words = "\n  ".join(crash_lines(server))
    return trial


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    # A dead server makes every pooled connection log an error: the trial's line says it.
    logging.getLogger("neo4j").setLevel(logging.CRITICAL)
    died = 0
    for number in range(1, args.trials + 1):
        trial = one_trial(args.threads, args.seconds)
        died += not trial.survived
        state = "survived" if trial.survived else "DIED"
        print(
            f"trial {number}: {state}, {trial.documents} documents, {trial.errors} errors",
            flush=True,
        )
        if trial.last_words:
            print(f"  {trial.last_words}", flush=True)
    print(
        f"FalkorDB died in {died} of {args.trials} trials ({args.threads} writers, "
        f"{args.seconds:.0f} s each)"
    )


if __name__ == "__main__":
    main()

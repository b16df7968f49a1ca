"""The status benchmark's clients, each run as a process of its own so that they do not share
the benchmark's event loop (or the API's): plain HTTP/1.1 keep-alive over asyncio streams,
light enough that the API process, not the client, is what gets measured.

    python bench/_status_clients.py hammer HOST PORT PATH CLIENTS SECONDS
        CLIENTS connections read PATH back to back for SECONDS; prints {"reads", "errors"}.
    python bench/_status_clients.py poll HOST PORT SOURCE CLIENTS INTERVAL
        CLIENTS pollers, each reading the status of a random in-flight document every
        INTERVAL seconds, as a dashboard would; stdin says which documents are in flight
        ("+id" / "-id" lines); at EOF prints {"reads", "errors", "seconds"}.
    python bench/_status_clients.py wait HOST PORT SOURCE CLIENTS 0
        The same clients waiting instead (GET ...?wait=30s on a random in-flight document,
        then the next one).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import sys
import time
from typing import Any

_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")


class Connection:
    """One keep-alive connection; `get` returns (status, body)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str):
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, host)

    async def get(self, path: str) -> tuple[int, bytes]:
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        match = _LENGTH.search(head)
        body = await self.reader.readexactly(int(match.group(1))) if match else b""
        return int(head[9:12]), body

    def close(self) -> None:
        self.writer.close()


async def hammer(host: str, port: int, path: str, clients: int, seconds: float) -> dict[str, Any]:
    """Reads of `path` by `clients` connections, back to back, for `seconds`."""
    counts = {"reads": 0, "errors": 0}
    deadline = time.monotonic() + seconds

    async def client() -> None:
        connection = await Connection.open(host, port)
        while time.monotonic() < deadline:
            status, _ = await connection.get(path)
            counts["reads" if status == 200 else "errors"] += 1
        connection.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return counts


async def poll(
    host: str, port: int, source: str, clients: int, interval: float, wait: bool = False
) -> dict[str, Any]:
    """`clients` dashboards polling (or waiting on) in-flight documents until stdin closes."""
    in_flight: list[str] = []
    counts = {"reads": 0, "errors": 0}
    done = asyncio.Event()
    started = time.monotonic()

    async def listen() -> None:
        loop = asyncio.get_running_loop()
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            sign, document_id = line[0], line[1:].strip()
            if sign == "+":
                in_flight.append(document_id)
            elif document_id in in_flight:
                in_flight.remove(document_id)
        done.set()

    async def poller() -> None:
        connection = await Connection.open(host, port)
        await asyncio.sleep(random.random() * interval)  # not all in step
        while not done.is_set():
            if not in_flight:
                await asyncio.sleep(0.05)
                continue
            path = f"/v1/documents/{source}/{random.choice(in_flight)}"
            status, _ = await connection.get(path + ("?wait=30s" if wait else ""))
            counts["reads" if status == 200 else "errors"] += 1
            if not wait:
                await asyncio.sleep(interval)
        connection.close()

    await asyncio.gather(listen(), *(poller() for _ in range(clients)))
    return {**counts, "seconds": time.monotonic() - started}


def main(argv: list[str]) -> None:
    mode, host, port = argv[0], argv[1], int(argv[2])
    if mode == "hammer":
        result = asyncio.run(hammer(host, port, argv[3], int(argv[4]), float(argv[5])))
    else:
        clients, interval = int(argv[4]), float(argv[5])
        result = asyncio.run(poll(host, port, argv[3], clients, interval, mode == "wait"))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

"""Many readers, one call: what keeps status polling off the Temporal workers.

`SharedReads` gives every concurrent read of the same key the answer of one fetch
(single-flight) and keeps that answer for as long as its fetch said it stays true
(an open workflow's query result for a fraction of a second, a closed workflow's record
for longer), so N clients polling one document cost about one workflow query. `Budget`
bounds how many such fetches one process makes a second, whatever the number of documents.

`Watches` is how a wait ends without polling: every `?wait=` on a document shares one
future, resolved once by whoever learns that the document finished (the legacy run, the
API's own long-poll on the workflow result, or one long-poll started for the waiters).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from typing import Any

#: A fetch returns its value and how many seconds the value may be reused.
Fetch = Callable[[], Awaitable[tuple[Any, float]]]


class SharedReads:
    """Single-flight reads with a reuse time per value, bounded in size."""

    def __init__(self, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic):
        self._max_entries = max_entries
        self._clock = clock
        self._values: dict[Hashable, tuple[float, Any]] = {}  # key -> (reusable until, value)
        self._flights: dict[Hashable, asyncio.Future[Any]] = {}
        #: How many fetches ran (each one a call to Temporal): the cost the readers caused.
        self.fetches = 0

    async def get(self, key: Hashable, fetch: Fetch) -> Any:
        """The key's value: a reusable one, the one being fetched, or a new fetch's."""
        kept = self._values.get(key)
        if kept is not None and kept[0] > self._clock():
            return kept[1]
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.ensure_future(self._fetch(key, fetch))
            self._flights[key] = flight
        # shield: a reader that gives up (its client went away) does not cancel the others'
        return await asyncio.shield(flight)

    async def _fetch(self, key: Hashable, fetch: Fetch) -> Any:
        self.fetches += 1
        try:
            value, reuse = await fetch()
        finally:
            del self._flights[key]
        if value is None:
            self._values.pop(key, None)
        else:  # kept past its reuse time too, for `last`
            self._keep(key, value, self._clock() + reuse)
        return value

    def last(self, key: Hashable) -> Any:
        """The key's last value, even past its reuse time (None: never fetched, or evicted)."""
        kept = self._values.get(key)
        return None if kept is None else kept[1]

    def put(self, key: Hashable, value: Any, reuse: float) -> None:
        """Keep a value learnt some other way (a long-poll that saw the workflow close)."""
        self._keep(key, value, self._clock() + reuse)

    def forget(self, key: Hashable) -> None:
        self._values.pop(key, None)

    def _keep(self, key: Hashable, value: Any, until: float) -> None:
        if len(self._values) >= self._max_entries and key not in self._values:
            now = self._clock()
            for stale in [k for k, (t, _) in self._values.items() if t <= now]:
                del self._values[stale]
            if len(self._values) >= self._max_entries:  # all still fresh: drop the oldest
                del self._values[next(iter(self._values))]
        self._values[key] = (until, value)


class Budget:
    """At most `per_second` calls a second, in bursts of up to one second's worth; 0 means
    no bound. Each call is given its turn when it asks (GCRA: a theoretical arrival time
    moved on by 1/per_second per call), so waiters sleep once, in order, without polling."""

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_second
        self._clock = clock
        self._interval = 1 / per_second if per_second > 0 else 0.0
        self._tolerance = 1.0 - self._interval  # how far ahead of time calls may go
        self._turn = clock()  # when the next call is due, at the steady rate

    def available(self) -> bool:
        """Whether a call now would go at once."""
        return self.per_second <= 0 or self._clock() >= self._turn - self._tolerance

    async def take(self) -> None:
        """Spend one call, waiting for its turn when the budget is spent."""
        if self.per_second <= 0:
            return
        now = self._clock()
        go = max(now, self._turn - self._tolerance)
        self._turn = max(self._turn, go) + self._interval
        if go > now:
            await asyncio.sleep(go - now)


class Watches:
    """One future per watched document, shared by its waiters, resolved when it finishes."""

    def __init__(self) -> None:
        self._futures: dict[Hashable, asyncio.Future[None]] = {}
        self._waiters: dict[Hashable, int] = {}
        self._pollers: dict[Hashable, asyncio.Task[None]] = {}
        self.closed = False

    def watch(self, key: Hashable) -> asyncio.Future[None]:
        """The key's shared future (register before reading the status, so a finish that
        lands between the read and the wait is not missed)."""
        future = self._futures.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            if self.closed:
                future.set_result(None)
            self._futures[key] = future
        self._waiters[key] = self._waiters.get(key, 0) + 1
        return future

    def unwatch(self, key: Hashable) -> None:
        """One waiter less; the last one stops the key's long-poll, if it has one."""
        left = self._waiters.get(key, 0) - 1
        if left > 0:
            self._waiters[key] = left
            return
        self._waiters.pop(key, None)
        self._futures.pop(key, None)
        poller = self._pollers.pop(key, None)
        if poller is not None:
            poller.cancel()

    def poll(self, key: Hashable, until_finished: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run one long-poll for the key's waiters (unless one runs already); its end
        resolves them."""
        if key in self._pollers or key not in self._futures or self.closed:
            return
        task = asyncio.create_task(until_finished())
        self._pollers[key] = task
        task.add_done_callback(lambda _: self._poll_ended(key, task))

    def _poll_ended(self, key: Hashable, task: asyncio.Task[None]) -> None:
        if self._pollers.get(key) is task:
            del self._pollers[key]
        if not task.cancelled():
            self.finished(key)

    def finished(self, key: Hashable) -> None:
        """The document finished: wake its waiters (a no-op when nobody waits)."""
        future = self._futures.pop(key, None)
        if future is not None and not future.done():
            future.set_result(None)

    def close(self) -> None:
        """Shutting down: every wait ends now, and new ones do not start."""
        self.closed = True
        for future in self._futures.values():
            if not future.done():
                future.set_result(None)
        for poller in self._pollers.values():
            poller.cancel()

    @property
    def watched(self) -> int:
        return len(self._waiters)

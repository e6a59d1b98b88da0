"""Client-side throttles: stay under a vendor's limits instead of bouncing off them."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

import requests


class ConcurrencyLimit:
    """At most ``limit`` requests in flight in this process (BILL: 3 per org; QBO: 10 per realm).

    Across processes the Airflow pool of the same size does the same job.
    """

    def __init__(self, limit: int) -> None:
        self._semaphore = threading.BoundedSemaphore(limit)

    def acquire(self) -> None:
        self._semaphore.acquire()

    def release(self) -> None:
        self._semaphore.release()

    def observe(self, response: requests.Response) -> None:
        return None


class SlidingWindowBudget:
    """At most ``n`` calls per ``seconds`` for each (n, seconds) pair, e.g. Expensify's 5/10 s + 20/60 s.

    Blocks (sleeps) until a call fits every window. A call counts from when it was sent until it
    *completed*: the vendor stamps it somewhere in between, and a slow answer must not let the next
    window open early (which, under load, is exactly how a client-side budget still earns a 429).
    """

    def __init__(
        self,
        windows: Sequence[tuple[int, float]],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.windows = list(windows)
        self._calls: deque[list[float]] = deque()
        self._in_flight = threading.local()
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep

    def acquire(self) -> None:
        while True:
            with self._lock:
                wait = self._wait_needed(self._clock())
                if wait <= 0:
                    entry = [self._clock()]
                    self._calls.append(entry)
                    self._in_flight.entry = entry
                    return
            self._sleep(wait)

    def _wait_needed(self, now: float) -> float:
        longest = max(seconds for _, seconds in self.windows)
        while self._calls and now - self._calls[0][0] >= longest:
            self._calls.popleft()
        times = sorted(entry[0] for entry in self._calls)
        wait = 0.0
        for limit, seconds in self.windows:
            recent = [t for t in times if now - t < seconds]
            if len(recent) >= limit:
                wait = max(wait, recent[-limit] + seconds - now)
        return wait

    def release(self) -> None:
        entry = getattr(self._in_flight, "entry", None)
        if entry is not None:
            with self._lock:
                entry[0] = self._clock()
            self._in_flight.entry = None

    def observe(self, response: requests.Response) -> None:
        return None


class Throttles:
    """Several throttles applied in order (e.g. a budget plus a concurrency cap)."""

    def __init__(self, *throttles: ConcurrencyLimit | SlidingWindowBudget) -> None:
        self.throttles = throttles

    def acquire(self) -> None:
        for throttle in self.throttles:
            throttle.acquire()

    def release(self) -> None:
        for throttle in reversed(self.throttles):
            throttle.release()

    def observe(self, response: requests.Response) -> None:
        for throttle in self.throttles:
            throttle.observe(response)

"""Client-side throttles: stay under a vendor's limits instead of bouncing off them."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Sequence

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


class TokenBuckets:
    """One token bucket per key, for calls we *receive* (webhook handshakes): answer, never wait.

    A key may spend ``burst`` tokens at once and earns one back every ``interval`` seconds.
    Memory is bounded because keys come from strangers: at most ``max_keys`` buckets are kept,
    the least recently used forgotten first. A forgotten key starts full again, so a caller who
    cycles through more keys than that only ever gets what a fresh key gets.
    """

    def __init__(
        self, burst: int, interval: float, *, max_keys: int = 1024, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.burst = burst
        self.interval = interval
        self.max_keys = max_keys
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()  # key -> (tokens, as of)
        self._lock = threading.Lock()
        self._clock = clock

    def take(self, key: Hashable) -> float:
        """Spend a token of ``key``: ``0.0`` when there was one, else the seconds until there is."""
        with self._lock:
            now = self._clock()
            tokens, since = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + max(0.0, now - since) / self.interval)
            wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) * self.interval
            self._buckets[key] = (tokens - 1.0 if wait == 0.0 else tokens, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return wait

    def __len__(self) -> int:
        return len(self._buckets)


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

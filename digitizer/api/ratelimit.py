"""Refusal of repeated failed authentications: a sliding window per client and key prefix.

Kept in the memory of one API process (``app.state.auth_limiter``): several API
processes each count on their own, and a restart forgets. That bounds guessing
at ``max_failures`` per window per process, which is what it is for; a shared
limit belongs in the reverse proxy.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

#: Buckets kept at most; beyond that the stalest are forgotten (memory stays bounded).
MAX_BUCKETS = 100_000


class FailedAuthLimiter:
    """Counts failures per bucket (``ip:ADDRESS``, ``key:PREFIX``) within a sliding window."""

    def __init__(
        self,
        max_failures: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max(1, max_failures)
        self.window_s = window_s
        self.clock = clock
        #: Least recently failed first, so the stalest bucket is forgotten first.
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def buckets(client: str | None, key: str | None) -> list[str]:
        """The buckets a request counts in: its client address and its key's prefix."""
        found = [f"ip:{client or 'unknown'}"]
        if key and key.startswith("sohoa_"):
            parts = key.split("_", 2)
            if len(parts) == 3 and parts[1]:
                found.append(f"key:{parts[1][:16]}")
        return found

    def _recent(self, bucket: str, now: float) -> deque[float] | None:
        times = self._failures.get(bucket)
        if times is None:
            return None
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[bucket]
            return None
        return times

    def retry_after(self, buckets: list[str]) -> int | None:
        """Seconds until a request in ``buckets`` may try again; None when it may now."""
        now = self.clock()
        wait = 0.0
        with self._lock:
            for bucket in buckets:
                times = self._recent(bucket, now)
                if times is not None and len(times) >= self.max_failures:
                    # The window slides: one slot frees when the oldest counted failure ages out.
                    oldest = times[len(times) - self.max_failures]
                    wait = max(wait, oldest + self.window_s - now)
        return max(1, math.ceil(wait)) if wait > 0 else None

    def failed(self, buckets: list[str]) -> None:
        """Count one failed authentication in each of ``buckets``."""
        now = self.clock()
        with self._lock:
            for bucket in buckets:
                times = self._recent(bucket, now)
                if times is None:
                    if len(self._failures) >= MAX_BUCKETS:
                        self._failures.popitem(last=False)
                    times = self._failures[bucket] = deque()
                self._failures.move_to_end(bucket)
                times.append(now)
                while len(times) > self.max_failures:
                    times.popleft()  # more than the limit changes nothing

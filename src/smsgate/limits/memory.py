"""In-process moving-window limiter (the default when no Redis is configured)."""

from __future__ import annotations

import time
import uuid
from collections import deque
from dataclasses import dataclass, field

from smsgate.limits.base import RateDecision


@dataclass(slots=True)
class _Window:
    entries: deque[tuple[int, int, str]] = field(default_factory=deque)  # (ms, cost, id)
    used: int = 0


class MemoryRateLimiter:
    """Exact moving window kept in this process.

    All methods run on the event loop without awaiting in between, so each call is atomic
    with respect to other requests of this process. It is only correct with one process,
    which is why `serve --workers N` without Redis is refused.
    """

    def __init__(self) -> None:
        self._windows: dict[str, _Window] = {}

    @staticmethod
    def _now_ms() -> int:
        return time.monotonic_ns() // 1_000_000

    def _expire(self, window: _Window, cutoff: int) -> None:
        while window.entries and window.entries[0][0] <= cutoff:
            _, cost, _ = window.entries.popleft()
            window.used -= cost

    async def acquire(self, key: str, cost: int, limit: int, window_ms: int) -> RateDecision:
        now = self._now_ms()
        window = self._windows.setdefault(key, _Window())
        self._expire(window, now - window_ms)
        if window.used + cost > limit:
            return RateDecision(
                False, retry_after_ms=self._retry_after(window, cost, limit, now, window_ms)
            )
        reservation = uuid.uuid4().hex
        window.entries.append((now, cost, reservation))
        window.used += cost
        return RateDecision(True, reservation=reservation)

    @staticmethod
    def _retry_after(window: _Window, cost: int, limit: int, now: int, window_ms: int) -> int:
        if cost > limit:
            return window_ms
        need = window.used + cost - limit
        freed = 0
        for at, entry_cost, _ in window.entries:
            freed += entry_cost
            if freed >= need:
                return max(1, at + window_ms - now)
        return window_ms

    async def release(self, key: str, reservation: str) -> None:
        window = self._windows.get(key)
        if window is None:
            return
        for entry in window.entries:
            if entry[2] == reservation:
                window.entries.remove(entry)
                window.used -= entry[1]
                return

    async def close(self) -> None:
        self._windows.clear()


class MemoryFailureCounter:
    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, int]] = {}  # key -> (count, expires at ms)

    def _live(self, key: str) -> tuple[int, int] | None:
        entry = self._counts.get(key)
        if entry is not None and entry[1] <= time.monotonic_ns() // 1_000_000:
            del self._counts[key]
            return None
        return entry

    async def failures(self, key: str) -> int:
        entry = self._live(key)
        return entry[0] if entry else 0

    async def add_failure(self, key: str, window_ms: int) -> int:
        entry = self._live(key)
        now = time.monotonic_ns() // 1_000_000
        count, expires = (entry[0] + 1, entry[1]) if entry else (1, now + window_ms)
        self._counts[key] = (count, expires)
        return count

    async def reset(self, key: str) -> None:
        self._counts.pop(key, None)

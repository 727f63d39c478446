"""The rate-limiter interface shared by the memory and Redis backends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class RateDecision:
    """Outcome of one `acquire`.

    `reservation` identifies what was taken so it can be given back with `release` when the
    messages are not accepted after all (quota exhausted, database down). `retry_after_ms`
    says when enough of the window frees up for the same cost, when refused.
    """

    allowed: bool
    reservation: str | None = None
    retry_after_ms: int = 0


class RateLimiter(Protocol):
    """A moving-window limiter: at most `limit` units in any `window_ms` milliseconds."""

    async def acquire(self, key: str, cost: int, limit: int, window_ms: int) -> RateDecision: ...

    async def release(self, key: str, reservation: str) -> None: ...

    async def close(self) -> None: ...


class FailureCounter(Protocol):
    """Counts failures per key for a fixed period after the first (login throttling)."""

    async def failures(self, key: str) -> int: ...

    async def add_failure(self, key: str, window_ms: int) -> int: ...

    async def reset(self, key: str) -> None: ...

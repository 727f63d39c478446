"""Circuit breakers per channel: one interface, an in-process and a Redis backend.

A channel whose whole provider calls keep failing (retryable errors, provider rate limits)
is skipped for a cool-down after `threshold` consecutive failures; then one probe call is
let through (half-open): its success closes the breaker, its failure opens it again.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from importlib import resources
from typing import Protocol

from redis.asyncio import Redis


class Verdict(enum.IntEnum):
    OPEN = 0  # skip the channel
    CLOSED = 1
    PROBE = 2  # half-open: this caller makes the one probe call


@dataclass(frozen=True, slots=True)
class BreakerDecision:
    verdict: Verdict
    failures: int  # consecutive failures so far (a success needs recording only if > 0)

    @property
    def allowed(self) -> bool:
        return self.verdict is not Verdict.OPEN

    @property
    def needs_success_recorded(self) -> bool:
        return self.verdict is Verdict.PROBE or self.failures > 0


class CircuitBreaker(Protocol):
    async def allow(self, channel: str) -> BreakerDecision: ...

    async def record(self, channel: str, failed: bool) -> bool:
        """Record one whole call's outcome; True when the breaker is open afterwards."""
        ...


@dataclass(slots=True)
class _State:
    failures: int = 0
    open_until: float = 0.0
    probe_until: float = 0.0


class MemoryCircuitBreaker:
    """Kept in this process (no Redis): each call is atomic on the event loop."""

    def __init__(self, threshold: int, cooldown_seconds: float) -> None:
        self._threshold = threshold
        self._cooldown = cooldown_seconds
        self._states: dict[str, _State] = {}

    async def allow(self, channel: str) -> BreakerDecision:
        state = self._states.get(channel)
        if state is None:
            return BreakerDecision(Verdict.CLOSED, 0)
        if not state.open_until:
            return BreakerDecision(Verdict.CLOSED, state.failures)
        now = time.monotonic()
        if now < state.open_until or now < state.probe_until:
            return BreakerDecision(Verdict.OPEN, state.failures)
        state.probe_until = now + self._cooldown
        return BreakerDecision(Verdict.PROBE, state.failures)

    async def record(self, channel: str, failed: bool) -> bool:
        if not failed:
            self._states.pop(channel, None)
            return False
        state = self._states.setdefault(channel, _State())
        state.failures += 1
        if state.open_until or state.failures >= self._threshold:
            state.open_until = time.monotonic() + self._cooldown
            state.probe_until = 0.0
            return True
        return False


def _lua(name: str) -> str:
    return resources.files("smsgate.limits").joinpath("lua", name).read_text(encoding="utf-8")


class RedisCircuitBreaker:
    """Shared by every gateway and worker process: one EVALSHA per decision or outcome."""

    def __init__(self, redis: Redis, prefix: str, threshold: int, cooldown_seconds: float) -> None:
        self._prefix = prefix
        self._threshold = threshold
        self._cooldown_ms = max(1, int(cooldown_seconds * 1000))
        # Counts of a channel nobody calls any more must not linger forever.
        self._lifetime_ms = max(600_000, self._cooldown_ms * 10)
        self._allow = redis.register_script(_lua("breaker_allow.lua"))
        self._record = redis.register_script(_lua("breaker_record.lua"))

    def _key(self, channel: str) -> str:
        return f"{self._prefix}breaker:{{{channel}}}"

    async def allow(self, channel: str) -> BreakerDecision:
        verdict, failures = await self._allow(keys=[self._key(channel)], args=[self._cooldown_ms])
        return BreakerDecision(Verdict(int(verdict)), int(failures))

    async def record(self, channel: str, failed: bool) -> bool:
        opened = await self._record(
            keys=[self._key(channel)],
            args=[1 if failed else 0, self._threshold, self._cooldown_ms, self._lifetime_ms],
        )
        return bool(opened)

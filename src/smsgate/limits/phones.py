"""Per-phone message limits (minute/hour/day windows): one interface, memory and Redis."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Protocol

from redis.asyncio import Redis


@dataclass(frozen=True, slots=True)
class PhoneWindow:
    """At most `limit` messages to one phone in any `window_ms` milliseconds."""

    name: str  # "minute", "hour", "day": names the limit in messages
    window_ms: int
    limit: int


# Defaults for verification-code businesses (registration, login): the providers' own flow
# control for verification templates (Aliyun: 1/minute, 5/hour, 10/day per phone).
VERIFICATION_DEFAULTS = (1, 5, 10)
_WINDOWS = (("minute", 60_000), ("hour", 3_600_000), ("day", 86_400_000))


def business_phone_windows(
    is_verification: bool, minute: int | None, hour: int | None, day: int | None
) -> tuple[PhoneWindow, ...]:
    """The windows a business enforces: NULL takes the default, 0 (or less) means none."""
    defaults = VERIFICATION_DEFAULTS if is_verification else (None, None, None)
    windows = []
    for (name, ms), configured, default in zip(
        _WINDOWS, (minute, hour, day), defaults, strict=True
    ):
        limit = configured if configured is not None else default
        if limit is not None and limit > 0:
            windows.append(PhoneWindow(name, ms, limit))
    return tuple(windows)


@dataclass(frozen=True, slots=True)
class PhoneDecision:
    """One phone's answer: allowed (and taken), or the first window it is over."""

    phone: str
    allowed: bool
    window: PhoneWindow | None = None
    retry_after_ms: int = 0  # when every exceeded window has room again


class PhoneLimiter(Protocol):
    """Checks all windows of all phones and takes a phone only if all its windows allow it.

    `scope` groups the counters (the business number); `token` identifies this request's
    entries so `release` can give them back when the request is refused after all.
    """

    async def acquire_phones(
        self, scope: str, phones: Sequence[str], windows: Sequence[PhoneWindow], token: str
    ) -> list[PhoneDecision]: ...

    async def release_phones(self, scope: str, phones: Sequence[str], token: str) -> None: ...


class MemoryPhoneLimiter:
    """Moving windows kept in this process (one timestamp per message and phone).

    No await between the check and the take, so each call is atomic within the process.
    """

    _SWEEP_EVERY_MS = 60_000

    def __init__(self) -> None:
        self._sent: dict[tuple[str, str], deque[tuple[int, str]]] = {}
        # When each phone's entries have all left its longest window: swept once a minute,
        # so phones that never come back do not stay in memory.
        self._idle_at: dict[tuple[str, str], int] = {}
        self._next_sweep = 0

    def _sweep(self, now: int) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + self._SWEEP_EVERY_MS
        for key in [k for k, at in self._idle_at.items() if at <= now]:
            del self._idle_at[key]
            self._sent.pop(key, None)

    @staticmethod
    def _now_ms() -> int:
        return time.monotonic_ns() // 1_000_000

    async def acquire_phones(
        self, scope: str, phones: Sequence[str], windows: Sequence[PhoneWindow], token: str
    ) -> list[PhoneDecision]:
        now = self._now_ms()
        self._sweep(now)
        longest = max((w.window_ms for w in windows), default=0)
        decisions = []
        for phone in phones:
            key = (scope, phone)
            sent = self._sent.setdefault(key, deque())
            while sent and sent[0][0] <= now - longest:
                sent.popleft()
            hit: PhoneWindow | None = None
            retry = 0
            for window in windows:
                inside = [at for at, _ in sent if at > now - window.window_ms]
                if len(inside) >= window.limit:
                    hit = hit or window
                    # The entry whose expiry brings the count below the limit.
                    oldest = inside[len(inside) - window.limit] if window.limit > 0 else now
                    retry = max(retry, oldest + window.window_ms - now, 1)
            if hit is None:
                sent.append((now, token))
                self._idle_at[key] = now + longest
                decisions.append(PhoneDecision(phone, True))
            else:
                decisions.append(PhoneDecision(phone, False, hit, retry))
        return decisions

    async def release_phones(self, scope: str, phones: Sequence[str], token: str) -> None:
        for phone in phones:
            sent = self._sent.get((scope, phone))
            if sent is None:
                continue
            for entry in sent:
                if entry[1] == token:
                    sent.remove(entry)
                    break


def _lua(name: str) -> str:
    return resources.files("smsgate.limits").joinpath("lua", name).read_text(encoding="utf-8")


class RedisPhoneLimiter:
    """One sorted set per (scope, phone); all phones of a request in one EVALSHA.

    The keys of one scope share a hash tag, so a request's keys live in one slot on Redis
    Cluster. Redis's clock is used, so every gateway process agrees on the windows.
    """

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._prefix = prefix
        self._acquire = redis.register_script(_lua("phones_acquire.lua"))
        self._release = redis.register_script(_lua("phones_release.lua"))

    def _keys(self, scope: str, phones: Sequence[str]) -> list[str]:
        return [f"{self._prefix}phone:{{{scope}}}:{phone}" for phone in phones]

    async def acquire_phones(
        self, scope: str, phones: Sequence[str], windows: Sequence[PhoneWindow], token: str
    ) -> list[PhoneDecision]:
        args: list[str | int] = [len(windows)]
        for window in windows:
            args += [window.window_ms, window.limit]
        args.append(token)
        answer = await self._acquire(keys=self._keys(scope, phones), args=args)
        decisions = []
        for index, phone in enumerate(phones):
            hit, retry = int(answer[2 * index]), int(answer[2 * index + 1])
            if hit == 0:
                decisions.append(PhoneDecision(phone, True))
            else:
                decisions.append(PhoneDecision(phone, False, windows[hit - 1], retry))
        return decisions

    async def release_phones(self, scope: str, phones: Sequence[str], token: str) -> None:
        if phones:
            await self._release(keys=self._keys(scope, phones), args=[token])

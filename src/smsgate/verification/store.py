"""Where verification-code hashes live: one interface, an in-process and a Redis backend."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from importlib import resources
from typing import Protocol

from redis.asyncio import Redis

# A record stays this long after its code expired, to answer "expired" rather than "invalid".
KEEP_AFTER_EXPIRY_MS = 3_600_000


class AttemptStatus(enum.Enum):
    NO_CODE = "no_code"
    EXPIRED = "expired"
    NO_TRIES_LEFT = "too_many_attempts"
    COUNTED = "counted"  # a try was counted; compare against `code_hash`


@dataclass(frozen=True, slots=True)
class Attempt:
    status: AttemptStatus
    code_hash: str = ""
    salt: str = ""
    tries: int = 0  # tries made, this one included


class CodeStore(Protocol):
    """Keyed by business + phone; holds one code's hash, salt, expiry and tries.

    `begin_attempt` counts a try before the caller compares, and `consume` deletes the code
    only if it is still the one compared: both atomic, so a code verifies at most once and
    never more than `max_tries` guesses are compared, whatever the concurrency.
    """

    async def put(self, key: str, code_hash: str, salt: str, ttl_ms: int) -> None: ...

    async def begin_attempt(self, key: str, max_tries: int) -> Attempt: ...

    async def consume(self, key: str, code_hash: str) -> bool: ...


@dataclass(slots=True)
class _Record:
    code_hash: str
    salt: str
    expires_at: int
    forget_at: int
    tries: int = 0


class MemoryCodeStore:
    """Kept in this process; no await inside a method, so each is atomic here."""

    _SWEEP_EVERY_MS = 60_000

    def __init__(self) -> None:
        self._records: dict[str, _Record] = {}
        self._next_sweep = 0

    @staticmethod
    def _now_ms() -> int:
        return time.monotonic_ns() // 1_000_000

    def _live(self, key: str, now: int) -> _Record | None:
        if now >= self._next_sweep:
            self._next_sweep = now + self._SWEEP_EVERY_MS
            for old in [k for k, r in self._records.items() if r.forget_at <= now]:
                del self._records[old]
        record = self._records.get(key)
        if record is not None and record.forget_at <= now:
            del self._records[key]
            return None
        return record

    async def put(self, key: str, code_hash: str, salt: str, ttl_ms: int) -> None:
        now = self._now_ms()
        self._records[key] = _Record(
            code_hash, salt, now + ttl_ms, now + ttl_ms + KEEP_AFTER_EXPIRY_MS
        )

    async def begin_attempt(self, key: str, max_tries: int) -> Attempt:
        now = self._now_ms()
        record = self._live(key, now)
        if record is None:
            return Attempt(AttemptStatus.NO_CODE)
        if now >= record.expires_at:
            return Attempt(AttemptStatus.EXPIRED)
        if record.tries >= max_tries:
            return Attempt(AttemptStatus.NO_TRIES_LEFT)
        record.tries += 1
        return Attempt(AttemptStatus.COUNTED, record.code_hash, record.salt, record.tries)

    async def consume(self, key: str, code_hash: str) -> bool:
        record = self._records.get(key)
        if record is None or record.code_hash != code_hash:
            return False
        del self._records[key]
        return True


def _lua(name: str) -> str:
    return resources.files("smsgate.limits").joinpath("lua", name).read_text(encoding="utf-8")


class RedisCodeStore:
    """One hash per business + phone (code_put/attempt/consume.lua); Redis's clock."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._prefix = prefix
        self._put = redis.register_script(_lua("code_put.lua"))
        self._attempt = redis.register_script(_lua("code_attempt.lua"))
        self._consume = redis.register_script(_lua("code_consume.lua"))

    def _key(self, key: str) -> str:
        return f"{self._prefix}vcode:{key}"

    async def put(self, key: str, code_hash: str, salt: str, ttl_ms: int) -> None:
        await self._put(keys=[self._key(key)], args=[code_hash, salt, ttl_ms, KEEP_AFTER_EXPIRY_MS])

    async def begin_attempt(self, key: str, max_tries: int) -> Attempt:
        answer = await self._attempt(keys=[self._key(key)], args=[max_tries])
        status = int(answer[0])
        if status == 0:
            return Attempt(AttemptStatus.NO_CODE)
        if status == 1:
            return Attempt(AttemptStatus.EXPIRED)
        if status == 2:
            return Attempt(AttemptStatus.NO_TRIES_LEFT)
        return Attempt(AttemptStatus.COUNTED, _text(answer[1]), _text(answer[2]), int(answer[3]))

    async def consume(self, key: str, code_hash: str) -> bool:
        return bool(await self._consume(keys=[self._key(key)], args=[code_hash]))


def _text(value: bytes | str) -> str:
    return value.decode("ascii") if isinstance(value, bytes) else value

"""Claim, wait for, answer and release Idempotency-Keys (in the database: every process)."""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import cast

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from smsgate.db.base import utcnow
from smsgate.db.models import IdempotencyKey
from smsgate.errors import BadRequest, Conflict

_keys = cast(Table, IdempotencyKey.__table__)

KEY_LIFETIME = timedelta(hours=24)
MAX_KEY_LENGTH = 128
# How long a repeat waits for the first request's answer before giving up with 409. Longer
# than a provider call may take (timeouts default to 10 s).
WAIT_SECONDS = 60.0
POLL_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    status_code: int
    body: bytes


def fingerprint(endpoint: str, canonical_body: str) -> str:
    return hashlib.sha256(f"{endpoint}\n{canonical_body}".encode()).hexdigest()


class IdempotencyService:
    def __init__(self, engine: AsyncEngine, wait_seconds: float = WAIT_SECONDS) -> None:
        self._engine = engine
        self._wait_seconds = wait_seconds

    async def claim(
        self, app_no: str, key: str, endpoint: str, body_fingerprint: str
    ) -> StoredAnswer | None:
        """None: this request holds the key and must send, then `answer` or `release`.
        A StoredAnswer: repeat it, send nothing. Conflict: another body used this key."""
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            raise BadRequest(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters")
        deadline = time.monotonic() + self._wait_seconds
        while True:
            if await self._insert(app_no, key, endpoint, body_fingerprint):
                return None
            row = await self._find(app_no, key)
            if row is None:  # released or expired meanwhile: try to claim it again
                continue
            if row.created_at < utcnow() - KEY_LIFETIME:
                await self._delete(app_no, key, only_before=utcnow() - KEY_LIFETIME)
                continue
            if row.fingerprint != body_fingerprint or row.endpoint != endpoint:
                raise Conflict(
                    "this Idempotency-Key was used with another request body; use a new key"
                )
            if row.status_code is not None:
                return StoredAnswer(row.status_code, (row.response or "").encode())
            if time.monotonic() >= deadline:
                raise Conflict(
                    "a request with this Idempotency-Key is still in progress; retry later"
                )
            await asyncio.sleep(POLL_SECONDS)

    async def answer(self, app_no: str, key: str, status_code: int, body: bytes) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(_keys)
                .where(_keys.c.app_no == app_no, _keys.c.idem_key == key)
                .values(status_code=status_code, response=body.decode(), updated_at=utcnow())
            )

    async def release(self, app_no: str, key: str) -> None:
        """Nothing was sent (refused, or the database failed): the key may be used again."""
        await self._delete(app_no, key)

    async def purge_expired(self) -> int:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(_keys).where(_keys.c.created_at < utcnow() - KEY_LIFETIME)
            )
        return int(result.rowcount)

    async def _insert(self, app_no: str, key: str, endpoint: str, body_fingerprint: str) -> bool:
        now = utcnow()
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    insert(_keys).values(
                        app_no=app_no,
                        idem_key=key,
                        endpoint=endpoint,
                        fingerprint=body_fingerprint,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            return False
        return True

    async def _find(self, app_no: str, key: str) -> IdempotencyKey | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(_keys).where(_keys.c.app_no == app_no, _keys.c.idem_key == key)
                )
            ).first()
        return cast(IdempotencyKey | None, row)

    async def _delete(self, app_no: str, key: str, only_before: object = None) -> None:
        query = delete(_keys).where(_keys.c.app_no == app_no, _keys.c.idem_key == key)
        if only_before is not None:
            query = query.where(_keys.c.created_at < only_before)
        async with self._engine.begin() as conn:
            await conn.execute(query)

"""Receiving delivery reports: authenticate, parse, match, settle or keep for later."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from smsgate.cache import TTLCache
from smsgate.crypto import SecretBox
from smsgate.db.base import utcnow
from smsgate.db.models import ProviderConfig
from smsgate.errors import BadRequest, NotFound, Unauthorized
from smsgate.providers import signing
from smsgate.reports import repository as repo
from smsgate.reports.parsers import (
    ACKNOWLEDGEMENTS,
    PARSERS,
    Acknowledgement,
    ReportFormatError,
    parse_form,
)

log = logging.getLogger("smsgate.reports")

# Reports whose record never appears are dropped after this long (providers retry for
# at most a few hours; a record that has not caught up by then never will).
PENDING_TTL = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class CallbackChannel:
    provider_no: str
    channel_no: str
    callback_token: str | None
    auth_token: str  # the provider secret (Twilio signs callbacks with it)


@dataclass(frozen=True, slots=True)
class ReceiveSummary:
    received: int
    applied: int
    pending: int
    acknowledgement: Acknowledgement


class ReportService:
    def __init__(self, engine: AsyncEngine, secrets: SecretBox, cache_ttl: float) -> None:
        self._engine = engine
        self._secrets = secrets
        self._channels: TTLCache[str, CallbackChannel | None] = TTLCache(cache_ttl)
        self._pending_after = 0  # where the next sweep of pending reports starts (by id)
        self._stop = asyncio.Event()

    def stop_sweeper(self) -> None:
        self._stop.set()

    def invalidate_config(self) -> None:
        self._channels.invalidate()

    async def _load_channel(self, provider_no: str) -> CallbackChannel | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        ProviderConfig.provider_no,
                        ProviderConfig.channel_no,
                        ProviderConfig.callback_token,
                        ProviderConfig.access_key_secret,
                    ).where(ProviderConfig.provider_no == provider_no)
                )
            ).first()
        if row is None:
            return None
        try:
            secret = self._secrets.reveal(row.access_key_secret or "")
        except ValueError:
            secret = ""
        return CallbackChannel(row.provider_no, row.channel_no, row.callback_token, secret)

    async def receive(
        self,
        provider_no: str,
        token: str,
        body: bytes,
        public_url: str,
        headers: Mapping[str, str],
    ) -> ReceiveSummary:
        channel = await self._channels.get(provider_no, self._load_channel)
        # Same answer for an unknown channel and a wrong token: the URL is the credential.
        if (
            channel is None
            or not channel.callback_token
            or not hmac.compare_digest(channel.callback_token.encode(), token.encode())
        ):
            raise NotFound("no such callback")
        parser = PARSERS.get(channel.channel_no)
        if parser is None:
            raise NotFound(f"channel type {channel.channel_no} sends no delivery reports")
        form = parse_form(body)
        if channel.channel_no == "Twilio":
            signature = headers.get("x-twilio-signature", "")
            if not signing.twilio_validate(channel.auth_token, public_url, form.items(), signature):
                raise Unauthorized("X-Twilio-Signature does not match")
        try:
            reports = parser(body, form)
        except ReportFormatError as exc:
            raise BadRequest(f"not a {channel.channel_no} delivery report: {exc}") from exc
        applied = pending = 0
        async with self._engine.begin() as conn:
            for report in reports:
                if not report.final:
                    continue
                record = await repo.find_record(conn, provider_no, report)
                if record is not None and record["status"] in repo.SETTLEABLE:
                    applied += int(await repo.apply_report(conn, record["id"], report))
                elif record is None or record["status"] == 1:  # unknown yet, or still SENDING
                    await repo.keep_pending(conn, provider_no, report)
                    pending += 1
                # else: already final (a duplicate push): nothing to do
        return ReceiveSummary(len(reports), applied, pending, ACKNOWLEDGEMENTS[channel.channel_no])

    async def apply_pending(self, limit: int = 500) -> int:
        """Apply kept reports whose records have caught up; drop the hopeless ones.

        One batch per call, each call after where the last one stopped (from the start
        again after the end): reports that wait for a record that never comes (sent by
        another system on the same account) cannot hold back newer ones for their 24 h."""
        applied = 0
        async with self._engine.begin() as conn:
            done: list[int] = []
            rows = await repo.pending_batch(conn, limit, self._pending_after)
            self._pending_after = rows[-1]["id"] if len(rows) == limit else 0
            for row in rows:
                report = repo.pending_as_report(row)
                record = await repo.find_record(conn, row["provider_no"], report)
                if record is None or record["status"] == 1:
                    continue
                if record["status"] in repo.SETTLEABLE:
                    applied += int(await repo.apply_report(conn, record["id"], report))
                done.append(row["id"])
            await repo.drop_pending(conn, done)
            await repo.drop_pending_older_than(conn, utcnow() - PENDING_TTL)
        return applied

    async def run_sweeper(self, interval_seconds: float = 5.0) -> None:
        """Background task: keep applying pending reports until `stop_sweeper()`."""
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), interval_seconds)
            if self._stop.is_set():
                return
            try:
                await self.apply_pending()
            except Exception:  # the database may be down for a while: try again later
                log.exception("applying pending delivery reports failed")

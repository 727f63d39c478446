"""Blocklist rules: add/remove/list entries, and the in-process copy the send path checks."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from smsgate.blocklist import repository
from smsgate.blocklist.schemas import BlockPage, BlockView
from smsgate.errors import BadRequest
from smsgate.sending.phones import PhoneError, normalise_phone

log = logging.getLogger("smsgate.blocklist")

_PREFIX = re.compile(r"^\+[1-9]\d{0,14}$")
MAX_PAGE = 500


@dataclass(slots=True)
class _Snapshot:
    """The whole blocklist, indexed for lookups without a query."""

    exact: dict[str, list[BlockView]] = field(default_factory=dict)
    prefixes: dict[str, list[BlockView]] = field(default_factory=dict)
    prefix_lengths: list[int] = field(default_factory=list)

    @classmethod
    def build(cls, entries: Iterable[BlockView]) -> _Snapshot:
        snapshot = cls()
        for entry in entries:
            target = snapshot.prefixes if entry.is_prefix else snapshot.exact
            target.setdefault(entry.phone, []).append(entry)
        snapshot.prefix_lengths = sorted({len(p) for p in snapshot.prefixes})
        return snapshot

    def match(self, app_no: str, phone: str) -> BlockView | None:
        for entry in self.exact.get(phone, ()):
            if entry.app_no is None or entry.app_no == app_no:
                return entry
        for length in self.prefix_lengths:
            if length > len(phone):
                break
            for entry in self.prefixes.get(phone[:length], ()):
                if entry.app_no is None or entry.app_no == app_no:
                    return entry
        return None


class BlocklistService:
    """Manages sms_blocklist; answers "is this phone blocked for this app" from memory.

    The copy is checked against the database at most every `refresh_seconds` with one
    cheap query (count and highest id) and reloaded only when that changed, so changes made
    by another process (the console on another node) apply within that time. Changes made
    through this service apply at once in this process.
    """

    def __init__(
        self, engine: AsyncEngine, default_region: str = "CN", refresh_seconds: float = 2.0
    ) -> None:
        self._engine = engine
        self._default_region = default_region
        self._refresh_seconds = refresh_seconds
        self._snapshot: _Snapshot | None = None
        self._version: tuple[int, int] | None = None
        self._checked_at = 0.0
        self._stale = True
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        """Reload on the next check (after a change here or announced by another node)."""
        self._stale = True

    # -- management (admin API, console) ---------------------------------------------------

    async def add_block(
        self,
        phone: str,
        *,
        created_by: str,
        app_no: str | None = None,
        is_prefix: bool = False,
        reason: str = "",
    ) -> BlockView:
        """Block a phone (normalised to E.164) or an E.164 prefix, for one app or all.

        Adding an entry that exists (same phone or prefix, same scope) returns the existing
        one unchanged, so repeated opt-outs do not pile up rows.
        """
        value = self._normalise(phone, is_prefix)
        if not created_by.strip():
            raise BadRequest("created_by must name who adds the entry")
        app_no = app_no or None
        async with self._engine.begin() as conn:
            existing = await repository.find_same(conn, value, is_prefix, app_no)
            if existing is not None:
                return existing
            entry = await repository.insert_entry(
                conn, value, is_prefix, app_no, reason.strip()[:255], created_by.strip()[:64]
            )
        self.invalidate()
        return entry

    async def remove_block(self, block_id: int) -> BlockView | None:
        """Delete one entry; returns what was removed, None when there was no such entry."""
        async with self._engine.begin() as conn:
            entry = await repository.get_entry(conn, block_id)
            if entry is None or not await repository.delete_entry(conn, block_id):
                return None
        self.invalidate()
        return entry

    async def get_block(self, block_id: int) -> BlockView | None:
        async with self._engine.connect() as conn:
            return await repository.get_entry(conn, block_id)

    async def list_blocks(
        self,
        *,
        app_no: str | None = None,
        global_only: bool = False,
        search: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> BlockPage:
        """Newest first. `app_no` keeps one app's entries, `global_only` the global ones;
        `search` matches part of the phone or prefix."""
        if offset < 0 or not 1 <= limit <= MAX_PAGE:
            raise BadRequest(f"offset must be >= 0 and limit between 1 and {MAX_PAGE}")
        async with self._engine.connect() as conn:
            total, items = await repository.list_entries(
                conn,
                app_no=app_no,
                global_only=global_only,
                search=search,
                offset=offset,
                limit=limit,
            )
        return BlockPage(total, list(items))

    def _normalise(self, phone: str, is_prefix: bool) -> str:
        phone = phone.strip()
        if is_prefix:
            compact = re.sub(r"[\s-]", "", phone)
            if not _PREFIX.match(compact):
                raise BadRequest(f"prefix {phone!r} must be '+' and 1 to 15 digits, e.g. +86170")
            return compact
        try:
            return normalise_phone(phone, self._default_region)
        except PhoneError as exc:
            raise BadRequest(f"phone {phone!r}: {exc}") from exc

    # -- the send path ---------------------------------------------------------------------

    async def blocked(self, app_no: str, phones: Sequence[str]) -> dict[str, BlockView]:
        """The phones (E.164) blocked for this app, with the entry that blocks each."""
        snapshot = await self._current()
        found = {}
        for phone in phones:
            entry = snapshot.match(app_no, phone)
            if entry is not None:
                found[phone] = entry
        return found

    async def _current(self) -> _Snapshot:
        if (
            self._snapshot is not None
            and not self._stale
            and time.monotonic() - self._checked_at < self._refresh_seconds
        ):
            return self._snapshot
        async with self._lock:  # one refresh at a time; the others then see it fresh
            if (
                self._snapshot is not None
                and not self._stale
                and time.monotonic() - self._checked_at < self._refresh_seconds
            ):
                return self._snapshot
            stale = self._stale
            self._stale = False
            try:
                async with self._engine.connect() as conn:
                    version = await repository.version(conn)
                    if stale or self._snapshot is None or version != self._version:
                        self._snapshot = _Snapshot.build(await repository.all_entries(conn))
                        self._version = version
            except Exception:
                self._stale = self._stale or stale
                if self._snapshot is None:
                    raise
                # Keep sending with the last known list rather than failing every request;
                # the next check retries.
                log.warning("could not refresh the blocklist; using the copy loaded before")
            self._checked_at = time.monotonic()
            return self._snapshot

    # -- provider opt-outs -------------------------------------------------------------------

    async def record_opt_outs(
        self, app_no: str, phones: Sequence[str], provider_no: str, code: str
    ) -> None:
        """A provider said these phones opted out (Twilio 21610): block them for the app."""
        for phone in phones:
            await self.add_block(
                phone,
                app_no=app_no,
                created_by=f"provider:{provider_no}"[:64],
                reason=f"opted out (provider {provider_no} answered {code})",
            )
            log.info("blocked %s for app %s: provider opt-out %s", phone, app_no, code)

"""One set of rules for the admin API and the console: CRUD with references and an audit trail."""

from __future__ import annotations

import math
from typing import Any

import aiohttp
import orjson
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsgate.auth.service import Principal, require_admin
from smsgate.blocklist.service import BlocklistService
from smsgate.crypto import SecretBox, hash_app_key, new_app_key
from smsgate.db.base import iso_utc
from smsgate.db.models import AppConfig, AuditLog
from smsgate.errors import BadRequest, Conflict, NotFound
from smsgate.invalidation import ConfigBus
from smsgate.management import schemas
from smsgate.management.resources import APPS, CHANNELS, Resource
from smsgate.providers.base import AdapterFactory, ChannelConfig
from smsgate.providers.registry import ADAPTERS
from smsgate.webhooks.signing import new_webhook_secret

MAX_PAGE_SIZE = 200
_HIDDEN = "(hidden)"


class ConfigService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        secrets: SecretBox,
        bus: ConfigBus,
        http: aiohttp.ClientSession | None = None,
        blocklist: BlocklistService | None = None,
    ) -> None:
        self._sessions = sessions
        self._secrets = secrets
        self._bus = bus
        self._http = http  # the process's pooled session, for channel tests
        self._blocklist = blocklist

    # -- blocklist -----------------------------------------------------------------------

    def _require_blocklist(self) -> BlocklistService:
        if self._blocklist is None:  # pragma: no cover - always wired by create_app
            raise NotFound("the blocklist is not available in this process")
        return self._blocklist

    async def list_blocks(
        self,
        *,
        app_no: str | None = None,
        global_only: bool = False,
        q: str | None = None,
        page: int = 1,
        page_size: int = 50,
    ) -> schemas.Page:
        page = max(1, page)
        page_size = min(max(1, page_size), MAX_PAGE_SIZE)
        found = await self._require_blocklist().list_blocks(
            app_no=app_no,
            global_only=global_only,
            search=q,
            offset=(page - 1) * page_size,
            limit=page_size,
        )
        items = [{**b.as_json(), "createdAt": iso_utc(b.created_at)} for b in found.items]
        return schemas.Page(items=items, total=found.total, page=page, page_size=page_size)

    async def add_block(self, principal: Principal, data: schemas.BlockCreate) -> dict[str, Any]:
        require_admin(principal)
        if data.app_no is not None:
            async with self._sessions() as session:
                exists = await session.execute(
                    select(func.count())
                    .select_from(AppConfig)
                    .where(AppConfig.app_no == data.app_no)
                )
                if not exists.scalar_one():
                    raise BadRequest(f"app {data.app_no!r} does not exist")
        entry = await self._require_blocklist().add_block(
            data.phone,
            created_by=principal.username,
            app_no=data.app_no,
            is_prefix=data.is_prefix,
            reason=data.reason,
        )
        await self._write_audit(
            principal,
            "block",
            entry.phone,
            {"scope": [None, entry.scope], "reason": [None, entry.reason]},
        )
        await self._bus.publish()
        return {**entry.as_json(), "createdAt": iso_utc(entry.created_at)}

    async def remove_block(self, principal: Principal, block_id: int) -> None:
        require_admin(principal)
        entry = await self._require_blocklist().remove_block(block_id)
        if entry is None:
            raise NotFound(f"blocklist entry {block_id} does not exist")
        await self._write_audit(principal, "unblock", entry.phone, {"scope": [entry.scope, None]})
        await self._bus.publish()

    async def _write_audit(
        self, principal: Principal, action: str, key: str, changes: dict[str, list[Any]]
    ) -> None:
        async with self._sessions.begin() as session:
            session.add(
                AuditLog(
                    username=principal.username,
                    action=action,
                    resource="blocklist",
                    resource_key=key[:128],
                    changes=orjson.dumps(changes).decode(),
                )
            )

    # -- reads ---------------------------------------------------------------------------

    async def list_rows(
        self,
        resource: Resource,
        *,
        filters: dict[str, Any] | None = None,
        q: str | None = None,
        page: int = 1,
        page_size: int = 20,
    ) -> schemas.Page:
        page = max(1, page)
        page_size = min(max(1, page_size), MAX_PAGE_SIZE)
        model: Any = resource.model
        query = select(model)
        for column, value in (filters or {}).items():
            if value is not None:
                query = query.where(getattr(model, column) == value)
        if q:
            pattern = f"%{q}%"
            query = query.where(or_(*(getattr(model, c).like(pattern) for c in resource.search)))
        async with self._sessions() as session:
            total = (
                await session.execute(select(func.count()).select_from(query.subquery()))
            ).scalar_one()
            rows = (
                await session.execute(
                    query.order_by(model.id.desc()).offset((page - 1) * page_size).limit(page_size)
                )
            ).scalars()
            items = [self.view(resource, row) for row in rows]
        return schemas.Page(items=items, total=total, page=page, page_size=page_size)

    async def get(self, resource: Resource, row_id: int) -> schemas.ViewModel:
        async with self._sessions() as session:
            return self.view(resource, await self._row(session, resource, row_id))

    async def find_by_key(self, resource: Resource, **key: Any) -> schemas.ViewModel | None:
        model: Any = resource.model
        async with self._sessions() as session:
            query = select(model)
            for column, value in key.items():
                query = query.where(getattr(model, column) == value)
            row = (await session.execute(query)).scalar_one_or_none()
            return self.view(resource, row) if row is not None else None

    def view(self, resource: Resource, row: Any) -> schemas.ViewModel:
        view = resource.view_schema.model_validate(row)
        if isinstance(view, schemas.ChannelView):
            view.has_secret = bool(row.access_key_secret)
        return view

    # -- writes --------------------------------------------------------------------------

    async def create(
        self, principal: Principal, resource: Resource, data: schemas.CamelModel
    ) -> schemas.ViewModel:
        require_admin(principal)
        values = data.model_dump()
        async with self._sessions.begin() as session:
            await resource.check(session, values, None)
            await self._refuse_duplicate(session, resource, values)
            if resource is APPS:
                values.setdefault("use_number", 0)
            stored = self._seal(resource, values)
            if resource is APPS:
                # Ready before any callback URL is set, so no POST is ever unsigned.
                stored["webhook_secret"] = self._secrets.seal(new_webhook_secret())
            row = resource.model(**stored)
            session.add(row)
            await self._flush(session, resource, values)
            self._audit(
                session, principal, "create", resource, row, self._diff(resource, {}, values)
            )
            view = self.view(resource, row)
        await self._bus.publish()
        return view

    async def create_app(self, principal: Principal, data: schemas.AppCreate) -> schemas.AppKeyView:
        view = await self.create(principal, APPS, data)
        assert isinstance(view, schemas.AppView)  # noqa: S101 - APPS views are AppViews
        return await self.rotate_app_key(principal, view.id, action="issue-key")

    async def webhook_secret(
        self, principal: Principal, row_id: int, *, rotate: bool = False
    ) -> schemas.WebhookSecretView:
        """The app's webhook signing secret (admins only, audited). `rotate` replaces it:
        every POST from then on, retries included, is signed with the new one."""
        require_admin(principal)
        async with self._sessions.begin() as session:
            row = await self._row(session, APPS, row_id)
            assert isinstance(row, AppConfig)  # noqa: S101
            try:
                secret = self._secrets.reveal(row.webhook_secret) if row.webhook_secret else ""
            except ValueError as exc:  # sealed under another SMSGATE_SECRET_KEY
                if not rotate:
                    raise BadRequest(f"{exc}; rotate the webhook secret to replace it") from exc
                secret = ""
            if rotate or not secret:
                secret = new_webhook_secret()
                row.webhook_secret = self._secrets.seal(secret)
            action = "rotate-webhook-secret" if rotate else "reveal-webhook-secret"
            self._audit(session, principal, action, APPS, row, None)
        return schemas.WebhookSecretView(app_no=row.app_no, webhook_secret=secret)

    async def rotate_app_key(
        self, principal: Principal, row_id: int, action: str = "rotate-key"
    ) -> schemas.AppKeyView:
        """A new key, shown once; the old one stops working at once on every node."""
        require_admin(principal)
        async with self._sessions.begin() as session:
            row = await self._row(session, APPS, row_id)
            assert isinstance(row, AppConfig)  # noqa: S101
            key = new_app_key(row.app_no)
            row.app_key_hash = hash_app_key(key)
            self._audit(session, principal, action, APPS, row, None)
            view = self.view(APPS, row)
        await self._bus.publish()
        assert isinstance(view, schemas.AppView)  # noqa: S101
        return schemas.AppKeyView(app_no=view.app_no, app_key=key, app=view)

    async def update(
        self, principal: Principal, resource: Resource, row_id: int, data: schemas.CamelModel
    ) -> schemas.ViewModel:
        require_admin(principal)
        values = data.model_dump(exclude_unset=True)
        for field in resource.secret_fields:
            if not values.get(field):  # blank keeps the stored secret
                values.pop(field, None)
        async with self._sessions.begin() as session:
            row = await self._row(session, resource, row_id)
            await resource.check(session, values, row)
            before = {field: getattr(row, field) for field in values}
            for field, value in self._seal(resource, values).items():
                setattr(row, field, value)
            if isinstance(row, AppConfig) and row.callback_url and not row.webhook_secret:
                # Apps created before webhooks existed get their secret with their first URL.
                row.webhook_secret = self._secrets.seal(new_webhook_secret())
            await self._flush(session, resource, values)
            changes = self._diff(resource, before, values)
            if changes:
                self._audit(session, principal, "update", resource, row, changes)
            view = self.view(resource, row)
        await self._bus.publish()
        return view

    async def set_status(
        self, principal: Principal, resource: Resource, row_id: int, enabled: bool
    ) -> schemas.ViewModel:
        require_admin(principal)
        async with self._sessions.begin() as session:
            row = await self._row(session, resource, row_id)
            changes = {"status": [bool(row.status), enabled]}
            row.status = enabled
            self._audit(
                session, principal, "enable" if enabled else "disable", resource, row, changes
            )
            view = self.view(resource, row)
        await self._bus.publish()
        return view

    async def delete(self, principal: Principal, resource: Resource, row_id: int) -> None:
        require_admin(principal)
        async with self._sessions.begin() as session:
            row = await self._row(session, resource, row_id)
            used_by = await resource.dependents(session, row)
            if used_by:
                raise Conflict(
                    f"{resource.label} {resource.key_of(row)} is used by {', '.join(used_by)}; "
                    "delete or move those first"
                )
            self._audit(session, principal, "delete", resource, row, None)
            await session.delete(row)
        await self._bus.publish()

    # -- channel check -------------------------------------------------------------------

    async def test_channel(self, principal: Principal, row_id: int) -> dict[str, Any]:
        """One harmless signed call with the channel's stored credentials; nothing is sent to
        any phone. `{"ok", "code", "message"}`: `ok` when the provider accepted the
        credentials, else its own code and message (or ours when it could not be reached).
        """
        require_admin(principal)
        async with self._sessions() as session:
            row = await self._row(session, CHANNELS, row_id)
        factory = ADAPTERS.get(row.channel_no)
        if factory is None:
            return _check(False, "UNSUPPORTED_CHANNEL", f"{row.channel_no!r} has no adapter")
        ext = _parse_ext(row.ext_json)
        if ext is None:
            return _check(False, "CHANNEL_MISCONFIGURED", "ext_json is not a JSON object")
        try:
            secret = self._secrets.reveal(row.access_key_secret or "")
        except ValueError as exc:
            return _check(False, "SECRET_UNREADABLE", str(exc))
        config = ChannelConfig(
            provider_no=row.provider_no,
            channel_no=row.channel_no,
            access_key_id=row.access_key_id or "",
            access_key_secret=secret,
            endpoint=row.endpoint or "",
            sdk_app_id=row.sdk_app_id,
            region=row.region,
            ext=ext,
        )
        if self._http is not None:
            return await _probe(factory, config, self._http)
        # Outside the app (scripts): a session for this one call.
        async with aiohttp.ClientSession() as http:
            return await _probe(factory, config, http)

    # -- audit ---------------------------------------------------------------------------

    async def audit_log(
        self, *, resource: str | None = None, page: int = 1, page_size: int = 50
    ) -> schemas.Page:
        page = max(1, page)
        page_size = min(max(1, page_size), MAX_PAGE_SIZE)
        query = select(AuditLog)
        if resource:
            query = query.where(AuditLog.resource == resource)
        async with self._sessions() as session:
            total = (
                await session.execute(select(func.count()).select_from(query.subquery()))
            ).scalar_one()
            rows = (
                await session.execute(
                    query.order_by(AuditLog.id.desc())
                    .offset((page - 1) * page_size)
                    .limit(page_size)
                )
            ).scalars()
            items = [
                {
                    "id": row.id,
                    "at": iso_utc(row.created_at),
                    "username": row.username,
                    "action": row.action,
                    "resource": row.resource,
                    "resourceKey": row.resource_key,
                    "changes": orjson.loads(row.changes) if row.changes else None,
                }
                for row in rows
            ]
        return schemas.Page(items=items, total=total, page=page, page_size=page_size)

    # -- helpers -------------------------------------------------------------------------

    async def _row(self, session: AsyncSession, resource: Resource, row_id: int) -> Any:
        row = await session.get(resource.model, row_id)
        if row is None:
            raise NotFound(f"{resource.label} {row_id} does not exist")
        return row

    async def _refuse_duplicate(
        self, session: AsyncSession, resource: Resource, values: dict[str, Any]
    ) -> None:
        model: Any = resource.model
        query = select(func.count()).select_from(model)
        for part in resource.key:
            query = query.where(getattr(model, part) == values[part])
        if (await session.execute(query)).scalar_one():
            key = "/".join(str(values[part]) for part in resource.key)
            raise Conflict(f"{resource.label} {key} already exists")

    async def _flush(
        self, session: AsyncSession, resource: Resource, values: dict[str, Any]
    ) -> None:
        try:
            await session.flush()
        except IntegrityError as exc:  # a concurrent create won the race
            key = "/".join(str(values.get(part, "?")) for part in resource.key)
            raise Conflict(f"{resource.label} {key} already exists") from exc

    def _seal(self, resource: Resource, values: dict[str, Any]) -> dict[str, Any]:
        return {
            field: self._secrets.seal(value) if field in resource.secret_fields and value else value
            for field, value in values.items()
        }

    def _diff(
        self, resource: Resource, before: dict[str, Any], after: dict[str, Any]
    ) -> dict[str, list[Any]]:
        changes: dict[str, list[Any]] = {}
        for field, new in after.items():
            old = before.get(field)
            if field in resource.secret_fields:
                if new:
                    changes[field] = [_HIDDEN if old else None, "(changed)"]
                continue
            if old != new:
                changes[field] = [_jsonable(old), _jsonable(new)]
        return changes

    def _audit(
        self,
        session: AsyncSession,
        principal: Principal,
        action: str,
        resource: Resource,
        row: Any,
        changes: dict[str, list[Any]] | None,
    ) -> None:
        session.add(
            AuditLog(
                username=principal.username,
                action=action,
                resource=resource.name,
                resource_key=resource.key_of(row)[:128],
                changes=orjson.dumps(changes).decode() if changes else None,
            )
        )


async def _probe(
    factory: AdapterFactory, config: ChannelConfig, http: aiohttp.ClientSession
) -> dict[str, Any]:
    try:
        # Adapters read ext_json in their constructor: a value a send could not use either.
        adapter = factory(config, http)
    except (ValueError, TypeError) as exc:
        return _check(False, "CHANNEL_MISCONFIGURED", f"ext_json is not usable: {exc}")
    result = await adapter.check_credentials()
    return _check(result.ok, result.code, result.message)


def _check(ok: bool, code: str, message: str) -> dict[str, Any]:
    return {"ok": ok, "code": code, "message": message}


def _parse_ext(ext_json: str | None) -> dict[str, Any] | None:
    if not ext_json:
        return {}
    try:
        value = orjson.loads(ext_json)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def pages(total: int, page_size: int) -> int:
    return max(1, math.ceil(total / page_size))

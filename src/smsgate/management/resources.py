"""The five configuration resources: natural keys, references, validation."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from smsgate.db.base import Base
from smsgate.db.models import (
    AppConfig,
    BusinessConfig,
    ProviderConfig,
    SignConfig,
    TemplateConfig,
)
from smsgate.errors import BadRequest
from smsgate.management import schemas
from smsgate.providers.channel_rules import ChannelDraft
from smsgate.providers.registry import ADAPTERS, channel_problems
from smsgate.sending.render import TemplateError, placeholder_names
from smsgate.verification.service import code_settings

Check = Callable[[AsyncSession, dict[str, Any], Any | None], Awaitable[None]]
Dependents = Callable[[AsyncSession, Any], Awaitable[list[str]]]


@dataclass(frozen=True)
class Resource:
    name: str  # URL segment and audit resource name
    label: str
    model: type[Base]
    key: tuple[str, ...]  # the natural key (immutable once created)
    create_schema: type[schemas.CamelModel]
    update_schema: type[schemas.CamelModel]
    view_schema: type[schemas.ViewModel]
    search: tuple[str, ...]
    filters: tuple[str, ...]
    check: Check
    dependents: Dependents
    secret_fields: frozenset[str] = frozenset()
    # View fields only admins see (viewers get None): credentials that are not secret at
    # rest, such as a channel's delivery-report token.
    admin_only_fields: frozenset[str] = frozenset()

    def key_of(self, row: Any) -> str:
        return "/".join(str(getattr(row, part)) for part in self.key)

    def view_for(self, view: Any, is_admin: bool) -> Any:
        """`view` as the given role may see it."""
        if is_admin or not self.admin_only_fields:
            return view
        return view.model_copy(update=dict.fromkeys(self.admin_only_fields))


async def _count(session: AsyncSession, model: type[Base], **where: Any) -> int:
    query = select(func.count()).select_from(model)
    for column, value in where.items():
        query = query.where(getattr(model, column) == value)
    return int((await session.execute(query)).scalar_one())


def _merged(values: dict[str, Any], existing: Any | None, field: str) -> Any:
    if field in values:
        return values[field]
    return getattr(existing, field) if existing is not None else None


async def _check_channel(session: AsyncSession, values: dict[str, Any], existing: Any) -> None:
    channel_no = _merged(values, existing, "channel_no")
    if channel_no not in ADAPTERS:
        known = ", ".join(sorted(ADAPTERS))
        raise BadRequest(f"channelNo {channel_no!r} is not a supported provider type ({known})")
    # The provider's own rules (providers/<provider>.py validate_channel) on the channel as
    # it will be stored. A blank secret on update keeps the stored one, so that counts.
    try:
        ext = orjson.loads(_merged(values, existing, "ext_json") or "{}")
    except orjson.JSONDecodeError:
        ext = {}  # a stored value written around the API; sends read it as {} too
    draft = ChannelDraft(
        channel_no=channel_no,
        access_key_id=_merged(values, existing, "access_key_id") or "",
        has_secret=bool(_merged(values, existing, "access_key_secret")),
        endpoint=_merged(values, existing, "endpoint") or "",
        sdk_app_id=_merged(values, existing, "sdk_app_id"),
        region=_merged(values, existing, "region"),
        ext=ext if isinstance(ext, dict) else {},
    )
    problems = channel_problems(draft)
    if problems:
        raise BadRequest(f"{channel_no} channel: " + "; ".join(str(p) for p in problems))


async def _channel_dependents(session: AsyncSession, row: Any) -> list[str]:
    used = []
    if signs := await _count(session, SignConfig, provider_no=row.provider_no):
        used.append(f"{signs} signature(s)")
    if templates := await _count(session, TemplateConfig, provider_no=row.provider_no):
        used.append(f"{templates} template(s)")
    return used


async def _check_sign(session: AsyncSession, values: dict[str, Any], existing: Any) -> None:
    provider_no = _merged(values, existing, "provider_no")
    channel = (
        await session.execute(
            select(ProviderConfig).where(ProviderConfig.provider_no == provider_no)
        )
    ).scalar_one_or_none()
    if channel is None:
        raise BadRequest(f"channel {provider_no!r} does not exist")
    if not _merged(values, existing, "provider_name"):
        values["provider_name"] = channel.provider_name


async def _sign_dependents(session: AsyncSession, row: Any) -> list[str]:
    count = await _count(
        session, TemplateConfig, provider_no=row.provider_no, sign_name=row.sign_name
    )
    return [f"{count} template(s)"] if count else []


async def _check_template(session: AsyncSession, values: dict[str, Any], existing: Any) -> None:
    provider_no = _merged(values, existing, "provider_no")
    sign_name = _merged(values, existing, "sign_name")
    if not await _count(session, SignConfig, provider_no=provider_no, sign_name=sign_name):
        raise BadRequest(f"signature {sign_name!r} is not registered on channel {provider_no!r}")
    try:
        placeholder_names(_merged(values, existing, "template_content"))
    except TemplateError as exc:
        raise BadRequest(f"templateContent: {exc}") from exc


async def _template_dependents(session: AsyncSession, row: Any) -> list[str]:
    count = await _count(session, BusinessConfig, template_no=row.template_no)
    return [f"{count} business(es)"] if count else []


async def _check_app(session: AsyncSession, values: dict[str, Any], existing: Any) -> None:
    if existing is None and not values.get("app_no"):
        values["app_no"] = f"A-{secrets.token_hex(4).upper()}"
    if "." in str(values.get("app_no", "")):
        raise BadRequest("appNo must not contain '.' (it separates the API key)")


async def _app_dependents(session: AsyncSession, row: Any) -> list[str]:
    count = await _count(session, BusinessConfig, app_no=row.app_no)
    return [f"{count} business(es)"] if count else []


async def _check_business(session: AsyncSession, values: dict[str, Any], existing: Any) -> None:
    if existing is None and not values.get("business_no"):
        values["business_no"] = f"B-{secrets.token_hex(3).upper()}"
    app_no = _merged(values, existing, "app_no")
    if not await _count(session, AppConfig, app_no=app_no):
        raise BadRequest(f"app {app_no!r} does not exist")
    template_no = _merged(values, existing, "template_no")
    if not await _count(session, TemplateConfig, template_no=template_no):
        raise BadRequest(f"template {template_no!r} does not exist")
    try:
        code_settings(
            _merged(values, existing, "code_length"),
            _merged(values, existing, "code_alphabet"),
            _merged(values, existing, "code_ttl_seconds"),
        )
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc


async def _no_dependents(session: AsyncSession, row: Any) -> list[str]:
    return []


CHANNELS = Resource(
    "channels",
    "channel",
    ProviderConfig,
    ("provider_no",),
    schemas.ChannelCreate,
    schemas.ChannelUpdate,
    schemas.ChannelView,
    search=("provider_no", "provider_name", "remark"),
    filters=("channel_no", "status"),
    check=_check_channel,
    dependents=_channel_dependents,
    secret_fields=frozenset({"access_key_secret"}),
    # The path's token authenticates delivery reports: anyone holding it could mark
    # messages delivered.
    admin_only_fields=frozenset({"callback_token"}),
)
SIGNS = Resource(
    "signs",
    "signature",
    SignConfig,
    ("provider_no", "sign_name"),
    schemas.SignCreate,
    schemas.SignUpdate,
    schemas.SignView,
    search=("sign_name", "remark"),
    filters=("provider_no", "status"),
    check=_check_sign,
    dependents=_sign_dependents,
)
TEMPLATES = Resource(
    "templates",
    "template",
    TemplateConfig,
    ("template_no",),
    schemas.TemplateCreate,
    schemas.TemplateUpdate,
    schemas.TemplateView,
    search=("template_no", "template_content", "third_party_template_no", "remark"),
    filters=("provider_no", "sign_name", "status"),
    check=_check_template,
    dependents=_template_dependents,
)
APPS = Resource(
    "apps",
    "app",
    AppConfig,
    ("app_no",),
    schemas.AppCreate,
    schemas.AppUpdate,
    schemas.AppView,
    search=("app_no", "app_name", "remark"),
    filters=("status",),
    check=_check_app,
    dependents=_app_dependents,
)
BUSINESSES = Resource(
    "businesses",
    "business",
    BusinessConfig,
    ("business_no",),
    schemas.BusinessCreate,
    schemas.BusinessUpdate,
    schemas.BusinessView,
    search=("business_no", "business_name", "business_desc", "remark"),
    filters=("app_no", "template_no", "status"),
    check=_check_business,
    dependents=_no_dependents,
)

RESOURCES: dict[str, Resource] = {r.name: r for r in (CHANNELS, SIGNS, TEMPLATES, APPS, BUSINESSES)}

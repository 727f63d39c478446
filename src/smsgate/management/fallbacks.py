"""A business's fallback chain: read it, replace it (validated, audited, invalidated)."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsgate.auth.service import Principal, require_admin
from smsgate.db.models import AuditLog, BusinessConfig, BusinessFallback, TemplateConfig
from smsgate.errors import BadRequest, NotFound
from smsgate.invalidation import ConfigBus
from smsgate.sending.render import TemplateError, placeholder_names

MAX_FALLBACKS = 5


class FallbackService:
    """`GET/PUT /api/v1/admin/businesses/{id}/fallbacks` and the console's business page."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], bus: ConfigBus) -> None:
        self._sessions = sessions
        self._bus = bus

    async def get(self, business_id: int) -> dict[str, Any]:
        async with self._sessions() as session:
            business = await _business(session, business_id)
            return {
                "businessNo": business.business_no,
                "templateNos": await _template_nos(session, business.business_no),
            }

    async def replace(
        self, principal: Principal, business_id: int, template_nos: list[str]
    ) -> dict[str, Any]:
        """Replace the ordered list. Each fallback must exist, be on a channel that no
        earlier template of the chain uses (the business's own included), and take the same
        params as the business's template, so one send request fits every link."""
        require_admin(principal)
        template_nos = [t.strip() for t in template_nos]
        if len(template_nos) > MAX_FALLBACKS:
            raise BadRequest(f"templateNos: at most {MAX_FALLBACKS} fallbacks")
        async with self._sessions.begin() as session:
            business = await _business(session, business_id)
            wanted = [business.template_no, *template_nos]
            found = {
                t.template_no: t
                for t in (
                    await session.execute(
                        select(TemplateConfig).where(TemplateConfig.template_no.in_(wanted))
                    )
                ).scalars()
            }
            primary = found.get(business.template_no)
            if primary is None:
                raise BadRequest(
                    f"business {business.business_no} has no usable template "
                    f"({business.template_no}) to add fallbacks to"
                )
            primary_params = _param_count(primary)
            channels = {primary.provider_no: primary.template_no}
            for index, template_no in enumerate(template_nos):
                where = f"templateNos[{index}]"
                template = found.get(template_no)
                if template is None:
                    raise BadRequest(f"{where}: template {template_no!r} does not exist")
                if template.provider_no in channels:
                    raise BadRequest(
                        f"{where}: template {template_no} is on channel {template.provider_no}, "
                        f"like {channels[template.provider_no]} before it in the chain; a "
                        "fallback must be on another channel"
                    )
                count = _param_count(template)
                if count != primary_params:
                    raise BadRequest(
                        f"{where}: template {template_no} takes {count} param(s), the "
                        f"business's template {primary.template_no} takes {primary_params}"
                    )
                channels[template.provider_no] = template_no
            before = await _template_nos(session, business.business_no)
            await session.execute(
                delete(BusinessFallback).where(BusinessFallback.business_no == business.business_no)
            )
            # Deleted first, flushed, then inserted: the unique (business, position) holds.
            await session.flush()
            session.add_all(
                BusinessFallback(
                    business_no=business.business_no, position=position, template_no=template_no
                )
                for position, template_no in enumerate(template_nos, start=1)
            )
            if before != template_nos:
                session.add(
                    AuditLog(
                        username=principal.username,
                        action="update",
                        resource="businesses",
                        resource_key=business.business_no[:128],
                        changes=orjson.dumps({"fallbacks": [before, template_nos]}).decode(),
                    )
                )
        await self._bus.publish()
        return {"businessNo": business.business_no, "templateNos": template_nos}


async def _business(session: AsyncSession, business_id: int) -> BusinessConfig:
    business = await session.get(BusinessConfig, business_id)
    if business is None:
        raise NotFound(f"business {business_id} does not exist")
    return business


async def _template_nos(session: AsyncSession, business_no: str) -> list[str]:
    rows = await session.execute(
        select(BusinessFallback.template_no)
        .where(BusinessFallback.business_no == business_no)
        .order_by(BusinessFallback.position)
    )
    return list(rows.scalars())


def _param_count(template: TemplateConfig) -> int:
    try:
        return len(placeholder_names(template.template_content))
    except TemplateError as exc:
        raise BadRequest(f"template {template.template_no} cannot be used: {exc}") from exc

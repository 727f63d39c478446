"""SQL for sms_business_config and the chain it points to."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table, and_, exists, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from smsgate.db.models import (
    BusinessConfig,
    BusinessFallback,
    ProviderConfig,
    SignConfig,
    TemplateConfig,
)

_b = cast(Table, BusinessConfig.__table__)
_t = cast(Table, TemplateConfig.__table__)
_s = cast(Table, SignConfig.__table__)
_p = cast(Table, ProviderConfig.__table__)
_f = cast(Table, BusinessFallback.__table__)

_CHAIN_COLUMNS = (
    _t.c.status.label("template_status"),
    _t.c.template_content,
    _t.c.third_party_template_no,
    _t.c.sign_name,
    _t.c.provider_no,
    _s.c.status.label("sign_status"),
    _p.c.status.label("channel_status"),
    _p.c.channel_no,
    _p.c.access_key_id,
    _p.c.access_key_secret,
    _p.c.endpoint,
    _p.c.sdk_app_id,
    _p.c.region,
    _p.c.ext_json,
)


async def load_route_row(conn: AsyncConnection, business_no: str) -> RowMapping | None:
    """One query for the whole chain (outer joins: a missing link comes back as NULLs)."""
    query = (
        select(
            _b.c.business_no,
            _b.c.status.label("business_status"),
            _b.c.app_no,
            _b.c.template_no,
            _b.c.is_verification,
            _b.c.phone_limit_minute,
            _b.c.phone_limit_hour,
            _b.c.phone_limit_day,
            _b.c.code_length,
            _b.c.code_alphabet,
            _b.c.code_ttl_seconds,
            *_CHAIN_COLUMNS,
            # Fallbacks are loaded by a second query only for businesses that have some.
            exists().where(_f.c.business_no == _b.c.business_no).label("has_fallbacks"),
        )
        .select_from(_b)
        .outerjoin(_t, _t.c.template_no == _b.c.template_no)
        .outerjoin(_s, and_(_s.c.provider_no == _t.c.provider_no, _s.c.sign_name == _t.c.sign_name))
        .outerjoin(_p, _p.c.provider_no == _t.c.provider_no)
        .where(_b.c.business_no == business_no)
    )
    return (await conn.execute(query)).mappings().first()


async def load_fallback_rows(conn: AsyncConnection, business_no: str) -> list[RowMapping]:
    """The business's fallback templates in order, each with its signature and channel."""
    query = (
        select(_f.c.position, _f.c.template_no, *_CHAIN_COLUMNS)
        .select_from(_f)
        .outerjoin(_t, _t.c.template_no == _f.c.template_no)
        .outerjoin(_s, and_(_s.c.provider_no == _t.c.provider_no, _s.c.sign_name == _t.c.sign_name))
        .outerjoin(_p, _p.c.provider_no == _t.c.provider_no)
        .where(_f.c.business_no == business_no)
        .order_by(_f.c.position)
    )
    return list((await conn.execute(query)).mappings().all())

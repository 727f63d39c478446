"""`serve --demo`: a working Loopback example, seeded idempotently."""

from __future__ import annotations

import json
import secrets
import shlex
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsgate.apps.service import AppService
from smsgate.db.models import (
    AppConfig,
    BusinessConfig,
    ProviderConfig,
    SignConfig,
    TemplateConfig,
)
from smsgate.users.service import UserService

DEMO_PROVIDER_NO = "loopback"
DEMO_SIGN = "smsgate"
DEMO_TEMPLATE_NO = "T-000001"
DEMO_APP_NO = "A-DEMO"
DEMO_BUSINESS_NO = "B-000003"
DEMO_PHONE = "+8618200000068"
DEMO_ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class DemoAccess:
    app_no: str
    app_key: str
    business_no: str
    admin_user: str
    admin_password: str


async def seed_demo(sessions: async_sessionmaker[AsyncSession]) -> DemoAccess:
    """Create what is missing; the app key and admin password are renewed on every run
    because only their hashes are stored."""
    async with sessions.begin() as session:
        await _ensure(
            session,
            select(ProviderConfig).where(ProviderConfig.provider_no == DEMO_PROVIDER_NO),
            ProviderConfig(
                channel_no="Loopback",
                provider_name="Loopback (built-in test provider)",
                provider_no=DEMO_PROVIDER_NO,
                access_key_id="",
                access_key_secret="",
                endpoint="",
                remark="accepts every phone; set latency_ms / failure_rate in ext_json",
                ext_json=json.dumps({"latency_ms": 0, "failure_rate": 0}),
            ),
        )
        await _ensure(
            session,
            select(SignConfig).where(
                SignConfig.provider_no == DEMO_PROVIDER_NO, SignConfig.sign_name == DEMO_SIGN
            ),
            SignConfig(sign_name=DEMO_SIGN, provider_no=DEMO_PROVIDER_NO, provider_name="Loopback"),
        )
        await _ensure(
            session,
            select(TemplateConfig).where(TemplateConfig.template_no == DEMO_TEMPLATE_NO),
            TemplateConfig(
                sign_name=DEMO_SIGN,
                provider_no=DEMO_PROVIDER_NO,
                template_no=DEMO_TEMPLATE_NO,
                template_content="Your verification code is ${code}. It expires in 5 minutes.",
                third_party_template_no="LOOPBACK_CODE",
            ),
        )
        await _ensure(
            session,
            select(BusinessConfig).where(BusinessConfig.business_no == DEMO_BUSINESS_NO),
            BusinessConfig(
                app_no=DEMO_APP_NO,
                business_name="Registration code",
                business_no=DEMO_BUSINESS_NO,
                template_no=DEMO_TEMPLATE_NO,
                business_desc="verification code sent at sign-up",
            ),
        )
        app_exists = (
            await session.execute(select(AppConfig.id).where(AppConfig.app_no == DEMO_APP_NO))
        ).first() is not None
    apps = AppService(sessions)
    if app_exists:
        issued = await apps.rotate_key(DEMO_APP_NO)
    else:
        issued = await apps.create_app("Demo app", quota=1000, rate_limit=60, app_no=DEMO_APP_NO)
    password = secrets.token_urlsafe(12)
    await UserService(sessions).set_user(DEMO_ADMIN, password, "admin")
    return DemoAccess(issued.app_no, issued.app_key, DEMO_BUSINESS_NO, DEMO_ADMIN, password)


async def _ensure(session: AsyncSession, query: object, row: object) -> None:
    if (await session.execute(query)).first() is None:  # type: ignore[call-overload]
        session.add(row)
        await session.flush()


def demo_curl(base_url: str, access: DemoAccess) -> str:
    body = json.dumps(
        {"businessNo": access.business_no, "phones": [DEMO_PHONE], "params": ["123456"]},
        separators=(",", ":"),
    )
    return (
        f"curl -sS -X POST {base_url}/api/v1/send-message "
        f"-H {shlex.quote('Authorization: Bearer ' + access.app_key)} "
        f"-H 'Content-Type: application/json' -d {shlex.quote(body)}"
    )

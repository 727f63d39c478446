"""Creating applications and issuing their API keys."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsgate.apps import repository
from smsgate.crypto import hash_app_key, new_app_key
from smsgate.db.models import AppConfig
from smsgate.errors import BadRequest


@dataclass(frozen=True, slots=True)
class IssuedApp:
    app_no: str
    app_key: str  # shown once; only its hash is stored


def new_app_no() -> str:
    return f"A-{secrets.token_hex(4).upper()}"


class AppService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def create_app(
        self,
        app_name: str,
        quota: int,
        rate_limit: int,
        app_no: str | None = None,
        remark: str | None = None,
    ) -> IssuedApp:
        if not app_name.strip():
            raise BadRequest("app name must not be empty")
        if quota < 0:
            raise BadRequest("quota must be 0 or more")
        if rate_limit < 0:
            raise BadRequest("rate limit must be 0 (no limit) or more")
        app_no = app_no or new_app_no()
        if "." in app_no:
            raise BadRequest("app_no must not contain '.' (it separates the API key)")
        key = new_app_key(app_no)
        async with self._sessions.begin() as session:
            if await repository.find_by_no(session, app_no) is not None:
                raise BadRequest(f"app {app_no} already exists")
            session.add(
                AppConfig(
                    app_no=app_no,
                    app_name=app_name.strip(),
                    available_number=quota,
                    current_limiting=rate_limit,
                    use_number=0,
                    app_key_hash=hash_app_key(key),
                    remark=remark,
                    status=True,
                )
            )
        return IssuedApp(app_no, key)

    async def rotate_key(self, app_no: str) -> IssuedApp:
        """A new key; the old one stops working once caches expire (at most 2 s)."""
        key = new_app_key(app_no)
        async with self._sessions.begin() as session:
            app = await repository.find_by_no(session, app_no)
            if app is None:
                raise BadRequest(f"app {app_no} does not exist")
            app.app_key_hash = hash_app_key(key)
        return IssuedApp(app_no, key)

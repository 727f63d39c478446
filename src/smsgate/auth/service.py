"""Admin login (argon2, throttled) and token checks."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsgate.auth.tokens import TokenClaims, TokenSigner, password_fingerprint
from smsgate.db.models import AdminUser
from smsgate.errors import Forbidden, RateLimited, ServiceUnavailable, Unauthorized
from smsgate.limits.base import FailureCounter

LOCK_AFTER_FAILURES = 5
LOCK_MS = 15 * 60 * 1000
TOKEN_TTL_SECONDS = 12 * 3600

_hasher = PasswordHasher()
# Verified against when the user does not exist, so both paths cost one argon2 check.
_DUMMY_HASH = _hasher.hash("not a real password")


@dataclass(frozen=True, slots=True)
class Principal:
    username: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int
    principal: Principal


class AuthService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        failures: FailureCounter,
        secret_key: str | None,
    ) -> None:
        self._sessions = sessions
        self._failures = failures
        self._signer = TokenSigner(secret_key) if secret_key else None

    def _require_signer(self) -> TokenSigner:
        if self._signer is None:
            raise ServiceUnavailable(
                "admin login needs SMSGATE_SECRET_KEY (it signs tokens and sessions)"
            )
        return self._signer

    async def login(self, username: str, password: str, client_ip: str) -> IssuedToken:
        signer = self._require_signer()
        throttle_key = f"login:{username}|{client_ip}"
        if await self._failures.failures(throttle_key) >= LOCK_AFTER_FAILURES:
            raise RateLimited(
                f"too many failed logins for {username!r} from {client_ip}; locked for 15 minutes",
                LOCK_MS // 1000,
            )
        user = await self._find(username)
        ok = await asyncio.to_thread(_verify, user.password_hash if user else _DUMMY_HASH, password)
        if not ok or user is None or not user.status:
            await self._failures.add_failure(throttle_key, LOCK_MS)
            raise Unauthorized("wrong username or password")
        await self._failures.reset(throttle_key)
        expires_at = int(time.time()) + TOKEN_TTL_SECONDS
        claims = TokenClaims(
            user.username,
            user.role,
            expires_at,
            password_fingerprint(user.password_hash),
            user.token_generation,
        )
        principal = Principal(user.username, user.role)
        return IssuedToken(signer.issue(claims), TOKEN_TTL_SECONDS, principal)

    async def principal_for_token(self, token: str) -> Principal:
        claims = self._require_signer().verify(token)
        if claims is None:
            raise Unauthorized("invalid or expired token; log in again")
        user = await self._find(claims.username)
        if (
            user is None
            or not user.status
            or password_fingerprint(user.password_hash) != claims.password_fingerprint
            or user.token_generation != claims.generation
        ):
            raise Unauthorized("invalid or expired token; log in again")
        return Principal(user.username, user.role)

    async def log_out(self, token: str) -> bool:
        """End every token and console session of the token's user (issued until now).

        False when the token was not a current one (nothing to end)."""
        claims = self._require_signer().verify(token)
        if claims is None:
            return False
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(AdminUser)
                .where(
                    AdminUser.username == claims.username,
                    AdminUser.token_generation == claims.generation,
                )
                .values(token_generation=AdminUser.token_generation + 1)
            )
        ended: bool = result.rowcount == 1  # type: ignore[attr-defined]
        return ended

    async def _find(self, username: str) -> AdminUser | None:
        async with self._sessions() as session:
            query = select(AdminUser).where(AdminUser.username == username)
            return (await session.execute(query)).scalar_one_or_none()


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden(f"user {principal.username} is a viewer: read-only")

"""Creating console users (argon2 password hashes)."""

from __future__ import annotations

from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsgate.db.models import AdminUser
from smsgate.errors import BadRequest

ROLES = ("admin", "viewer")
MIN_PASSWORD_LENGTH = 8

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


class UserService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def set_user(self, username: str, password: str, role: str = "admin") -> bool:
        """Create the user, or reset its password and role. True when it was created."""
        username = username.strip()
        if not username:
            raise BadRequest("username must not be empty")
        if role not in ROLES:
            raise BadRequest(f"role must be one of {', '.join(ROLES)}")
        if len(password) < MIN_PASSWORD_LENGTH:
            raise BadRequest(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
        async with self._sessions.begin() as session:
            user = (
                await session.execute(select(AdminUser).where(AdminUser.username == username))
            ).scalar_one_or_none()
            if user is None:
                session.add(
                    AdminUser(username=username, password_hash=hash_password(password), role=role)
                )
                return True
            user.password_hash = hash_password(password)
            user.role = role
            user.status = True
            return False

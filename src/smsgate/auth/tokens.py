"""Stateless admin bearer tokens: `v1.<payload>.<HMAC-SHA256>` keyed from SMSGATE_SECRET_KEY."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

import orjson


@dataclass(frozen=True, slots=True)
class TokenClaims:
    username: str
    role: str
    expires_at: int
    # Fingerprint of the password hash: a password change invalidates earlier tokens.
    password_fingerprint: str
    # The user's token generation when issued: a logout moves it on (sms_admin_user).
    generation: int = 0


def password_fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    def __init__(self, secret_key: str) -> None:
        # A key of its own, so a token can never be confused with another use of the secret.
        self._key = hmac.new(secret_key.encode(), b"smsgate admin tokens v1", "sha256").digest()

    def issue(self, claims: TokenClaims) -> str:
        payload = _b64(
            orjson.dumps(
                {
                    "sub": claims.username,
                    "role": claims.role,
                    "exp": claims.expires_at,
                    "pwf": claims.password_fingerprint,
                    "gen": claims.generation,
                }
            )
        )
        return f"v1.{payload}.{self._sign(payload)}"

    def verify(self, token: str) -> TokenClaims | None:
        """The claims of a genuine, unexpired token; None for anything else."""
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != "v1":
            return None
        _, payload, signature = parts
        if not hmac.compare_digest(self._sign(payload), signature):
            return None
        try:
            data = orjson.loads(_unb64(payload))
            claims = TokenClaims(
                str(data["sub"]),
                str(data["role"]),
                int(data["exp"]),
                str(data["pwf"]),
                int(data.get("gen", 0)),
            )
        except (ValueError, KeyError, TypeError):
            return None
        if claims.expires_at < time.time():
            return None
        return claims

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii"), "sha256").digest())

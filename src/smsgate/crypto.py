"""Secrets at rest (provider keys, Fernet) and API-key hashing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken

_SEALED_PREFIX = "fernet:"


class SecretBox:
    """Encrypts provider secrets with a Fernet key derived from SMSGATE_SECRET_KEY.

    Without a secret key (demo, first steps) values are kept as given; a sealed value
    always carries the `fernet:` prefix, so both kinds can be read back.
    """

    def __init__(self, secret_key: str | None) -> None:
        self._fernet: Fernet | None = None
        if secret_key:
            digest = hashlib.sha256(secret_key.encode("utf-8")).digest()
            self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def seal(self, value: str) -> str:
        if self._fernet is None or not value:
            return value
        return _SEALED_PREFIX + self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def reveal(self, stored: str) -> str:
        if not stored.startswith(_SEALED_PREFIX):
            return stored
        if self._fernet is None:
            raise ValueError("a provider secret is encrypted but SMSGATE_SECRET_KEY is not set")
        try:
            return self._fernet.decrypt(stored[len(_SEALED_PREFIX) :].encode("ascii")).decode()
        except InvalidToken as exc:
            raise ValueError(
                "a provider secret cannot be decrypted with this SMSGATE_SECRET_KEY"
            ) from exc


def new_app_key(app_no: str) -> str:
    """An API key is `<app_no>.<43 random url-safe characters>` (256 bits of entropy)."""
    return f"{app_no}.{secrets.token_urlsafe(32)}"


def hash_app_key(key: str) -> str:
    # SHA-256 suffices for a 256-bit random key (no dictionary to attack) and keeps auth cheap.
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def app_key_matches(key: str, stored_hash: str | None) -> bool:
    if not stored_hash:
        return False
    return hmac.compare_digest(hash_app_key(key), stored_hash)

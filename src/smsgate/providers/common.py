"""Small helpers shared by the HTTP provider adapters."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import orjson

from smsgate.providers.base import ErrorKind, PhoneResult, ProviderError


def endpoint_url(configured: str, default: str) -> str:
    """The channel's endpoint (a host or a URL; https when no scheme is given) or the default."""
    value = (configured or default).strip()
    if "://" not in value:
        value = "https://" + value
    return value.rstrip("/")


def host_of(url: str) -> str:
    """The Host header value aiohttp sends for `url` (port only when not the default)."""
    parts = urlsplit(url)
    return parts.netloc.rpartition("@")[2]


def parse_json_object(body: str, provider: str) -> dict[str, Any]:
    """The answer as a JSON object. An unreadable answer to a send call is AMBIGUOUS: the
    provider may have accepted the request even though we cannot read what it said."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ProviderError(
            ErrorKind.AMBIGUOUS, "BAD_RESPONSE", f"unreadable {provider} answer", body
        ) from exc
    if not isinstance(value, dict):
        raise ProviderError(
            ErrorKind.AMBIGUOUS, "BAD_RESPONSE", f"unexpected {provider} answer", body
        )
    return value


def national_digits(phone: str) -> str:
    """E.164 without the leading `+` (Aliyun accepts `86…` for mainland and `<cc>…` abroad)."""
    return phone[1:] if phone.startswith("+") else phone


def mainland_or_e164(phone: str) -> str:
    """`+86` numbers as 11 national digits (Qiniu's format); others unchanged."""
    return phone[3:] if phone.startswith("+86") else phone


def missing_status(phone: str) -> PhoneResult:
    """A phone the provider's answer says nothing about: accepted as part of the request but
    not reported, so the message may or may not go out (AMBIGUOUS: never resent blindly)."""
    return PhoneResult(
        phone,
        False,
        "MISSING_STATUS",
        "the answer has no status for this number",
        error_kind=ErrorKind.AMBIGUOUS,
    )

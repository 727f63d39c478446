"""Signing webhook POSTs: HMAC-SHA256 over `<timestamp>.<body>` with the app's secret."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

TIMESTAMP_HEADER = "X-Smsgate-Timestamp"
SIGNATURE_HEADER = "X-Smsgate-Signature"
DELIVERY_HEADER = "X-Smsgate-Delivery"
# Receivers should refuse a timestamp further than this from their clock (replays).
DEFAULT_TOLERANCE_SECONDS = 300


def new_webhook_secret() -> str:
    """256 random bits; the prefix tells operators what the value is for."""
    return f"whsec_{secrets.token_urlsafe(32)}"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`v1=<hex>`: the version prefix lets the scheme change without breaking receivers."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    header: str,
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """What a receiver does (docs/webhooks.md has the same code to copy)."""
    if not timestamp.isdigit():
        return False
    sent = int(timestamp)
    if abs((time.time() if now is None else now) - sent) > tolerance:
        return False
    expected = signature(secret, sent, body)
    # Several signatures (comma-separated) may be sent while a secret is being rotated.
    return any(hmac.compare_digest(expected, part.strip()) for part in header.split(","))

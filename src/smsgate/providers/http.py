"""Outbound HTTP for adapters: one call, failures classified into the four error kinds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from smsgate.providers.base import ErrorKind, ProviderError

DEFAULT_CONNECT_TIMEOUT_MS = 3000
DEFAULT_TOTAL_TIMEOUT_MS = 10000


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    headers: Mapping[str, str]
    body: str


def channel_timeout(ext: Mapping[str, Any]) -> aiohttp.ClientTimeout:
    """Per-channel timeouts from ext_json (`connect_timeout_ms`, `timeout_ms`)."""
    connect = float(ext.get("connect_timeout_ms", DEFAULT_CONNECT_TIMEOUT_MS)) / 1000
    total = float(ext.get("timeout_ms", DEFAULT_TOTAL_TIMEOUT_MS)) / 1000
    return aiohttp.ClientTimeout(total=total, sock_connect=connect)


async def post(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    client_timeout: aiohttp.ClientTimeout,
) -> HttpAnswer:
    """POST the exact bytes given (they are what was signed) and read the whole answer.

    A failure to connect is RETRYABLE: nothing reached the provider. Anything that goes
    wrong after the request may have been written (read timeout, reset, disconnect) is
    AMBIGUOUS: the provider may have sent the message.
    """
    return await _call(session, "POST", url, body, headers, client_timeout)


async def get(
    session: aiohttp.ClientSession,
    url: str,
    headers: Mapping[str, str],
    client_timeout: aiohttp.ClientTimeout,
) -> HttpAnswer:
    """GET `url` (read-only provider calls, e.g. a credentials check); failures as for post."""
    return await _call(session, "GET", url, None, headers, client_timeout)


async def _call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    body: bytes | None,
    headers: Mapping[str, str],
    client_timeout: aiohttp.ClientTimeout,
) -> HttpAnswer:
    try:
        async with session.request(
            method, url, data=body, headers=dict(headers), timeout=client_timeout
        ) as resp:
            text = await resp.text(errors="replace")
            return HttpAnswer(resp.status, dict(resp.headers), text)
    except (aiohttp.ConnectionTimeoutError, aiohttp.ClientConnectorError) as exc:
        raise ProviderError(
            ErrorKind.RETRYABLE, "CONNECT_FAILED", str(exc) or type(exc).__name__
        ) from exc
    except TimeoutError as exc:
        raise ProviderError(
            ErrorKind.AMBIGUOUS, "TIMEOUT", "the provider did not answer in time"
        ) from exc
    except aiohttp.ClientError as exc:
        raise ProviderError(
            ErrorKind.AMBIGUOUS, "CONNECTION_LOST", str(exc) or type(exc).__name__
        ) from exc


def classify_http_status(status: int) -> ErrorKind:
    if status == 429:
        return ErrorKind.RATE_LIMITED
    if status >= 500:
        return ErrorKind.RETRYABLE
    return ErrorKind.PERMANENT

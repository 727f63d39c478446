"""What a channel must hold before it is saved: the shared checks each adapter's rules use.

Each adapter module has a `validate_channel(draft)` listing its own rules; the registry
maps `channel_no` to it. Problems name the field as the admin API spells it (`accessKeyId`,
`extJson.timeout_ms`), so the 400 points at what to fix.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

# An answer slower than this holds a send request (and a pooled connection) too long to be
# useful; the send API's callers time out well before.
MAX_TIMEOUT_MS = 120_000


@dataclass(frozen=True, slots=True)
class ChannelDraft:
    """A channel as it is about to be stored (create, or an update merged over the row).

    `has_secret` instead of the secret: validation never needs to decrypt it.
    """

    channel_no: str
    access_key_id: str = ""
    has_secret: bool = False
    endpoint: str = ""
    sdk_app_id: str | None = None
    region: str | None = None
    ext: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChannelProblem:
    field: str  # admin API name: accessKeyId, sdkAppId, extJson.signature_version ...
    message: str

    def __str__(self) -> str:
        return f"{self.field} {self.message}"


ChannelValidator = Callable[[ChannelDraft], list[ChannelProblem]]


def credentials(draft: ChannelDraft, key_name: str, secret_name: str) -> list[ChannelProblem]:
    """Both halves of the provider credentials; `*_name` is what the provider calls them."""
    problems = []
    if not draft.access_key_id.strip():
        problems.append(ChannelProblem("accessKeyId", f"is required (the {key_name})"))
    if not draft.has_secret:
        problems.append(ChannelProblem("accessKeySecret", f"is required (the {secret_name})"))
    return problems


def endpoint(draft: ChannelDraft) -> list[ChannelProblem]:
    """Empty (the provider's own), a bare host (https assumed) or an http(s) URL."""
    value = draft.endpoint.strip()
    if not value:
        return []
    url = value if "://" in value else "https://" + value
    try:
        parts = urlsplit(url)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        usable = False
    if not usable:
        return [ChannelProblem("endpoint", f"{value!r} is not a host or an http(s) URL")]
    return []


def timeouts(ext: Mapping[str, Any]) -> list[ChannelProblem]:
    """`timeout_ms` and `connect_timeout_ms`, read by every HTTP adapter (providers/http.py)."""
    return [
        *number(ext, "timeout_ms", minimum=1, maximum=MAX_TIMEOUT_MS),
        *number(ext, "connect_timeout_ms", minimum=1, maximum=MAX_TIMEOUT_MS),
    ]


def number(
    ext: Mapping[str, Any],
    key: str,
    *,
    minimum: float,
    maximum: float,
    integer: bool = False,
) -> list[ChannelProblem]:
    if key not in ext:
        return []
    value = ext[key]
    # bool is an int in Python; `true` as a timeout is a mistake, not 1 ms.
    wanted = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, wanted):
        kind = "an integer" if integer else "a number"
        return [ChannelProblem(f"extJson.{key}", f"must be {kind}, not {value!r}")]
    if not minimum <= value <= maximum:
        return [ChannelProblem(f"extJson.{key}", f"must be between {minimum:g} and {maximum:g}")]
    return []


def text(ext: Mapping[str, Any], *keys: str) -> list[ChannelProblem]:
    """Optional string settings: present means a non-empty string."""
    return [
        ChannelProblem(f"extJson.{key}", "must be a non-empty string")
        for key in keys
        if key in ext and (not isinstance(ext[key], str) or not ext[key].strip())
    ]


def flag(ext: Mapping[str, Any], *keys: str) -> list[ChannelProblem]:
    return [
        ChannelProblem(f"extJson.{key}", "must be true or false")
        for key in keys
        if key in ext and not isinstance(ext[key], bool)
    ]


def choice(
    ext: Mapping[str, Any], key: str, allowed: Collection[str], *, ignore_case: bool = True
) -> list[ChannelProblem]:
    """A string among `allowed` (compared without case where the adapter lowercases it)."""
    if key not in ext:
        return []
    value = ext[key]
    if not isinstance(value, str) or (value.lower() if ignore_case else value) not in allowed:
        options = " or ".join(repr(a) for a in sorted(allowed))
        return [ChannelProblem(f"extJson.{key}", f"must be {options}, not {value!r}")]
    return []


def http_url(ext: Mapping[str, Any], *keys: str) -> list[ChannelProblem]:
    """Callback URLs handed to the provider: absolute http(s)."""
    problems = []
    for key in keys:
        if key not in ext:
            continue
        value = ext[key]
        parts = urlsplit(value) if isinstance(value, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            problems.append(ChannelProblem(f"extJson.{key}", "must be an absolute http(s) URL"))
    return problems


def http_channel(draft: ChannelDraft) -> list[ChannelProblem]:
    """What every HTTP provider channel shares: the endpoint and the timeouts."""
    return [*endpoint(draft), *timeouts(draft.ext)]

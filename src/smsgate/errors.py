"""Domain errors: one hierarchy, each with a stable HTTP status (DESIGN.md §4)."""

from __future__ import annotations


class GatewayError(Exception):
    """Rendered by one handler into the seed's envelope; `msg` names the cause."""

    status: int = 400

    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg


class BadRequest(GatewayError):
    status = 400


class Unauthorized(GatewayError):
    status = 401


class QuotaExhausted(GatewayError):
    status = 402


class Forbidden(GatewayError):
    status = 403


class NotFound(GatewayError):
    status = 404


class RateLimited(GatewayError):
    status = 429

    def __init__(self, msg: str, retry_after_seconds: int) -> None:
        super().__init__(msg)
        self.retry_after_seconds = retry_after_seconds


class ServiceUnavailable(GatewayError):
    """The database or Redis cannot be reached; nothing was written."""

    status = 503


class Conflict(GatewayError):
    """The change would break a reference or duplicate a key (409 naming what)."""

    status = 409

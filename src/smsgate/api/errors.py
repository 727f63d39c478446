"""One handler per error family, each rendering the seed's envelope; never a bare 500."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from smsgate.api.envelope import envelope
from smsgate.errors import GatewayError, RateLimited

log = logging.getLogger("smsgate.api")


async def _gateway_error(_request: Request, exc: Exception) -> Response:
    if not isinstance(exc, GatewayError):  # pragma: no cover - registered for this type
        raise exc
    headers = None
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(exc.retry_after_seconds)}
    return envelope(exc.status, exc.msg, headers=headers)


async def _validation_error(_request: Request, exc: Exception) -> Response:
    if not isinstance(exc, RequestValidationError):  # pragma: no cover
        raise exc
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    loc = ".".join(str(p) for p in first.get("loc", ()))
    return envelope(400, f"invalid request: {loc}: {first.get('msg')}")


async def _http_error(_request: Request, exc: Exception) -> Response:
    if not isinstance(exc, StarletteHTTPException):  # pragma: no cover
        raise exc
    headers = dict(exc.headers) if exc.headers else None
    return envelope(exc.status_code, str(exc.detail), headers=headers)


async def _client_gone(_request: Request, exc: Exception) -> Response:
    # The caller hung up before its body arrived: nothing was read, written or sent.
    log.debug("client disconnected before the request body was read")
    return Response(status_code=499)


async def _out_of_range(_request: Request, exc: Exception) -> Response:
    # A number too large for the database (e.g. an id of 40 digits in the path): SQLite
    # refuses to bind it. No such row can exist, and it is the caller's input.
    return envelope(400, "a number in the request is out of range")


async def _unexpected(_request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    return envelope(500, "internal error; the gateway logged the details")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(OverflowError, _out_of_range)
    app.add_exception_handler(Exception, _unexpected)

"""POST /api/v1/send-message (the seed's contract, DESIGN.md §4)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from starlette.responses import Response

from smsgate.api.envelope import envelope
from smsgate.errors import GatewayError
from smsgate.idempotency.service import IdempotencyService, fingerprint
from smsgate.observability.logs import mask_phone
from smsgate.sending.schemas import SendMessageBody, SendOutcome, parse_send_body
from smsgate.sending.service import SendingService

router = APIRouter()
log = logging.getLogger("smsgate.api")

_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"description": text}
    for code, text in {
        200: "every phone accepted by the provider; msg is the provider's raw response",
        207: "some phones accepted, some not (see results)",
        400: "malformed body, invalid phone, wrong number of params, too many phones",
        401: "missing or wrong app key",
        402: "quota exhausted",
        403: "app, business, template, signature or channel disabled, or not this app's; "
        "or every phone is on the blocklist",
        404: "unknown businessNo",
        429: "the app's per-minute limit, or every phone's per-phone limit, was reached "
        "(Retry-After says when to retry)",
        502: "the provider rejected every phone",
        503: "database or Redis unavailable; nothing was sent",
        504: "the provider timed out; records left UNKNOWN",
    }.items()
}


async def sending_service(request: Request) -> SendingService:
    # async: a plain `def` dependency would run in the thread pool on every request.
    service: SendingService = request.app.state.sending
    return service


@router.post(
    "/api/v1/send-message",
    summary="Send one templated message to one or more phones",
    responses=_RESPONSES,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": SendMessageBody.model_json_schema()}},
        }
    },
)
async def send_message(
    request: Request,
    service: Annotated[SendingService, Depends(sending_service)],
    authorization: Annotated[str | None, Header()] = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="repeat-safe sending: the same key and body within 24 h return the "
            "first answer without sending again",
        ),
    ] = None,
) -> Response:
    # Authenticate before reading the body, so a caller without a key learns nothing else.
    app = await service.authenticate(authorization)
    body = parse_send_body(await request.body())
    return await respond_once(
        request,
        app.app_no,
        body.businessNo,
        idempotency_key,
        "send-message",
        body.canonical(),
        lambda: service.send_message(app, body),
    )


async def respond_once(
    request: Request,
    app_no: str,
    business_no: str,
    idempotency_key: str | None,
    endpoint: str,
    canonical_body: str,
    send: Callable[[], Awaitable[SendOutcome]],
) -> Response:
    """Run `send` and answer, at most once per Idempotency-Key (DESIGN: never double-send)."""
    started = time.perf_counter()
    where = (app_no, business_no, endpoint, started)
    if idempotency_key is None:
        return outcome_response(_logged(await send(), *where))
    keys = IdempotencyService(request.app.state.engine)
    stored = await keys.claim(
        app_no, idempotency_key, endpoint, fingerprint(endpoint, canonical_body)
    )
    if stored is not None:
        return Response(
            stored.body,
            status_code=stored.status_code,
            media_type="application/json",
            headers={"Idempotent-Replayed": "true"},
        )
    try:
        outcome = await send()
    except GatewayError:
        # Refused before anything was written or sent: the key may be used again.
        await keys.release(app_no, idempotency_key)
        raise
    # Any other failure keeps the key claimed: the message may be on its way, and a
    # repeat must not send it twice.
    response = outcome_response(_logged(outcome, *where))
    await keys.answer(app_no, idempotency_key, response.status_code, bytes(response.body))
    return response


def _logged(
    outcome: SendOutcome, app_no: str, business_no: str, endpoint: str, started: float
) -> SendOutcome:
    log.info(
        "%s answered %d",
        endpoint,
        outcome.code,
        extra={
            "requestId": outcome.request_id,
            "app": app_no,
            "business": business_no,
            "outcome": outcome.code,
            "durationMs": round((time.perf_counter() - started) * 1000, 1),
            "phones": [mask_phone(r.phone) for r in outcome.results[:5]],
        },
    )
    return outcome


def outcome_response(outcome: SendOutcome) -> Response:
    accepted = outcome.code == 200
    headers = None
    if outcome.retry_after_seconds is not None:
        headers = {"Retry-After": str(outcome.retry_after_seconds)}
    return envelope(
        outcome.code,
        outcome.msg,
        data=200 if accepted else None,
        request_id=outcome.request_id,
        headers=headers,
        results=[result.as_json() for result in outcome.results],
    )

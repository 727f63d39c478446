"""POST /api/v1/send-message (the seed's contract, DESIGN.md §4)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from starlette.responses import Response

from smsgate.api.envelope import envelope
from smsgate.errors import GatewayError
from smsgate.idempotency.service import IdempotencyService, fingerprint
from smsgate.sending.schemas import SendMessageBody, SendOutcome, parse_send_body
from smsgate.sending.service import SendingService

router = APIRouter()

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


def sending_service(request: Request) -> SendingService:
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
        idempotency_key,
        "send-message",
        body.canonical(),
        lambda: service.send_message(app, body),
    )


async def respond_once(
    request: Request,
    app_no: str,
    idempotency_key: str | None,
    endpoint: str,
    canonical_body: str,
    send: Callable[[], Awaitable[SendOutcome]],
) -> Response:
    """Run `send` and answer, at most once per Idempotency-Key (DESIGN: never double-send)."""
    if idempotency_key is None:
        return outcome_response(await send())
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
    response = outcome_response(outcome)
    await keys.answer(app_no, idempotency_key, response.status_code, bytes(response.body))
    return response


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

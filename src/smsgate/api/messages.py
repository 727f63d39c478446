"""The queued send API: POST /api/v1/messages, GET and DELETE /api/v1/messages/{requestId}."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from pydantic import AwareDatetime, ValidationError
from starlette.responses import Response

from smsgate.api.deps import queue_service
from smsgate.api.envelope import envelope
from smsgate.api.send import respond_once, sending_service
from smsgate.errors import BadRequest
from smsgate.pipeline.service import QueueService
from smsgate.sending.schemas import SendMessageBody, describe_validation_error
from smsgate.sending.service import SendingService

router = APIRouter()


class QueueMessageBody(SendMessageBody):
    """The send-message body plus an optional `sendAt` (ISO 8601 with a zone)."""

    sendAt: AwareDatetime | None = None


SendingDep = Annotated[SendingService, Depends(sending_service)]
QueueDep = Annotated[QueueService, Depends(queue_service)]
AuthHeader = Annotated[str | None, Header()]


def _parse(raw: bytes) -> QueueMessageBody:
    if not raw.strip():
        raise BadRequest("the request body is empty; expected a JSON object")
    try:
        return QueueMessageBody.model_validate_json(raw)
    except ValidationError as exc:
        raise BadRequest(f"invalid request body: {describe_validation_error(exc)}") from exc


@router.post(
    "/api/v1/messages",
    status_code=202,
    summary="Queue a templated message for one or more phones (up to 10,000), now or later",
    responses={
        202: {"description": "accepted: the records are committed QUEUED"},
        400: {"description": "malformed body, invalid phone, wrong params, bad sendAt"},
        401: {"description": "missing or wrong app key"},
        402: {"description": "quota exhausted"},
        403: {"description": "disabled, not this app's, or every phone blocked"},
        404: {"description": "unknown businessNo"},
        409: {"description": "Idempotency-Key reused with another body, or still in flight"},
        429: {"description": "per-minute or per-phone limit (Retry-After)"},
        503: {"description": "database or Redis unavailable; nothing was queued"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": QueueMessageBody.model_json_schema()}},
        }
    },
)
async def queue_message(
    request: Request,
    sending: SendingDep,
    service: QueueDep,
    authorization: AuthHeader = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    app = await sending.authenticate(authorization)
    body = _parse(await request.body())
    send_at: datetime | None = body.sendAt
    return await respond_once(
        request,
        app.app_no,
        body.businessNo,
        idempotency_key,
        "messages",
        body.model_dump_json(),
        lambda: service.enqueue(app, body, send_at),
    )


@router.get("/api/v1/messages/{request_id}", summary="Per-phone status of a queued request")
async def message_status(
    request_id: str, sending: SendingDep, service: QueueDep, authorization: AuthHeader = None
) -> Response:
    app = await sending.authenticate(authorization)
    status: dict[str, Any] = await service.status(app, request_id)
    results = status.pop("results")
    summary = ", ".join(f"{n} {name}" for name, n in status["byStatus"].items())
    return envelope(200, summary, data=status, request_id=request_id, results=results)


@router.delete(
    "/api/v1/messages/{request_id}", summary="Cancel what of a queued request is not sent yet"
)
async def cancel_messages(
    request_id: str, sending: SendingDep, service: QueueDep, authorization: AuthHeader = None
) -> Response:
    app = await sending.authenticate(authorization)
    result = await service.cancel(app, request_id)
    return envelope(
        200,
        f"cancelled {result['cancelled']} message(s) not sent yet",
        data=result,
        request_id=request_id,
    )

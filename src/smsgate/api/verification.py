"""POST /api/v1/verification-codes and /api/v1/verification-codes/verify (app-key auth)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from starlette.responses import Response

from smsgate.api.envelope import envelope
from smsgate.sending.service import SendingService
from smsgate.verification.schemas import IssueCodeBody, VerifyCodeBody, parse_body
from smsgate.verification.service import VerificationService

router = APIRouter()


def _responses(texts: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    return {code: {"description": text} for code, text in texts.items()}


def _body_schema(model: type[IssueCodeBody] | type[VerifyCodeBody]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


def _services(request: Request) -> tuple[SendingService, VerificationService]:
    return request.app.state.sending, request.app.state.verification


Services = Annotated[tuple[SendingService, VerificationService], Depends(_services)]


def _client_ip(request: Request) -> str:
    # Behind a proxy, run uvicorn with --proxy-headers/--forwarded-allow-ips so this is
    # the client's address rather than the proxy's.
    return request.client.host if request.client else "unknown"


@router.post(
    "/api/v1/verification-codes",
    summary="Send a new verification code to a phone (the code is never returned)",
    responses=_responses(
        {
            200: "the code was sent; data.expiresInSeconds says how long it is valid",
            400: "malformed body or invalid phone",
            401: "missing or wrong app key",
            402: "quota exhausted",
            403: "business not a verification-code business, disabled, or of another app; "
            "or the phone is blocked",
            404: "unknown businessNo",
            429: "per-phone or per-address limit reached (Retry-After)",
            502: "the provider rejected the message",
            503: "database or Redis unavailable",
            504: "the provider timed out; the code may have been delivered and is valid",
        }
    ),
    openapi_extra=_body_schema(IssueCodeBody),
)
async def issue_code(
    request: Request,
    services: Services,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    sending, verification = services
    app = await sending.authenticate(authorization)
    body = parse_body(IssueCodeBody, await request.body())
    outcome = await verification.issue_code(app, body.businessNo, body.phone, _client_ip(request))
    headers = None
    if outcome.retry_after_seconds is not None:
        headers = {"Retry-After": str(outcome.retry_after_seconds)}
    return envelope(
        outcome.code,
        outcome.msg,
        data=outcome.data(),
        request_id=outcome.request_id,
        headers=headers,
    )


@router.post(
    "/api/v1/verification-codes/verify",
    summary="Check a verification code: valid (once), invalid or expired",
    responses=_responses(
        {
            200: "checked; data.result is valid, invalid or expired",
            400: "malformed body or invalid phone",
            401: "missing or wrong app key",
            403: "business not a verification-code business, disabled, or of another app",
            404: "unknown businessNo",
            429: "per-address limit reached (Retry-After)",
            503: "database or Redis unavailable",
        }
    ),
    openapi_extra=_body_schema(VerifyCodeBody),
)
async def verify_code(
    request: Request,
    services: Services,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    sending, verification = services
    app = await sending.authenticate(authorization)
    body = parse_body(VerifyCodeBody, await request.body())
    outcome = await verification.verify_code(
        app, body.businessNo, body.phone, body.code, _client_ip(request)
    )
    return envelope(200, outcome.msg, data=outcome.data())

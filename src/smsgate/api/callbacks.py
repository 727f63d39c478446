"""POST /callbacks/{provider_no}/{token}: providers push delivery reports here."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from smsgate.api.deps import report_service
from smsgate.reports.service import ReportService

router = APIRouter()


def public_url(request: Request) -> str:
    """The URL the provider called, as it saw it (behind a proxy: X-Forwarded-Proto/Host)."""
    proto = request.headers.get("x-forwarded-proto", request.url.scheme).split(",")[0].strip()
    host = request.headers.get("x-forwarded-host", request.headers.get("host", request.url.netloc))
    url = f"{proto}://{host.split(',')[0].strip()}{request.url.path}"
    if request.url.query:
        url += f"?{request.url.query}"
    return url


@router.post(
    "/callbacks/{provider_no}/{token}",
    summary="Delivery reports pushed by a provider (each in its own format)",
    responses={
        200: {"description": "taken; the body is the provider's expected acknowledgement"},
        400: {"description": "not a report in this provider's format"},
        401: {"description": "Twilio signature does not match"},
        404: {"description": "unknown channel or wrong token"},
    },
)
async def receive_reports(
    provider_no: str,
    token: str,
    request: Request,
    service: Annotated[ReportService, Depends(report_service)],
) -> Response:
    summary = await service.receive(
        provider_no, token, await request.body(), public_url(request), request.headers
    )
    ack = summary.acknowledgement
    return Response(ack.body, media_type=ack.media_type)

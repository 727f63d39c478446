"""Admin REST API under /api/v1/admin: thin endpoints over ConfigService and RecordService."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from datetime import UTC, date, datetime
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from starlette.responses import Response, StreamingResponse

from smsgate.api.deps import (
    auth_service,
    config_service,
    fallback_service,
    record_service,
    webhook_service,
)
from smsgate.auth.service import AuthService, Principal
from smsgate.errors import Unauthorized
from smsgate.management import schemas
from smsgate.management.fallbacks import FallbackService
from smsgate.management.resources import APPS, RESOURCES, Resource
from smsgate.management.service import ConfigService
from smsgate.records.queries import RecordFilter
from smsgate.records.service import RecordService, parse_status
from smsgate.webhooks.service import WebhookService

PREFIX = "/api/v1/admin"
# Far beyond any real listing, and small enough for every database's OFFSET.
PageNumber = Annotated[int, Query(ge=1, le=1_000_000)]
# Row ids fit a signed 64-bit column; a larger number would overflow the driver (500).
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
router = APIRouter(prefix=PREFIX)


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=256)]


class TokenResponse(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int


async def current_principal(
    auth: Annotated[AuthService, Depends(auth_service)],
    authorization: Annotated[str | None, Header()] = None,
) -> Principal:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("log in first: send 'Authorization: Bearer <token>'")
    return await auth.principal_for_token(token.strip())


ConfigDep = Annotated[ConfigService, Depends(config_service)]
RecordsDep = Annotated[RecordService, Depends(record_service)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]
WebhooksDep = Annotated[WebhookService, Depends(webhook_service)]


@router.post("/auth/token", response_model=TokenResponse, tags=["admin"])
async def issue_token(
    body: TokenRequest, request: Request, auth: Annotated[AuthService, Depends(auth_service)]
) -> TokenResponse:
    client_ip = request.client.host if request.client else "unknown"
    issued = await auth.login(body.username, body.password, client_ip)
    return TokenResponse(access_token=issued.access_token, expires_in=issued.expires_in)


@router.post(
    "/auth/logout",
    status_code=204,
    tags=["admin"],
    summary="End every token and console session of the caller's user",
    responses={401: {"description": "missing, invalid or already ended token"}},
)
async def log_out(
    principal: PrincipalDep,
    auth: Annotated[AuthService, Depends(auth_service)],
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    # `principal` has checked the token is current; its user's generation moves on.
    await auth.log_out((authorization or "").partition(" ")[2].strip())
    return Response(status_code=204)


@router.get("/me", tags=["admin"])
async def whoami(principal: PrincipalDep) -> dict[str, str]:
    return {"username": principal.username, "role": principal.role}


def _with_annotation(func: Callable[..., Any], name: str, annotation: Any) -> Callable[..., Any]:
    """Give a generic endpoint its resource's body type, so validation and OpenAPI see it."""
    func.__annotations__[name] = annotation
    return func


def _register(resource: Resource) -> None:
    base = f"/{resource.name}"
    tags: list[str | Enum] = [f"admin: {resource.name}"]
    camel = {column: to_camel(column) for column in resource.filters}

    async def list_rows(
        request: Request,
        service: ConfigDep,
        principal: PrincipalDep,
        q: Annotated[str | None, Query(max_length=100, description="search")] = None,
        page: PageNumber = 1,
        page_size: Annotated[int, Query(alias="pageSize", ge=1, le=200)] = 20,
        **filters: Any,
    ) -> schemas.Page:
        chosen = {column: filters.get(column) for column in resource.filters}
        found = await service.list_rows(
            resource, filters=chosen, q=q, page=page, page_size=page_size
        )
        found.items = [resource.view_for(item, principal.is_admin) for item in found.items]
        return found

    # Declare each filter as a typed query parameter (documented in OpenAPI, validated).
    signature = inspect.signature(list_rows)
    params = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    for column in resource.filters:
        kind: Any = bool | None if column == "status" else str | None
        params.append(
            inspect.Parameter(
                column,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[kind, Query(alias=camel[column], max_length=64)]
                if column != "status"
                else Annotated[kind, Query(alias="status")],
            )
        )
    list_rows.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    router.add_api_route(
        base,
        list_rows,
        methods=["GET"],
        response_model=schemas.Page,
        tags=tags,
        summary=f"List {resource.name}",
    )

    async def get_row(row_id: int, service: ConfigDep, principal: PrincipalDep) -> Any:
        return resource.view_for(await service.get(resource, row_id), principal.is_admin)

    router.add_api_route(
        f"{base}/{{row_id}}",
        get_row,
        methods=["GET"],
        response_model=resource.view_schema,
        tags=tags,
        summary=f"Get one {resource.label}",
    )

    if resource is APPS:

        async def create_app(body: Any, service: ConfigDep, principal: PrincipalDep) -> Any:
            return await service.create_app(principal, body)

        router.add_api_route(
            base,
            _with_annotation(create_app, "body", Annotated[schemas.AppCreate, Body()]),
            methods=["POST"],
            status_code=201,
            response_model=schemas.AppKeyView,
            tags=tags,
            summary="Create an app; its API key is in this response only",
        )

        async def rotate_key(row_id: int, service: ConfigDep, principal: PrincipalDep) -> Any:
            return await service.rotate_app_key(principal, row_id)

        router.add_api_route(
            f"{base}/{{row_id}}/rotate-key",
            rotate_key,
            methods=["POST"],
            response_model=schemas.AppKeyView,
            tags=tags,
            summary="Issue a new API key; the old one stops working at once",
        )
    else:

        async def create_row(body: Any, service: ConfigDep, principal: PrincipalDep) -> Any:
            return await service.create(principal, resource, body)

        router.add_api_route(
            base,
            _with_annotation(create_row, "body", Annotated[resource.create_schema, Body()]),
            methods=["POST"],
            status_code=201,
            response_model=resource.view_schema,
            tags=tags,
            summary=f"Create a {resource.label}",
        )

    async def update_row(
        row_id: int, body: Any, service: ConfigDep, principal: PrincipalDep
    ) -> Any:
        return await service.update(principal, resource, row_id, body)

    router.add_api_route(
        f"{base}/{{row_id}}",
        _with_annotation(update_row, "body", Annotated[resource.update_schema, Body()]),
        methods=["PATCH"],
        response_model=resource.view_schema,
        tags=tags,
        summary=f"Change a {resource.label} (only the fields sent)",
    )

    for action, enabled in (("enable", True), ("disable", False)):

        async def set_status(
            row_id: int, service: ConfigDep, principal: PrincipalDep, _enabled: bool = enabled
        ) -> Any:
            return await service.set_status(principal, resource, row_id, _enabled)

        set_status.__signature__ = inspect.signature(set_status).replace(  # type: ignore[attr-defined]
            parameters=[
                p
                for name, p in inspect.signature(set_status).parameters.items()
                if name != "_enabled"
            ]
        )
        router.add_api_route(
            f"{base}/{{row_id}}/{action}",
            set_status,
            methods=["POST"],
            response_model=resource.view_schema,
            tags=tags,
            summary=f"{action.title()} a {resource.label}",
        )

    async def delete_row(row_id: int, service: ConfigDep, principal: PrincipalDep) -> Response:
        await service.delete(principal, resource, row_id)
        return Response(status_code=204)

    router.add_api_route(
        f"{base}/{{row_id}}",
        delete_row,
        methods=["DELETE"],
        status_code=204,
        tags=tags,
        summary=f"Delete a {resource.label} (409 while something uses it)",
    )


def _status_endpoint(resource: Resource, enabled: bool) -> Callable[..., Any]:
    async def set_status(row_id: int, service: ConfigDep, principal: PrincipalDep) -> Any:
        return await service.set_status(principal, resource, row_id, enabled)

    return set_status


for _resource in RESOURCES.values():
    _register(_resource)


class ChannelTestResult(BaseModel):
    ok: bool  # the provider accepted the channel's credentials
    code: str  # the provider's own code (or ours when it could not be reached)
    message: str


@router.post(
    "/channels/{row_id}/test",
    response_model=ChannelTestResult,
    tags=["admin: channels"],
    summary="Test a channel's credentials with one harmless signed call (nothing is sent)",
)
async def test_channel(row_id: RowId, service: ConfigDep, principal: PrincipalDep) -> Any:
    return await service.test_channel(principal, row_id)


@router.get(
    "/apps/{row_id}/webhook-secret",
    response_model=schemas.WebhookSecretView,
    tags=["admin: apps"],
    summary="Reveal the app's webhook signing secret (admins only; audited)",
)
async def reveal_webhook_secret(row_id: RowId, service: ConfigDep, principal: PrincipalDep) -> Any:
    return await service.webhook_secret(principal, row_id)


@router.post(
    "/apps/{row_id}/rotate-webhook-secret",
    response_model=schemas.WebhookSecretView,
    tags=["admin: apps"],
    summary="Replace the app's webhook signing secret; the old one stops signing at once",
)
async def rotate_webhook_secret(row_id: RowId, service: ConfigDep, principal: PrincipalDep) -> Any:
    return await service.webhook_secret(principal, row_id, rotate=True)


@router.get("/webhook-dead-letters", response_model=schemas.Page, tags=["admin: webhooks"])
async def list_dead_letters(
    webhooks: WebhooksDep,
    principal: PrincipalDep,
    app_no: Annotated[str | None, Query(alias="appNo", max_length=64)] = None,
    page: PageNumber = 1,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=200)] = 50,
) -> schemas.Page:
    """Webhook events that got no 2xx answer within 24 hours of retries."""
    return await webhooks.dead_letters(app_no=app_no, page=page, page_size=page_size)


@router.post("/webhook-dead-letters/{delivery_id}/replay", tags=["admin: webhooks"])
async def replay_dead_letter(
    delivery_id: RowId, webhooks: WebhooksDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Send a dead letter again now (admins only), with a fresh 24-hour retry window."""
    return await webhooks.replay(principal, delivery_id)


def _record_filter(
    region: str,
    phone: str | None,
    app_no: str | None,
    business_no: str | None,
    provider_no: str | None,
    status: str | None,
    request_id: str | None,
    since: datetime | None,
    until: datetime | None,
) -> RecordFilter:
    from smsgate.sending.phones import PhoneError, normalise_phone

    if phone and not phone.startswith("+"):
        with contextlib.suppress(PhoneError):  # search for what was typed, then
            phone = normalise_phone(phone, region)
    return RecordFilter(
        phone=phone or None,
        app_no=app_no or None,
        business_no=business_no or None,
        provider_no=provider_no or None,
        status=parse_status(status),
        request_id=request_id or None,
        since=_naive_utc(since),
        until=_naive_utc(until),
    )


def _naive_utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


async def record_filter(
    request: Request,
    phone: Annotated[str | None, Query(max_length=32)] = None,
    app_no: Annotated[str | None, Query(alias="appNo", max_length=64)] = None,
    business_no: Annotated[str | None, Query(alias="businessNo", max_length=64)] = None,
    provider_no: Annotated[str | None, Query(alias="providerNo", max_length=64)] = None,
    status: Annotated[str | None, Query(max_length=16, description="name or number")] = None,
    request_id: Annotated[str | None, Query(alias="requestId", max_length=36)] = None,
    since: Annotated[datetime | None, Query(alias="from")] = None,
    until: Annotated[datetime | None, Query(alias="to")] = None,
) -> RecordFilter:
    region = request.app.state.settings.default_region
    return _record_filter(
        region, phone, app_no, business_no, provider_no, status, request_id, since, until
    )


FilterDep = Annotated[RecordFilter, Depends(record_filter)]


@router.get("/send-records", tags=["admin: send records"])
async def search_records(
    where: FilterDep,
    records: RecordsDep,
    principal: PrincipalDep,
    page: PageNumber = 1,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=200)] = 20,
) -> dict[str, Any]:
    return await records.search(where, page, page_size)


@router.get(
    "/send-records/export.csv",
    tags=["admin: send records"],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "CSV, streamed"}},
)
async def export_records(
    where: FilterDep, records: RecordsDep, principal: PrincipalDep
) -> StreamingResponse:
    return StreamingResponse(
        records.export_csv(where),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="send-records.csv"'},
    )


@router.get("/send-records/{record_id}", tags=["admin: send records"])
async def get_record(
    record_id: int, records: RecordsDep, principal: PrincipalDep
) -> dict[str, Any]:
    return await records.get(record_id)


class FallbacksBody(BaseModel):
    """The whole ordered list of fallback templates (empty: no failover)."""

    model_config = ConfigDict(extra="forbid")

    templateNos: Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field()]


FallbacksDep = Annotated[FallbackService, Depends(fallback_service)]


@router.get("/businesses/{row_id}/fallbacks", tags=["admin: businesses"])
async def get_fallbacks(
    row_id: int, service: FallbacksDep, principal: PrincipalDep
) -> dict[str, Any]:
    return await service.get(row_id)


@router.put("/businesses/{row_id}/fallbacks", tags=["admin: businesses"])
async def put_fallbacks(
    row_id: int, body: FallbacksBody, service: FallbacksDep, principal: PrincipalDep
) -> dict[str, Any]:
    return await service.replace(principal, row_id, body.templateNos)


@router.get("/stats", tags=["admin: stats"])
async def stats(
    records: RecordsDep,
    principal: PrincipalDep,
    group_by: Annotated[str, Query(alias="groupBy", pattern="^(day|channel|app)$")] = "day",
    since: Annotated[date | None, Query(alias="from")] = None,
    until: Annotated[date | None, Query(alias="to", description="exclusive")] = None,
    app_no: Annotated[str | None, Query(alias="appNo", max_length=64)] = None,
) -> dict[str, Any]:
    return await records.stats(group_by, since, until, app_no)


@router.get("/blocklist", tags=["admin: blocklist"], response_model=schemas.Page)
async def list_blocks(
    service: ConfigDep,
    principal: PrincipalDep,
    app_no: Annotated[str | None, Query(alias="appNo", max_length=64)] = None,
    global_only: Annotated[bool, Query(alias="globalOnly")] = False,
    q: Annotated[str | None, Query(max_length=32, description="part of a phone")] = None,
    page: PageNumber = 1,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=200)] = 50,
) -> schemas.Page:
    return await service.list_blocks(
        app_no=app_no, global_only=global_only, q=q, page=page, page_size=page_size
    )


@router.post("/blocklist", tags=["admin: blocklist"], status_code=201)
async def add_block(
    body: schemas.BlockCreate, service: ConfigDep, principal: PrincipalDep
) -> dict[str, Any]:
    return await service.add_block(principal, body)


@router.delete("/blocklist/{block_id}", tags=["admin: blocklist"], status_code=204)
async def remove_block(block_id: int, service: ConfigDep, principal: PrincipalDep) -> Response:
    await service.remove_block(principal, block_id)
    return Response(status_code=204)


@router.get("/audit-log", tags=["admin"])
async def audit_log(
    service: ConfigDep,
    principal: PrincipalDep,
    resource: Annotated[str | None, Query(max_length=32)] = None,
    page: PageNumber = 1,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=200)] = 50,
) -> schemas.Page:
    return await service.audit_log(resource=resource, page=page, page_size=page_size)

"""Console pages: thin handlers that call ConfigService, RecordService and SendingService."""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from smsgate.api.deps import (
    auth_service,
    config_service,
    fallback_service,
    record_service,
    sending,
    webhook_service,
)
from smsgate.auth.service import Principal
from smsgate.console import charts
from smsgate.console.forms import CHANNEL_TYPES, PAGES, Page, fields_for, form_values
from smsgate.console.security import (
    LOGIN_CSRF_COOKIE,
    clear_session,
    csrf_for_session,
    csrf_matches,
    new_login_csrf,
    session_token,
    set_login_csrf,
    set_session,
)
from smsgate.db.models import SendStatus
from smsgate.errors import BadRequest, GatewayError
from smsgate.management import schemas
from smsgate.management.resources import APPS, BUSINESSES, CHANNELS, SIGNS, TEMPLATES
from smsgate.management.service import pages
from smsgate.providers.base import FeeScheme
from smsgate.providers.registry import ADAPTERS
from smsgate.records.queries import RecordFilter
from smsgate.records.service import parse_status
from smsgate.sending.fee import count_segments
from smsgate.sending.phones import PhoneError, normalise_phone
from smsgate.sending.render import TemplateError, placeholder_names, render_content
from smsgate.sending.schemas import SendMessageBody, describe_validation_error

HERE = Path(__file__).parent
log = logging.getLogger("smsgate.console")
router = APIRouter(prefix="/admin", include_in_schema=False)
templates = Jinja2Templates(directory=HERE / "templates")
PAGE_SIZE = 20
DASHBOARD_DAYS = 30
TOP_APPS = 10
# Statuses that count as success on the dashboard: the provider accepted the message and
# has not reported it undelivered.
SUCCESS = {"SUBMITTED", "DELIVERED"}
NOTICES = {
    "created": "Created",
    "updated": "Saved",
    "enabled": "Enabled",
    "disabled": "Disabled",
    "deleted": "Deleted",
}


class LoginRequired(Exception):
    """No valid session cookie: the handler redirects to the login page."""


class ConsoleDenied(Exception):
    """Rendered as an HTML error page (403 for viewers and failed CSRF checks)."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def install_console(app: FastAPI) -> None:
    # Static files first: the mount must win over the /admin/{resource} pages.
    app.mount("/admin/static", StaticFiles(directory=HERE / "static"), name="console-static")
    app.include_router(router)
    app.add_exception_handler(LoginRequired, _to_login)
    app.add_exception_handler(ConsoleDenied, _denied)


async def _to_login(request: Request, exc: Exception) -> Response:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    response = RedirectResponse(f"/admin/login?next={quote(target)}", status_code=303)
    clear_session(response)
    return response


async def _denied(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConsoleDenied)  # noqa: S101 - registered for this type
    return render(request, "error.html", {"message": exc.message}, status=exc.status)


# -- services and the operator --------------------------------------------------------------


async def console_user(request: Request) -> Principal:
    token = session_token(request)
    if token is None:
        raise LoginRequired
    try:
        principal = await auth_service(request).principal_for_token(token)
    except GatewayError as exc:  # expired, password changed, user disabled, no secret key
        raise LoginRequired from exc
    secret = request.app.state.settings.secret_key
    request.state.principal = principal
    request.state.csrf = csrf_for_session(secret.get_secret_value(), token)
    return principal


async def checked_form(
    request: Request, principal: Annotated[Principal, Depends(console_user)]
) -> FormData:
    """The posted form, after its CSRF token has been checked against the session."""
    form = await request.form()
    if not csrf_matches(request.state.csrf, form.get("csrf")):
        raise ConsoleDenied(
            "the form's security token did not match (CSRF check): reload the page and retry"
        )
    return form


def admin_only(principal: Principal) -> None:
    if not principal.is_admin:
        raise ConsoleDenied(f"user {principal.username} is a viewer: read-only")


User = Annotated[Principal, Depends(console_user)]
Form = Annotated[FormData, Depends(checked_form)]


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    principal = getattr(request.state, "principal", None)
    context = {
        "principal": principal,
        "csrf": getattr(request.state, "csrf", ""),
        "nav": PAGES,
        "path": request.url.path,
        **context,
    }
    response = templates.TemplateResponse(request, name, context, status_code=status)
    # Pages may show a one-time app key or operators' data: never cache them.
    response.headers["Cache-Control"] = "no-store"
    return response


# -- login and logout ------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    # Only back into the console: an open redirect would make the login page a phishing aid.
    if target and target.startswith("/admin") and not target.startswith("//"):
        return target
    return "/admin"


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    value = new_login_csrf()
    response = render(request, "login.html", {"login_csrf": value, "next": _safe_next(next)})
    set_login_csrf(request, response, value)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    username = str(form.get("username", "")).strip()
    password = str(form.get("password", ""))
    target = _safe_next(str(form.get("next", "")))
    error = None
    status = 400
    if not csrf_matches(request.cookies.get(LOGIN_CSRF_COOKIE, ""), form.get("csrf")):
        error = "the login form expired (CSRF check): try again"
        status = 403
    elif not username or not password:
        error = "enter a username and a password"
    else:
        client_ip = request.client.host if request.client else "unknown"
        try:
            # The same throttled login as POST /api/v1/admin/auth/token: failures from the
            # console and the API count together (5 per user and IP, then 15 minutes locked).
            issued = await auth_service(request).login(username, password, client_ip)
        except GatewayError as exc:
            error, status = exc.msg, exc.status
        else:
            done = RedirectResponse(target, status_code=303)
            set_session(request, done, issued.access_token)
            done.delete_cookie(LOGIN_CSRF_COOKIE, path="/admin")
            return done
    value = new_login_csrf()
    response = render(
        request,
        "login.html",
        {"login_csrf": value, "next": target, "error": error, "username": username},
        status=status,
    )
    set_login_csrf(request, response, value)
    return response


@router.post("/logout")
async def logout(request: Request, form: Form) -> Response:
    token = session_token(request)
    if token:
        # Server-side too: the cookie's token (and the user's other sessions and API
        # tokens) stop working even if a copy of the cookie survives.
        try:
            await auth_service(request).log_out(token)
        except Exception:
            # The browser's cookie still goes; the token lasts until it expires.
            log.exception("logout could not end the session on the server")
    response = RedirectResponse("/admin/login", status_code=303)
    clear_session(response)
    return response


# -- dashboard -------------------------------------------------------------------------------


@router.get("")
@router.get("/")
async def dashboard(request: Request, principal: User) -> Response:
    records = record_service(request)
    until = datetime.now(UTC).date() + timedelta(days=1)
    since = until - timedelta(days=DASHBOARD_DAYS)
    days = [(since + timedelta(days=i)).isoformat() for i in range(DASHBOARD_DAYS)]
    by_day: dict[str, dict[str, int]] = {}
    for row in await records.status_counts("day", since, until):
        by_day.setdefault(row["key"][:10], {})[row["status"]] = row["count"]
    by_channel: dict[str, dict[str, int]] = {}
    for row in await records.status_counts("channel", since, until):
        by_channel.setdefault(row["key"], {})[row["status"]] = row["count"]
    rates = []
    for channel, counts in sorted(by_channel.items()):
        total = sum(counts.values())
        good = sum(n for status, n in counts.items() if status in SUCCESS)
        rate = 100 * good / total if total else 0
        rates.append(charts.Bar(channel, rate, f"{rate:.1f}% of {total}"))
    app_rows = (await records.stats("app", since, until))["rows"]
    top = sorted(app_rows, key=lambda r: r["total"], reverse=True)[:TOP_APPS]
    peak = max((r["total"] for r in top), default=0)
    apps = [charts.Bar(r["key"], r["total"], f"{r['total']} ({r['fee']} billed)") for r in top]
    total = sum(sum(c.values()) for c in by_day.values())
    good = sum(n for c in by_day.values() for s, n in c.items() if s in SUCCESS)
    failed = sum(c.get("FAILED", 0) + c.get("UNDELIVERED", 0) for c in by_day.values())
    return render(
        request,
        "dashboard.html",
        {
            "title": "Dashboard",
            "since": since,
            "until": until - timedelta(days=1),
            "total": total,
            "success_rate": f"{100 * good / total:.1f}%" if total else "-",
            "failed": failed,
            "fee": sum(r["fee"] for r in app_rows),
            "per_day": charts.stacked_days(
                "chart-per-day", days, by_day, "Messages per day by status"
            ),
            "per_channel": charts.horizontal_bars(
                "chart-channel-success", rates, 100, "Success rate per channel"
            ),
            "top_apps": charts.horizontal_bars(
                "chart-top-apps", apps, peak, "Top apps by messages"
            ),
        },
    )


# -- template preview (JSON for the template form's script) ----------------------------------


@router.get("/templates/preview")
async def template_preview(
    request: Request,
    principal: User,
    content: str = "",
    sign_name: str = "",
    provider_no: str = "",
    params: str = "",
) -> JSONResponse:
    """Rendered content with sample params, segment count and fee, as a send would count them."""
    scheme = FeeScheme.CHINESE
    if provider_no:
        channel = await config_service(request).find_by_key(CHANNELS, provider_no=provider_no)
        if isinstance(channel, schemas.ChannelView):
            factory = ADAPTERS.get(channel.channel_no)
            scheme = getattr(factory, "fee_scheme", FeeScheme.CHINESE)
    try:
        names = placeholder_names(content)
    except TemplateError as exc:
        return JSONResponse({"ok": False, "error": str(exc)})
    given = [p.strip() for p in params.split(",")] if params.strip() else []
    # Missing sample values show as the placeholder's own name, so the layout stays visible.
    values = [given[i] if i < len(given) else f"<{name}>" for i, name in enumerate(names)]
    text = render_content(content, names, values)
    segments = count_segments(text, scheme, sign_name)
    shown = f"【{sign_name}】{text}" if scheme is FeeScheme.CHINESE and sign_name else text
    return JSONResponse(
        {
            "ok": True,
            "placeholders": names,
            "content": shown,
            "characters": len(shown),
            "segments": segments,
            "fee": segments,
            "scheme": scheme.value,
        }
    )


# -- channels: connection test; apps: key rotation ------------------------------------------


@router.post("/channels/{row_id:int}/test")
async def test_channel(request: Request, row_id: int, principal: User, form: Form) -> Response:
    admin_only(principal)
    try:
        check = await config_service(request).test_channel(principal, row_id)
    except GatewayError as exc:
        raise ConsoleDenied(exc.msg, exc.status) from exc
    return await _edit_page(request, PAGES["channels"], row_id, check=check)


@router.post("/apps/{row_id:int}/rotate-key")
async def rotate_key(request: Request, row_id: int, principal: User, form: Form) -> Response:
    admin_only(principal)
    try:
        issued = await config_service(request).rotate_app_key(principal, row_id)
    except GatewayError as exc:
        raise ConsoleDenied(exc.msg, exc.status) from exc
    return render(
        request, "app_key.html", {"title": "New app key", "issued": issued, "rotated": True}
    )


# -- send records ----------------------------------------------------------------------------

_RECORD_FILTERS = (
    "phone",
    "appNo",
    "businessNo",
    "providerNo",
    "status",
    "requestId",
    "from",
    "to",
)


def _record_where(query: dict[str, str], region: str) -> RecordFilter:
    """The send-record filter from the page's query; times are naive UTC, as stored."""

    def when(name: str) -> datetime | None:
        raw = query.get(name, "").strip()
        if not raw:
            return None
        try:
            return datetime.fromisoformat(raw)
        except ValueError:
            raise BadRequest(f"{name}: {raw!r} is not a date and time") from None

    phone = query.get("phone", "").strip()
    if phone and not phone.startswith("+"):
        with contextlib.suppress(PhoneError):  # else search for what was typed
            phone = normalise_phone(phone, region)
    return RecordFilter(
        phone=phone or None,
        app_no=query.get("appNo", "").strip() or None,
        business_no=query.get("businessNo", "").strip() or None,
        provider_no=query.get("providerNo", "").strip() or None,
        status=parse_status(query.get("status", "").strip() or None),
        request_id=query.get("requestId", "").strip() or None,
        since=when("from"),
        until=when("to"),
    )


@router.get("/records")
async def records_page(request: Request, principal: User) -> Response:
    query = {name: request.query_params.get(name, "") for name in _RECORD_FILTERS}
    page = _page_number(request)
    result: dict[str, Any] = {"items": [], "total": 0}
    error = None
    try:
        result = await record_service(request).search(
            _record_where(query, request.app.state.settings.default_region), page, PAGE_SIZE
        )
    except GatewayError as exc:
        error = exc.msg
    chosen = {k: v for k, v in query.items() if v}
    return render(
        request,
        "records.html",
        {
            "title": "Send records",
            "query": query,
            "items": result["items"],
            "total": result["total"],
            "page": page,
            "pages": pages(result["total"], PAGE_SIZE),
            "error": error,
            "statuses": [s.name for s in SendStatus],
            "export_url": "/admin/records/export.csv?" + urlencode(chosen),
            "page_url": "/admin/records?" + urlencode(chosen) + ("&" if chosen else "") + "page=",
        },
        status=400 if error else 200,
    )


@router.get("/records/export.csv")
async def export_records(request: Request, principal: User) -> Response:
    query = {name: request.query_params.get(name, "") for name in _RECORD_FILTERS}
    try:
        where = _record_where(query, request.app.state.settings.default_region)
    except GatewayError as exc:
        raise ConsoleDenied(exc.msg, exc.status) from exc
    return StreamingResponse(
        record_service(request).export_csv(where),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="send-records.csv"'},
    )


@router.get("/records/{record_id:int}")
async def record_page(request: Request, record_id: int, principal: User) -> Response:
    try:
        record = await record_service(request).get(record_id)
    except GatewayError as exc:
        raise ConsoleDenied(exc.msg, exc.status) from exc
    return render(request, "record.html", {"title": f"Send record {record_id}", "r": record})


# -- fallback chain of a business ----------------------------------------------------------


@router.post("/businesses/{row_id:int}/fallbacks")
async def set_fallbacks(request: Request, row_id: int, principal: User, form: Form) -> Response:
    admin_only(principal)
    raw = str(form.get("template_nos", ""))
    template_nos = [part.strip() for part in raw.replace("\n", ",").split(",") if part.strip()]
    try:
        saved = await fallback_service(request).replace(principal, row_id, template_nos)
    except GatewayError as exc:
        if exc.status == 404:
            raise ConsoleDenied(exc.msg, exc.status) from exc
        view = await config_service(request).get(BUSINESSES, row_id)
        return await _form_page(
            request,
            PAGES["businesses"],
            row_id,
            view.model_dump(),
            exc.msg,
            status=exc.status,
            fallbacks=raw,
        )
    key = quote(saved["businessNo"])
    return RedirectResponse(f"/admin/businesses?done=updated&key={key}", status_code=303)


# -- send test -------------------------------------------------------------------------------


async def _businesses(request: Request) -> list[Any]:
    page = await config_service(request).list_rows(
        BUSINESSES, filters={"status": True}, page_size=200
    )
    return page.items


@router.get("/send")
async def send_page(request: Request, principal: User) -> Response:
    admin_only(principal)
    return render(
        request,
        "send.html",
        {"title": "Send SMS test", "businesses": await _businesses(request), "form": {}},
    )


@router.post("/send")
async def send_test(request: Request, principal: User, form: Form) -> Response:
    admin_only(principal)
    business_no = str(form.get("business_no", "")).strip()
    phones = [p.strip() for p in str(form.get("phones", "")).replace(",", "\n").splitlines()]
    params = [line.strip() for line in str(form.get("params", "")).splitlines() if line.strip()]
    context: dict[str, Any] = {
        "title": "Send SMS test",
        "businesses": await _businesses(request),
        "form": {
            "business_no": business_no,
            "phones": form.get("phones", ""),
            "params": form.get("params", ""),
        },
    }
    try:
        business = await config_service(request).find_by_key(BUSINESSES, business_no=business_no)
        if not isinstance(business, schemas.BusinessView):
            raise BadRequest("choose a business")
        try:
            body = SendMessageBody(
                businessNo=business_no, phones=[p for p in phones if p], params=params
            )
        except ValidationError as exc:
            raise BadRequest(describe_validation_error(exc)) from exc
        outcome = await sending(request).send_as_app(business.app_no, body)
    except GatewayError as exc:
        context["error"] = f"{exc.status}: {exc.msg}"
        return render(request, "send.html", context, status=exc.status)
    found = await record_service(request).search(
        RecordFilter(request_id=outcome.request_id), 1, 200
    )
    record_ids = {item["phoneNumber"]: item["id"] for item in found["items"]}
    context["outcome"] = outcome
    context["record_ids"] = record_ids
    return render(request, "send.html", context)


# -- audit log -------------------------------------------------------------------------------


@router.get("/audit")
async def audit_page(request: Request, principal: User, resource: str = "") -> Response:
    page = _page_number(request)
    log = await config_service(request).audit_log(
        resource=resource or None, page=page, page_size=PAGE_SIZE
    )
    chosen = urlencode({"resource": resource}) + "&" if resource else ""
    return render(
        request,
        "audit.html",
        {
            "title": "Audit log",
            "items": log.items,
            "total": log.total,
            "page": page,
            "pages": pages(log.total, PAGE_SIZE),
            "resource": resource,
            "page_url": f"/admin/audit?{chosen}page=",
        },
    )


# -- blocklist ---------------------------------------------------------------------------------


async def _blocklist_page(
    request: Request, error: str | None = None, status: int = 200
) -> Response:
    query = request.query_params
    app_no, q = query.get("app_no", "").strip(), query.get("q", "").strip()
    page = _page_number(request)
    found = await config_service(request).list_blocks(
        app_no=app_no or None, q=q or None, page=page, page_size=PAGE_SIZE
    )
    chosen = urlencode({"app_no": app_no, "q": q})
    return render(
        request,
        "blocklist.html",
        {
            "title": "Blocklist",
            "items": found.items,
            "total": found.total,
            "page": page,
            "pages": pages(found.total, PAGE_SIZE),
            "page_url": f"/admin/blocklist?{chosen}&page=",
            "app_no": app_no,
            "q": q,
            "done": query.get("done"),
            "error": error,
        },
        status=status,
    )


@router.get("/blocklist")
async def blocklist_page(request: Request, principal: User) -> Response:
    return await _blocklist_page(request)


@router.post("/blocklist")
async def add_block(request: Request, principal: User, form: Form) -> Response:
    admin_only(principal)
    try:
        entry = schemas.BlockCreate(
            phone=str(form.get("phone", "")).strip(),
            is_prefix="is_prefix" in form,
            app_no=str(form.get("app_no", "")).strip() or None,
            reason=str(form.get("reason", "")).strip(),
        )
        added = await config_service(request).add_block(principal, entry)
    except ValidationError as exc:
        return await _blocklist_page(request, describe_validation_error(exc), 400)
    except GatewayError as exc:
        return await _blocklist_page(request, exc.msg, exc.status)
    return RedirectResponse(
        f"/admin/blocklist?done={quote('blocked ' + added['phone'])}", status_code=303
    )


@router.post("/blocklist/{block_id:int}/delete")
async def remove_block(request: Request, block_id: int, principal: User, form: Form) -> Response:
    admin_only(principal)
    try:
        await config_service(request).remove_block(principal, block_id)
    except GatewayError as exc:
        raise ConsoleDenied(exc.msg, exc.status) from exc
    return RedirectResponse("/admin/blocklist?done=removed", status_code=303)


# -- webhooks: dead letters and signing secrets -------------------------------------------


@router.get("/webhooks")
async def dead_letters_page(request: Request, principal: User) -> Response:
    app_no = request.query_params.get("app_no", "").strip()
    page = _page_number(request)
    found = await webhook_service(request).dead_letters(
        app_no=app_no or None, page=page, page_size=PAGE_SIZE
    )
    chosen = urlencode({"app_no": app_no})
    return render(
        request,
        "webhooks.html",
        {
            "title": "Webhook dead letters",
            "items": found.items,
            "total": found.total,
            "page": page,
            "pages": pages(found.total, PAGE_SIZE),
            "page_url": f"/admin/webhooks?{chosen}&page=",
            "app_no": app_no,
            "done": request.query_params.get("done"),
        },
    )


@router.post("/webhooks/{delivery_id:int}/replay")
async def replay_dead_letter(
    request: Request, delivery_id: int, principal: User, form: Form
) -> Response:
    admin_only(principal)
    try:
        await webhook_service(request).replay(principal, delivery_id)
    except GatewayError as exc:
        raise ConsoleDenied(exc.msg, exc.status) from exc
    done = quote(f"delivery {delivery_id} queued again")
    return RedirectResponse(f"/admin/webhooks?done={done}", status_code=303)


@router.post("/apps/{row_id:int}/webhook-secret")
async def webhook_secret(request: Request, row_id: int, principal: User, form: Form) -> Response:
    """Reveal (or with `rotate` in the form, replace) an app's webhook signing secret."""
    admin_only(principal)
    rotate = form.get("rotate") == "1"
    try:
        shown = await config_service(request).webhook_secret(principal, row_id, rotate=rotate)
    except GatewayError as exc:
        raise ConsoleDenied(exc.msg, exc.status) from exc
    return render(
        request,
        "webhook_secret.html",
        {"title": "Webhook signing secret", "shown": shown, "rotated": rotate, "row_id": row_id},
    )


# -- the five configuration pages ------------------------------------------------------------


def _page_for(resource: str) -> Page:
    page = PAGES.get(resource)
    if page is None:
        raise ConsoleDenied(f"there is no console page {resource!r}", 404)
    return page


def _page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    # Capped like the admin API's: a huge page number must not reach the database's OFFSET.
    return min(max(1, int(raw)), 1_000_000) if raw.isdigit() and len(raw) <= 7 else 1


async def _choices(request: Request, page: Page) -> dict[str, list[tuple[str, str]]]:
    """Options for the form's select fields, from the rows that exist now."""
    config = config_service(request)
    wanted = {field.choices for field in page.fields if field.choices}
    out: dict[str, list[tuple[str, str]]] = {}
    if "channel_types" in wanted:
        out["channel_types"] = [(t, t) for t in CHANNEL_TYPES]
    for name, resource, label in (
        ("channels", CHANNELS, "{provider_no} ({provider_name}, {channel_no})"),
        ("apps", APPS, "{app_no} ({app_name})"),
        ("templates", TEMPLATES, "{template_no}: {template_content:.40}"),
        ("signs", SIGNS, "{sign_name} ({provider_no})"),
    ):
        if name in wanted:
            rows = (await config.list_rows(resource, page_size=200)).items
            key = resource.key[-1]
            out[name] = [(getattr(v, key), label.format(**v.model_dump())) for v in rows]
    return out


@router.get("/{resource}")
async def list_page(request: Request, resource: str, principal: User) -> Response:
    page = _page_for(resource)
    q = request.query_params.get("q", "").strip()
    filters: dict[str, Any] = {}
    query: dict[str, str] = {"q": q}
    for column in page.resource.filters:
        raw = request.query_params.get(column, "").strip()
        query[column] = raw
        if raw and column == "status":
            filters[column] = raw == "enabled"
        elif raw:
            filters[column] = raw
    number = _page_number(request)
    rows = await config_service(request).list_rows(
        page.resource, filters=filters, q=q or None, page=number, page_size=PAGE_SIZE
    )
    chosen = {k: v for k, v in query.items() if v}
    done = request.query_params.get("done", "")
    notice = None
    if done in NOTICES:
        notice = f"{NOTICES[done]}: {request.query_params.get('key', '')}"
    return render(
        request,
        "list.html",
        {
            "title": page.title,
            "name": resource,
            "page_spec": page,
            "items": [item.model_dump() for item in rows.items],
            "total": rows.total,
            "page": number,
            "pages": pages(rows.total, PAGE_SIZE),
            "query": query,
            "filters": page.resource.filters,
            "notice": notice,
            "page_url": f"/admin/{resource}?"
            + urlencode(chosen)
            + ("&" if chosen else "")
            + "page=",
        },
    )


@router.get("/{resource}/new")
async def new_page(request: Request, resource: str, principal: User) -> Response:
    page = _page_for(resource)
    admin_only(principal)
    return await _form_page(request, page, None, {"status": True})


async def _form_page(
    request: Request,
    page: Page,
    row_id: int | None,
    values: dict[str, Any],
    error: str | None = None,
    check: Any = None,
    status: int = 200,
    fallbacks: str | None = None,
) -> Response:
    creating = row_id is None
    values = {k: v for k, v in values.items() if k not in page.resource.secret_fields}
    if page.resource is BUSINESSES and row_id is not None and fallbacks is None:
        chain = await fallback_service(request).get(row_id)
        fallbacks = ", ".join(chain["templateNos"])
    return render(
        request,
        "form.html",
        {
            "title": f"{'Add' if creating else 'Edit'} {page.resource.label}",
            "name": page.resource.name,
            "page_spec": page,
            "row_id": row_id,
            "fields": fields_for(page, creating),
            "keys": page.resource.key,
            "values": values,
            "choices": await _choices(request, page),
            "error": error,
            "check": check,
            "creating": creating,
            "fallbacks": fallbacks,
        },
        status=status,
    )


async def _edit_page(request: Request, page: Page, row_id: int, check: Any = None) -> Response:
    try:
        view = await config_service(request).get(page.resource, row_id)
    except GatewayError as exc:
        raise ConsoleDenied(exc.msg, exc.status) from exc
    principal: Principal | None = getattr(request.state, "principal", None)
    view = page.resource.view_for(view, principal is not None and principal.is_admin)
    return await _form_page(request, page, row_id, view.model_dump(), check=check)


@router.post("/{resource}/new")
async def create_row(request: Request, resource: str, principal: User, form: Form) -> Response:
    page = _page_for(resource)
    admin_only(principal)
    values = form_values(page, dict(form), creating=True)
    config = config_service(request)
    try:
        try:
            data = page.resource.create_schema.model_validate(values)
        except ValidationError as exc:
            raise BadRequest(describe_validation_error(exc)) from exc
        if page.resource is APPS:
            assert isinstance(data, schemas.AppCreate)  # noqa: S101 - APPS' create schema
            issued = await config.create_app(principal, data)
            return render(
                request, "app_key.html", {"title": "App created", "issued": issued}, status=201
            )
        view = await config.create(principal, page.resource, data)
    except GatewayError as exc:
        return await _form_page(request, page, None, values, exc.msg, status=exc.status)
    key = page.resource.key_of(view)
    return RedirectResponse(f"/admin/{resource}?done=created&key={quote(key)}", status_code=303)


@router.get("/{resource}/{row_id:int}")
async def edit_page(request: Request, resource: str, row_id: int, principal: User) -> Response:
    page = _page_for(resource)
    admin_only(principal)
    return await _edit_page(request, page, row_id)


@router.post("/{resource}/{row_id:int}")
async def update_row(
    request: Request, resource: str, row_id: int, principal: User, form: Form
) -> Response:
    page = _page_for(resource)
    admin_only(principal)
    values = form_values(page, dict(form), creating=False)
    config = config_service(request)
    try:
        try:
            data = page.resource.update_schema.model_validate(values)
        except ValidationError as exc:
            raise BadRequest(describe_validation_error(exc)) from exc
        view = await config.update(principal, page.resource, row_id, data)
    except GatewayError as exc:
        current = (await config.get(page.resource, row_id)).model_dump()
        return await _form_page(request, page, row_id, current | values, exc.msg, status=exc.status)
    key = page.resource.key_of(view)
    return RedirectResponse(f"/admin/{resource}?done=updated&key={quote(key)}", status_code=303)


@router.post("/{resource}/{row_id:int}/{action}")
async def row_action(
    request: Request, resource: str, row_id: int, action: str, principal: User, form: Form
) -> Response:
    page = _page_for(resource)
    admin_only(principal)
    config = config_service(request)
    try:
        if action in {"enable", "disable"}:
            view = await config.set_status(principal, page.resource, row_id, action == "enable")
            key = page.resource.key_of(view)
        elif action == "delete":
            key = page.resource.key_of(await config.get(page.resource, row_id))
            await config.delete(principal, page.resource, row_id)
        else:
            raise ConsoleDenied(f"unknown action {action!r}", 404)
    except GatewayError as exc:
        raise ConsoleDenied(exc.msg, exc.status) from exc
    done = {"enable": "enabled", "disable": "disabled", "delete": "deleted"}[action]
    return RedirectResponse(f"/admin/{resource}?done={done}&key={quote(key)}", status_code=303)

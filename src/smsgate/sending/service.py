"""The send path: authenticate, resolve, validate, limit, record, dispatch, record."""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeVar

import aiohttp
import orjson
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from smsgate.apps import repository as apps_repo
from smsgate.apps.schemas import AppSnapshot
from smsgate.blocklist.service import BlocklistService
from smsgate.businesses import repository as business_repo
from smsgate.businesses.schemas import Route
from smsgate.cache import TTLCache
from smsgate.config import Settings
from smsgate.crypto import SecretBox, app_key_matches
from smsgate.db.base import iso_utc, utcnow
from smsgate.db.models import AppConfig, SendStatus
from smsgate.db.session import in_transaction
from smsgate.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    QuotaExhausted,
    RateLimited,
    ServiceUnavailable,
    Unauthorized,
)
from smsgate.limits.base import RateLimiter
from smsgate.limits.breaker import BreakerDecision, CircuitBreaker, MemoryCircuitBreaker, Verdict
from smsgate.limits.phones import PhoneLimiter, business_phone_windows
from smsgate.observability.logs import mask_phone
from smsgate.observability.metrics import observe_provider_call
from smsgate.providers.base import (
    ChannelConfig,
    ErrorKind,
    ProviderAdapter,
    ProviderError,
    SendRequest,
    SendResult,
)
from smsgate.providers.registry import adapter_for
from smsgate.records import attempts as attempts_repo
from smsgate.records import repository as records_repo
from smsgate.records.repository import RecordOutcome
from smsgate.sending.fee import count_segments
from smsgate.sending.phones import PhoneError, normalise_phone
from smsgate.sending.render import TemplateError, placeholder_names, render_content
from smsgate.sending.schemas import PhoneOutcome, SendMessageBody, SendOutcome

log = logging.getLogger("smsgate.sending")

RATE_WINDOW_MS = 60_000
# Per-phone result codes of phones the gateway refused itself (no provider call, no fee).
PHONE_RATE_LIMITED = "PHONE_RATE_LIMITED"
BLOCKED = "BLOCKED"
# Every channel of the chain was skipped by its circuit breaker: nothing was sent.
CIRCUIT_OPEN = "CIRCUIT_OPEN"
# A fallback template needs more segments than were reserved, and the app's quota cannot
# cover the difference: the fallback is not called (docs/failover.md).
QUOTA_EXHAUSTED = "QUOTA_EXHAUSTED"
# Kinds that move a phone on to the next channel of the chain (docs/failover.md). RETRYABLE
# too where the caller says so: the sync path always (the caller is waiting), the queue
# worker once its same-channel retries are used up. AMBIGUOUS never: it may have been sent.
_FAIL_OVER = frozenset({ErrorKind.PERMANENT, ErrorKind.RATE_LIMITED})
_BREAKER_FAILURES = frozenset({ErrorKind.RETRYABLE, ErrorKind.RATE_LIMITED})
MAX_CONTENT_CHARS = 1000
V = TypeVar("V")
_DB_DOWN = (OperationalError, PoolTimeoutError, OSError)


def _is_db_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, _DB_DOWN):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


@dataclass(frozen=True, slots=True)
class ResolvedRoute:
    route: Route
    adapter: ProviderAdapter | None
    param_names: list[str] | None
    template_problem: str | None
    # The business's fallback templates on other channels, in order (docs/failover.md);
    # resolved with the route so the send path makes no extra query for them.
    fallbacks: tuple[ResolvedRoute, ...] = ()

    @property
    def sendable(self) -> bool:
        """Every link present and enabled, with an adapter and a readable template."""
        route = self.route
        return bool(
            route.template_enabled
            and route.sign_enabled
            and route.channel_enabled
            and self.adapter is not None
            and self.param_names is not None
        )


class SendingService:
    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        limiter: RateLimiter,
        http: aiohttp.ClientSession,
        secrets: SecretBox,
        *,
        phone_limiter: PhoneLimiter,
        blocklist: BlocklistService,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self._settings = settings
        self._breaker = breaker or MemoryCircuitBreaker(
            settings.breaker_failure_threshold, settings.breaker_cooldown_seconds
        )
        self._engine = engine
        self._limiter = limiter
        self._phone_limiter = phone_limiter
        self._blocklist = blocklist
        self._http = http
        self._secrets = secrets
        ttl = settings.config_cache_ttl_seconds
        self._apps: TTLCache[str, AppSnapshot | None] = TTLCache(ttl)
        self._routes: TTLCache[str, ResolvedRoute | None] = TTLCache(ttl)

    def invalidate_config(self) -> None:
        """Forget cached apps and routes (called when configuration changes)."""
        self._apps.invalidate()
        self._routes.invalidate()

    async def send_as_app(self, app_no: str, body: SendMessageBody) -> SendOutcome:
        """Send on behalf of an app without its key: the console's send-test page.

        The caller has authenticated an operator instead; every other rule (app enabled,
        business of that app, quota, limits, records) is the send API's, unchanged.
        """
        app = await self._cached(self._apps, app_no, self._load_app)
        if app is None:
            raise NotFound(f"app {app_no!r} does not exist")
        if not app.enabled:
            raise Forbidden(f"app {app.app_no} is disabled")
        return await self.send_message(app, body)

    # -- authentication and resolution ------------------------------------------------

    async def authenticate(self, authorization: str | None) -> AppSnapshot:
        if not authorization:
            raise Unauthorized("missing app key: send 'Authorization: Bearer <app key>'")
        scheme, _, key = authorization.strip().partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise Unauthorized("malformed Authorization header: expected 'Bearer <app key>'")
        app_no, dot, _secret = key.partition(".")
        if not dot or not app_no:
            raise Unauthorized("wrong app key")
        app = await self._cached(self._apps, app_no, self._load_app)
        # Compare a hash even for unknown apps so both paths cost the same.
        if not app_key_matches(key, app.app_key_hash if app else "0" * 64) or app is None:
            raise Unauthorized("wrong app key")
        if not app.enabled:
            raise Forbidden(f"app {app.app_no} is disabled")
        return app

    async def _cached(
        self, cache: TTLCache[str, V], key: str, load: Callable[[str], Awaitable[V]]
    ) -> V:
        try:
            return await cache.get(key, load)
        except Exception as exc:
            if _is_db_unavailable(exc):
                raise ServiceUnavailable("the database is unavailable; nothing was sent") from exc
            raise

    async def _load_app(self, app_no: str) -> AppSnapshot | None:
        async with self._engine.connect() as conn:
            return await apps_repo.get_app(conn, app_no)

    async def _load_route(self, business_no: str) -> ResolvedRoute | None:
        async with self._engine.connect() as conn:
            row = await business_repo.load_route_row(conn, business_no)
            if row is None:
                return None
            fallback_rows = (
                await business_repo.load_fallback_rows(conn, business_no)
                if row["has_fallbacks"]
                else []
            )
        primary = self._resolve_chain_row(row, row, row["template_no"])
        fallbacks = tuple(
            self._resolve_chain_row(row, fallback, fallback["template_no"])
            for fallback in fallback_rows
        )
        return replace(primary, fallbacks=fallbacks) if fallbacks else primary

    def _resolve_chain_row(
        self, business: RowMapping, m: RowMapping, template_no: str
    ) -> ResolvedRoute:
        """The route through one template (the business's own or a fallback): its signature,
        channel and adapter, with the business's settings."""
        channel = None
        adapter = None
        if m["channel_status"] is not None:
            channel = ChannelConfig(
                provider_no=m["provider_no"],
                channel_no=m["channel_no"],
                access_key_id=m["access_key_id"] or "",
                access_key_secret=self._secrets.reveal(m["access_key_secret"] or ""),
                endpoint=m["endpoint"] or "",
                sdk_app_id=m["sdk_app_id"],
                region=m["region"],
                ext=_parse_ext(m["ext_json"]),
            )
            factory = adapter_for(channel.channel_no)
            if factory is not None:
                adapter = factory(channel, self._http)
        b = business
        route = Route(
            business_no=b["business_no"],
            business_enabled=bool(b["business_status"]),
            app_no=b["app_no"],
            template_no=template_no,
            template_enabled=None if m["template_status"] is None else bool(m["template_status"]),
            template_content=m["template_content"] or "",
            third_party_template_no=m["third_party_template_no"] or "",
            sign_name=m["sign_name"] or "",
            sign_enabled=None if m["sign_status"] is None else bool(m["sign_status"]),
            provider_no=m["provider_no"] or "",
            channel_enabled=None if m["channel_status"] is None else bool(m["channel_status"]),
            channel=channel,
            is_verification=bool(b["is_verification"]),
            phone_windows=business_phone_windows(
                bool(b["is_verification"]),
                b["phone_limit_minute"],
                b["phone_limit_hour"],
                b["phone_limit_day"],
            ),
            code_length=b["code_length"],
            code_alphabet=b["code_alphabet"],
            code_ttl_seconds=b["code_ttl_seconds"],
        )
        names: list[str] | None = None
        problem = None
        try:
            names = placeholder_names(route.template_content)
        except TemplateError as exc:
            problem = str(exc)
        return ResolvedRoute(route, adapter, names, problem)

    async def business_route(self, app: AppSnapshot, business_no: str) -> ResolvedRoute:
        """The cached route of an enabled business of this app (the rest unchecked)."""
        resolved = await self._cached(self._routes, business_no, self._load_route)
        if resolved is None:
            raise NotFound(f"businessNo {business_no!r} does not exist")
        route = resolved.route
        if route.app_no != app.app_no:
            raise Forbidden(f"business {business_no} belongs to another app")
        if not route.business_enabled:
            raise Forbidden(f"business {business_no} is disabled")
        return resolved

    async def resolve(self, app: AppSnapshot, business_no: str) -> ResolvedRoute:
        resolved = await self.business_route(app, business_no)
        route = resolved.route
        if route.template_enabled is None:
            raise Forbidden(
                f"template {route.template_no} of business {business_no} does not exist"
            )
        if not route.template_enabled:
            raise Forbidden(f"template {route.template_no} is disabled")
        if route.channel_enabled is None:
            raise Forbidden(
                f"channel {route.provider_no} of template {route.template_no} does not exist"
            )
        if route.sign_enabled is None:
            raise Forbidden(
                f"signature {route.sign_name!r} is not registered on channel {route.provider_no}"
            )
        if not route.sign_enabled:
            raise Forbidden(f"signature {route.sign_name!r} is disabled")
        if not route.channel_enabled:
            raise Forbidden(f"channel {route.provider_no} is disabled")
        if resolved.adapter is None:
            channel_no = route.channel.channel_no if route.channel else "?"
            raise Forbidden(f"channel {route.provider_no} has an unsupported type {channel_no!r}")
        if resolved.template_problem is not None:
            raise Forbidden(
                f"template {route.template_no} cannot be used: {resolved.template_problem}"
            )
        return resolved

    # -- the send ------------------------------------------------------------------------

    async def send_message(
        self,
        app: AppSnapshot,
        body: SendMessageBody,
        *,
        redact: str | None = None,
        queue_at: datetime | None = None,
    ) -> SendOutcome:
        """Send; `redact` (a verification code) is masked in what the records store.

        With `queue_at` (naive UTC) nothing is sent now: the records are committed QUEUED,
        due at that time, for the queue workers (POST /api/v1/messages); the answer is 202.
        """
        resolved = await self.resolve(app, body.businessNo)
        route = resolved.route
        adapter = resolved.adapter
        names = resolved.param_names
        if adapter is None or names is None:  # pragma: no cover - resolve() refuses these
            raise Forbidden(f"business {body.businessNo} has no usable channel")

        limit = (
            self._settings.max_phones_per_queued_request
            if queue_at is not None
            else self._settings.max_phones_per_request
        )
        phones = self._validate_phones(body.phone_list(), limit)
        params = body.param_list()
        if len(params) != len(names):
            wanted = ", ".join(names) if names else "none"
            raise BadRequest(
                f"template {route.template_no} takes {len(names)} param(s) ({wanted}), "
                f"got {len(params)}"
            )
        content = render_content(route.template_content, names, params)
        if len(content) > MAX_CONTENT_CHARS:
            raise BadRequest(
                f"the rendered message is {len(content)} characters; at most {MAX_CONTENT_CHARS}"
            )
        fee = count_segments(content, adapter.fee_scheme, route.sign_name)
        request_id = str(uuid.uuid4())
        stored_content, stored_params = content, params
        if redact:
            mask = "*" * len(redact)
            stored_content = content.replace(redact, mask)
            stored_params = [param.replace(redact, mask) for param in params]

        # Phones the gateway refuses itself: recorded FAILED, never sent, never billed.
        refused = await self._blocked_phones(app, phones)
        limited = await self._take_phone_limits(route, phones, request_id, refused)
        allowed = [phone for phone in phones if phone not in refused]
        if not allowed:
            await self._record_refused(
                app, route, request_id, refused, stored_params, stored_content
            )
            return _refused_summary(request_id, [refused[phone] for phone in phones])

        try:
            reservation = await self._take_rate(app, len(allowed))
            try:
                await self._record_and_reserve(
                    app,
                    route,
                    request_id,
                    allowed,
                    stored_params,
                    stored_content,
                    fee,
                    refused,
                    queue_at=queue_at,
                )
            except BaseException:
                if reservation is not None:
                    await self._give_back_rate(app, reservation)
                raise
        except BaseException:
            await self._give_back_phone_limits(route, limited, request_id)
            raise

        if queue_at is not None:
            return _queued_summary(request_id, phones, allowed, refused, fee, queue_at)
        chain = await self.dispatch_chain(
            resolved, request_id, allowed, params, content, fee, redact=redact
        )
        sent, bodies, body_by_phone = chain.outcomes, chain.bodies, chain.body_by_phone
        if redact:
            # A provider may echo the text in its answer (Twilio's `body` does).
            mask = "*" * len(redact)
            body_by_phone = {p: body.replace(redact, mask) for p, body in body_by_phone.items()}
        await self._finish(app, request_id, chain, body_by_phone)
        await self.block_opt_outs(app, route, sent)
        by_phone = {outcome.phone: outcome for outcome in sent} | refused
        return _summarise(request_id, [by_phone[phone] for phone in phones], sent, bodies)

    def _validate_phones(self, raw_phones: list[str], limit: int) -> list[str]:
        if not raw_phones or not any(p.strip() for p in raw_phones):
            raise BadRequest("phones must contain at least one phone number")
        if len(raw_phones) > limit:
            raise BadRequest(f"too many phones: {len(raw_phones)}; at most {limit} per request")
        phones: list[str] = []
        seen: set[str] = set()
        for index, raw in enumerate(raw_phones):
            try:
                phone = normalise_phone(raw, self._settings.default_region)
            except PhoneError as exc:
                raise BadRequest(f"phones[{index}]: {exc}") from exc
            if phone in seen:
                raise BadRequest(f"phones[{index}]: {phone} appears more than once")
            seen.add(phone)
            phones.append(phone)
        return phones

    async def _blocked_phones(self, app: AppSnapshot, phones: list[str]) -> dict[str, PhoneOutcome]:
        try:
            blocked = await self._blocklist.blocked(app.app_no, phones)
        except Exception as exc:
            if _is_db_unavailable(exc):
                raise ServiceUnavailable("the database is unavailable; nothing was sent") from exc
            raise
        refused = {}
        for phone in phones:
            entry = blocked.get(phone)
            if entry is None:
                continue
            what = f"prefix {entry.phone}" if entry.is_prefix else "number"
            reason = f": {entry.reason}" if entry.reason else ""
            refused[phone] = PhoneOutcome(
                phone,
                SendStatus.FAILED,
                0,
                BLOCKED,
                f"{phone} is blocked ({entry.scope} blocklist entry {entry.id}, {what}{reason})",
            )
        return refused

    async def block_opt_outs(
        self, app: AppSnapshot, route: Route, sent: list[PhoneOutcome]
    ) -> None:
        """Phones the provider reported as opted out (Twilio 21610) go on the app's blocklist,
        so the next send to them is refused before it costs anything."""
        codes = self._settings.opt_out_codes
        by_code: dict[str, list[str]] = {}
        for outcome in sent:
            if outcome.status is SendStatus.FAILED and outcome.code in codes:
                by_code.setdefault(outcome.code, []).append(outcome.phone)
        for code, phones in by_code.items():
            try:
                await self._blocklist.record_opt_outs(app.app_no, phones, route.provider_no, code)
            except Exception:
                log.exception("could not block the opted-out phones %s", phones)

    async def _take_phone_limits(
        self,
        route: Route,
        phones: list[str],
        request_id: str,
        refused: dict[str, PhoneOutcome],
    ) -> list[str]:
        """Take the business's per-phone windows for every phone not refused yet.

        One limiter call for all phones (one Redis round trip). Phones over a limit go into
        `refused`; the phones taken are returned so they can be given back if the request
        is refused as a whole later (quota, app rate, database).
        """
        windows = route.phone_windows
        candidates = [phone for phone in phones if phone not in refused]
        if not windows or not candidates:
            return []
        try:
            decisions = await self._phone_limiter.acquire_phones(
                route.business_no, candidates, windows, request_id
            )
        except (RedisError, OSError) as exc:
            raise ServiceUnavailable("Redis is unavailable; nothing was sent") from exc
        taken = []
        for decision in decisions:
            if decision.allowed:
                taken.append(decision.phone)
                continue
            window = decision.window
            assert window is not None  # noqa: S101 - a refusal always names its window
            retry = max(1, math.ceil(decision.retry_after_ms / 1000))
            refused[decision.phone] = PhoneOutcome(
                decision.phone,
                SendStatus.FAILED,
                0,
                PHONE_RATE_LIMITED,
                f"{decision.phone} reached the limit of {window.limit} message(s) per "
                f"{window.name} to one phone of business {route.business_no} "
                f"(phone_limit_{window.name}); retry after {retry} s",
                retry_after_seconds=retry,
            )
        return taken

    async def _give_back_phone_limits(
        self, route: Route, phones: list[str], request_id: str
    ) -> None:
        if not phones:
            return
        try:
            await self._phone_limiter.release_phones(route.business_no, phones, request_id)
        except (RedisError, OSError):
            log.warning("could not give back per-phone limits of business %s", route.business_no)

    async def _record_refused(
        self,
        app: AppSnapshot,
        route: Route,
        request_id: str,
        refused: dict[str, PhoneOutcome],
        params: Sequence[str],
        content: str,
    ) -> None:
        """Write the FAILED records of a request whose every phone was refused.

        Best effort: the refusal is the answer the caller needs even when the database is
        down (a 503 would invite a retry that is refused again).
        """
        try:
            async with self._engine.begin() as conn:
                await records_repo.insert_records(
                    conn, _refused_rows(app, route, request_id, refused, params, content)
                )
        except Exception:
            log.exception("could not record the refused phones of request %s", request_id)

    async def _take_rate(self, app: AppSnapshot, count: int) -> str | None:
        if app.current_limiting <= 0:
            return None
        try:
            decision = await self._limiter.acquire(
                app.app_no, count, app.current_limiting, RATE_WINDOW_MS
            )
        except (RedisError, OSError) as exc:
            raise ServiceUnavailable("Redis is unavailable; nothing was sent") from exc
        if not decision.allowed:
            retry = max(1, math.ceil(decision.retry_after_ms / 1000))
            raise RateLimited(
                f"app {app.app_no} may send {app.current_limiting} messages per minute "
                f"(current_limiting); {count} more would pass it. Retry after {retry} s",
                retry,
            )
        return decision.reservation

    async def _give_back_rate(self, app: AppSnapshot, reservation: str) -> None:
        try:
            await self._limiter.release(app.app_no, reservation)
        except (RedisError, OSError):
            log.warning("could not give back a rate-limit reservation of app %s", app.app_no)

    async def _record_and_reserve(
        self,
        app: AppSnapshot,
        route: Route,
        request_id: str,
        phones: Sequence[str],
        params: Sequence[str],
        content: str,
        fee: int,
        refused: dict[str, PhoneOutcome],
        *,
        queue_at: datetime | None = None,
    ) -> None:
        """Write the SENDING (or QUEUED) records and take the quota in one transaction: both
        or neither.

        The records of phones the gateway refused (FAILED, fee 0) go into the same insert.
        The quota UPDATE comes last so the app row stays locked only until the commit.
        """
        params_json = orjson.dumps(list(params)).decode()
        rows: list[dict[str, object]] = [
            {
                "request_id": request_id,
                "app_no": app.app_no,
                "business_no": route.business_no,
                "template_no": route.template_no,
                "provider_no": route.provider_no,
                "status": int(SendStatus.SENDING if queue_at is None else SendStatus.QUEUED),
                "fee": fee,
                "phone_number": phone,
                "message": "",
                "code": "",
                "content": content,
                "params": params_json,
                "next_attempt_at": queue_at,
                "webhook_pending": False,
            }
            for phone in phones
        ]
        rows += _refused_rows(app, route, request_id, refused, params, content)
        needed = fee * len(phones)
        try:
            async with self._engine.begin() as conn:
                await records_repo.insert_records(conn, rows)
                if not await apps_repo.reserve_quota(conn, app.app_no, needed):
                    raise await self._quota_problem(conn, app.app_no, needed)
        except (QuotaExhausted, Forbidden):
            raise
        except Exception as exc:
            if _is_db_unavailable(exc):
                raise ServiceUnavailable("the database is unavailable; nothing was sent") from exc
            raise

    async def _quota_problem(self, conn: AsyncConnection, app_no: str, needed: int) -> Exception:
        row = (
            await conn.execute(
                select(AppConfig.available_number, AppConfig.use_number, AppConfig.status).where(
                    AppConfig.app_no == app_no
                )
            )
        ).first()
        if row is None or not row.status:
            return Forbidden(f"app {app_no} is disabled")
        left = max(0, row.available_number - row.use_number)
        return QuotaExhausted(
            f"quota exhausted: app {app_no} needs {needed} message(s), {left} left of "
            f"{row.available_number} (available_number)"
        )

    async def route_for(self, business_no: str) -> ResolvedRoute | None:
        """The cached route of a business, unchecked (the queue worker checks it itself)."""
        return await self._cached(self._routes, business_no, self._load_route)

    async def app_for(self, app_no: str) -> AppSnapshot | None:
        return await self._cached(self._apps, app_no, self._load_app)

    async def dispatch_chain(
        self,
        resolved: ResolvedRoute,
        request_id: str,
        phones: list[str],
        params: list[str],
        content: str,
        fee: int,
        *,
        redact: str | None = None,
        attempts_before: Mapping[str, int] | None = None,
        retryable_fails_over: Callable[[str], bool] | None = None,
        held: Mapping[str, int] | None = None,
        app_no: str | None = None,
    ) -> ChainResult:
        """Send through the business's template, then its fallbacks in order.

        Phones a channel refused (permanent, rate-limited; retryable too when
        `retryable_fails_over(phone)`, by default always) go to the next channel of the
        chain, re-rendered with that template; an ambiguous outcome stays UNKNOWN (it may
        have been sent). A channel whose circuit breaker is open is skipped. Each phone's
        outcome is its last attempt's; a phone no channel was called for is FAILED with
        CIRCUIT_OPEN. `content` is the primary's rendered text (`fee` its segments); `held`
        is the quota already reserved per phone (`fee` each when not given), from the app
        `app_no` (the business's when not given). A link that needs more segments than a
        phone holds reserves the difference first; without quota for it, the phone goes on
        to the next link, and is FAILED with QUOTA_EXHAUSTED when none takes it. What to
        give back is `ChainResult.refund`.
        """
        fails_over = retryable_fails_over or (lambda _phone: True)
        before = attempts_before or {}
        pending = list(phones)
        reserved = dict.fromkeys(phones, fee) if held is None else {p: held[p] for p in phones}
        charged: dict[str, int] = {}
        last: dict[str, PhoneOutcome] = {}
        body_of: dict[str, str] = {}
        tried: dict[str, int] = {}
        attempts: list[dict[str, object]] = []
        rerouted: dict[str, SentVia] = {}
        skipped_open = False
        for index, step in enumerate((resolved, *resolved.fallbacks)):
            if not pending:
                break
            plan = self._plan_step(step, params, content, fee, redact, primary=index == 0)
            if plan is None:
                continue
            route = step.route
            # Phones whose quota cannot cover this link skip it; a later, shorter link of
            # the chain may still take them. Reserved before asking the breaker, so a
            # half-open channel's one probe is not spent on a call that is never made.
            short = await self._reserve_step_fee(
                app_no or route.app_no, request_id, route, pending, reserved, plan.fee
            )
            for phone in short:
                refused_by = last.get(phone)
                earlier = (
                    f"{refused_by.code}: {refused_by.message}; "
                    if refused_by and refused_by.code != QUOTA_EXHAUSTED
                    else ""
                )
                last[phone] = PhoneOutcome(
                    phone,
                    SendStatus.FAILED,
                    0,
                    QUOTA_EXHAUSTED,
                    f"{earlier}{'fallback ' if index else ''}template {route.template_no} "
                    f"needs {plan.fee} message(s) per phone and the app's quota cannot cover "
                    "the difference",
                )
            sendable = [phone for phone in pending if phone not in short]
            if not sendable:
                continue
            decision = await self._breaker_allow(route.provider_no)
            if not decision.allowed:
                skipped_open = True
                log.info("channel %s skipped: its circuit breaker is open", route.provider_no)
                continue
            pending = sendable
            started = utcnow()
            calls = await self._send_batches(
                plan.adapter, route, request_id, pending, params, plan.names, plan.content
            )
            finished = utcnow()
            await self._breaker_record(route.provider_no, [answer for _, answer in calls], decision)
            pending = []
            for request, answer in calls:
                batch_outcomes, body = _batch_outcomes(request.phones, answer, plan.fee)
                for outcome in batch_outcomes:
                    phone = outcome.phone
                    tried[phone] = tried.get(phone, 0) + 1
                    attempts.append(
                        {
                            "request_id": request_id,
                            "phone_number": phone,
                            "attempt": before.get(phone, 0) + tried[phone],
                            "provider_no": route.provider_no,
                            "template_no": route.template_no,
                            "started_at": started,
                            "finished_at": finished,
                            "status": int(outcome.status),
                            "code": outcome.code[:64],
                            "message": outcome.message[:512],
                        }
                    )
                    last[phone] = outcome
                    charged[phone] = 0 if outcome.status is SendStatus.FAILED else plan.fee
                    body_of[phone] = body
                    if index:
                        rerouted[phone] = SentVia(
                            route.template_no, route.provider_no, plan.stored_content
                        )
                    if outcome.status is SendStatus.FAILED and (
                        outcome.error_kind in _FAIL_OVER
                        or (outcome.error_kind is ErrorKind.RETRYABLE and fails_over(phone))
                    ):
                        pending.append(phone)
            pending += short
        outcomes: list[PhoneOutcome] = []
        for phone in phones:
            found = last.get(phone)
            if found is None:
                found = PhoneOutcome(
                    phone,
                    SendStatus.FAILED,
                    0,
                    CIRCUIT_OPEN if skipped_open else "NOT_SENDABLE",
                    f"every channel of business {resolved.route.business_no} is paused by its "
                    "circuit breaker after repeated failures; nothing was sent"
                    if skipped_open
                    else f"business {resolved.route.business_no} has no usable channel",
                )
            outcomes.append(found)
        bodies = list(dict.fromkeys(body_of[o.phone] for o in outcomes if o.phone in body_of))
        return ChainResult(outcomes, bodies, body_of, attempts, rerouted, reserved, charged)

    async def _reserve_step_fee(
        self,
        app_no: str,
        request_id: str,
        route: Route,
        phones: list[str],
        reserved: dict[str, int],
        fee: int,
    ) -> list[str]:
        """Reserve what a fallback needs beyond what `phones` hold (`reserved`, updated).

        All or nothing for the batch; returns the phones that cannot go (none when nothing
        more was needed). The records' fee says what they hold from then on, in the same
        transaction, so it is right even if their outcome is never written. A database
        failure counts as no quota: the outcome of the calls already made must still be
        recorded, so nothing is raised here.
        """
        short = [phone for phone in phones if reserved[phone] < fee]
        if not short:
            return []
        extra = sum(fee - reserved[phone] for phone in short)
        try:
            async with self._engine.begin() as conn:
                taken = await apps_repo.reserve_quota(conn, app_no, extra)
                if taken:
                    await records_repo.hold_fee(conn, request_id, short, fee)
        except Exception:
            log.exception("could not reserve quota for fallback %s", route.template_no)
            taken = False
        if not taken:
            return short
        for phone in short:
            reserved[phone] = fee
        return []

    def _plan_step(
        self,
        step: ResolvedRoute,
        params: list[str],
        content: str,
        fee: int,
        redact: str | None,
        *,
        primary: bool,
    ) -> _StepPlan | None:
        """What to send through one template of the chain; None when it cannot be used."""
        adapter, names = step.adapter, step.param_names
        if adapter is None or names is None:
            return None
        stored = content
        if not primary:
            route = step.route
            if not step.sendable or len(names) != len(params):
                log.warning(
                    "fallback template %s of business %s is not usable now; skipped",
                    route.template_no,
                    route.business_no,
                )
                return None
            content = render_content(route.template_content, names, params)
            if len(content) > MAX_CONTENT_CHARS:
                return None
            fee = count_segments(content, adapter.fee_scheme, route.sign_name)
            stored = content
        if redact:
            stored = content.replace(redact, "*" * len(redact))
        return _StepPlan(adapter, names, content, stored, fee)

    async def _breaker_allow(self, provider_no: str) -> BreakerDecision:
        try:
            return await self._breaker.allow(provider_no)
        except (RedisError, OSError):
            # The breaker only saves wasted calls: without Redis, send rather than refuse.
            log.warning("circuit breaker unavailable for channel %s", provider_no)
            return BreakerDecision(Verdict.CLOSED, 0)

    async def _breaker_record(
        self,
        provider_no: str,
        answers: Sequence[SendResult | ProviderError],
        decision: BreakerDecision,
    ) -> None:
        """Count failed whole calls; a call that got an answer closes the breaker (the
        Redis call is only made when there is a count to clear)."""
        failed = [
            a for a in answers if isinstance(a, ProviderError) and a.kind in _BREAKER_FAILURES
        ]
        try:
            for _ in failed:
                if await self._breaker.record(provider_no, failed=True):
                    log.warning("circuit breaker of channel %s is open", provider_no)
            if not failed and decision.needs_success_recorded:
                await self._breaker.record(provider_no, failed=False)
        except (RedisError, OSError):
            log.warning("could not record a call of channel %s in its breaker", provider_no)

    async def _send_batches(
        self,
        adapter: ProviderAdapter,
        route: Route,
        request_id: str,
        phones: list[str],
        params: list[str],
        names: list[str],
        content: str,
    ) -> list[tuple[SendRequest, SendResult | ProviderError]]:
        """The phones in provider-sized batches, sent concurrently."""
        size = adapter.max_batch_size
        requests = [
            SendRequest(
                phones=phones[i : i + size],
                sign_name=route.sign_name,
                template_id=route.third_party_template_no,
                params=params,
                param_names=names,
                template_content=route.template_content,
                content=content,
                correlation_id=request_id,
            )
            for i in range(0, len(phones), size)
        ]
        answers = await asyncio.gather(
            *(self._call(adapter, route, request) for request in requests)
        )
        return list(zip(requests, answers, strict=True))

    async def _call(
        self, adapter: ProviderAdapter, route: Route, request: SendRequest
    ) -> SendResult | ProviderError:
        started = time.perf_counter()
        answer = await self._call_adapter(adapter, route, request)
        record_provider_call(route.provider_no, request, answer, time.perf_counter() - started)
        return answer

    async def _call_adapter(
        self, adapter: ProviderAdapter, route: Route, request: SendRequest
    ) -> SendResult | ProviderError:
        try:
            return await adapter.send(request)
        except ProviderError as exc:
            log.info(
                "provider %s failed (%s): %s %s", route.provider_no, exc.kind, exc.code, exc.message
            )
            return exc
        except Exception as exc:
            # An adapter bug after the request may have left: never claim it failed.
            log.exception("adapter %s raised unexpectedly", type(adapter).__name__)
            return ProviderError(
                ErrorKind.AMBIGUOUS, "ADAPTER_ERROR", f"{type(exc).__name__}: {exc}"
            )

    async def _finish(
        self,
        app: AppSnapshot,
        request_id: str,
        chain: ChainResult,
        body_by_phone: dict[str, str],
    ) -> None:
        outcomes = chain.outcomes
        records = record_outcomes(outcomes, body_by_phone)
        refund = chain.refund(o.phone for o in outcomes)

        async def write_outcome(conn: AsyncConnection) -> None:
            # The refund first: it takes the app row exclusively before finish_records'
            # webhook check reads it. Reading first (a shared lock) and then updating it
            # deadlocks with a concurrent finish of the same app on MySQL.
            await apps_repo.refund_quota(conn, app.app_no, refund)
            await attempts_repo.insert_attempts(conn, chain.attempts)
            await write_reroutes(conn, request_id, chain.rerouted)
            await records_repo.finish_records(conn, request_id, records)

        try:
            # A lock-conflict victim is retried whole: the provider has answered, and its
            # answer must reach the records.
            await in_transaction(self._engine, write_outcome)
        except Exception:
            # The provider has answered: report that to the caller (a 503 would invite a
            # resend). The records stay SENDING for reconciliation.
            log.exception("could not record the outcome of request %s", request_id)


def record_provider_call(
    channel: str, request: SendRequest, answer: SendResult | ProviderError, seconds: float
) -> None:
    """Metrics and one structured log line per provider call (phones masked in logs)."""
    if isinstance(answer, ProviderError):
        outcomes = {answer.kind.value: len(request.phones)}
        outcome = answer.kind.value
    else:
        accepted = sum(1 for result in answer.results if result.accepted)
        outcomes = {"accepted": accepted, "rejected": len(answer.results) - accepted}
        outcome = "accepted" if accepted == len(request.phones) else "partial"
    observe_provider_call(channel, seconds, outcomes)
    log.info(
        "provider call",
        extra={
            "requestId": request.correlation_id,
            "channel": channel,
            "outcome": outcome,
            "durationMs": round(seconds * 1000, 1),
            "phones": [mask_phone(p) for p in request.phones[:5]],
        },
    )


def record_outcomes(
    outcomes: Sequence[PhoneOutcome], body_by_phone: dict[str, str]
) -> list[RecordOutcome]:
    """What to write on each record once the provider answered (sync path and workers)."""
    return [
        RecordOutcome(
            phone=o.phone,
            status=int(o.status),
            code=o.code[:64],
            message=o.message[:512],
            fee=o.fee,
            provider_message_id=(o.provider_message_id or None) and o.provider_message_id[:128],
            provider_response=body_by_phone.get(o.phone),
        )
        for o in outcomes
    ]


@dataclass(frozen=True, slots=True)
class SentVia:
    """The fallback route that carried (or last refused) a phone: what its record shows."""

    template_no: str
    provider_no: str
    content: str  # as stored (a verification code masked)


@dataclass(frozen=True, slots=True)
class ChainResult:
    outcomes: list[PhoneOutcome]  # one per phone, in the order given
    bodies: list[str]  # the raw provider bodies behind those outcomes
    body_by_phone: dict[str, str]
    attempts: list[dict[str, object]]  # sms_send_attempt rows, one per phone per call
    rerouted: dict[str, SentVia]  # phones whose last attempt went through a fallback
    # Quota per phone: held now (the caller's reservation plus what fallbacks added), and
    # used by its last attempt (0 when it failed or no channel was called).
    reserved: dict[str, int]
    charged: dict[str, int]

    def refund(self, phones: Iterable[str]) -> int:
        """The quota to give back for `phones` whose outcome is final."""
        return sum(self.reserved[phone] - self.charged.get(phone, 0) for phone in phones)


@dataclass(frozen=True, slots=True)
class _StepPlan:
    adapter: ProviderAdapter
    names: list[str]
    content: str  # sent
    stored_content: str  # recorded
    fee: int


async def write_reroutes(
    conn: AsyncConnection, request_id: str, rerouted: Mapping[str, SentVia]
) -> None:
    """One UPDATE per fallback used (none when no phone failed over)."""
    by_via: dict[SentVia, list[str]] = {}
    for phone, via in rerouted.items():
        by_via.setdefault(via, []).append(phone)
    for via, phones in by_via.items():
        await attempts_repo.set_route(
            conn, request_id, phones, via.template_no, via.provider_no, via.content
        )


def _refused_rows(
    app: AppSnapshot,
    route: Route,
    request_id: str,
    refused: dict[str, PhoneOutcome],
    params: Sequence[str],
    content: str,
) -> list[dict[str, object]]:
    params_json = orjson.dumps(list(params)).decode()
    return [
        {
            "request_id": request_id,
            "app_no": app.app_no,
            "business_no": route.business_no,
            "template_no": route.template_no,
            "provider_no": route.provider_no,
            "status": int(SendStatus.FAILED),
            "fee": 0,
            "phone_number": outcome.phone,
            "message": outcome.message[:512],
            "code": outcome.code,
            "content": content,
            "params": params_json,
            "next_attempt_at": None,
            # Born final: the app's webhook hears of it (flag set here, no locking read).
            "webhook_pending": app.has_callback,
        }
        for outcome in refused.values()
    ]


def _parse_ext(ext_json: str | None) -> dict[str, object]:
    if not ext_json:
        return {}
    try:
        value = orjson.loads(ext_json)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _batch_outcomes(
    phones: Sequence[str], answer: SendResult | ProviderError, fee: int
) -> tuple[list[PhoneOutcome], str]:
    if isinstance(answer, ProviderError):
        status = SendStatus.UNKNOWN if answer.kind is ErrorKind.AMBIGUOUS else SendStatus.FAILED
        billed = fee if status is SendStatus.UNKNOWN else 0
        return [
            PhoneOutcome(phone, status, billed, answer.code, answer.message, error_kind=answer.kind)
            for phone in phones
        ], answer.raw
    by_phone = {result.phone: result for result in answer.results}
    outcomes = []
    for phone in phones:
        result = by_phone.get(phone)
        if result is None:
            outcomes.append(
                PhoneOutcome(
                    phone,
                    SendStatus.UNKNOWN,
                    fee,
                    "NO_RESULT",
                    "the provider said nothing about this phone",
                )
            )
        elif result.accepted:
            outcomes.append(
                PhoneOutcome(
                    phone,
                    SendStatus.SUBMITTED,
                    result.fee if result.fee is not None else fee,
                    result.code,
                    result.message,
                    result.provider_message_id,
                )
            )
        elif result.error_kind is ErrorKind.AMBIGUOUS:
            # The provider could not say what happened to this phone: it may be sent.
            outcomes.append(
                PhoneOutcome(
                    phone,
                    SendStatus.UNKNOWN,
                    fee,
                    result.code,
                    result.message,
                    error_kind=ErrorKind.AMBIGUOUS,
                )
            )
        else:
            outcomes.append(
                PhoneOutcome(
                    phone,
                    SendStatus.FAILED,
                    0,
                    result.code,
                    result.message,
                    error_kind=result.error_kind or ErrorKind.PERMANENT,
                )
            )
    return outcomes, answer.raw


def _queued_summary(
    request_id: str,
    phones: list[str],
    allowed: list[str],
    refused: dict[str, PhoneOutcome],
    fee: int,
    queue_at: datetime,
) -> SendOutcome:
    due = iso_utc(queue_at)
    queued = {
        phone: PhoneOutcome(phone, SendStatus.QUEUED, fee, "QUEUED", f"queued, due at {due}")
        for phone in allowed
    }
    by_phone = queued | refused
    msg = f"accepted: {len(allowed)} message(s) queued, due at {due}"
    if refused:
        msg += f"; {len(refused)} phone(s) refused (see results)"
    return SendOutcome(request_id, 202, msg, [by_phone[phone] for phone in phones])


def _refused_summary(request_id: str, outcomes: list[PhoneOutcome]) -> SendOutcome:
    """Every phone was refused by the gateway: 429 when a retry can help, else 403."""
    limited = [o for o in outcomes if o.code == PHONE_RATE_LIMITED]
    if limited:
        retry = max(o.retry_after_seconds or 1 for o in limited)
        if len(outcomes) == 1:
            msg = limited[0].message
        else:
            msg = (
                f"every phone was refused; {len(limited)} reached a per-phone limit "
                f"({limited[0].message})"
            )
        return SendOutcome(request_id, 429, msg, outcomes, retry_after_seconds=retry)
    first = outcomes[0]
    return SendOutcome(request_id, 403, f"every phone was refused ({first.message})", outcomes)


def _summarise(
    request_id: str, outcomes: list[PhoneOutcome], sent: list[PhoneOutcome], bodies: list[str]
) -> SendOutcome:
    """`outcomes` has every phone in request order; `sent` those the provider was asked for."""
    submitted = sum(1 for o in outcomes if o.status is SendStatus.SUBMITTED)
    unknown = sum(1 for o in outcomes if o.status is SendStatus.UNKNOWN)
    raw = bodies[0] if len(bodies) == 1 else "[" + ",".join(b or "null" for b in bodies) + "]"
    if submitted == len(outcomes):
        return SendOutcome(request_id, 200, raw, outcomes)
    if submitted:
        return SendOutcome(request_id, 207, raw, outcomes)
    if unknown:
        first = next(o for o in sent if o.status is SendStatus.UNKNOWN)
        return SendOutcome(
            request_id,
            504,
            f"the provider did not give a definite answer ({first.code}: {first.message}); "
            "the message may have been sent, so its record is left UNKNOWN",
            outcomes,
        )
    first = sent[0]
    if first.code == CIRCUIT_OPEN:
        return SendOutcome(request_id, 502, f"{CIRCUIT_OPEN}: {first.message}", outcomes)
    return SendOutcome(
        request_id,
        502,
        f"the provider rejected every phone ({first.code}: {first.message})",
        outcomes,
    )

"""Twilio Programmable Messaging: one Messages.json call per phone, HTTP Basic auth.

Channel fields: `access_key_id` (Account SID, or an API key SID with ext_json `account_sid`),
`access_key_secret` (auth token or API key secret), `endpoint` (default
`https://api.twilio.com`). ext_json: `from` (sender number) or `messaging_service_sid`
(one is required; `sdk_app_id` is used as `from` when neither is set), `status_callback`,
`max_concurrency` (parallel calls per batch, default 10).

Twilio sends one message per request. The adapter takes batches of up to 100 phones and
makes the calls concurrently, reporting each phone's outcome; a batch of one phone whose
call fails raises ProviderError like the other adapters.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp

from smsgate.providers import channel_rules
from smsgate.providers.base import (
    ChannelConfig,
    CredentialCheck,
    ErrorKind,
    FeeScheme,
    PhoneResult,
    ProviderError,
    SendRequest,
    SendResult,
)
from smsgate.providers.common import endpoint_url, parse_json_object
from smsgate.providers.http import channel_timeout, classify_http_status, get, post

DEFAULT_ENDPOINT = "https://api.twilio.com"

# providers.md §5 (Twilio error dictionary).
_RATE_LIMITED = frozenset({"20429", "14107", "30022"})
_RETRYABLE = frozenset({"20500", "20503", "30001"})


MAX_CONCURRENCY = 100  # calls in flight per batch; more only queues in the connection pool


def validate_channel(draft: channel_rules.ChannelDraft) -> list[channel_rules.ChannelProblem]:
    ext = draft.ext
    problems = [
        *channel_rules.credentials(draft, "Account SID or API key SID", "auth token"),
        *channel_rules.http_channel(draft),
        *channel_rules.text(ext, "from", "messaging_service_sid", "account_sid"),
        *channel_rules.http_url(ext, "status_callback"),
        *channel_rules.number(
            ext, "max_concurrency", minimum=1, maximum=MAX_CONCURRENCY, integer=True
        ),
    ]
    if not (ext.get("from") or ext.get("messaging_service_sid") or draft.sdk_app_id):
        problems.append(
            channel_rules.ChannelProblem(
                "extJson.from",
                "is required: a sender number, or extJson.messaging_service_sid (or sdkAppId)",
            )
        )
    # An API key (SK...) authenticates, but the URL names the account it acts for.
    if draft.access_key_id.startswith("SK") and not ext.get("account_sid"):
        problems.append(
            channel_rules.ChannelProblem(
                "extJson.account_sid", "is required when accessKeyId is an API key SID (SK...)"
            )
        )
    return problems


def classify_twilio_code(code: str, status: int) -> ErrorKind:
    if code in _RATE_LIMITED or status == 429:
        return ErrorKind.RATE_LIMITED
    if code in _RETRYABLE or status >= 500:
        return ErrorKind.RETRYABLE
    return ErrorKind.PERMANENT


class TwilioAdapter:
    channel_no: ClassVar[str] = "Twilio"
    fee_scheme: ClassVar[FeeScheme] = FeeScheme.GSM
    max_batch_size: ClassVar[int] = 100  # phones per send(); one HTTP call per phone

    def __init__(self, config: ChannelConfig, session: aiohttp.ClientSession) -> None:
        self._config = config
        self._session = session
        account = str(config.ext.get("account_sid") or config.access_key_id)
        base = endpoint_url(config.endpoint, DEFAULT_ENDPOINT)
        self._account_url = f"{base}/2010-04-01/Accounts/{account}.json"
        self._url = f"{base}/2010-04-01/Accounts/{account}/Messages.json"
        credentials = f"{config.access_key_id}:{config.access_key_secret}".encode()
        self._auth = "Basic " + base64.b64encode(credentials).decode("ascii")
        self._timeout = channel_timeout(config.ext)
        self._limit = asyncio.Semaphore(int(config.ext.get("max_concurrency", 10)))

    def _form(self, phone: str, request: SendRequest) -> bytes:
        ext = self._config.ext
        form = {"To": phone, "Body": request.content}
        if ext.get("messaging_service_sid"):
            form["MessagingServiceSid"] = str(ext["messaging_service_sid"])
        else:
            form["From"] = str(ext.get("from") or self._config.sdk_app_id or "")
        callback = ext.get("status_callback")
        if callback:
            # Twilio has no echo field: our id rides in the callback URL's query.
            parts = urlsplit(str(callback))
            query = "&".join(
                q for q in (parts.query, urlencode({"smsgate_cid": request.correlation_id})) if q
            )
            form["StatusCallback"] = urlunsplit(parts._replace(query=query))
        return urlencode(form).encode()

    async def _send_one(self, phone: str, request: SendRequest) -> tuple[PhoneResult, str]:
        headers = {
            "Authorization": self._auth,
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        async with self._limit:
            answer = await post(
                self._session, self._url, self._form(phone, request), headers, self._timeout
            )
        data: dict[str, Any]
        try:
            data = parse_json_object(answer.body, "Twilio")
        except ProviderError:
            if answer.status < 300:
                raise
            data = {}
        if answer.status >= 300:
            code = str(data.get("code", f"HTTP_{answer.status}"))
            kind = (
                classify_twilio_code(code, answer.status)
                if data
                else classify_http_status(answer.status)
            )
            message = str(data.get("message", answer.body[:200]))
            raise ProviderError(kind, code, message, answer.body)
        segments = data.get("num_segments")
        result = PhoneResult(
            phone=phone,
            accepted=True,
            code=str(data.get("status", "queued")),
            message=str(data.get("status", "queued")),
            provider_message_id=str(data["sid"]) if data.get("sid") else None,
            fee=int(segments)
            if isinstance(segments, str | int) and str(segments).isdigit()
            else None,
        )
        return result, answer.body

    async def check_credentials(self) -> CredentialCheck:
        """GET the Account resource with the same Basic auth: read-only, sends nothing."""
        headers = {"Authorization": self._auth, "Accept": "application/json"}
        try:
            answer = await get(self._session, self._account_url, headers, self._timeout)
        except ProviderError as exc:
            return CredentialCheck.failed(exc)
        try:
            data = parse_json_object(answer.body, "Twilio")
        except ProviderError:
            data = {}
        if answer.status >= 300:
            code = str(data.get("code", f"HTTP_{answer.status}"))
            return CredentialCheck(False, code, str(data.get("message", answer.body[:200])))
        status = str(data.get("status", "active"))
        if status != "active":  # suspended or closed accounts authenticate but cannot send
            return CredentialCheck(False, f"ACCOUNT_{status.upper()}", f"the account is {status}")
        return CredentialCheck(True, "active", "Twilio accepted the credentials")

    async def _attempt(self, phone: str, request: SendRequest) -> tuple[PhoneResult, str]:
        try:
            return await self._send_one(phone, request)
        except ProviderError as exc:
            failed = PhoneResult(phone, False, exc.code, exc.message, error_kind=exc.kind)
            return failed, exc.raw

    async def send(self, request: SendRequest) -> SendResult:
        if len(request.phones) == 1:
            result, raw = await self._send_one(request.phones[0], request)
            return SendResult([result], raw)
        outcomes = await asyncio.gather(*(self._attempt(p, request) for p in request.phones))
        results = [r for r, _ in outcomes]
        if not any(r.accepted for r in results) and len({r.code for r in results}) == 1:
            # Every call failed the same way (bad credentials, sender...): a whole-call failure.
            first = results[0]
            raise ProviderError(
                first.error_kind or ErrorKind.PERMANENT, first.code, first.message, outcomes[0][1]
            )
        raw = "[" + ",".join(raw or "null" for _, raw in outcomes) + "]"
        return SendResult(results, raw)

"""Huawei Cloud Message & SMS (MSGSMS): batchSendSms, X-WSSE or SDK-HMAC-SHA256 (AK/SK).

Channel fields: `access_key_id` (app_key), `access_key_secret` (app_secret), `endpoint` (the
app access address, default `https://smsapi.cn-north-4.myhuaweicloud.com:443`), `sdk_app_id`
(the signature's channel number, sent as `from`; ext_json `sender` overrides it). ext_json:
`auth_scheme` (`wsse` default, `aksk` for SDK-HMAC-SHA256), `status_callback` (URL),
`send_signature` (true: also send `signature`, for domestic generic templates).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit

import aiohttp
import orjson

from smsgate.providers import channel_rules, signing
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
from smsgate.providers.common import endpoint_url, host_of, missing_status, parse_json_object
from smsgate.providers.http import channel_timeout, classify_http_status, post

DEFAULT_ENDPOINT = "https://smsapi.cn-north-4.myhuaweicloud.com:443"
PATH = "/sms/batchSendSms/v1"
CONTENT_TYPE = "application/x-www-form-urlencoded"
SUCCESS = "000000"
_QUOTA = frozenset({"E000623"})  # account balance/quota: another channel may still send


# The credentials check sends no recipients. Huawei's API gateway authenticates the
# request (X-WSSE or AK/SK: E000001-E000020, E000101-E000112) before the SMS service
# validates the form, so the parameter error E000503 proves the app_key/app_secret were
# accepted, and no message can go out without a `to`.
_AUTHENTICATED_PARAMETER_ERROR = "E000503"


def validate_channel(draft: channel_rules.ChannelDraft) -> list[channel_rules.ChannelProblem]:
    ext = draft.ext
    problems = [
        *channel_rules.credentials(draft, "app_key", "app_secret"),
        *channel_rules.http_channel(draft),
        *channel_rules.choice(ext, "auth_scheme", ("wsse", "aksk")),
        *channel_rules.text(ext, "sender"),
        *channel_rules.http_url(ext, "status_callback"),
        *channel_rules.flag(ext, "send_signature"),
    ]
    if not (draft.sdk_app_id or "").strip() and not ext.get("sender"):
        problems.append(
            channel_rules.ChannelProblem(
                "sdkAppId", "is required: the signature's channel number (or extJson.sender)"
            )
        )
    return problems


def classify_huawei_code(code: str, status: int = 200) -> ErrorKind:
    if code in _QUOTA or status == 429:
        return ErrorKind.RATE_LIMITED
    if status >= 500:
        return ErrorKind.RETRYABLE
    # E0000xx request/auth errors and E2000xx per-recipient errors are permanent.
    return ErrorKind.PERMANENT


class HuaweiAdapter:
    channel_no: ClassVar[str] = "Huawei"
    fee_scheme: ClassVar[FeeScheme] = FeeScheme.CHINESE
    max_batch_size: ClassVar[int] = 500  # `to`: at most 500 numbers, else all fail

    def __init__(self, config: ChannelConfig, session: aiohttp.ClientSession) -> None:
        self._config = config
        self._session = session
        base = endpoint_url(config.endpoint, DEFAULT_ENDPOINT)
        self._url = base if urlsplit(base).path not in ("", "/") else base + PATH
        self._host = host_of(self._url)
        self._path = urlsplit(self._url).path
        self._timeout = channel_timeout(config.ext)
        self._aksk = str(config.ext.get("auth_scheme", "wsse")).lower() == "aksk"

    def _form(self, request: SendRequest) -> bytes:
        sender = self._config.ext.get("sender") or self._config.sdk_app_id
        form = {
            "from": str(sender),
            "to": ",".join(request.phones),
            "templateId": request.template_id,
            "extend": request.correlation_id,
        }
        if request.params:
            # A JSON array *string*, positional for ${1}, ${NUM_6}... (batchSendSms doc).
            form["templateParas"] = orjson.dumps(list(request.params)).decode()
        if self._config.ext.get("status_callback"):
            form["statusCallback"] = str(self._config.ext["status_callback"])
        if self._config.ext.get("send_signature"):
            form["signature"] = request.sign_name
        return urlencode(form).encode()

    def _auth_headers(self, now: datetime) -> dict[str, str]:
        key, secret = self._config.access_key_id, self._config.access_key_secret
        headers = {"Content-Type": CONTENT_TYPE}
        if self._aksk:
            headers["Host"] = self._host
            headers["X-Sdk-Date"] = signing.huawei_sdk_date(now)
            # A form body is not hashed: the literal UNSIGNED-PAYLOAD stands for it.
            headers["X-Sdk-Content-Sha256"] = "UNSIGNED-PAYLOAD"
            headers["Authorization"] = signing.huawei_sdk_hmac_authorization(
                key, secret, "POST", self._path, [], headers, "UNSIGNED-PAYLOAD"
            )
        else:
            headers.update(
                signing.huawei_wsse_headers(
                    key, secret, uuid.uuid4().hex, signing.huawei_created(now)
                )
            )
        return headers

    def _misconfigured(self) -> ProviderError | None:
        if not (self._config.ext.get("sender") or self._config.sdk_app_id):
            return ProviderError(
                ErrorKind.PERMANENT,
                "CHANNEL_MISCONFIGURED",
                "a Huawei channel needs its channel number (sdk_app_id or ext_json sender)",
            )
        return None

    async def _call(self, body: bytes) -> tuple[dict[str, Any], str]:
        """POST one signed form; the answer when it is `000000`, else ProviderError."""
        headers = self._auth_headers(datetime.now(UTC))
        answer = await post(self._session, self._url, body, headers, self._timeout)
        try:
            data = parse_json_object(answer.body, "Huawei")
        except ProviderError:
            if answer.status >= 300:
                raise ProviderError(
                    classify_http_status(answer.status),
                    f"HTTP_{answer.status}",
                    answer.body[:200],
                    answer.body,
                ) from None
            raise
        code = str(data.get("code", f"HTTP_{answer.status}"))
        if answer.status >= 300 or code != SUCCESS:
            raise ProviderError(
                classify_huawei_code(code, answer.status),
                code,
                str(data.get("description", "")),
                answer.body,
            )
        return data, answer.body

    async def send(self, request: SendRequest) -> SendResult:
        if misconfigured := self._misconfigured():
            raise misconfigured
        data, raw = await self._call(self._form(request))
        return SendResult(_per_phone(request, data.get("result") or []), raw)

    async def check_credentials(self) -> CredentialCheck:
        """batchSendSms without recipients, signed like a send (see _AUTHENTICATED_...)."""
        if misconfigured := self._misconfigured():
            return CredentialCheck.failed(misconfigured)
        sender = self._config.ext.get("sender") or self._config.sdk_app_id
        try:
            await self._call(urlencode({"from": str(sender), "to": ""}).encode())
        except ProviderError as exc:
            if exc.code != _AUTHENTICATED_PARAMETER_ERROR:
                return CredentialCheck.failed(exc)
            return CredentialCheck(
                True,
                exc.code,
                f"credentials accepted (Huawei checked the empty test request: {exc.message})",
            )
        return CredentialCheck(True, SUCCESS, "Huawei accepted the signed call")


def _per_phone(request: SendRequest, result: list[Any]) -> list[PhoneResult]:
    by_phone = {str(r.get("originTo")): r for r in result if isinstance(r, dict)}
    results = []
    for phone in request.phones:
        item = by_phone.get(phone)
        if item is None:
            results.append(missing_status(phone))
            continue
        status = str(item.get("status", ""))
        ok = status == SUCCESS
        total = item.get("total")
        results.append(
            PhoneResult(
                phone=phone,
                accepted=ok,
                code=status,
                message="Success" if ok else status,
                provider_message_id=str(item["smsMsgId"]) if ok and item.get("smsMsgId") else None,
                fee=int(total) if ok and isinstance(total, int) else None,
                error_kind=None if ok else classify_huawei_code(status),
            )
        )
    return results

"""Qiniu Cloud SMS: POST /v1/message signed with a "Qiniu" token (X-Qiniu-Date signed).

Channel fields: `access_key_id` (AK), `access_key_secret` (SK), `endpoint` (default
`https://sms.qiniuapi.com`). ext_json: `signature_id` (Qiniu's id of the signature; omitted,
the template's bound signature is used; a purely numeric sign_name is taken as the id).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

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
from smsgate.providers.common import (
    endpoint_url,
    host_of,
    mainland_or_e164,
    parse_json_object,
)
from smsgate.providers.http import HttpAnswer, channel_timeout, get, post

DEFAULT_ENDPOINT = "https://sms.qiniuapi.com"
CONTENT_TYPE = "application/json"

# providers.md §3 (Qiniu "错误码" page).
_RETRYABLE = frozenset({"ServerInternalError"})
_QUOTA = frozenset({"AccountBalanceNotEnough"})  # this channel cannot pay; another may


# The credentials check lists one signature: a read-only call (Qiniu SMS "查询签名").
_PROBE_PATH = "/v1/signature?page=1&page_size=1"


def validate_channel(draft: channel_rules.ChannelDraft) -> list[channel_rules.ChannelProblem]:
    return [
        *channel_rules.credentials(draft, "AccessKey", "SecretKey"),
        *channel_rules.http_channel(draft),
        *channel_rules.text(draft.ext, "signature_id"),
    ]


def classify_qiniu_error(error: str, status: int) -> ErrorKind:
    if status == 429 or error in _QUOTA:
        return ErrorKind.RATE_LIMITED
    if error in _RETRYABLE or status >= 500:
        return ErrorKind.RETRYABLE
    return ErrorKind.PERMANENT


class QiniuAdapter:
    channel_no: ClassVar[str] = "Qiniu"
    fee_scheme: ClassVar[FeeScheme] = FeeScheme.CHINESE
    # Qiniu documents no per-request limit for `mobiles`; 100 keeps one failure small.
    max_batch_size: ClassVar[int] = 100

    def __init__(self, config: ChannelConfig, session: aiohttp.ClientSession) -> None:
        self._config = config
        self._session = session
        self._base = endpoint_url(config.endpoint, DEFAULT_ENDPOINT)
        self._url = self._base + "/v1/message"
        self._host = host_of(self._url)
        self._timeout = channel_timeout(config.ext)

    def _body(self, request: SendRequest) -> bytes:
        body: dict[str, Any] = {
            "template_id": request.template_id,
            "mobiles": [mainland_or_e164(p) for p in request.phones],
            # Named variables; Qiniu refuses Chinese characters in values ("发送短信" doc).
            "parameters": dict(zip(request.param_names, request.params, strict=True)),
            "seq": request.correlation_id,
        }
        signature_id = self._config.ext.get("signature_id")
        if signature_id:
            body["signature_id"] = str(signature_id)
        elif request.sign_name.isdigit():
            body["signature_id"] = request.sign_name
        return orjson.dumps(body)

    def _signed_headers(self, method: str, url: str, body: bytes) -> dict[str, str]:
        headers = {"X-Qiniu-Date": signing.qiniu_date(datetime.now(UTC))}
        content_type = CONTENT_TYPE if body else None
        if content_type:
            headers["Content-Type"] = content_type
        token = signing.qiniu_token(
            self._config.access_key_id,
            self._config.access_key_secret,
            method,
            url,
            content_type,
            headers,
            body,
            host=self._host,
        )
        headers["Authorization"] = f"Qiniu {token}"
        return headers

    async def send(self, request: SendRequest) -> SendResult:
        body = self._body(request)
        headers = self._signed_headers("POST", self._url, body)
        answer = await post(self._session, self._url, body, headers, self._timeout)
        if answer.status >= 300:
            raise _error(answer)
        data = parse_json_object(answer.body, "Qiniu")
        job_id = data.get("job_id")
        if not job_id:
            raise ProviderError(ErrorKind.AMBIGUOUS, "BAD_RESPONSE", "no job_id", answer.body)
        # One job per request: delivery reports carry (job_id, mobile) and our `seq`.
        results = [PhoneResult(p, True, "OK", "OK", str(job_id)) for p in request.phones]
        return SendResult(results, answer.body)

    async def check_credentials(self) -> CredentialCheck:
        """GET /v1/signature (one item), signed like a send; a bad key answers 401 BadToken."""
        url = self._base + _PROBE_PATH
        try:
            answer = await get(
                self._session, url, self._signed_headers("GET", url, b""), self._timeout
            )
            if answer.status >= 300:
                raise _error(answer)
        except ProviderError as exc:
            return CredentialCheck.failed(exc)
        return CredentialCheck(True, "OK", "Qiniu accepted the signed signature-list call")


def _error(answer: HttpAnswer) -> ProviderError:
    try:
        data = parse_json_object(answer.body, "Qiniu")
    except ProviderError:
        data = {}
    error = str(data.get("error", f"HTTP_{answer.status}"))
    return ProviderError(
        classify_qiniu_error(error, answer.status),
        error,
        str(data.get("message", answer.body[:200])),
        answer.body,
    )

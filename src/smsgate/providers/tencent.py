"""Tencent Cloud SMS (API 2021-01-11): SendSms signed with TC3-HMAC-SHA256.

Channel fields: `access_key_id` (SecretId), `access_key_secret` (SecretKey), `sdk_app_id`
(SmsSdkAppId, required), `region` (X-TC-Region, required, e.g. `ap-guangzhou`), `endpoint`
(default `https://sms.tencentcloudapi.com`). ext_json: `extend_code`, `sender_id`,
`security_token` (X-TC-Token), `language` (X-TC-Language), plus the shared timeouts.
"""

from __future__ import annotations

import time
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
from smsgate.providers.common import endpoint_url, host_of, missing_status, parse_json_object
from smsgate.providers.http import channel_timeout, classify_http_status, post

DEFAULT_ENDPOINT = "https://sms.tencentcloudapi.com"
API_VERSION = "2021-01-11"
SERVICE = "sms"
CONTENT_TYPE = "application/json; charset=utf-8"

# providers.md §2, names from the SDK's errorcodes.py.
_RATE_LIMITED_PREFIXES = (
    "RequestLimitExceeded",
    "LimitExceeded.DeliveryFrequencyLimit",
    "LimitExceeded.GlobalSmsSendingRateLimit",
    "LimitExceeded.PhoneNumberThirtySecondLimit",
    "LimitExceeded.PhoneNumberOneHourLimit",
    "LimitExceeded.PhoneNumberDailyLimit",
    "LimitExceeded.PhoneNumberSameContentDailyLimit",
)
# Account-level quota: this channel cannot send now, another may (reported as RATE_LIMITED).
_QUOTA = frozenset(
    {
        "FailedOperation.InsufficientBalanceInSmsPackage",
        "UnauthorizedOperation.ServiceSuspendDueToArrears",
        "LimitExceeded.AppDailyLimit",
        "LimitExceeded.DailyLimit",
        "LimitExceeded.AppGlobalDailyLimit",
        "LimitExceeded.AppMainlandChinaDailyLimit",
        "LimitExceeded.AppCountryOrRegionDailyLimit",
    }
)


# Answers to the credentials check that can only come after authentication passed: the
# API 3.0 gateway verifies the TC3 signature (AuthFailure.*) before the SMS service looks
# at the parameters, so a parameter complaint about the empty PhoneNumberSet means the
# SecretId/SecretKey are good ("公共错误码" and the SDK's errorcodes.py).
_PARAMETER_PREFIXES = ("MissingParameter", "InvalidParameter")


def validate_channel(draft: channel_rules.ChannelDraft) -> list[channel_rules.ChannelProblem]:
    problems = []
    # sdkAppId and region first: they are what a Tencent channel is most often missing.
    if not (draft.sdk_app_id or "").strip():
        problems.append(channel_rules.ChannelProblem("sdkAppId", "is required (SmsSdkAppId)"))
    if not (draft.region or "").strip():
        problems.append(channel_rules.ChannelProblem("region", "is required (e.g. ap-guangzhou)"))
    return [
        *problems,
        *channel_rules.credentials(draft, "SecretId", "SecretKey"),
        *channel_rules.http_channel(draft),
        *channel_rules.text(draft.ext, "extend_code", "sender_id", "security_token", "language"),
    ]


def classify_tencent_code(code: str) -> ErrorKind:
    if code in _QUOTA or code.startswith(_RATE_LIMITED_PREFIXES):
        return ErrorKind.RATE_LIMITED
    if code.startswith("InternalError"):
        return ErrorKind.RETRYABLE
    # AuthFailure.*, InvalidParameter*, MissingParameter*, FailedOperation.*, Unsupported...
    return ErrorKind.PERMANENT


class TencentAdapter:
    channel_no: ClassVar[str] = "Tencent"
    fee_scheme: ClassVar[FeeScheme] = FeeScheme.CHINESE
    max_batch_size: ClassVar[int] = 200  # PhoneNumberSet: at most 200 numbers

    def __init__(self, config: ChannelConfig, session: aiohttp.ClientSession) -> None:
        self._config = config
        self._session = session
        self._url = endpoint_url(config.endpoint, DEFAULT_ENDPOINT)
        self._host = host_of(self._url)
        self._timeout = channel_timeout(config.ext)

    def _body(self, request: SendRequest) -> bytes:
        body: dict[str, Any] = {
            "PhoneNumberSet": list(request.phones),
            "SmsSdkAppId": self._config.sdk_app_id,
            "SignName": request.sign_name,
            "TemplateId": request.template_id,
            # Positional: {1}, {2}... take the strings in order; the count must match.
            "TemplateParamSet": list(request.params),
            "SessionContext": request.correlation_id,
        }
        for key, field in (("extend_code", "ExtendCode"), ("sender_id", "SenderId")):
            if self._config.ext.get(key):
                body[field] = str(self._config.ext[key])
        # Compact UTF-8 JSON, serialised once: these exact bytes are hashed and sent.
        return orjson.dumps(body)

    def _headers(self, body: bytes, timestamp: int) -> dict[str, str]:
        headers = {
            "Host": self._host,
            "Content-Type": CONTENT_TYPE,
            "X-TC-Action": "SendSms",
            "X-TC-Version": API_VERSION,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Region": str(self._config.region),
            "Authorization": signing.tc3_authorization(
                self._config.access_key_id,
                self._config.access_key_secret,
                timestamp,
                SERVICE,
                CONTENT_TYPE,
                self._host,
                body,
            ),
        }
        if self._config.ext.get("security_token"):
            headers["X-TC-Token"] = str(self._config.ext["security_token"])
        if self._config.ext.get("language"):
            headers["X-TC-Language"] = str(self._config.ext["language"])
        return headers

    def _misconfigured(self) -> ProviderError | None:
        if not self._config.sdk_app_id or not self._config.region:
            return ProviderError(
                ErrorKind.PERMANENT,
                "CHANNEL_MISCONFIGURED",
                "a Tencent channel needs sdk_app_id and region",
            )
        return None

    async def _call(self, body: bytes) -> tuple[dict[str, Any], str]:
        """POST one signed SendSms; the `Response` object (which may hold an Error)."""
        # Signed afresh on every call: the timestamp must be within 5 minutes.
        answer = await post(
            self._session, self._url, body, self._headers(body, int(time.time())), self._timeout
        )
        if answer.status != 200:
            raise ProviderError(
                classify_http_status(answer.status),
                f"HTTP_{answer.status}",
                answer.body[:200],
                answer.body,
            )
        response = parse_json_object(answer.body, "Tencent").get("Response")
        if not isinstance(response, dict):
            raise ProviderError(
                ErrorKind.AMBIGUOUS, "BAD_RESPONSE", "no Response in answer", answer.body
            )
        return response, answer.body

    async def send(self, request: SendRequest) -> SendResult:
        if misconfigured := self._misconfigured():
            raise misconfigured
        response, raw = await self._call(self._body(request))
        error = response.get("Error")
        if isinstance(error, dict):
            # Whole-request failures still come back as HTTP 200 (API 3.0 "Responses").
            code = str(error.get("Code", ""))
            raise ProviderError(
                classify_tencent_code(code), code, str(error.get("Message", "")), raw
            )
        return SendResult(_per_phone(request, response), raw)

    async def check_credentials(self) -> CredentialCheck:
        """SendSms with an empty PhoneNumberSet: signed like a send, reaches no phone.

        Tencent has no read-only SMS call that every key may make; this one fails in
        parameter validation, which only runs after the signature was accepted. So
        `MissingParameter*`/`InvalidParameter*` mean the credentials are good, and
        `AuthFailure.*` (or anything else) is reported as a failure with Tencent's code.
        """
        if misconfigured := self._misconfigured():
            return CredentialCheck.failed(misconfigured)
        body = orjson.dumps({"PhoneNumberSet": [], "SmsSdkAppId": self._config.sdk_app_id})
        try:
            response, _ = await self._call(body)
        except ProviderError as exc:
            return CredentialCheck.failed(exc)
        error = response.get("Error")
        if not isinstance(error, dict):
            return CredentialCheck(True, "Ok", "Tencent accepted the signed call")
        code, message = str(error.get("Code", "")), str(error.get("Message", ""))
        if code.startswith(_PARAMETER_PREFIXES):
            return CredentialCheck(
                True,
                code,
                f"credentials accepted (Tencent checked the empty test request: {message})",
            )
        return CredentialCheck(False, code, message)


def _per_phone(request: SendRequest, response: dict[str, Any]) -> list[PhoneResult]:
    statuses = {
        str(item.get("PhoneNumber")): item
        for item in response.get("SendStatusSet") or []
        if isinstance(item, dict)
    }
    results = []
    for phone in request.phones:
        item = statuses.get(phone)
        if item is None:
            results.append(missing_status(phone))
            continue
        code = str(item.get("Code", ""))
        ok = code == "Ok"  # Tencent's success code is "Ok", not "OK"
        fee = item.get("Fee")
        results.append(
            PhoneResult(
                phone=phone,
                accepted=ok,
                code=code,
                message=str(item.get("Message", "")),
                provider_message_id=str(item["SerialNo"]) if ok and item.get("SerialNo") else None,
                fee=int(fee) if ok and isinstance(fee, int) else None,
                error_kind=None if ok else classify_tencent_code(code),
            )
        )
    return results

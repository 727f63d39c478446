"""Alibaba Cloud SMS (dysmsapi 2017-05-25): SendSms, signed V3 (ACS3-HMAC-SHA256) or V2 (RPC).

Channel fields: `access_key_id`, `access_key_secret`, `endpoint` (default
`https://dysmsapi.aliyuncs.com`). ext_json: `signature_version` (`v3` default, `v2` for the
legacy HMAC-SHA1 RPC signature), `region_id` (V2 `RegionId`, default `cn-hangzhou`),
`security_token` (STS), `sms_up_extend_code`, plus the shared `timeout_ms`/`connect_timeout_ms`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, ClassVar
from urllib.parse import urlencode

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
from smsgate.providers.common import endpoint_url, host_of, national_digits, parse_json_object
from smsgate.providers.http import channel_timeout, classify_http_status, post

DEFAULT_ENDPOINT = "https://dysmsapi.aliyuncs.com"
API_VERSION = "2017-05-25"

# providers.md §1.7 (from the dysmsapi error-code pages).
_RATE_LIMITED = frozenset({"isv.BUSINESS_LIMIT_CONTROL", "Throttling.User", "Throttling"})
# Account-level exhaustion: this channel cannot send now, another channel may. Reported as
# RATE_LIMITED so the caller fails over instead of giving up on the message.
_QUOTA = frozenset(
    {
        "isv.DAY_LIMIT_CONTROL",
        "isv.MONTH_LIMIT_CONTROL",
        "isv.OUT_OF_SERVICE",
        "isv.AMOUNT_NOT_ENOUGH",
    }
)
_RETRYABLE = frozenset({"isp.SYSTEM_ERROR", "SignatureNonceUsed", "ServiceUnavailable"})
# QuerySendDetails' SendDate is a Beijing-time day.
_BEIJING = timezone(timedelta(hours=8))
# The credentials check queries a number no message is ever sent to (read-only call).
_PROBE_PHONE = "+8613800000000"


def validate_channel(draft: channel_rules.ChannelDraft) -> list[channel_rules.ChannelProblem]:
    ext = draft.ext
    return [
        *channel_rules.credentials(draft, "AccessKey ID", "AccessKey secret"),
        *channel_rules.http_channel(draft),
        *channel_rules.choice(ext, "signature_version", ("v2", "v3")),
        *channel_rules.text(ext, "region_id", "security_token", "sms_up_extend_code"),
    ]


def classify_aliyun_code(code: str, http_status: int = 200) -> ErrorKind:
    if code in _RATE_LIMITED or code in _QUOTA or code.startswith("Throttling"):
        return ErrorKind.RATE_LIMITED
    if code in _RETRYABLE or code.startswith("isp."):
        return ErrorKind.RETRYABLE
    if code.startswith("isv.") or http_status < 500:
        # isv.* are business refusals; signature/auth/parameter errors are configuration.
        return ErrorKind.PERMANENT
    return classify_http_status(http_status)


@dataclass(frozen=True, slots=True)
class AliyunSendDetail:
    """One SmsSendDetailDTO of QuerySendDetails."""

    phone: str
    send_status: int  # 1 waiting for a receipt, 2 failed, 3 delivered
    err_code: str  # DELIVERED on success, else the carrier's code
    out_id: str
    template_code: str
    content: str
    send_date: str
    receive_date: str


class AliyunAdapter:
    channel_no: ClassVar[str] = "AliYun"
    fee_scheme: ClassVar[FeeScheme] = FeeScheme.CHINESE
    max_batch_size: ClassVar[int] = 1000  # SendSms: up to 1000 numbers per call

    def __init__(self, config: ChannelConfig, session: aiohttp.ClientSession) -> None:
        self._config = config
        self._session = session
        self._url = endpoint_url(config.endpoint, DEFAULT_ENDPOINT)
        self._host = host_of(self._url)
        self._timeout = channel_timeout(config.ext)
        self._v2 = str(config.ext.get("signature_version", "v3")).lower() == "v2"

    def _action_params(self, request: SendRequest) -> dict[str, str]:
        params = {
            "PhoneNumbers": ",".join(national_digits(p) for p in request.phones),
            "SignName": request.sign_name,
            "TemplateCode": request.template_id,
            "OutId": request.correlation_id,
        }
        if request.params:
            # Named parameters: {"code":"1234"} for ${code}. Compact JSON, UTF-8 kept.
            named = dict(zip(request.param_names, request.params, strict=True))
            params["TemplateParam"] = orjson.dumps(named).decode()
        extend = self._config.ext.get("sms_up_extend_code")
        if extend:
            params["SmsUpExtendCode"] = str(extend)
        return params

    async def send(self, request: SendRequest) -> SendResult:
        data, raw = await self._call("SendSms", self._action_params(request))
        biz_id = str(data.get("BizId", "")) or None
        # SendSms reports one BizId for the whole request, not one per number.
        results = [
            PhoneResult(phone, True, "OK", str(data.get("Message", "OK")), biz_id)
            for phone in request.phones
        ]
        return SendResult(results, raw)

    async def query_send_details(
        self,
        phone: str,
        send_date: date,
        biz_id: str | None = None,
        page_size: int = 50,
        current_page: int = 1,
    ) -> list[AliyunSendDetail]:
        """QuerySendDetails: what happened to messages to `phone` on `send_date`.

        Reconciles an AMBIGUOUS send (SendSms has no idempotency key): look for our OutId
        before sending again. Dates within the last 30 days; at most 50 per page.
        """
        params = {
            "PhoneNumber": national_digits(phone),
            "SendDate": send_date.strftime("%Y%m%d"),
            "PageSize": str(page_size),
            "CurrentPage": str(current_page),
        }
        if biz_id:
            params["BizId"] = biz_id
        data, _ = await self._call("QuerySendDetails", params)
        container = data.get("SmsSendDetailDTOs") or {}
        items = container.get("SmsSendDetailDTO") or [] if isinstance(container, dict) else []
        return [
            AliyunSendDetail(
                phone=str(item.get("PhoneNum", "")),
                send_status=int(item.get("SendStatus", 0)),
                err_code=str(item.get("ErrCode", "")),
                out_id=str(item.get("OutId", "")),
                template_code=str(item.get("TemplateCode", "")),
                content=str(item.get("Content", "")),
                send_date=str(item.get("SendDate", "")),
                receive_date=str(item.get("ReceiveDate", "")),
            )
            for item in items
            if isinstance(item, dict)
        ]

    async def check_credentials(self) -> CredentialCheck:
        """QuerySendDetails for one number and today: read-only, signed like a send.

        Any answer but `OK` is reported as a failure with Aliyun's code (a wrong secret is
        `SignatureDoesNotMatch`, an unknown key `InvalidAccessKeyId.NotFound`). The key
        needs `dysms:QuerySendDetails`, which reconciling ambiguous sends needs anyway.
        """
        try:
            await self.query_send_details(_PROBE_PHONE, datetime.now(_BEIJING).date(), page_size=1)
        except ProviderError as exc:
            return CredentialCheck.failed(exc)
        return CredentialCheck(True, "OK", "Aliyun accepted the signed QuerySendDetails call")

    async def _call(self, action: str, params: dict[str, str]) -> tuple[dict[str, Any], str]:
        # Signed afresh on every call: new timestamp and nonce (SignatureNonceUsed otherwise).
        now = datetime.now(UTC)
        nonce = uuid.uuid4().hex
        if self._v2:
            url, body, headers = self._sign_v2(action, params, now, nonce)
        else:
            url, body, headers = self._sign_v3(action, params, now, nonce)
        answer = await post(self._session, url, body, headers, self._timeout)
        return self._parse(answer.status, answer.headers, answer.body), answer.body

    def _sign_v3(
        self, action: str, query: dict[str, str], now: datetime, nonce: str
    ) -> tuple[str, bytes, dict[str, str]]:
        body = b""  # SendSms carries everything in the query, as the SDK does
        headers = {
            "host": self._host,
            "x-acs-action": action,
            "x-acs-version": API_VERSION,
            "x-acs-date": signing.aliyun_timestamp(now),
            "x-acs-signature-nonce": nonce,
            "x-acs-content-sha256": signing.sha256_hex(body),
            # Set (and so signed) explicitly: aiohttp would otherwise add an unsigned
            # `application/octet-stream` to the empty body, and ACS3 signs content-type.
            "content-type": "application/x-www-form-urlencoded",
        }
        token = self._config.ext.get("security_token")
        if token:
            headers["x-acs-security-token"] = str(token)
        headers["Authorization"] = signing.aliyun_v3_authorization(
            "POST",
            query,
            headers,
            headers["x-acs-content-sha256"],
            self._config.access_key_id,
            self._config.access_key_secret,
        )
        encoded = "&".join(
            f"{signing.percent_encode(k)}={signing.percent_encode(v)}"
            for k, v in sorted(query.items())
        )
        return f"{self._url}/?{encoded}", body, headers

    def _sign_v2(
        self, action: str, action_params: dict[str, str], now: datetime, nonce: str
    ) -> tuple[str, bytes, dict[str, str]]:
        params = {
            "AccessKeyId": self._config.access_key_id,
            "Action": action,
            "Format": "JSON",
            "RegionId": str(self._config.ext.get("region_id", "cn-hangzhou")),
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": nonce,
            "SignatureVersion": "1.0",
            "Timestamp": signing.aliyun_timestamp(now),
            "Version": API_VERSION,
            **action_params,
        }
        token = self._config.ext.get("security_token")
        if token:
            params["SecurityToken"] = str(token)
        params["Signature"] = signing.aliyun_rpc_signature(
            params, self._config.access_key_secret, "POST"
        )
        # Every parameter in the form body: the bytes sent are the bytes that were signed.
        body = urlencode(params, quote_via=lambda v, *_: signing.percent_encode(v)).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return f"{self._url}/", body, headers

    def _parse(self, status: int, headers: Any, body: str) -> dict[str, Any]:
        if status >= 300:
            try:
                data = parse_json_object(body, "Aliyun")
            except ProviderError:
                raise ProviderError(
                    classify_http_status(status), f"HTTP_{status}", body[:200], body
                ) from None
            code = str(data.get("Code", f"HTTP_{status}"))
            retry_after = headers.get("x-acs-retry-after")
            kind = classify_aliyun_code(code, status)
            if retry_after and retry_after.isdigit():
                kind = ErrorKind.RATE_LIMITED  # a positive x-acs-retry-after means throttled
            raise ProviderError(
                kind,
                code,
                str(data.get("Message", "")),
                body,
                float(retry_after) if retry_after and retry_after.isdigit() else None,
            )
        data = parse_json_object(body, "Aliyun")
        code = str(data.get("Code", ""))
        if code != "OK":
            raise ProviderError(
                classify_aliyun_code(code), code, str(data.get("Message", "")), body
            )
        return data

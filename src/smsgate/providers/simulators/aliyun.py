"""Alibaba Cloud SMS simulator: V3 and V2 signature checks, SendSms, dysmsapi answers."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from aiohttp import web

from smsgate.providers import signing
from smsgate.providers.simulators.base import (
    STATE,
    SimulatorConfig,
    SimulatorState,
    constant_time_equal,
    create_base_app,
    first_phone_outcome,
    hang,
    record,
)

MAX_SKEW_SECONDS = 15 * 60  # "more than 15 minutes off is rejected" (signature docs)
# SendDate in QuerySendDetails answers is Beijing time.
_BEIJING = timezone(timedelta(hours=8))

_OUTCOME_ANSWERS = {
    "permanent": ("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号"),
    "rate_limited": ("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1"),
    "quota": ("isv.DAY_LIMIT_CONTROL", "触发日发送限额"),
    "retryable": ("isp.SYSTEM_ERROR", "系统错误"),
}


class _Rejected(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message


def _error(request: web.Request, status: int, code: str, message: str) -> web.Response:
    record(request)["answer_code"] = code
    return web.json_response(
        {
            "RequestId": str(uuid.uuid4()).upper(),
            "HostId": request.host,
            "Code": code,
            "Message": message,
            "Recommend": f"https://api.aliyun.com/troubleshoot?q={code}",
        },
        status=status,
    )


def _parse_time(value: str) -> datetime:
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise _Rejected(400, "InvalidTimeStamp.Format", "Specified time stamp is invalid.") from exc


def _check_fresh(state: SimulatorState, moment: datetime, nonce: str) -> None:
    skew = state.config.max_skew_seconds or MAX_SKEW_SECONDS
    if abs(state.now() - moment.timestamp()) > skew:
        raise _Rejected(
            400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."
        )
    if nonce in state.seen_nonces:
        raise _Rejected(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
    state.seen_nonces.add(nonce)


def _verify_v3(request: web.Request, state: SimulatorState, body: bytes) -> dict[str, str]:
    auth = request.headers.get("Authorization", "")
    scheme, _, rest = auth.partition(" ")
    fields = dict(part.split("=", 1) for part in rest.split(",") if "=" in part)
    if scheme != "ACS3-HMAC-SHA256" or not {"Credential", "SignedHeaders", "Signature"} <= set(
        fields
    ):
        raise _Rejected(400, "IncompleteSignature", "The request signature is incomplete.")
    if fields["Credential"] != state.config.access_key_id:
        raise _Rejected(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
    signed_names = fields["SignedHeaders"].split(";")
    required = {"host", "x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce"}
    if "content-type" in request.headers:
        required.add("content-type")  # ACS3: content-type is signed whenever it is sent
    if not required <= set(signed_names):
        raise _Rejected(400, "IncompleteSignature", "The request signature is incomplete.")
    content_hash = request.headers.get("x-acs-content-sha256", "")
    if content_hash != signing.sha256_hex(body):
        raise _Rejected(
            400, "SignatureDoesNotMatch", "The x-acs-content-sha256 is not matched with the body."
        )
    _check_fresh(
        state,
        _parse_time(request.headers["x-acs-date"]),
        request.headers["x-acs-signature-nonce"],
    )
    query = dict(request.query)
    expected, _ = signing.aliyun_v3_signature(
        request.method,
        query,
        dict(request.headers),
        content_hash,
        state.config.access_key_secret,
        request.path,
        signed_names,
    )
    if not constant_time_equal(expected, fields["Signature"]):
        raise _Rejected(
            400,
            "SignatureDoesNotMatch",
            "Specified signature is not matched with our calculation.",
        )
    params = dict(query)
    params.update(_form(request, body))
    params["Action"] = request.headers["x-acs-action"]
    params["Version"] = request.headers["x-acs-version"]
    return params


def _form(request: web.Request, body: bytes) -> dict[str, str]:
    if body and request.content_type == "application/x-www-form-urlencoded":
        from urllib.parse import parse_qsl

        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    return {}


def _verify_v2(request: web.Request, state: SimulatorState, body: bytes) -> dict[str, str]:
    params = dict(request.query)
    params.update(_form(request, body))
    signature = params.pop("Signature", None)
    if signature is None:
        raise _Rejected(400, "MissingSignature", "Signature is mandatory for this action.")
    if params.get("AccessKeyId") != state.config.access_key_id:
        raise _Rejected(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
    if params.get("SignatureMethod") != "HMAC-SHA1":
        raise _Rejected(400, "InvalidSignatureMethod", "Specified signature method is not valid.")
    _check_fresh(state, _parse_time(params.get("Timestamp", "")), params.get("SignatureNonce", ""))
    expected = signing.aliyun_rpc_signature(params, state.config.access_key_secret, request.method)
    if not constant_time_equal(expected, signature):
        raise _Rejected(
            400,
            "SignatureDoesNotMatch",
            "Specified signature is not matched with our calculation.",
        )
    return params


async def _rpc(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = await request.read()
    try:
        if request.headers.get("Authorization", "").startswith("ACS3-"):
            params = _verify_v3(request, state, body)
        else:
            params = _verify_v2(request, state, body)
    except _Rejected as exc:
        record(request)["auth_ok"] = False
        return _error(request, exc.status, exc.code, exc.message)
    record(request)["auth_ok"] = True
    record(request)["params"] = params
    if params.get("Action") == "SendSms":
        return await _send_sms(request, state, params)
    if params.get("Action") == "QuerySendDetails":
        return _query_send_details(request, state, params)
    return _error(request, 404, "InvalidAction.NotFound", "Specified api is not found.")


def _query_send_details(
    request: web.Request, state: SimulatorState, params: dict[str, str]
) -> web.Response:
    for name in ("PhoneNumber", "SendDate", "PageSize", "CurrentPage"):
        if not params.get(name):
            return _error(request, 400, f"Missing{name}", f"{name} is mandatory for this action.")
    if not params["PageSize"].isdigit() or not 1 <= int(params["PageSize"]) <= 50:
        return _business(request, "isv.INVALID_PARAMETERS", "PageSize 取值 1-50")
    matches = [
        m
        for m in state.sent
        if m["phone"] == params["PhoneNumber"]
        and m["send_date"].replace("-", "")[:8] == params["SendDate"]
        and (not params.get("BizId") or m["biz_id"] == params["BizId"])
    ]
    size, page = int(params["PageSize"]), int(params["CurrentPage"])
    page_items = matches[(page - 1) * size : page * size]
    record(request)["answer_code"] = "OK"
    return web.json_response(
        {
            "Code": "OK",
            "Message": "OK",
            "RequestId": str(uuid.uuid4()).upper(),
            "TotalCount": len(matches),
            "SmsSendDetailDTOs": {
                "SmsSendDetailDTO": [
                    {
                        "PhoneNum": m["phone"],
                        "SendStatus": 3,
                        "ErrCode": "DELIVERED",
                        "OutId": m["out_id"],
                        "TemplateCode": m["template_code"],
                        "Content": m["content"],
                        "SendDate": m["send_date"],
                        "ReceiveDate": m["send_date"],
                    }
                    for m in page_items
                ]
            },
        }
    )


async def _send_sms(
    request: web.Request, state: SimulatorState, params: dict[str, str]
) -> web.Response:
    for name in ("PhoneNumbers", "SignName", "TemplateCode"):
        if not params.get(name):
            return _error(request, 400, f"Missing{name}", f"{name} is mandatory for this action.")
    phones = params["PhoneNumbers"].split(",")
    if len(phones) > 1000:
        return _business(request, "isv.MOBILE_COUNT_OVER_LIMIT", "手机号码数量超过限制")
    if "TemplateParam" in params:
        try:
            template_param = json.loads(params["TemplateParam"])
        except ValueError:
            template_param = None
        if not isinstance(template_param, dict):
            return _business(request, "isv.INVALID_JSON_PARAM", "JSON参数不合法, 只接受字符串值")
    outcome = state.next_outcome() or first_phone_outcome(phones)
    if outcome == "timeout":
        await hang(state)
    elif outcome is not None:
        code, message = _OUTCOME_ANSWERS[outcome]
        return _business(request, code, message)
    biz_id = f"{900619746936498440 + state.next_id()}^0"
    sent_at = datetime.now(UTC).astimezone(_BEIJING).strftime("%Y-%m-%d %H:%M:%S")
    for phone in phones:
        state.sent.append(
            {
                "biz_id": biz_id,
                "phone": phone,
                "out_id": params.get("OutId", ""),
                "template_code": params["TemplateCode"],
                "content": f"【{params['SignName']}】{params.get('TemplateParam', '')}",
                "send_date": sent_at,
            }
        )
    answer: dict[str, Any] = {
        "Code": "OK",
        "Message": "OK",
        "BizId": biz_id,
        "RequestId": str(uuid.uuid4()).upper(),
    }
    record(request)["answer_code"] = "OK"
    return web.json_response(answer)


def _business(request: web.Request, code: str, message: str) -> web.Response:
    # Business failures come back as HTTP 200 with Code != "OK" (dysmsapi SendSms doc).
    record(request)["answer_code"] = code
    return web.json_response(
        {"Code": code, "Message": message, "RequestId": str(uuid.uuid4()).upper()}
    )


def create_app(config: SimulatorConfig) -> web.Application:
    app = create_base_app(config)
    app.router.add_route("POST", "/", _rpc)
    app.router.add_route("GET", "/", _rpc)
    return app

"""Huawei MSGSMS simulator: X-WSSE and SDK-HMAC-SHA256 checks, batchSendSms answers."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from aiohttp import web

from smsgate.providers import signing
from smsgate.providers.simulators.base import (
    STATE,
    SimulatorConfig,
    SimulatorState,
    constant_time_equal,
    create_base_app,
    hang,
    json_answer,
    phone_outcome,
    record,
)

# "Batch SMS Sending API" notes: Created within 24 hours (X-WSSE), 15 minutes (AK/SK).
WSSE_MAX_SKEW = 24 * 3600
AKSK_MAX_SKEW = 15 * 60
_WSSE_FIELD = re.compile(r'(\w+)="([^"]*)"')

_REQUEST_ANSWERS = {
    "rate_limited": (429, "E000510", "Too many requests."),  # simulator's choice of code
    "quota": (400, "E000623", "SP account balance is insufficient."),
    "retryable": (500, "E000000", "System error."),
}


def _error(request: web.Request, status: int, code: str, description: str) -> web.Response:
    record(request)["answer_code"] = code
    return json_answer({"code": code, "description": description}, status)


def _verify_wsse(request: web.Request, state: SimulatorState) -> tuple[int, str, str] | None:
    auth = request.headers.get("Authorization", "")
    if 'realm="SDP"' not in auth or 'profile="UsernameToken"' not in auth:
        return 401, "E000001", "Authorization not contained in the HTTP header."
    fields = dict(_WSSE_FIELD.findall(request.headers.get("X-WSSE", "")))
    if not {"Username", "PasswordDigest", "Nonce", "Created"} <= set(fields):
        return 401, "E000020", "X-WSSE not contained in the HTTP header."
    if fields["Username"] != state.config.access_key_id:
        return 401, "E000102", "Invalid app_key."
    try:
        created = datetime.strptime(fields["Created"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return 401, "E000101", "Authentication failed."
    skew = state.config.max_skew_seconds or WSSE_MAX_SKEW
    if abs(state.now() - created.timestamp()) > skew:
        return 401, "E000101", "Authentication failed."
    expected = signing.huawei_wsse_password_digest(
        fields["Nonce"], fields["Created"], state.config.access_key_secret
    )
    if not constant_time_equal(expected, fields["PasswordDigest"]):
        return 401, "E000101", "Authentication failed."
    return None


def _verify_aksk(request: web.Request, state: SimulatorState) -> tuple[int, str, str] | None:
    auth = request.headers.get("Authorization", "")
    fields = dict(
        part.strip().split("=", 1)
        for part in auth.removeprefix("SDK-HMAC-SHA256 ").split(",")
        if "=" in part
    )
    if fields.get("Access") != state.config.access_key_id:
        return 401, "E000102", "Invalid app_key."
    try:
        moment = datetime.strptime(request.headers.get("X-Sdk-Date", ""), "%Y%m%dT%H%M%SZ")
    except ValueError:
        return 401, "E000045", "Authorization verification failed."
    skew = state.config.max_skew_seconds or AKSK_MAX_SKEW
    if abs(state.now() - moment.replace(tzinfo=UTC).timestamp()) > skew:
        return 401, "E000045", "Authorization verification failed."
    signed = fields.get("SignedHeaders", "").split(";")
    headers = {name: request.headers.get(name, "") for name in signed}
    payload_hash = request.headers.get("X-Sdk-Content-Sha256", "")
    expected = signing.huawei_sdk_hmac_authorization(
        state.config.access_key_id,
        state.config.access_key_secret,
        request.method,
        request.path,
        list(request.query.items()),
        headers,
        payload_hash,
    )
    if not constant_time_equal(expected, auth):
        return 401, "E000045", "Authorization verification failed."
    return None


async def _batch_send(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = await request.read()
    auth = request.headers.get("Authorization", "")
    verify = _verify_aksk if auth.startswith("SDK-HMAC-SHA256") else _verify_wsse
    failure = verify(request, state)
    record(request)["auth_ok"] = failure is None
    if failure is not None:
        return _error(request, *failure)
    if request.content_type != "application/x-www-form-urlencoded":
        return _error(request, 400, "E000040", "The content type is incorrect.")
    form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    record(request)["params"] = form
    if not form.get("from") or not form.get("to") or not form.get("templateId"):
        return _error(request, 400, "E000503", "Parameter error.")
    phones = form["to"].split(",")
    if len(phones) > 500:
        return _error(request, 400, "E000503", "More than 500 numbers.")
    if "templateParas" in form:
        try:
            paras = json.loads(form["templateParas"])
        except ValueError:
            paras = None
        if not isinstance(paras, list) or not all(isinstance(p, str) and p for p in paras):
            return _error(request, 400, "E000000", "System error.")
    outcome = state.next_outcome()
    if outcome == "timeout":
        await hang(state)
    elif outcome == "permanent":
        return _error(request, 400, "E000111", "Template does not exist.")
    elif outcome is not None:
        return _error(request, *_REQUEST_ANSWERS[outcome])
    result = []
    for phone in phones:
        phone_result = phone_outcome(phone)
        if phone_result == "timeout":
            await hang(state)
            phone_result = None
        entry = {
            "originTo": phone,
            "createTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "from": form["from"],
            "smsMsgId": "",
            "status": "000000",
            "countryId": "CN" if phone.startswith("+86") else "",
            "total": 1,
        }
        if phone_result is None:
            entry["smsMsgId"] = f"d6e3cdd0-522b-4692-8304-a07553cdf591_{state.next_id()}"
        else:
            entry["status"] = "E200015"  # the number is invalid (per-recipient error)
        result.append(entry)
    record(request)["answer_code"] = ",".join(str(r["status"]) for r in result)
    return json_answer(
        {"code": "000000", "description": "Success", "result": result},
        content_type="application/json;charset=UTF-8",
    )


def create_app(config: SimulatorConfig) -> web.Application:
    app = create_base_app(config)
    app.router.add_post("/sms/batchSendSms/v1", _batch_send)
    return app

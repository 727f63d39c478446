"""Tencent Cloud SMS simulator: TC3-HMAC-SHA256 checks, SendSms 2021-01-11, per-number answers."""

from __future__ import annotations

import json
import uuid
from typing import Any

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

MAX_SKEW_SECONDS = 300  # X-TC-Timestamp must be within 5 minutes (signature v3 doc)

_PHONE_ANSWERS = {
    "permanent": ("InvalidParameterValue.IncorrectPhoneNumber", "invalid mobile number"),
    "rate_limited": (
        "LimitExceeded.PhoneNumberThirtySecondLimit",
        "too many messages to this number within 30 seconds",
    ),
    "quota": (
        "FailedOperation.InsufficientBalanceInSmsPackage",
        "insufficient package balance",
    ),
    "retryable": ("InternalError.Timeout", "request timed out"),
}
_REQUEST_ANSWERS = {
    "permanent": ("FailedOperation.TemplateIncorrectOrUnapproved", "template unapproved"),
    "rate_limited": ("RequestLimitExceeded", "request frequency exceeds the limit"),
    "quota": ("LimitExceeded.AppDailyLimit", "daily limit of the application reached"),
    "retryable": ("InternalError.OtherError", "other error"),
}


def _error(request: web.Request, code: str, message: str) -> web.Response:
    # Every failure, authentication included, is HTTP 200 with Response.Error.
    record(request)["answer_code"] = code
    return json_answer(
        {
            "Response": {
                "Error": {"Code": code, "Message": message},
                "RequestId": str(uuid.uuid4()),
            }
        }
    )


def _verify(request: web.Request, state: SimulatorState, body: bytes) -> tuple[str, str] | None:
    auth = request.headers.get("Authorization", "")
    algorithm, _, rest = auth.partition(" ")
    fields = dict(part.strip().split("=", 1) for part in rest.split(",") if "=" in part)
    if algorithm != "TC3-HMAC-SHA256" or not {"Credential", "SignedHeaders", "Signature"} <= set(
        fields
    ):
        return "AuthFailure.InvalidAuthorization", "Authorization is invalid."
    secret_id, _, scope = fields["Credential"].partition("/")
    if secret_id != state.config.access_key_id:
        return "AuthFailure.SecretIdNotFound", "The SecretId is not found."
    try:
        timestamp = int(request.headers.get("X-TC-Timestamp", ""))
    except ValueError:
        return "InvalidParameter", "X-TC-Timestamp is invalid."
    skew = state.config.max_skew_seconds or MAX_SKEW_SECONDS
    if abs(state.now() - timestamp) > skew:
        return "AuthFailure.SignatureExpire", "Signature expired."
    if scope != f"{signing.tc3_date(timestamp)}/sms/tc3_request":
        return "AuthFailure.SignatureFailure", "The credential scope is wrong."
    if fields["SignedHeaders"] != "content-type;host":
        return "AuthFailure.SignatureFailure", "The provided credentials could not be validated."
    expected = signing.tc3_signature(
        state.config.access_key_secret,
        timestamp,
        "sms",
        request.headers.get("Content-Type", ""),
        request.headers.get("Host", ""),
        body,
    )
    if not constant_time_equal(expected, fields["Signature"]):
        return (
            "AuthFailure.SignatureFailure",
            "The provided credentials could not be validated. Please check your signature.",
        )
    return None


async def _api(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = await request.read()
    failure = _verify(request, state, body)
    record(request)["auth_ok"] = failure is None
    if failure is not None:
        return _error(request, *failure)
    if request.headers.get("X-TC-Action") != "SendSms":
        return _error(request, "InvalidAction", "The action is not found.")
    if request.headers.get("X-TC-Version") != "2021-01-11":
        return _error(request, "NoSuchVersion", "The version is not supported.")
    if not request.headers.get("X-TC-Region"):
        return _error(request, "MissingParameter", "The X-TC-Region header is missing.")
    try:
        params = json.loads(body)
    except ValueError:
        return _error(request, "InvalidParameter", "The request body is not valid JSON.")
    record(request)["params"] = params
    if params.get("PhoneNumberSet") == []:
        # The SDK's errorcodes.py name for an empty set (smsgate's credentials check).
        return _error(
            request, "MissingParameter.EmptyPhoneNumberSet", "The PhoneNumberSet is empty."
        )
    for name in ("PhoneNumberSet", "SmsSdkAppId", "TemplateId"):
        if not params.get(name):
            return _error(request, "MissingParameter", f"The parameter `{name}` is missing.")
    phones = params["PhoneNumberSet"]
    if len(phones) > 200:
        return _error(request, "LimitExceeded.PhoneNumberCountLimit", "more than 200 numbers")
    outcome = state.next_outcome()
    if outcome == "timeout":
        await hang(state)
    elif outcome is not None:
        return _error(request, *_REQUEST_ANSWERS[outcome])
    return await _answer(request, state, params)


async def _answer(
    request: web.Request, state: SimulatorState, params: dict[str, Any]
) -> web.Response:
    statuses = []
    for phone in params["PhoneNumberSet"]:
        outcome = phone_outcome(phone)
        if outcome == "timeout":
            await hang(state)
            outcome = None
        status: dict[str, Any] = {
            "SerialNo": "",
            "PhoneNumber": phone,
            "Fee": 0,
            "SessionContext": params.get("SessionContext", ""),
            "Code": "Ok",
            "Message": "send success",
            "IsoCode": "CN" if phone.startswith("+86") else "",
        }
        if outcome is None:
            status["SerialNo"] = f"5000:{1045710669157053657849499619 + state.next_id()}"
            status["Fee"] = 1
        else:
            status["Code"], status["Message"] = _PHONE_ANSWERS[outcome]
        statuses.append(status)
    record(request)["answer_code"] = ",".join(s["Code"] for s in statuses)
    return json_answer({"Response": {"SendStatusSet": statuses, "RequestId": str(uuid.uuid4())}})


def create_app(config: SimulatorConfig) -> web.Application:
    app = create_base_app(config)
    app.router.add_post("/", _api)
    return app

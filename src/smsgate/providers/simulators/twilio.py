"""Twilio simulator: Basic auth, POST /2010-04-01/Accounts/{sid}/Messages.json answers."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from aiohttp import web

from smsgate.providers.base import FeeScheme
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
from smsgate.sending.fee import count_segments

_OUTCOME_ANSWERS = {
    "permanent": (400, 21211, "The 'To' number is not a valid phone number."),
    "rate_limited": (429, 20429, "Too Many Requests"),
    "quota": (429, 20429, "Too Many Requests"),
    "retryable": (500, 20500, "Internal Server Error"),
}


# A recipient who replied STOP: Twilio refuses every later message to them with 21610.
OPTED_OUT_SUFFIX = "9006"


def _error(request: web.Request, status: int, code: int, message: str) -> web.Response:
    record(request)["answer_code"] = str(code)
    return json_answer(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status,
    )


def _authorised(request: web.Request, state: SimulatorState) -> bool:
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Basic "):
        return False
    try:
        user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return constant_time_equal(user, state.config.access_key_id) and constant_time_equal(
        password, state.config.access_key_secret
    )


async def _messages(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = await request.read()
    ok = _authorised(request, state) and request.match_info["sid"] == state.config.access_key_id
    record(request)["auth_ok"] = ok
    if not ok:
        return _error(request, 401, 20003, "Authenticate")
    form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    record(request)["params"] = form
    if not form.get("To"):
        return _error(request, 400, 21604, "A 'To' phone number is required.")
    if not form.get("From") and not form.get("MessagingServiceSid"):
        return _error(request, 400, 21603, "A 'From' phone number is required.")
    if not form.get("Body"):
        return _error(request, 400, 21602, "Message body is required.")
    if form["To"].endswith(OPTED_OUT_SUFFIX):
        return _error(request, 400, 21610, "Attempt to send to unsubscribed recipient")
    outcome = state.next_outcome() or phone_outcome(form["To"])
    if outcome == "timeout":
        await hang(state)
    elif outcome is not None:
        return _error(request, *_OUTCOME_ANSWERS[outcome])
    sid = f"SM{state.next_id():032x}"
    now = datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
    record(request)["answer_code"] = "queued"
    return json_answer(
        {
            "account_sid": state.config.access_key_id,
            "api_version": "2010-04-01",
            "body": form["Body"],
            "date_created": now,
            "date_updated": now,
            "date_sent": None,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": str(count_segments(form["Body"], FeeScheme.GSM)),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if form.get("MessagingServiceSid") else "queued",
            "to": form["To"],
            "uri": f"/2010-04-01/Accounts/{state.config.access_key_id}/Messages/{sid}.json",
        },
        201,
    )


async def _account(request: web.Request) -> web.Response:
    """GET /2010-04-01/Accounts/{sid}.json: the Account resource, same Basic auth as sends."""
    state = request.app[STATE]
    ok = _authorised(request, state) and request.match_info["sid"] == state.config.access_key_id
    record(request)["auth_ok"] = ok
    if not ok:
        return _error(request, 401, 20003, "Authenticate")
    sid = state.config.access_key_id
    record(request)["answer_code"] = "active"
    return json_answer(
        {
            "sid": sid,
            "friendly_name": "smsgate simulator",
            "status": "active",
            "type": "Full",
            "owner_account_sid": sid,
            "date_created": "Mon, 01 Jan 2024 00:00:00 +0000",
            "uri": f"/2010-04-01/Accounts/{sid}.json",
        }
    )


def create_app(config: SimulatorConfig) -> web.Application:
    app = create_base_app(config)
    app.router.add_get("/2010-04-01/Accounts/{sid}.json", _account)
    app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", _messages)
    return app

"""Qiniu Cloud SMS simulator: "Qiniu" token checks, POST /v1/message, Qiniu error answers."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime

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
    json_answer,
    record,
)

# The Qiniu SDKs sign X-Qiniu-Date; the simulator rejects one more than 15 minutes off
# (the simulator's choice: Qiniu documents no exact window for the SMS API).
MAX_SKEW_SECONDS = 15 * 60
_CJK = re.compile(r"[\u3400-\u9fff]")

_OUTCOME_ANSWERS = {
    "permanent": (400, "InvalidQueryValue", "invalid mobile"),
    "rate_limited": (429, "TooManyRequests", "too many requests"),
    "quota": (400, "AccountBalanceNotEnough", "account balance not enough"),
    "retryable": (500, "ServerInternalError", "server internal error"),
}


def _error(request: web.Request, status: int, error: str, message: str) -> web.Response:
    record(request)["answer_code"] = error
    return json_answer({"error": error, "message": message, "request_id": uuid.uuid4().hex}, status)


def _verify(request: web.Request, state: SimulatorState, body: bytes) -> str | None:
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Qiniu ") or ":" not in auth:
        return "bad token"
    access_key, _, _ = auth[len("Qiniu ") :].partition(":")
    if access_key != state.config.access_key_id:
        return "bad token"
    date = request.headers.get("X-Qiniu-Date")
    if date is not None:
        try:
            moment = datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            return "invalid X-Qiniu-Date"
        skew = state.config.max_skew_seconds or MAX_SKEW_SECONDS
        if abs(state.now() - moment.timestamp()) > skew:
            return "X-Qiniu-Date expired"
    expected = signing.qiniu_token(
        access_key,
        state.config.access_key_secret,
        request.method,
        request.path_qs,
        request.headers.get("Content-Type"),
        dict(request.headers),
        body,
        host=request.headers.get("Host", ""),
    )
    if not constant_time_equal(f"Qiniu {expected}", auth):
        return "bad token"
    return None


async def _message(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = await request.read()
    failure = _verify(request, state, body)
    record(request)["auth_ok"] = failure is None
    if failure is not None:
        return _error(request, 401, "BadToken", failure)
    try:
        params = json.loads(body)
    except ValueError:
        return _error(request, 400, "MalformedJSON", "malformed json")
    record(request)["params"] = params
    if not params.get("template_id") or not params.get("mobiles"):
        return _error(request, 400, "InvalidQueryValue", "template_id and mobiles are required")
    if any(_CJK.search(str(v)) for v in (params.get("parameters") or {}).values()):
        return _error(request, 400, "InvalidQueryValue", "parameters may not contain Chinese")
    outcome = state.next_outcome() or first_phone_outcome(params["mobiles"])
    if outcome == "timeout":
        await hang(state)
    elif outcome is not None:
        return _error(request, *_OUTCOME_ANSWERS[outcome])
    record(request)["answer_code"] = "OK"
    return json_answer({"job_id": str(1197638348126572544 + state.next_id())})


async def _signatures(request: web.Request) -> web.Response:
    """GET /v1/signature ("查询签名"): authenticated like a send; one approved signature."""
    state = request.app[STATE]
    failure = _verify(request, state, await request.read())
    record(request)["auth_ok"] = failure is None
    if failure is not None:
        return _error(request, 401, "BadToken", failure)
    page = int(request.query.get("page", "1") or 1)
    page_size = int(request.query.get("page_size", "20") or 20)
    record(request)["answer_code"] = "OK"
    item = {
        "id": "1131945110001459200",
        "signature": "smsgate",
        "source": "website",
        "audit_status": "passed",
        "reject_reason": "",
        "created_at": 1700000000,
        "updated_at": 1700000000,
    }
    return json_answer({"items": [item], "total": 1, "page": page, "page_size": page_size})


def create_app(config: SimulatorConfig) -> web.Application:
    app = create_base_app(config)
    app.router.add_post("/v1/message", _message)
    app.router.add_get("/v1/signature", _signatures)
    return app

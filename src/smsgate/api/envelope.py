"""The seed's response envelope: requestId, code (= HTTP status), msg, data."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from starlette.responses import Response


def envelope(
    code: int,
    msg: str,
    data: Any = None,
    request_id: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    payload = {
        "requestId": request_id or str(uuid.uuid4()),
        "code": code,
        "msg": msg,
        "data": data,
        **extra,
    }
    return Response(
        orjson.dumps(payload), status_code=code, media_type="application/json", headers=headers
    )

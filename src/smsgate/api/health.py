"""Liveness and readiness probes."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import select, text
from starlette.responses import JSONResponse, Response

from smsgate.db.base import utcnow
from smsgate.db.models import AppConfig
from smsgate.observability.metrics import CONTENT_TYPE, database_gauges, render
from smsgate.pipeline.repository import queue_depth

log = logging.getLogger("smsgate.api")

router = APIRouter()


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database (and Redis, when configured) answer")
async def readyz(request: Request) -> JSONResponse:
    state = request.app.state
    checks: dict[str, Any] = {}
    try:
        async with state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unavailable: {type(exc).__name__}"
    if state.redis is not None:
        try:
            await state.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"unavailable: {type(exc).__name__}"
    failing = [name for name, value in checks.items() if value != "ok"]
    if failing:
        return JSONResponse(
            {"status": "unavailable", "failing": failing, "checks": checks}, status_code=503
        )
    return JSONResponse({"status": "ok", "checks": checks})


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(request: Request) -> Response:
    """Process metrics plus gauges read from the database now (quota left, queue)."""
    quota: dict[str, int] = {}
    depth, lag = 0, 0.0
    try:
        async with request.app.state.engine.connect() as conn:
            rows = await conn.execute(
                select(AppConfig.app_no, AppConfig.available_number - AppConfig.use_number)
            )
            quota = {app_no: int(left) for app_no, left in rows}
            depth, oldest = await queue_depth(conn)
            if oldest is not None:
                lag = max(0.0, (utcnow() - oldest).total_seconds())
    except Exception:  # metrics must answer even while the database is down
        log.warning("metrics: the database gauges are unavailable", exc_info=True)
    body = render(database_gauges(quota, depth, lag))
    return Response(body, media_type=CONTENT_TYPE)

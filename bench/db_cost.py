"""What the send path's MariaDB work costs in gateway CPU, as written and in leaner variants."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import asyncmy
import uvloop
from sqlalchemy import bindparam, insert, update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from run import MYSQL_HOST, MYSQL_PORT, MYSQL_USER, SMSGATE, BenchError, run_cli, sql
from smsgate.apps import repository as apps_repo
from smsgate.config import Settings
from smsgate.db.base import utcnow
from smsgate.db.models import AppConfig, SendLog, SendStatus
from smsgate.db.session import create_engine, normalise_url
from smsgate.records import repository as records_repo
from smsgate.records.repository import RecordOutcome

DB_NAME = "smsgate_bench_dbcost"
DATABASE_URL = f"mysql+asyncmy://{MYSQL_USER}@{MYSQL_HOST}/{DB_NAME}"
APP_NO = "A-DBCOST"
PHONE = "+8613800138000"

_log = SendLog.__table__
_app = AppConfig.__table__


def _sending_row(request_id: str) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "app_no": APP_NO,
        "business_no": "B-BENCH",
        "template_no": "T-BENCH",
        "provider_no": "bench",
        "status": int(SendStatus.SENDING),
        "fee": 1,
        "phone_number": PHONE,
        "message": "",
        "code": "",
        "content": "Your code is 123456",
        "params": '["123456"]',
    }


# -- the variants: each does what one single-phone send does in MariaDB -------------------------
# Transaction 1: insert the SENDING record and reserve the quota. Transaction 2: record the
# provider's answer (the refund of 0 is skipped, as in the gateway).


async def as_the_gateway(engine: AsyncEngine) -> None:
    """The gateway's repositories on the gateway's engine (pool_pre_ping, reset on return)."""
    request_id = str(uuid.uuid4())
    async with engine.begin() as conn:
        await records_repo.insert_records(conn, [_sending_row(request_id)])
        await apps_repo.reserve_quota(conn, APP_NO, 1)
    outcome = RecordOutcome(PHONE, int(SendStatus.SUBMITTED), "OK", "OK", 1, "biz-1", "{}")
    async with engine.begin() as conn:
        await records_repo.finish_records(conn, request_id, [outcome])
        await apps_repo.refund_quota(conn, APP_NO, 0)


_INSERT = insert(_log)
_RESERVE = (
    update(_app)
    .where(
        _app.c.app_no == bindparam("b_app_no"),
        _app.c.status.is_(True),
        _app.c.use_number + bindparam("amount") <= _app.c.available_number,
    )
    .values(use_number=_app.c.use_number + bindparam("amount"))
)
_FINISH = (
    update(_log)
    .where(_log.c.request_id == bindparam("rid"), _log.c.phone_number == bindparam("phone"))
    .values(
        status=bindparam("new_status"),
        code=bindparam("new_code"),
        message=bindparam("new_message"),
        fee=bindparam("new_fee"),
        provider_message_id=bindparam("new_pmid"),
        provider_response=bindparam("new_body"),
        updated_at=bindparam("now"),
    )
)


def _finish_params(request_id: str, now: datetime) -> dict[str, Any]:
    return {
        "rid": request_id,
        "phone": PHONE,
        "new_status": int(SendStatus.SUBMITTED),
        "new_code": "OK",
        "new_message": "OK",
        "new_fee": 1,
        "new_pmid": "biz-1",
        "new_body": "{}",
        "now": now,
    }


async def prebuilt_statements(engine: AsyncEngine) -> None:
    """SQLAlchemy Core statements built once at import, only parameters per call."""
    request_id, now = str(uuid.uuid4()), utcnow()
    async with engine.begin() as conn:
        await conn.execute(
            _INSERT, [{**_sending_row(request_id), "created_at": now, "updated_at": now}]
        )
        await conn.execute(_RESERVE, {"b_app_no": APP_NO, "amount": 1})
    async with engine.begin() as conn:
        await conn.execute(_FINISH, _finish_params(request_id, now))


_RAW_INSERT = (
    "INSERT INTO sms_send_log (request_id, app_no, business_no, template_no, provider_no,"
    " status, fee, phone_number, message, code, content, params, created_at, updated_at)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_RAW_RESERVE = (
    "UPDATE sms_app_config SET use_number = use_number + %s"
    " WHERE app_no = %s AND status = 1 AND use_number + %s <= available_number"
)
_RAW_FINISH = (
    "UPDATE sms_send_log SET status = %s, code = %s, message = %s, fee = %s,"
    " provider_message_id = %s, provider_response = %s, updated_at = %s"
    " WHERE request_id = %s AND phone_number = %s"
)


async def raw_driver(pool: Any) -> None:
    """The same SQL text straight on an asyncmy pool: no SQLAlchemy, no greenlet."""
    request_id, now = str(uuid.uuid4()), utcnow()
    row = _sending_row(request_id)
    async with pool.acquire() as conn:
        async with conn.cursor() as cursor:
            await cursor.execute(_RAW_INSERT, (*row.values(), now, now))
            await cursor.execute(_RAW_RESERVE, (1, APP_NO, 1))
        await conn.commit()
    submitted = int(SendStatus.SUBMITTED)
    async with pool.acquire() as conn:
        async with conn.cursor() as cursor:
            await cursor.execute(
                _RAW_FINISH, (submitted, "OK", "OK", 1, "biz-1", "{}", now, request_id, PHONE)
            )
        await conn.commit()


# -- driver ------------------------------------------------------------------------------------


async def measure(
    label: str, send: Callable[[Any], Awaitable[None]], target: Any, sends: int, concurrency: int
) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            await send(target)

    for _ in range(100):  # warm the pool and the statement caches
        await send(target)
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(sends)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(f"{label:<62} {1000 * cpu / sends:6.3f} ms {sends / wall:8,.0f}")


async def compare(sends: int, concurrency: int) -> None:
    settings = Settings(database_url=DATABASE_URL)
    gateway_engine = create_engine(settings)
    lean_engine = create_async_engine(
        normalise_url(DATABASE_URL),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_recycle=1800,
        pool_reset_on_return=None,  # engine.begin() always ends in COMMIT or ROLLBACK
    )
    pool = await asyncmy.create_pool(
        host=MYSQL_HOST,
        port=MYSQL_PORT,
        user=MYSQL_USER,
        db=DB_NAME,
        charset="utf8mb4",
        minsize=1,
        maxsize=settings.db_pool_size + settings.db_max_overflow,
    )
    variants: list[tuple[str, Callable[[Any], Awaitable[None]], Any]] = [
        ("gateway repositories, gateway engine", as_the_gateway, gateway_engine),
        ("gateway repositories, no pre-ping, no reset-on-return", as_the_gateway, lean_engine),
        ("prebuilt Core statements, no pre-ping/reset", prebuilt_statements, lean_engine),
        ("raw asyncmy pool, same SQL text", raw_driver, pool),
    ]
    print(f"{'variant':<62} {'CPU/send':>9} {'sends/s':>8}")
    try:
        for label, send, target in variants:
            await measure(label, send, target, sends, concurrency)
    finally:
        await gateway_engine.dispose()
        await lean_engine.dispose()
        pool.close()
        await pool.wait_closed()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sends", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    env = {**os.environ, "SMSGATE_DATABASE_URL": DATABASE_URL}
    try:
        sql([(f"DROP DATABASE IF EXISTS {DB_NAME}", ()), (f"CREATE DATABASE {DB_NAME}", ())], None)
        run_cli([SMSGATE, "db", "upgrade"], env)
        sql(
            [
                (
                    "INSERT INTO sms_app_config (app_no, app_name, available_number,"
                    " current_limiting, use_number, status) VALUES (%s, %s, %s, %s, %s, %s)",
                    (APP_NO, "db cost", 1_000_000_000, 0, 0, 1),
                )
            ],
            DB_NAME,
        )
        uvloop.run(compare(args.sends, args.concurrency))
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        sql([(f"DROP DATABASE IF EXISTS {DB_NAME}", ())], None)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Housekeeping removes expired Idempotency-Keys and old delivered webhook events only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from conftest import Stack, make_world, run_sql
from smsgate.db.session import create_engine
from smsgate.housekeeping import Housekeeping


async def test_expired_keys_and_old_deliveries_go_the_rest_stays(stack: Stack) -> None:
    world = await make_world(stack.settings())
    now = datetime.now(UTC).replace(tzinfo=None)
    for key, age in (("old", timedelta(hours=25)), ("fresh", timedelta(hours=1))):
        await run_sql(
            world.settings,
            "INSERT INTO sms_idempotency_key (app_no, idem_key, endpoint, fingerprint,"
            " status_code, response, created_at, updated_at) VALUES (:a, :k, 'send-message',"
            " 'f', 200, '{}', :t, :t)",
            a=world.app_no,
            k=key,
            t=now - age,
        )
    for record_id, status, age in ((10**9 + 1, "delivered", 8), (10**9 + 2, "delivered", 1),
                                   (10**9 + 3, "dead", 30)):  # fmt: skip
        at = now - timedelta(days=age)
        await run_sql(
            world.settings,
            "INSERT INTO sms_webhook_delivery (app_no, record_id, body, status, attempts,"
            " next_attempt_at, delivered_at, created_at, updated_at) VALUES (:a, :r, '{}', :s,"
            " 1, :t, :d, :t, :t)",
            a=world.app_no,
            r=record_id,
            s=status,
            t=at,
            d=at if status == "delivered" else None,
        )
    engine = create_engine(world.settings)
    try:
        removed = await Housekeeping(engine).run_once()
    finally:
        await engine.dispose()
    assert removed[0] >= 1 and removed[1] >= 1
    keys = await run_sql(
        world.settings, "SELECT idem_key FROM sms_idempotency_key WHERE app_no = :a", a=world.app_no
    )
    assert [k for (k,) in keys] == ["fresh"]
    left = await run_sql(
        world.settings,
        "SELECT record_id FROM sms_webhook_delivery WHERE app_no = :a ORDER BY record_id",
        a=world.app_no,
    )
    assert [r for (r,) in left] == [10**9 + 2, 10**9 + 3]  # dead letters stay for replay

"""A verification code Aliyun never accepted is not resent by reconciliation."""

from __future__ import annotations

from typing import Any

from conftest import Stack, run_sql
from providers.conftest import running
from smsgate.db.models import SendStatus
from smsgate.providers.simulators import aliyun as sim
from test_reconcile import PHONE, aliyun_world, calls, fast_worker, wait_for_status


async def test_a_verification_code_aliyun_never_accepted_is_failed_not_resent(
    stack: Stack, client_for: Any
) -> None:
    async with running(sim.create_app) as simulator:
        settings = fast_worker(stack, reconcile_query_window_seconds=0)
        world = await aliyun_world(settings, simulator.url)
        await run_sql(
            settings,
            "UPDATE sms_business_config SET is_verification = 1 WHERE business_no = :b",
            b=world.business_no,
        )
        async with client_for(settings) as client:
            issued = await client.post(
                "/api/v1/verification-codes",
                json={"businessNo": world.business_no, "phone": PHONE},
                headers=world.auth,
            )
            assert issued.status_code == 200, issued.text
            request_id = issued.json()["requestId"]
            [(params,)] = await run_sql(
                settings, "SELECT params FROM sms_send_log WHERE request_id = :r", r=request_id
            )
            assert "*" in params  # the record keeps only the masked code
            simulator.state.sent.clear()  # as if Aliyun had never accepted it
            await run_sql(
                settings,
                "UPDATE sms_send_log SET status = :s, code = 'TIMEOUT' WHERE request_id = :r",
                s=int(SendStatus.UNKNOWN),
                r=request_id,
            )
            code = await wait_for_status(world, request_id, SendStatus.FAILED)
        sends = calls(simulator, "SendSms")
    assert code == "RECONCILED_NOT_SENT"
    assert len(sends) == 1  # the first send only: the masked code never went out
    [(used,)] = await run_sql(
        settings, "SELECT use_number FROM sms_app_config WHERE app_no = :a", a=world.app_no
    )
    assert used == 0  # never accepted by Aliyun: not billed
    [(fee,)] = await run_sql(
        settings, "SELECT fee FROM sms_send_log WHERE request_id = :r", r=request_id
    )
    assert fee == 0  # the record agrees with the quota

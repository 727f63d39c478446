"""A message a fallback channel never took is sent again from the primary, as the primary."""

from __future__ import annotations

from typing import Any

from conftest import Stack, World, make_world, run_sql
from providers.conftest import AK, SECRET, running
from smsgate.db.models import SendStatus
from smsgate.providers.simulators import aliyun as sim
from test_failover import add_channel, set_fallbacks, use_number
from test_reconcile import PHONE, URL, calls, fast_worker, wait_for_status

# Two segments: 80 characters after the signature.
LONG = "Code ${code} from the backup channel " + "x" * 45


async def record(world: World, request_id: str) -> tuple[Any, ...]:
    [row] = await run_sql(
        world.settings,
        "SELECT status, provider_no, template_no, content, fee FROM sms_send_log"
        " WHERE request_id = :r",
        r=request_id,
    )
    return tuple(row)


async def test_a_fallback_that_never_took_it_is_followed_by_a_resend_from_the_primary(
    stack: Stack, client_for: Any
) -> None:
    async with running(sim.create_app) as simulator:
        settings = fast_worker(stack, reconcile_query_window_seconds=0, config_cache_ttl_seconds=0)
        world = await make_world(settings, channel_ext={"reject_phones": [PHONE]})
        backup, backup_template = await add_channel(
            settings,
            template_content=LONG,
            channel_no="AliYun",
            endpoint=simulator.url,
            access_key_id=AK,
            access_key_secret=SECRET,
        )
        await set_fallbacks(world, [backup_template])
        async with client_for(settings) as client:
            sent = await client.post(
                URL,
                json={"businessNo": world.business_no, "phones": [PHONE], "params": ["1234"]},
                headers=world.auth,
            )
            assert sent.status_code == 200, sent.text
            request_id = sent.json()["requestId"]
            _, provider_no, template_no, _, fee = await record(world, request_id)
            assert (provider_no, template_no, fee) == (backup, backup_template, 2)
            assert await use_number(world) == 2
            # The primary works again; Aliyun's answer was lost and Aliyun never took it.
            await run_sql(
                settings,
                "UPDATE sms_service_provider_config SET ext_json = '{}' WHERE provider_no = :p",
                p=world.provider_no,
            )
            simulator.state.sent.clear()
            await run_sql(
                settings,
                "UPDATE sms_send_log SET status = :s, code = 'TIMEOUT' WHERE request_id = :r",
                s=int(SendStatus.UNKNOWN),
                r=request_id,
            )
            await wait_for_status(world, request_id, SendStatus.SUBMITTED)
        attempts = await run_sql(
            settings,
            "SELECT attempt, provider_no, status FROM sms_send_attempt WHERE request_id = :r"
            " ORDER BY attempt",
            r=request_id,
        )
    _, provider_no, template_no, content, fee = await record(world, request_id)
    # Sent again from the start of the chain, and the record says so: the primary's
    # channel, template and text, and its one segment (the fallback's second given back).
    assert (provider_no, template_no, fee) == (world.provider_no, world.template_no, 1)
    assert content == "Your code is 1234"
    assert await use_number(world) == 1
    assert [(a[1], SendStatus(a[2])) for a in attempts] == [
        (world.provider_no, SendStatus.FAILED),
        (backup, SendStatus.SUBMITTED),
        (world.provider_no, SendStatus.SUBMITTED),
    ]
    assert len(calls(simulator, "SendSms")) == 1  # Aliyun was not called a second time

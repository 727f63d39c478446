"""Rendering, fee counting, phone normalisation, key hashing and the TTL cache."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from smsgate.cache import TTLCache
from smsgate.crypto import SecretBox, app_key_matches, hash_app_key, new_app_key
from smsgate.providers.base import FeeScheme
from smsgate.sending.fee import count_segments
from smsgate.sending.phones import PhoneError, normalise_phone
from smsgate.sending.render import TemplateError, placeholder_names, render_content


def test_named_placeholders_in_order_of_first_appearance() -> None:
    content = "Hi ${name}, code ${code}; again ${name}"
    names = placeholder_names(content)
    assert names == ["name", "code"]
    assert render_content(content, names, ["Ann", "42"]) == "Hi Ann, code 42; again Ann"


def test_numbered_placeholders_follow_their_number() -> None:
    content = "{2} before {1}"
    names = placeholder_names(content)
    assert names == ["1", "2"]
    assert render_content(content, names, ["a", "b"]) == "b before a"


def test_param_values_are_not_rendered_again() -> None:
    names = placeholder_names("${a}-${b}")
    assert render_content("${a}-${b}", names, ["${b}", "{1}"]) == "${b}-{1}"


@pytest.mark.parametrize("content", ["${a} {1}", "{1} {3}", "{2}"])
def test_unusable_templates(content: str) -> None:
    with pytest.raises(TemplateError):
        placeholder_names(content)


def test_huawei_style_placeholders() -> None:
    assert placeholder_names("code ${NUM_6} for ${1}") == ["NUM_6", "1"]


@pytest.mark.parametrize(
    ("content", "sign", "segments"),
    [
        ("", "", 1),
        ("a" * 70, "", 1),
        ("a" * 71, "", 2),
        ("a" * 134, "", 2),
        ("a" * 135, "", 3),
        ("验" * 66, "签名", 1),  # 【签名】 is 4 characters: 70 in all
        ("验" * 67, "签名", 2),
    ],
)
def test_chinese_segments(content: str, sign: str, segments: int) -> None:
    assert count_segments(content, FeeScheme.CHINESE, sign) == segments


@pytest.mark.parametrize(
    ("content", "segments"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # extension characters take two septets
        ("€" * 81, 2),
        ("é" * 160, 1),  # in the GSM-7 basic set
        ("ç" * 70, 1),  # not GSM-7: UCS-2
        ("ç" * 71, 2),
        ("😀" * 35, 1),  # two UTF-16 units each
        ("😀" * 36, 2),
    ],
)
def test_gsm_segments(content: str, segments: int) -> None:
    assert count_segments(content, FeeScheme.GSM) == segments


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+8618200000068", "CN", "+8618200000068"),
        ("18200000068", "CN", "+8618200000068"),
        (" +86 182 0000 0068 ", "CN", "+8618200000068"),
        ("(202) 555-0123", "US", "+12025550123"),
    ],
)
def test_phone_normalisation(raw: str, region: str, expected: str) -> None:
    assert normalise_phone(raw, region) == expected


@pytest.mark.parametrize("raw", ["", "abc", "123", "+86123", "1" * 40])
def test_invalid_phones(raw: str) -> None:
    with pytest.raises(PhoneError):
        normalise_phone(raw, "CN")


def test_app_keys_are_hashed_and_compared() -> None:
    key = new_app_key("A-1")
    assert key.startswith("A-1.")
    stored = hash_app_key(key)
    assert key not in stored
    assert app_key_matches(key, stored)
    assert not app_key_matches(key + "x", stored)
    assert not app_key_matches(key, None)


def test_secret_box_round_trip_and_plain_values() -> None:
    box = SecretBox("s3cret")
    sealed = box.seal("provider-secret")
    assert sealed.startswith("fernet:") and "provider-secret" not in sealed
    assert box.reveal(sealed) == "provider-secret"
    assert box.reveal("plain") == "plain"
    with pytest.raises(ValueError, match="SMSGATE_SECRET_KEY"):
        SecretBox("other").reveal(sealed)
    with pytest.raises(ValueError, match="not set"):
        SecretBox(None).reveal(sealed)


async def test_ttl_cache_single_flight_and_expiry() -> None:
    calls = 0

    async def load(key: str) -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return f"{key}-{calls}"

    cache: TTLCache[str, str] = TTLCache(0.2)
    values = await asyncio.gather(*(cache.get("k", load) for _ in range(10)))
    assert values == ["k-1"] * 10 and calls == 1
    assert await cache.get("k", load) == "k-1"
    await asyncio.sleep(0.25)
    assert await cache.get("k", load) == "k-2"
    cache.invalidate()
    assert await cache.get("k", load) == "k-3"


async def test_ttl_cache_does_not_keep_failures() -> None:
    attempts = 0

    async def flaky(key: str) -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("down")
        return key

    cache: TTLCache[str, str] = TTLCache(1)
    with pytest.raises(RuntimeError):
        await cache.get("k", flaky)
    assert await cache.get("k", flaky) == "k"


async def test_in_transaction_retries_lock_conflicts_only(tmp_path: Any) -> None:
    from sqlalchemy.exc import OperationalError

    from smsgate.config import Settings
    from smsgate.db.session import create_engine, in_transaction

    engine = create_engine(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"))
    calls = 0

    class Deadlock(Exception):
        args = (1213, "Deadlock found when trying to get lock")

    async def flaky(conn: Any) -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise OperationalError("UPDATE ...", {}, Deadlock())
        return "done"

    broken_calls = 0

    async def broken(conn: Any) -> str:
        nonlocal broken_calls
        broken_calls += 1
        raise OperationalError("UPDATE ...", {}, Exception(1045, "access denied"))

    deadlocked_calls = 0

    async def deadlocked(conn: Any) -> str:
        nonlocal deadlocked_calls
        deadlocked_calls += 1
        raise OperationalError("UPDATE ...", {}, Deadlock())

    try:
        # A lock conflict is run again from the start, until it succeeds...
        assert await in_transaction(engine, flaky) == "done"
        assert calls == 3
        # ...or the attempts are used up: then the conflict is raised.
        with pytest.raises(OperationalError):
            await in_transaction(engine, deadlocked, attempts=3)
        assert deadlocked_calls == 3
        # Any other error is raised at once, not retried.
        with pytest.raises(OperationalError):
            await in_transaction(engine, broken)
        assert broken_calls == 1
    finally:
        await engine.dispose()


def test_retry_delay_grows_exponentially_with_jitter_and_a_cap() -> None:
    from smsgate.pipeline.worker import retry_delay

    for attempt in (1, 2, 3, 5):
        delays = [retry_delay(attempt, 2.0) for _ in range(200)]
        ceiling = 2.0 * 2 ** (attempt - 1)
        assert all(1.0 <= d <= 1.0 + ceiling for d in delays), (attempt, min(delays), max(delays))
        assert len(set(delays)) > 100  # jitter: retries of many messages do not align
    # Each later attempt may wait longer: the upper end grows.
    assert max(retry_delay(5, 2.0) for _ in range(200)) > 2.0 * 2**3
    assert max(retry_delay(60, 2.0) for _ in range(200)) <= 1.0 + 600  # capped at 10 min

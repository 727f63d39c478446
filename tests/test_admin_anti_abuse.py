"""Admin API for the anti-abuse settings: business per-phone limits, code settings, blocklist."""

from __future__ import annotations

from test_admin_api import ADMIN, Admin, api, create_chain, send  # noqa: F401


async def test_business_limits_are_editable_and_enforced(api: Admin) -> None:  # noqa: F811
    chain = await create_chain(api)
    url = f"{ADMIN}/businesses/{chain['business']['id']}"
    view = await api.client.get(url, headers=api.viewer)
    assert view.json()["isVerification"] is False and view.json()["phoneLimitMinute"] is None
    changed = await api.client.patch(
        url,
        headers=api.admin,
        json={
            "isVerification": True,
            "phoneLimitMinute": 1,
            "codeLength": 4,
            "codeTtlSeconds": 120,
        },
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["isVerification"], body["phoneLimitMinute"], body["codeLength"]) == (True, 1, 4)
    key, business_no = chain["app"]["appKey"], chain["business"]["businessNo"]
    assert (await send(api.client, key, business_no)).status_code == 200
    limited = await send(api.client, key, business_no)
    assert limited.status_code == 429
    assert limited.json()["results"][0]["code"] == "PHONE_RATE_LIMITED"


async def test_bad_code_settings_are_refused(api: Admin) -> None:  # noqa: F811
    chain = await create_chain(api)
    url = f"{ADMIN}/businesses/{chain['business']['id']}"
    for patch, fragment in (
        ({"codeAlphabet": "aa"}, "code_alphabet"),
        ({"codeLength": 0}, "codeLength"),
        ({"phoneLimitHour": -1}, "phoneLimitHour"),
    ):
        response = await api.client.patch(url, headers=api.admin, json=patch)
        assert response.status_code == 400, (patch, response.text)
        assert fragment in response.json()["msg"]


async def test_blocklist_through_the_admin_api(api: Admin) -> None:  # noqa: F811
    chain = await create_chain(api)
    key, business_no = chain["app"]["appKey"], chain["business"]["businessNo"]
    c = api.client
    added = await c.post(
        f"{ADMIN}/blocklist",
        headers=api.admin,
        json={"phone": "13800138000", "appNo": chain["app"]["appNo"], "reason": "asked to stop"},
    )
    assert added.status_code == 201, added.text
    entry = added.json()
    assert entry["phone"] == "+8613800138000" and entry["createdBy"] == f"admin-{api.suffix}"
    assert entry["createdAt"].endswith("Z")
    blocked = await send(c, key, business_no)
    assert blocked.status_code == 403
    assert blocked.json()["results"][0]["code"] == "BLOCKED"

    listed = await c.get(
        f"{ADMIN}/blocklist", headers=api.viewer, params={"appNo": chain["app"]["appNo"]}
    )
    assert [e["id"] for e in listed.json()["items"]] == [entry["id"]]
    viewer_add = await c.post(f"{ADMIN}/blocklist", headers=api.viewer, json={"phone": "+86138"})
    assert viewer_add.status_code == 403
    for body, fragment in (
        ({"phone": "not a phone"}, "phone"),
        ({"phone": "+8613900139000", "appNo": "A-NOPE"}, "A-NOPE"),
    ):
        refused = await c.post(f"{ADMIN}/blocklist", headers=api.admin, json=body)
        assert refused.status_code == 400 and fragment in refused.json()["msg"], refused.text

    removed = await c.delete(f"{ADMIN}/blocklist/{entry['id']}", headers=api.admin)
    assert removed.status_code == 204
    assert (
        await c.delete(f"{ADMIN}/blocklist/{entry['id']}", headers=api.admin)
    ).status_code == 404
    assert (await send(c, key, business_no)).status_code == 200

    log = await c.get(f"{ADMIN}/audit-log", headers=api.viewer, params={"resource": "blocklist"})
    actions = [(e["action"], e["resourceKey"]) for e in log.json()["items"]][:2]
    assert actions == [("unblock", "+8613800138000"), ("block", "+8613800138000")]


async def test_prefix_blocks_cover_every_number_under_them(api: Admin) -> None:  # noqa: F811
    chain = await create_chain(api)
    added = await api.client.post(
        f"{ADMIN}/blocklist", headers=api.admin, json={"phone": "+86138001", "isPrefix": True}
    )
    assert added.status_code == 201, added.text
    try:
        response = await send(api.client, chain["app"]["appKey"], chain["business"]["businessNo"])
        assert response.status_code == 403
    finally:
        # Global entries apply to every test app: remove it again.
        await api.client.delete(f"{ADMIN}/blocklist/{added.json()['id']}", headers=api.admin)

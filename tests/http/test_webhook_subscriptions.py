"""Webhook subscriptions over real HTTP on both databases: validation, write-only secrets, CRUD."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from calld.domain.vocabulary import EventType
from tests.support import AppClient

BASE = "/api/webhook-subscriptions/"


async def answer(resp: Any, status: int) -> Any:
    body = await resp.json() if resp.status != 204 else None
    assert resp.status == status, body
    return body


async def test_create_read_change_delete(api: AppClient) -> None:
    created = await answer(
        await api.post(BASE, json={"url": "https://crm.example/hooks/calls", "event_types": ["ended", "ended"]}), 201
    )
    assert created["event_types"] == ["ended"] and created["active"] is True
    assert len(created["secret"]) >= 32  # generated, shown this once
    path = f"{BASE}{created['id']}/"
    fetched = await answer(await api.get(path), 200)
    assert "secret" not in fetched
    assert fetched == {k: v for k, v in created.items() if k != "secret"}

    changed = await answer(
        await api.patch(path, json={"secret": "rotated-secret-0123456789", "active": False, "event_types": []}), 200
    )
    assert "secret" not in changed
    assert (changed["active"], changed["event_types"]) == (False, [])
    listing = await answer(await api.get(f"{BASE}?active=false"), 200)
    assert [s["id"] for s in listing["results"]] == [created["id"]]
    assert "rotated-secret" not in str(listing)
    assert (await answer(await api.get(f"{BASE}?active=true"), 200))["count"] == 0
    assert (await answer(await api.get(f"{path}deliveries/"), 200))["results"] == []

    await answer(await api.delete(path), 204)
    await answer(await api.get(path), 404)
    await answer(await api.get(f"{path}deliveries/"), 404)


@pytest.mark.parametrize(
    ("body", "field", "problem"),
    [
        ({}, "url", "this field is required"),
        ({"url": "ftp://files.example/x"}, "url", "absolute http or https URL"),
        ({"url": "https://"}, "url", "absolute http or https URL"),
        ({"url": "http://host.example:99999/"}, "url", "absolute http or https URL"),
        ({"url": 7}, "url", "must be a string"),
        ({"url": "https://a.example/", "secret": "short"}, "secret", "at least 16 characters"),
        ({"url": "https://a.example/", "event_types": ["ended", "exploded"]}, "event_types", "exploded; allowed: "),
        ({"url": "https://a.example/", "event_types": "ended"}, "event_types", "must be a list"),
        ({"url": "https://a.example/", "active": "yes"}, "active", "must be true or false"),
        ({"url": "https://a.example/", "owner": "me"}, "owner", "unknown field"),
    ],
)
async def test_bad_fields_are_422_naming_them(api: AppClient, body: dict[str, Any], field: str, problem: str) -> None:
    data = await answer(await api.post(BASE, json=body), 422)
    assert problem in data["detail"][field]
    if field == "event_types" and "allowed" in problem:
        assert all(e.value in data["detail"][field] for e in EventType)
    assert (await answer(await api.get(BASE), 200))["count"] == 0


async def test_unknown_and_malformed_ids_are_404(api: AppClient) -> None:
    await answer(await api.get(f"{BASE}not-a-uuid/"), 404)
    await answer(await api.patch(f"{BASE}{uuid.uuid4()}/", json={"active": False}), 404)
    created = await answer(await api.post(BASE, json={"url": "http://hooks.example:9/"}), 201)
    await answer(await api.post(f"{BASE}{created['id']}/deliveries/nope/redeliver/"), 404)
    data = await answer(await api.get(f"{BASE}{created['id']}/deliveries/?status=lost"), 422)
    assert "pending" in data["detail"]["status"]

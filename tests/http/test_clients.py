"""Clients over real HTTP on SQLite and PostgreSQL: CRUD, validation, number ownership, call history,
linking past calls, and deletion keeping calls."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from yarl import URL

from calld.domain.call import NewCall
from calld.domain.vocabulary import CallDirection, EventSource
from calld.service.wiring import Services
from calld.storage.database import Database
from calld.storage.models import CallLog, Client, ClientPhoneNumber
from tests.support import AppClient, SettableClock


async def create(api: AppClient, **body: Any) -> dict[str, Any]:
    response = await api.post("/api/clients/", json=body)
    assert response.status == 201, await response.text()
    created: dict[str, Any] = await response.json()
    return created


async def count_rows(db: Database, model: Any) -> int:
    async with db.read() as session:
        return int(await session.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


async def new_call(services: Services, direction: CallDirection, caller: str, recipient: str) -> uuid.UUID:
    async with services.db.write() as session:
        call = await services.calls.create(session, NewCall(direction, caller, recipient), EventSource.API)
        return call.id


async def owners(db: Database) -> dict[uuid.UUID, uuid.UUID | None]:
    async with db.read() as session:
        return {
            call_id: owner for call_id, owner in (await session.execute(sa.select(CallLog.id, CallLog.client_id))).all()
        }


async def test_crud_round_trip(api: AppClient, db: Database) -> None:
    body = await create(
        api,
        name="  Ada Lovelace ",
        phone_numbers=["(415) 555-0100", "+1 415 555 0100", "1001", "+44 20 7946 0958"],
        email="ada@example.com",
        company="Analytical Engines",
        notes="prefers mornings",
    )
    client_id = body["id"]
    assert body == {
        "id": client_id,
        "name": "Ada Lovelace",
        "phone_numbers": ["+14155550100", "1001", "+442079460958"],  # normalised, duplicate collapsed
        "email": "ada@example.com",
        "company": "Analytical Engines",
        "notes": "prefers mornings",
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    fetched = await api.get(f"/api/clients/{client_id}/")
    assert fetched.status == 200
    assert await fetched.json() == body

    patched = await api.patch(
        f"/api/clients/{client_id}/",
        json={"phone_numbers": ["+442079460958", "415-555-0199"], "company": None, "email": ""},
    )
    assert patched.status == 200, await patched.text()
    after = await patched.json()
    assert after["phone_numbers"] == ["+442079460958", "+14155550199"]
    assert (after["name"], after["company"], after["email"], after["notes"]) == (
        "Ada Lovelace",
        None,
        None,
        "prefers mornings",
    )
    async with db.read() as session:
        rows = (
            await session.execute(
                sa.select(ClientPhoneNumber.number, ClientPhoneNumber.position).order_by(ClientPhoneNumber.position)
            )
        ).all()
    assert [tuple(r) for r in rows] == [("+442079460958", 0), ("+14155550199", 1)]

    deleted = await api.delete(f"/api/clients/{client_id}/")
    assert deleted.status == 204
    assert (await api.get(f"/api/clients/{client_id}/")).status == 404
    assert await count_rows(db, Client) == 0
    assert await count_rows(db, ClientPhoneNumber) == 0


async def test_validation_errors_store_nothing(api: AppClient, db: Database) -> None:
    cases: list[tuple[Any, dict[str, str] | None]] = [
        ({}, {"name": "this field is required"}),
        ({"name": "x" * 201}, {"name": "must be at most 200 characters"}),
        ({"name": "   "}, {"name": "must not be blank"}),
        ({"name": "A", "email": "not-an-email"}, {"email": "must be an email address such as name@example.com"}),
        ({"name": "A", "phone_numbers": "+14155550100"}, {"phone_numbers": "must be a list of phone number strings"}),
        ({"name": 5, "colour": "red"}, None),
    ]
    for body, detail in cases:
        response = await api.post("/api/clients/", json=body)
        assert response.status == 422, body
        answer = await response.json()
        assert answer["error"] == "validation failed"
        if detail is not None:
            assert answer["detail"] == detail
    unknown = await (await api.post("/api/clients/", json={"name": 5, "colour": "red"})).json()
    assert set(unknown["detail"]) == {"name", "colour"}

    bad_number = await api.post("/api/clients/", json={"name": "A", "phone_numbers": ["+14155550100", "call me"]})
    assert bad_number.status == 422
    assert "item 1" in (await bad_number.json())["detail"]["phone_numbers"]

    malformed = await api.post("/api/clients/", data=b"{not json", headers={"Content-Type": "application/json"})
    assert malformed.status == 400
    assert (await api.post("/api/clients/", json=["list"])).status == 400
    assert (await api.get("/api/clients/not-a-uuid/")).status == 404
    assert (await api.get(f"/api/clients/{uuid.uuid4()}/")).status == 404
    assert await count_rows(db, Client) == 0
    assert await count_rows(db, ClientPhoneNumber) == 0

    client = await create(api, name="Kept")
    rejected = await api.patch(f"/api/clients/{client['id']}/", json={"name": None, "notes": "changed"})
    assert rejected.status == 422
    assert (await rejected.json())["detail"] == {"name": "this field is required"}
    assert await (await api.get(f"/api/clients/{client['id']}/")).json() == client


async def test_a_number_belongs_to_one_client(api: AppClient, db: Database) -> None:
    first = await create(api, name="First", phone_numbers=["+14155550100"])
    response = await api.post("/api/clients/", json={"name": "Second", "phone_numbers": ["415 555 0100"]})
    assert response.status == 409
    answer = await response.json()
    assert answer["detail"] == {"phone_numbers": f"+14155550100 already belongs to client {first['id']}"}
    assert answer["number"] == "+14155550100"
    assert await count_rows(db, Client) == 1

    second = await create(api, name="Second", phone_numbers=["+14155550101"])
    taken = await api.patch(f"/api/clients/{second['id']}/", json={"phone_numbers": ["+14155550101", "+14155550100"]})
    assert taken.status == 409
    assert "+14155550100" in (await taken.json())["detail"]["phone_numbers"]
    assert (await (await api.get(f"/api/clients/{second['id']}/")).json())["phone_numbers"] == ["+14155550101"]

    # Keeping one's own numbers (even reordered) is no conflict.
    kept = await api.patch(f"/api/clients/{first['id']}/", json={"phone_numbers": ["1002", "+14155550100"]})
    assert kept.status == 200
    assert (await kept.json())["phone_numbers"] == ["1002", "+14155550100"]


async def test_list_search_number_and_pagination(api: AppClient) -> None:
    await create(api, name="Bob Builder", company="Acme", phone_numbers=["+14155550111"])
    await create(api, name="alice", email="alice@ACME.example")
    await create(api, name="Carol", company="Globex", phone_numbers=["+14155550112"])
    await create(api, name="Dave 100%", company="Initech")

    everyone = await (await api.get("/api/clients/")).json()
    assert everyone["count"] == 4 and everyone["next"] is None and everyone["previous"] is None
    assert [c["name"] for c in everyone["results"]] == ["alice", "Bob Builder", "Carol", "Dave 100%"]

    acme = await (await api.get("/api/clients/", params={"search": "acme"})).json()
    assert sorted(c["name"] for c in acme["results"]) == ["Bob Builder", "alice"]
    assert acme["count"] == 2
    percent = await (await api.get("/api/clients/", params={"search": "0%"})).json()
    assert [c["name"] for c in percent["results"]] == ["Dave 100%"]  # % is matched literally

    by_number = await (await api.get("/api/clients/", params={"number": "(415) 555-0112"})).json()
    assert [c["name"] for c in by_number["results"]] == ["Carol"]

    first = await api.get("/api/clients/", params={"limit": "2"})
    page = await first.json()
    assert page["count"] == 4 and [c["name"] for c in page["results"]] == ["alice", "Bob Builder"]
    assert page["previous"] is None
    assert URL(page["next"]).path == "/api/clients/"
    assert dict(URL(page["next"]).query) == {"limit": "2", "offset": "2"}
    second = await (await api.get(URL(page["next"]).path_qs)).json()
    assert [c["name"] for c in second["results"]] == ["Carol", "Dave 100%"]
    assert second["next"] is None and second["previous"] is not None

    for params in ({"limit": "0"}, {"limit": "201"}, {"offset": "-1"}, {"number": "nope"}, {"sort": "name"}):
        assert (await api.get("/api/clients/", params=params)).status == 422, params


async def test_call_history_newest_first_paginated(api: AppClient, services: Services, clock: SettableClock) -> None:
    client = await create(api, name="Caller", phone_numbers=["+14155550100"])
    other = await create(api, name="Other", phone_numbers=["+14155550199"])
    mine: list[uuid.UUID] = []
    for i in range(5):
        clock.advance(60)
        mine.append(await new_call(services, CallDirection.INBOUND, "+14155550100", f"100{i}"))
        clock.advance(1)
        await new_call(services, CallDirection.INBOUND, "+14155550199", "1000")
    clock.advance(60)
    mine.append(await new_call(services, CallDirection.OUTBOUND, "1001", "+14155550100"))

    url = f"/api/clients/{client['id']}/call_history/"
    first = await (await api.get(url, params={"limit": "4"})).json()
    assert first["count"] == 6
    assert [c["id"] for c in first["results"]] == [str(i) for i in reversed(mine)][:4]
    assert all(c["client"] == client["id"] for c in first["results"])
    assert first["previous"] is None
    second = await (await api.get(URL(first["next"]).path_qs)).json()
    assert [c["id"] for c in second["results"]] == [str(mine[1]), str(mine[0])]
    assert second["next"] is None
    assert second["previous"] is not None

    everything = await (await api.get(url)).json()
    assert len(everything["results"]) == 6 and everything["results"][0]["direction"] == "outbound"
    others = await (await api.get(f"/api/clients/{other['id']}/call_history/")).json()
    assert others["count"] == 5

    assert (await api.get(url, params={"limit": "0"})).status == 422
    assert (await api.get(url, params={"limit": "201"})).status == 422
    assert (await api.get(f"/api/clients/{uuid.uuid4()}/call_history/")).status == 404


async def test_link_calls_assigns_only_unowned_far_party_calls(api: AppClient, services: Services) -> None:
    owner = await create(api, name="Owner", phone_numbers=["+14155550177"])
    inbound = await new_call(services, CallDirection.INBOUND, "+14155550100", "1000")
    outbound = await new_call(services, CallDirection.OUTBOUND, "1000", "+14155550101")
    near_party = await new_call(services, CallDirection.OUTBOUND, "+14155550100", "+14155550177")
    stranger = await new_call(services, CallDirection.INBOUND, "+14155550999", "1000")
    # Owned already (by matching the owner's number), even though the caller becomes our client's.
    owned = await new_call(services, CallDirection.INBOUND, "+14155550177", "+14155550100")

    client = await create(api, name="Late", phone_numbers=["+14155550100", "+14155550101"])
    client_id = uuid.UUID(client["id"])
    before = await owners(services.db)
    assert before[inbound] is None and before[outbound] is None  # creating a client rewrites no history
    assert before[near_party] == uuid.UUID(owner["id"])

    response = await api.post(f"/api/clients/{client['id']}/link_calls/")
    assert response.status == 200
    assert await response.json() == {"linked": 2}
    after = await owners(services.db)
    assert after == {
        inbound: client_id,
        outbound: client_id,
        near_party: uuid.UUID(owner["id"]),
        stranger: None,
        owned: uuid.UUID(owner["id"]),
    }
    again = await api.post(f"/api/clients/{client['id']}/link_calls/")
    assert await again.json() == {"linked": 0}
    assert (await api.post(f"/api/clients/{uuid.uuid4()}/link_calls/")).status == 404


async def test_delete_client_keeps_calls_and_frees_numbers(api: AppClient, services: Services) -> None:
    client = await create(api, name="Leaving", phone_numbers=["+14155550100"])
    calls = [await new_call(services, CallDirection.INBOUND, "+14155550100", "1000") for _ in range(3)]
    assert set((await owners(services.db)).values()) == {uuid.UUID(client["id"])}

    assert (await api.delete(f"/api/clients/{client['id']}/")).status == 204
    after = await owners(services.db)
    assert after == dict.fromkeys(calls)
    assert (await api.delete(f"/api/clients/{client['id']}/")).status == 404
    # The number is free again.
    await create(api, name="Arriving", phone_numbers=["+14155550100"])

"""The list's search filters over real HTTP on both databases: number patterns, durations,
recordings, transcripts and free text, alone and combined with the older filters and orderings."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from calld.config import RetentionConfig
from calld.domain.privacy import pseudonym
from calld.service.retention import Retention
from calld.service.wiring import Services
from tests.support import AppClient, SettableClock

BASE = "/api/call-logs/"
RECORDING = "/api/webhooks/recording/"


@pytest.fixture
def api(signed_webhook_api: AppClient) -> AppClient:
    return signed_webhook_api


async def _json(resp: Any, status: int) -> Any:
    body = await resp.json()
    assert resp.status == status, body
    return body


async def call(api: AppClient, clock: SettableClock, caller: str, recipient: str = "1001", **extra: Any) -> str:
    """A call logged through the API, one minute after the previous one; ``talk`` seconds answered."""
    talk = extra.pop("talk", None)
    clock.advance(60)
    body = {"direction": "inbound", "caller_number": caller, "recipient_number": recipient, **extra}
    call_id: str = (await _json(await api.post(BASE, json=body), 201))["id"]
    if talk is not None:
        await _json(await api.patch(f"{BASE}{call_id}/update_status/", json={"status": "answered"}), 200)
        clock.advance(talk)
        await _json(await api.patch(f"{BASE}{call_id}/update_status/", json={"status": "ended"}), 200)
        clock.advance(-talk)
    return call_id


async def recording(api: AppClient, call_id: str, **fields: Any) -> dict[str, Any]:
    body = {"call_id": call_id, "status": "completed", "file_url": "https://rec.example/r.wav", **fields}
    result: dict[str, Any] = await _json(await api.post(RECORDING, json=body), 200)
    return result


async def ids(api: AppClient, query: str) -> list[str]:
    body = await _json(await api.get(f"{BASE}?{query}"), 200)
    assert body["count"] == len(body["results"])
    return [c["id"] for c in body["results"]]


async def problem(api: AppClient, query: str) -> dict[str, str]:
    detail: dict[str, str] = (await _json(await api.get(f"{BASE}?{query}"), 422))["detail"]
    return detail


async def test_number_patterns(api: AppClient, clock: SettableClock) -> None:
    berlin = await call(api, clock, "+493012345678")
    berlin2 = await call(api, clock, "2002", "+493098765432", direction="outbound")
    hamburg = await call(api, clock, "+494012345678")
    assert await ids(api, "number=" + quote("+4930*")) == [berlin2, berlin]
    # An unencoded + arrives as a space: still the pattern meant.
    assert await ids(api, "number=+4930*") == [berlin2, berlin]
    assert await ids(api, "number=" + quote("+49*5678")) == [hamburg, berlin]
    assert await ids(api, "number=" + quote("+49301234567?")) == [berlin]
    assert await ids(api, "number=" + quote("+4930*") + "&direction=outbound") == [berlin2]
    assert await ids(api, "number=" + quote("+4930*") + "&ordering=started_at") == [berlin, berlin2]
    assert await ids(api, "number=20*") == [berlin2]
    assert await ids(api, "number=100?") == [hamburg, berlin]
    assert await ids(api, "number=" + quote("+44*")) == []
    assert await ids(api, "number=" + quote("+493012345678")) == [berlin]  # exact, as before
    for bad in ("*5678", "+*", "4*", "+49%2030*", "+4930*%3B"):
        assert "number" in await problem(api, f"number={bad}")


async def test_duration_range(api: AppClient, clock: SettableClock) -> None:
    short = await call(api, clock, "+14155550101", talk=10)
    minute = await call(api, clock, "+14155550102", talk=60)
    long = await call(api, clock, "+14155550103", talk=300)
    await call(api, clock, "+14155550104")  # never answered: no duration
    assert await ids(api, "min_duration=60") == [long, minute]
    assert await ids(api, "max_duration=60") == [minute, short]
    assert await ids(api, "min_duration=11&max_duration=299.5") == [minute]
    assert await ids(api, "min_duration=0&ordering=-duration_seconds") == [long, minute, short]
    assert await ids(api, "min_duration=30&number=" + quote("+1415555010*")) == [long, minute]
    assert await problem(api, "min_duration=61&max_duration=60") == {
        "min_duration": "must not be more than max_duration (60)"
    }
    for bad in ("abc", "-1", "1e3", "nan", "%D9%A1"):
        assert "min_duration" in await problem(api, f"min_duration={bad}")
    assert "max_duration" in await problem(api, "max_duration=")


async def test_recordings_and_transcripts(api: AppClient, clock: SettableClock) -> None:
    plain = await call(api, clock, "+14155550101")
    recorded = await call(api, clock, "+14155550102")
    transcribed = await call(api, clock, "+14155550103")
    await recording(api, recorded)
    await recording(api, transcribed, transcript="The customer asks for a refund of order 4711.")
    assert await ids(api, "has_recording=true") == [transcribed, recorded]
    assert await ids(api, "has_recording=false") == [plain]
    assert await ids(api, "has_transcript=true") == [transcribed]
    assert await ids(api, "has_transcript=false") == [recorded, plain]
    assert await ids(api, "has_recording=true&has_transcript=false") == [recorded]
    assert await ids(api, "has_recording=yes&ordering=started_at") == [recorded, transcribed]
    assert "has_recording" in await problem(api, "has_recording=maybe")


async def test_free_text_over_notes_client_names_and_transcripts(api: AppClient, clock: SettableClock) -> None:
    client = await _json(await api.post("/api/clients/", json={"name": "Maria Gonzalez", "phone_numbers": []}), 201)
    noted = await call(api, clock, "+14155550101", notes="Wants a callback about the Refund, urgent!")
    of_client = await call(api, clock, "+14155550102", client=client["id"])
    spoken = await call(api, clock, "+14155550103")
    await recording(api, spoken, transcript="Hello, this is Maria; I would like a refund for order 4711.")
    await call(api, clock, "+14155550104", notes="nothing to see")
    assert await ids(api, "q=refund") == [spoken, noted]
    assert await ids(api, "q=REF") == [spoken, noted]  # a word matches the words it starts; case does not matter
    assert await ids(api, "q=maria") == [spoken, of_client]
    assert await ids(api, "q=" + quote("gonzalez, maria!")) == [of_client]
    assert await ids(api, "q=4711") == [spoken]
    assert await ids(api, "q=callback+urgent") == [noted]
    assert await ids(api, "q=refund&ordering=started_at") == [noted, spoken]
    assert await ids(api, "q=refund&number=" + quote("+1415555010*") + "&has_transcript=true") == [spoken]
    assert await ids(api, "q=refunds") == []
    # The index follows changes: new notes, a renamed client, a deleted call.
    await _json(await api.patch(f"{BASE}{noted}/", json={"notes": "settled"}), 200)
    assert await ids(api, "q=refund") == [spoken]
    await _json(await api.patch(f"/api/clients/{client['id']}/", json={"name": "Northwind Traders"}), 200)
    assert await ids(api, "q=gonzalez") == []
    assert await ids(api, "q=northwind") == [of_client]
    assert (await api.delete(f"{BASE}{spoken}/")).status == 204
    assert await ids(api, "q=4711") == []
    for bad in ("", "...", "%20", "a" * 201):
        assert "q" in await problem(api, f"q={bad}")
    assert "q" in await problem(api, "q=" + "+".join(f"w{n}" for n in range(17)))


async def test_pseudonymised_numbers_are_found_by_their_token(
    api: AppClient, clock: SettableClock, services: Services
) -> None:
    first = await call(api, clock, "+14155550101", talk=5)
    second = await call(api, clock, "+14155550101", talk=5)
    other = await call(api, clock, "+14155550102", talk=5)
    clock.advance(61 * 86400)
    settings = RetentionConfig(pseudonymise_days=60, pseudonym_key="k" * 16)
    retention = Retention(services.db, services.recordings, settings, clock, b"k" * 16)
    assert (await retention.run()).pseudonymised == 3
    token = pseudonym(b"k" * 16, "+14155550101")
    assert await ids(api, f"number={token}") == [second, first]
    assert await ids(api, "number=" + quote("+14155550101")) == []
    assert await ids(api, "number=anon:*") == [other, second, first]  # every pseudonymised call
    assert "number" in await problem(api, "number=anon:nothex")


async def test_tags(api: AppClient, clock: SettableClock) -> None:
    vip = await call(api, clock, "+14155550101")
    both = await call(api, clock, "+14155550102")
    await call(api, clock, "+14155550103")
    tagged = await _json(await api.patch(f"{BASE}{vip}/", json={"tags": ["VIP", " vip ", "Callback"]}), 200)
    assert tagged["tags"] == ["callback", "vip"]
    await _json(await api.patch(f"{BASE}{both}/", json={"tags": ["vip", "angry customer"]}), 200)
    assert await ids(api, "tag=vip") == [both, vip]
    assert await ids(api, "tag=Callback") == [vip]
    assert await ids(api, "tag=callback,angry+customer") == [both, vip]
    assert await ids(api, "tag=callback&tag=nothing") == [vip]
    assert await ids(api, "tag=vip&number=" + quote("+14155550102")) == [both]
    page = await _json(await api.get(f"{BASE}?tag=vip&ordering=started_at"), 200)
    assert [c["tags"] for c in page["results"]] == [["callback", "vip"], ["angry customer", "vip"]]
    assert (await _json(await api.get(f"{BASE}{vip}/"), 200))["tags"] == ["callback", "vip"]
    await _json(await api.patch(f"{BASE}{vip}/", json={"tags": []}), 200)
    assert await ids(api, "tag=callback") == []
    for bad in ("-x", "a%20%20b", "x" * 65):
        assert "tag" in await problem(api, f"tag={bad}")
    for body in ({"tags": "vip"}, {"tags": ["ok", "-bad"]}, {"tags": ["t"] * 21}):
        refused = await _json(await api.patch(f"{BASE}{vip}/", json=body), 422)
        assert "tags" in refused["detail"]


async def test_free_text_words_match_within_one_source(api: AppClient, clock: SettableClock) -> None:
    client = await _json(await api.post("/api/clients/", json={"name": "Client 4242", "phone_numbers": []}), 201)
    await _json(await api.post("/api/clients/", json={"name": "Client 7", "phone_numbers": []}), 201)
    named = await call(api, clock, "+14155550101", client=client["id"])
    noted = await call(api, clock, "+14155550102", notes="client asked about order 7")
    assert await ids(api, "q=client+4242") == [named]
    assert await ids(api, "q=client") == [noted, named]
    assert await ids(api, "q=order+7") == [noted]
    assert await ids(api, "q=4242+order") == []  # one word in a name, the other in notes of another call

"""One number policy at every door, over real HTTP on both databases: odd and withheld caller IDs are
logged (never 422), their presentation kept, the stored number normalised where it can be; clients'
own numbers stay strictly validated; the seed's example numbers work in the seed's flows."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from calld.storage.database import Database
from calld.storage.models import CallLog
from tests.http import test_webhooks
from tests.http.test_call_logs import add_client, count, created, expect_error, ok
from tests.http.test_webhooks import SIP, at, post, sip_event, stored_calls
from tests.support import SettableClock

AppClient = TestClient[web.Request, web.Application]
CALLS = "/api/call-logs/"

# The client whose webhook deliveries are signed as the configured sources sign them.
api = test_webhooks.api

# What a SIP provider presents -> (stored caller_number, caller_withheld); calls.default_region is US.
ODD_CALLER_IDS = {
    "anonymous": ("anonymous", True),
    "Restricted": ("anonymous", True),
    "*67": ("anonymous", True),
    "0": ("anonymous", True),
    "sip:alice@example.com": ("sip:alice@example.com", False),
    "+1234567890": ("+1234567890", False),
    "+0987654321": ("+0987654321", False),
    "(415) 555-0100": ("+14155550100", False),
    "<sip:anonymous@anonymous.invalid>": ("anonymous", True),
}


async def test_the_sip_webhook_logs_every_caller_id(api: AppClient, db: Database, clock: SettableClock) -> None:
    client_id = await add_client(db, "Known", "+14155550100")
    for index, presented in enumerate(ODD_CALLER_IDS):
        body = sip_event(clock, "call_initiated", sip_call_id=f"odd-{index}@provider", caller_number=presented)
        answer = await post(api, SIP, body, 200)
        assert answer["status"] == "stored"
        call = await ok(await api.get(f"{CALLS}{answer['call']}/"))
        number, withheld = ODD_CALLER_IDS[presented]
        assert call["caller_number"] == number, presented
        assert call["caller_number_raw"] == presented
        assert call["caller_withheld"] is withheld
        assert call["recipient_number"] == "+12125550143" and call["recipient_number_raw"] == "+1 212 555 0143"
        # Client matching uses the normalised number: "(415) 555-0100" is the client's +14155550100.
        assert call["client"] == (str(client_id) if number == "+14155550100" else None)
    assert len(await stored_calls(db)) == len(ODD_CALLER_IDS)
    # A redelivery is still a duplicate, and the list filters by the stored number.
    again = sip_event(clock, "call_initiated", sip_call_id="odd-0@provider", caller_number="anonymous")
    assert (await post(api, SIP, again, 200))["status"] == "duplicate"
    listed = await ok(await api.get(CALLS, params={"number": "+1234567890"}))
    assert [c["caller_number_raw"] for c in listed["results"]] == ["+1234567890"]


async def test_what_cannot_be_stored_or_is_not_text_is_still_refused(api: AppClient, db: Database) -> None:
    for bad, problem in [
        ("+1415\r\nX-Injected: 1", "line breaks"),
        (14155550100, "must be a string"),
        ("x" * 256, "at most 255"),
    ]:
        body = sip_event(SettableClock(), "call_initiated", caller_number=bad)
        resp = await api.post(SIP, json=body)
        data = await resp.json()
        assert resp.status == 422 and problem in data["detail"]["caller_number"], data
    assert await stored_calls(db) == []


async def test_the_seeds_inbound_flow_with_the_seeds_own_numbers(
    api: AppClient, db: Database, clock: SettableClock
) -> None:
    """The seed's webhook body and log_incoming_call body, exactly as it writes them."""
    seed_numbers = {"caller_number": "+1234567890", "recipient_number": "+0987654321"}
    announced = await post(
        api,
        SIP,
        {
            "event_type": "call_initiated",
            "sip_call_id": "unique-sip-id",
            **seed_numbers,
            "timestamp": at(clock),
            "metadata": {"server": "sip1.example.com", "codec": "G.711"},
        },
        200,
    )
    logged = await post(api, f"{CALLS}log_incoming_call/", {**seed_numbers, "sip_call_id": "unique-sip-id"}, 200)
    assert logged["id"] == announced["call"]
    assert (logged["caller_number"], logged["recipient_number"]) == ("+1234567890", "+0987654321")
    assert logged["caller_withheld"] is False
    call = f"{CALLS}{logged['id']}/"
    status = {"status": "answered", "notes": "Customer inquiry about billing", "call_quality_score": 4.5}
    assert (await ok(await api.patch(call + "update_status/", json=status)))["status"] == "answered"
    ended = await ok(await api.post(call + "end_call/"))
    assert ended["status"] == "ended"
    assert len(await stored_calls(db)) == 1


async def test_logging_a_call_takes_any_presented_number(api: AppClient, db: Database) -> None:
    body = await created(
        await api.post(
            f"{CALLS}log_incoming_call/",
            json={"caller_number": "Restricted", "recipient_number": "1001", "sip_call_id": "r@pbx"},
        )
    )
    assert (body["caller_number"], body["caller_number_raw"], body["caller_withheld"]) == (
        "anonymous",
        "Restricted",
        True,
    )
    made = await created(
        await api.post(
            CALLS, json={"direction": "outbound", "caller_number": "1001", "recipient_number": "sip:bob@example.com"}
        )
    )
    assert made["recipient_number"] == "sip:bob@example.com" and made["caller_withheld"] is False
    assert await count(db, CallLog) == 2


@pytest.mark.parametrize("target", ["+1234567890", "(415) 555-0100", "1002"])
async def test_the_seeds_outbound_numbers_can_be_dialled(api: AppClient, target: str) -> None:
    body = await created(
        await api.post(f"{CALLS}initiate_call/", json={"recipient_number": target, "caller_number": "1001"})
    )
    assert body["recipient_number"] == {"(415) 555-0100": "+14155550100"}.get(target, target)


async def test_numbers_calld_dials_or_a_person_defines_stay_strict(api: AppClient, db: Database) -> None:
    for target in ("anonymous", "sip:bob@example.com", "not a number"):
        data = await expect_error(
            await api.post(f"{CALLS}initiate_call/", json={"recipient_number": target, "caller_number": "1001"}),
            422,
            "recipient_number",
        )
        assert target in data["detail"]["recipient_number"]
    data = await expect_error(
        await api.post("/api/clients/", json={"name": "A", "phone_numbers": ["anonymous"]}), 422, "phone_numbers"
    )
    assert "anonymous" in data["detail"]["phone_numbers"]
    assert await count(db, CallLog) == 0

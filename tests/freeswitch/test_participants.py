"""Who took part in each recorded FreeSWITCH call and who really answered, from the real captures,
checked leg by leg against the FreeSWITCH CDR recorded beside each capture; then through storage and
the API (the detail's participants, ``answered_by`` and its list filter)."""

from __future__ import annotations

import pytest

from calld.domain.participants import ANSWERED_BY, participants_of
from calld.domain.vocabulary import EventType
from calld.storage.database import Database
from tests.conftest import AppClient
from tests.freeswitch.test_end_story import cdr_rows
from tests.ingest.test_switch_ingest import ingest_all, mapped
from tests.support import SettableClock

# capture -> who answered, and each party's role by number
EXPECTED = {
    # Three phones ring; 1001 and 1002 both pick up, 1001 is connected, 1002 and 1004 end LOSE_RACE.
    "o_ring_group": ("1001", {"1000": "caller", "1001": "callee", "1002": "callee", "1004": "callee"}),
    # A hunt group: 1004 rings out (ALLOTTED_TIMEOUT), then 1001 answers.
    "o2_hunt": ("1001", {"1000": "caller", "1001": "callee", "1004": "callee"}),
    # Nobody answers: the caller gives up.
    "p_abandon": (None, {"1000": "caller", "1004": "callee"}),
    "p2_call_timeout": (None, {"1000": "caller", "1004": "callee"}),
    # calld rings its user 1000 first, then the number it was asked to call.
    "l_calld_originate": ("1001", {"1000": "caller", "1001": "callee"}),
}


def _end(capture: str) -> dict[str, object]:
    [end] = [e for e in mapped(capture) if e.event_type in (EventType.ENDED, EventType.FAILED)]
    return dict(end.metadata) | {"call_ref": end.call_ref}


@pytest.mark.parametrize("capture", sorted(EXPECTED))
def test_the_parties_agree_with_the_cdr(capture: str) -> None:
    end = _end(capture)
    parties = participants_of(end)
    assert parties is not None
    answered_by, roles = EXPECTED[capture]
    assert end.get(ANSWERED_BY) == answered_by
    assert {p.number: p.role.value for p in parties} == roles
    rows = cdr_rows(capture)
    # One party per leg the CDR has (loopback legs aside), each ending as its CDR row says.
    legs = {uuid for uuid, row in rows.items() if not row["channel_name"].startswith("loopback/")}
    assert {p.leg for p in parties} == legs
    for party in parties:
        row = rows[party.leg]
        assert party.end_cause == row["hangup_cause"], party
        assert (party.answered_at is not None) == (row["answer_uepoch"] not in ("", "0")), party
        assert party.joined_at is not None and party.left_at is not None and party.joined_at <= party.left_at
    if answered_by is not None:
        # The CDR's winner: the one callee leg that talked (billsec > 0).
        talked = [p for p in parties if p.role.value != "caller" and int(rows[p.leg]["billsec"] or 0) > 0]
        assert [p.number for p in talked] == [answered_by]


def test_a_transfer_target_is_a_party_of_its_own() -> None:
    for capture in ("e_blind_transfer", "f_attended_transfer"):
        ends = [e for e in mapped(capture) if e.event_type is EventType.ENDED]
        parties = participants_of(ends[-1].metadata)
        assert parties is not None
        assert {p.number: p.role.value for p in parties} == {
            "1000": "caller",
            "1001": "callee",
            "1002": "transfer_target",
        }, capture
        assert ends[-1].metadata[ANSWERED_BY] == "1001"


async def test_the_parties_are_stored_shown_and_filtered(db: Database, clock: SettableClock, api: AppClient) -> None:
    for capture in ("o_ring_group", "p_abandon"):
        await ingest_all(db, mapped(capture), clock)
    page = await (await api.get("/api/call-logs/")).json()
    by_status = {c["status"]: c for c in page["results"]}
    assert by_status["ended"]["answered_by"] == "1001" and by_status["missed"]["answered_by"] is None
    detail = await (await api.get(f"/api/call-logs/{by_status['ended']['id']}/")).json()
    parties = {p["number"]: p for p in detail["participants"]}
    assert set(parties) == {"1000", "1001", "1002", "1004"}
    assert parties["1002"]["end_cause"] == "LOSE_RACE" and parties["1001"]["end_cause"] == "NORMAL_CLEARING"
    assert parties["1004"]["answered_at"] is None and parties["1001"]["answered_at"] is not None
    assert parties["1000"]["role"] == "caller" and parties["1000"]["endpoint"].startswith("sofia/internal/1000")
    listed = await (await api.get("/api/call-logs/?answered_by=1001")).json()
    assert [c["id"] for c in listed["results"]] == [by_status["ended"]["id"]]
    assert (await (await api.get("/api/call-logs/?answered_by=1002")).json())["results"] == []


async def test_a_call_logged_through_the_api_has_its_two_parties(api: AppClient) -> None:
    body = {"caller_number": "+14155550100", "recipient_number": "1001", "sip_call_id": "parties@pbx"}
    created = await (await api.post("/api/call-logs/log_incoming_call/", json=body)).json()
    assert [(p["role"], p["number"], p["leg"]) for p in created["participants"]] == [
        ("caller", "+14155550100", None),
        ("callee", "1001", None),
    ]


def test_a_blind_transfer_into_a_park_completes_there() -> None:
    """n5_valet_park: the caller is uuid_transfer'd to 6001 (answer + valet_park): no phone answers,
    yet the transfer reached where it was sent when the caller enters valet_park."""
    events = [e for e in mapped("n5_valet_park") if e.call_ref.startswith("b2ca7027")]
    types = [e.event_type for e in events]
    assert types[:5] == [
        EventType.INITIATED,
        EventType.RINGING,
        EventType.ANSWERED,
        EventType.TRANSFER_INITIATED,
        EventType.TRANSFER_COMPLETED,
    ]
    assert dict(events[4].metadata) == {"transfer_to": "6001", "application": "valet_park"}


async def test_each_party_has_what_its_leg_received(db: Database, clock: SettableClock, api: AppClient) -> None:
    """q2_rtp_loss: 5 % of RTP dropped on the lab's loopback; each party's figures are its leg's, as
    FreeSWITCH's CDR recorded them (rtp_audio_in_mos, packets)."""
    await ingest_all(db, mapped("q2_rtp_loss"), clock)
    [call] = (await (await api.get("/api/call-logs/")).json())["results"]
    detail = await (await api.get(f"/api/call-logs/{call['id']}/")).json()
    rows = cdr_rows("q2_rtp_loss")
    assert len(detail["participants"]) == 2
    for party in detail["participants"]:
        row = rows[party["leg"]]
        assert party["quality"]["measured"] is True
        assert party["quality"]["mos"] == round(float(row["rtp_audio_in_mos"]), 2)
        assert party["quality"]["packets"] == int(row["rtp_audio_in_media_packet_count"])
    assert detail["mos"] == min(p["quality"]["mos"] for p in detail["participants"])

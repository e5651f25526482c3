"""The participant book (pure): who joined, who really answered, what an event carries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from calld.domain.participants import (
    ANSWERED_BY,
    PARTICIPANTS,
    ParticipantBook,
    PartyRole,
    participants_of,
    party_columns,
)
from calld.domain.vocabulary import EventType

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ring_group() -> ParticipantBook:
    book = ParticipantBook()
    book.join("a", PartyRole.CALLER, at(0), number="1000", name="Reception", endpoint="sofia/internal/1000")
    for leg in ("b1", "b2", "b3"):
        book.join(leg, PartyRole.CALLEE, at(0.1), number=f"100{leg[1]}")
    return book


def test_the_connected_phone_answered_not_the_one_that_lost_the_race() -> None:
    book = ring_group()
    book.answer("b2", at(2.0))  # picks up first but is not connected
    book.answer("b1", at(2.01))
    book.connect("a")
    book.connect("b1")
    book.leave("b2", at(2.02), "LOSE_RACE")
    book.leave("b3", at(2.02), "LOSE_RACE")
    assert book.answered_by() is not None and book.answered_by().number == "1001"  # type: ignore[union-attr]


def test_without_a_bridge_only_the_end_decides_and_a_lost_race_does_not_count() -> None:
    book = ring_group()
    book.answer("b2", at(2.0))
    book.leave("b2", at(2.1), "LOSE_RACE")
    book.answer("b3", at(2.2))
    assert book.answered_by() is None
    winner = book.answered_by(final=True)
    assert winner is not None and winner.number == "1003"


def test_events_carry_who_answered_and_the_last_one_every_party() -> None:
    book = ring_group()
    book.answer("b1", at(1))
    book.connect("b1")
    answered: dict[str, object] = {}
    book.annotate(EventType.ANSWERED, answered)
    assert answered == {ANSWERED_BY: "1001"}
    held: dict[str, object] = {}
    book.annotate(EventType.HOLD, held)
    assert held == {}
    for leg in ("a", "b1", "b2", "b3"):
        book.leave(leg, at(5), "NORMAL_CLEARING")
    ended: dict[str, object] = {}
    book.annotate(EventType.ENDED, ended)
    parties = participants_of(ended)
    assert parties is not None and [p.leg for p in parties] == ["a", "b1", "b2", "b3"]
    assert parties[0].name == "Reception" and parties[1].answered_at == at(1) and parties[3].left_at == at(5)
    assert party_columns(EventType.ENDED, ended) == {"answered_by": "1001"}
    assert party_columns(EventType.HOLD, ended) == {}


def test_a_later_report_fills_in_and_a_better_one_replaces() -> None:
    book = ParticipantBook()
    book.join("b", PartyRole.CALLEE, at(0), number="gw+gw1002")
    book.join("b", PartyRole.CALLEE, at(1), number="other", endpoint="sofia/internal/gw+gw1002")
    book.join("b", PartyRole.CALLEE, at(1), number="1002", better=True)
    [party] = participants_of({PARTICIPANTS: book.snapshot()}) or []
    assert (party.number, party.endpoint, party.joined_at) == ("1002", "sofia/internal/gw+gw1002", at(0))


def test_an_attended_transfer_hands_the_target_over_and_marks_it() -> None:
    call, consultation = ring_group(), ParticipantBook()
    consultation.join("c", PartyRole.CALLER, at(3), number="1001")
    consultation.join("t", PartyRole.CALLEE, at(3), number="1005")
    consultation.connect("t")
    call.adopt(consultation, "t", PartyRole.TRANSFER_TARGET)
    roles = {p["number"]: p["role"] for p in call.snapshot()}
    assert roles["1005"] == "transfer_target" and len(consultation) == 1
    other = ParticipantBook()
    other.join("a", PartyRole.CALLER, at(0), number="1000")
    other.join("b", PartyRole.CALLEE, at(0), number="1001")
    other.join("c", PartyRole.CALLEE, at(4), number="1003")
    other.annotate(EventType.TRANSFER_COMPLETED, {"transfer_to": "1003"})
    assert [p["role"] for p in other.snapshot()] == ["caller", "callee", "transfer_target"]


def test_metadata_from_elsewhere_is_read_carefully() -> None:
    assert participants_of({}) is None
    assert participants_of({PARTICIPANTS: "nope"}) is None
    read = participants_of(
        {
            PARTICIPANTS: [
                {"leg": "x", "role": "nobody"},
                {"leg": "", "role": "caller"},
                "junk",
                {"leg": "y", "role": "callee", "joined_at": "not a time", "number": 5},
                {"leg": "z", "role": "queue_agent", "answered_at": "2026-12-03T09:00:00+00:00"},
            ]
        }
    )
    assert read is not None and [(p.leg, p.number, p.joined_at) for p in read] == [("y", "", None), ("z", "", None)]
    assert read[1].answered_at == T0
    assert party_columns(EventType.ANSWERED, {ANSWERED_BY: ""}) == {}

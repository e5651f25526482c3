"""Who took part in a call: every party with its role, and which of them really answered (pure).

A switch call is made of legs: the caller's, one per phone it rang (a ring group rings three, one
wins, the others end ``LOSE_RACE`` / "answered elsewhere"), a transfer target's, conference members.
Each mapper feeds a ``ParticipantBook`` per call as it sees legs join, answer and leave; the call
tracker puts the book's ``answered_by`` on the ``answered`` event and its full snapshot on the
call's last event, and storage keeps one row per party (``call_participants``) and the
``answered_by`` column. Switch plumbing (Asterisk ``Local/`` channels, FreeSWITCH ``loopback/``
legs) is no party: the mappers leave it out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from calld.domain.vocabulary import ENDING_EVENTS, EventType

# Metadata keys the call tracker sets (see module docstring).
ANSWERED_BY = "answered_by"
PARTICIPANTS = "participants"
# The call_logs columns an event's participant metadata sets.
PARTY_COLUMNS = (ANSWERED_BY,)
MAX_PARTICIPANTS = 64  # a runaway conference is summarised, not stored party by party


class PartyRole(StrEnum):
    CALLER = "caller"
    CALLEE = "callee"
    TRANSFER_TARGET = "transfer_target"
    CONFERENCE_MEMBER = "conference_member"
    QUEUE_AGENT = "queue_agent"


@dataclass(slots=True)
class Participant:
    """One party of a call: the leg that carried it and when it joined, answered and left."""

    leg: str
    role: PartyRole
    number: str = ""
    name: str = ""
    endpoint: str = ""
    joined_at: datetime | None = None
    answered_at: datetime | None = None
    left_at: datetime | None = None
    end_cause: str | None = None

    @property
    def label(self) -> str:
        """How the party is named in ``answered_by``: its number, else its endpoint."""
        return self.number or self.endpoint or self.leg

    def as_metadata(self) -> dict[str, Any]:
        values = asdict(self)
        values["role"] = self.role.value
        for name in ("joined_at", "answered_at", "left_at"):
            at = getattr(self, name)
            values[name] = at.isoformat() if at is not None else None
        return values


class ParticipantBook:
    """The parties of one call as its legs come and go (kept by each switch mapper)."""

    def __init__(self) -> None:
        self._parties: dict[str, Participant] = {}
        # Legs the switch bridged to another party, in order: with a ring group, several phones may
        # answer at once but only one is connected (the others end LOSE_RACE).
        self._connected: list[str] = []

    def __len__(self) -> int:
        return len(self._parties)

    def __contains__(self, leg: object) -> bool:
        return leg in self._parties

    def join(
        self,
        leg: str,
        role: PartyRole,
        at: datetime,
        *,
        number: str = "",
        name: str = "",
        endpoint: str = "",
        better: bool = False,
    ) -> None:
        """``leg`` joined the call. A later report of the leg fills in what is blank, or with
        ``better`` (a report the switch makes more complete) replaces what it gives."""
        party = self._parties.get(leg)
        if party is None:
            if len(self._parties) < MAX_PARTICIPANTS:
                self._parties[leg] = Participant(leg, role, number, name, endpoint, at)
            return
        party.number = (number or party.number) if better else (party.number or number)
        party.name = (name or party.name) if better else (party.name or name)
        party.endpoint = (endpoint or party.endpoint) if better else (party.endpoint or endpoint)

    def adopt(self, other: ParticipantBook, leg: str, role: PartyRole) -> None:
        """Take ``leg``'s party over from ``other`` (a consultation call merged into this one by
        an attended transfer), in ``role``."""
        party = other._parties.pop(leg, None)
        if leg in other._connected:
            other._connected.remove(leg)
        if party is not None and leg not in self._parties and len(self._parties) < MAX_PARTICIPANTS:
            party.role = role
            self._parties[leg] = party

    def set_role(self, leg: str, role: PartyRole) -> None:
        """``leg`` turned out to take part as ``role`` (a phone joining a conference)."""
        party = self._parties.get(leg)
        if party is not None:
            party.role = role

    def answer(self, leg: str, at: datetime) -> None:
        party = self._parties.get(leg)
        if party is not None and party.answered_at is None:
            party.answered_at = at

    def leave(self, leg: str, at: datetime, cause: str | None = None) -> None:
        party = self._parties.get(leg)
        if party is not None and party.left_at is None:
            party.left_at = at
            party.end_cause = cause or None

    def connect(self, leg: str) -> None:
        """The switch bridged ``leg`` to another party (it talked, not just picked up)."""
        if leg in self._parties and leg not in self._connected:
            self._connected.append(leg)

    def answered_by(self, *, final: bool = False) -> Participant | None:
        """The party that really answered: the first one other than the caller the switch connected.
        ``final`` (the call is over): failing that, the first other party that picked up and did
        not lose the race to another phone."""
        for leg in self._connected:
            party = self._parties[leg]
            if party.role in _ANSWERING_ROLES and party.answered_at is not None:
                return party
        if not final:
            return None
        answered = [
            p
            for p in self._parties.values()
            if p.role in _ANSWERING_ROLES and p.answered_at is not None and not _lost_race(p.end_cause)
        ]
        return min(answered, key=lambda p: p.answered_at or datetime.max) if answered else None

    def _mark_transfer_target(self, number: object) -> None:
        """A party that joined as a callee of the number the call is being transferred to is the
        transfer target (an attended transfer's consultation call rang it as a plain callee)."""
        if not isinstance(number, str) or not number:
            return
        callees = [p for p in self._parties.values() if p.role is PartyRole.CALLEE]
        for party in callees[1:]:  # the first callee is the one the call was for
            if party.number == number:
                party.role = PartyRole.TRANSFER_TARGET

    def snapshot(self) -> list[dict[str, Any]]:
        return [party.as_metadata() for party in self._parties.values()]

    def annotate(self, event_type: EventType, metadata: dict[str, Any]) -> None:
        """Put what the book knows on an event's ``metadata``: who answered on ``answered`` and on
        the call's last event, and every party on the last event."""
        if not self._parties:
            return
        if event_type in (EventType.TRANSFER_INITIATED, EventType.TRANSFER_COMPLETED):
            self._mark_transfer_target(metadata.get("transfer_to"))
            return
        final = event_type in ENDING_EVENTS
        if event_type is not EventType.ANSWERED and not final:
            return
        winner = self.answered_by(final=final)
        if winner is not None:
            metadata.setdefault(ANSWERED_BY, winner.label)
        if final:
            metadata.setdefault(PARTICIPANTS, self.snapshot())


# Who can be said to have answered a call: not its caller, nor a conference that took it.
_ANSWERING_ROLES = frozenset({PartyRole.CALLEE, PartyRole.TRANSFER_TARGET, PartyRole.QUEUE_AGENT})
# How a phone that picked up too late ends: FreeSWITCH's LOSE_RACE, Q.850 26 "Answered elsewhere".
_LOST_RACE = frozenset({"LOSE_RACE", "ANSWERED_ELSEWHERE", "ANSWERED ELSEWHERE", "NON-SELECTED USER CLEARING"})


def _lost_race(cause: str | None) -> bool:
    return cause is not None and cause.upper() in _LOST_RACE


def party_columns(event_type: EventType, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The ``call_logs`` columns an event's participant metadata sets (``answered_by``)."""
    value = metadata.get(ANSWERED_BY)
    if event_type in (EventType.ANSWERED, EventType.ENDED, EventType.FAILED) and isinstance(value, str) and value:
        return {ANSWERED_BY: value[:255]}
    return {}


def participants_of(metadata: Mapping[str, Any]) -> list[Participant] | None:
    """The parties an event's metadata lists (None when it lists none); malformed entries are skipped:
    metadata is the switch's word, never a reason to refuse the event."""
    raw = metadata.get(PARTICIPANTS)
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        return None
    parties: list[Participant] = []
    for item in raw[:MAX_PARTICIPANTS]:
        party = _participant(item)
        if party is not None:
            parties.append(party)
    return parties


def _participant(item: object) -> Participant | None:
    if not isinstance(item, Mapping):
        return None
    leg, role = item.get("leg"), item.get("role")
    if not isinstance(leg, str) or not leg or not isinstance(role, str) or role not in PartyRole._value2member_map_:
        return None
    cause = item.get("end_cause")
    return Participant(
        leg=leg[:255],
        role=PartyRole(role),
        number=_text(item.get("number")),
        name=_text(item.get("name")),
        endpoint=_text(item.get("endpoint")),
        joined_at=_instant(item.get("joined_at")),
        answered_at=_instant(item.get("answered_at")),
        left_at=_instant(item.get("left_at")),
        end_cause=cause[:64] if isinstance(cause, str) and cause else None,
    )


def _text(value: object) -> str:
    return value[:255] if isinstance(value, str) else ""


def _instant(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None

"""Keeping ``call_participants`` in step with what the switch reports of a call's parties."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from calld.domain.participants import Participant
from calld.storage.models import CallParticipant


def store_participants(session: Session, call_id: uuid.UUID, parties: Sequence[Participant]) -> None:
    """Replace the call's parties with ``parties``: the switch's snapshot is of every leg the call had."""
    session.execute(sa.delete(CallParticipant).where(CallParticipant.call_id == call_id))
    if parties:
        session.execute(sa.insert(CallParticipant), [_row(call_id, party) for party in parties])


def _row(call_id: uuid.UUID, party: Participant) -> dict[str, Any]:
    return {
        "call_id": call_id,
        "leg": party.leg,
        "role": party.role.value,
        "number": party.number,
        "name": party.name,
        "endpoint": party.endpoint,
        "joined_at": party.joined_at,
        "answered_at": party.answered_at,
        "left_at": party.left_at,
        "end_cause": party.end_cause,
    }

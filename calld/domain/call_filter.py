"""What a list of calls or a statistic is restricted to, and the calendar periods statistics count over.

Pure values: the HTTP layer parses them, storage turns them into SQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from calld.domain.hangup import HangupBy, HangupCause, MissedReason
from calld.domain.vocabulary import CallDirection, CallStatus, CallType

# The orderings a list may ask for; the id is always appended so pages never overlap or skip rows.
ORDERINGS: tuple[str, ...] = (
    "started_at",
    "-started_at",
    "duration_seconds",
    "-duration_seconds",
    "created_at",
    "-created_at",
)
DEFAULT_ORDERING = "-started_at"


@dataclass(frozen=True, slots=True)
class CallFilter:
    """What a call list is restricted to; empty sequences and None mean "any"."""

    statuses: Sequence[CallStatus] = ()
    directions: Sequence[CallDirection] = ()
    call_types: Sequence[CallType] = ()
    number: str | None = None
    client_id: uuid.UUID | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None
    hangup_causes: Sequence[HangupCause] = ()
    hangup_by: Sequence[HangupBy] = ()
    missed_reasons: Sequence[MissedReason] = ()
    answered_by: str | None = None
    # Calls whose (worst leg's) MOS is within [min_mos, max_mos]; either bound excludes unmeasured calls.
    min_mos: float | None = None
    max_mos: float | None = None


class Period(StrEnum):
    TODAY = "today"
    WEEK = "week"
    MONTH = "month"


def period_start(period: Period, now: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant at which ``period`` began in ``zone``: local midnight, Monday, or the 1st.

    Built from the local calendar date, so a DST change inside the period does not shift it.
    A local midnight that does not exist (DST at 00:00) resolves to the instant the day begins.
    """
    local_day = now.astimezone(zone).date()
    if period is Period.WEEK:
        local_day -= timedelta(days=local_day.weekday())
    elif period is Period.MONTH:
        local_day = local_day.replace(day=1)
    return local_midnight(local_day, zone)


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant ``day`` begins in ``zone`` (a midnight DST skips resolves to when the day begins)."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)

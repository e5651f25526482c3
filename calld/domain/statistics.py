"""The statistics report, pure: its parameters, calendar buckets in a zone, and metrics from sums.

Storage keeps, per 15-minute bucket of UTC time and per group, the sums of ``SUMS`` (migration
0013); a report adds them up per calendar bucket (hour, day, week, month in the report's zone) and
turns them into rates and averages here. Buckets are built from the local calendar, so a day is
23 or 25 hours long on a DST change and the repeated hour of an autumn night is two hourly buckets.
Every zone's offset is a multiple of 15 minutes, so each calendar boundary is a rollup boundary.

Adding a dimension (``answered_by``, ``hangup_cause`` once calls carry them) is one ``GroupBy``
member here and one entry of the rollup's dimensions (a migration); a metric is one entry of
``SUMS`` (a rollup column) and one line in ``metrics``.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from calld.domain.call_filter import local_midnight

BUCKET_SECONDS = 900
SERVICE_LEVELS: tuple[int, ...] = (10, 15, 20, 30, 45, 60, 90, 120)
DEFAULT_SERVICE_LEVEL = 20
# A report's range lies within these (integer division of epochs floors only from 1970 on).
EARLIEST = datetime(1970, 1, 2, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
# A report holds at most this many calendar buckets (ten years of hours is 87,660).
MAX_BUCKETS = 100_000

SUMS: tuple[str, ...] = (
    "total_calls",
    "answered_calls",
    "missed_calls",
    "inbound_calls",
    "outbound_calls",
    "abandoned_calls",
    "talk_sum",
    "talk_count",
    "ring_sum",
    "ring_count",
    "hold_sum",
    *(f"answered_within_{n}" for n in SERVICE_LEVELS),
)


class Interval(StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class GroupBy(StrEnum):
    """What a report may be split by (each a dimension of the rollup)."""

    DIRECTION = "direction"
    EXTENSION = "extension"
    CLIENT = "client"
    SIP_CONFIGURATION = "sip_configuration"


@dataclass(frozen=True, slots=True)
class ReportRequest:
    """A statistics report: calls started in [start, end), split by ``interval`` and ``group_by``."""

    start: datetime
    end: datetime
    zone: ZoneInfo
    interval: Interval | None = None
    group_by: GroupBy | None = None
    service_level_seconds: int = DEFAULT_SERVICE_LEVEL


@dataclass(frozen=True, slots=True)
class Bucket:
    """One calendar bucket, clipped to the report's range (UTC instants)."""

    start: datetime
    end: datetime


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)


def epoch(instant: datetime) -> int:
    """Whole seconds since the epoch, rounded down."""
    return (instant - _EPOCH) // _SECOND


def _calendar_starts(interval: Interval, start: datetime, end: datetime, zone: ZoneInfo) -> Iterator[datetime]:
    """The UTC instants calendar buckets begin in ``zone``, from the one holding ``start`` to before ``end``."""
    if interval is Interval.HOUR:
        yield from _hour_starts(start, end, zone)
        return
    day = start.astimezone(zone).date()
    if interval is Interval.WEEK:
        day -= timedelta(days=day.weekday())
    elif interval is Interval.MONTH:
        day = day.replace(day=1)
    while (instant := local_midnight(day, zone)) < end:
        yield instant
        day = _next_day(interval, day)


def _hour_starts(start: datetime, end: datetime, zone: ZoneInfo) -> Iterator[datetime]:
    """Where local hours begin: in each stretch of constant offset, every instant whose local time is
    on the hour. An autumn night's repeated hour begins twice (once per offset); a skipped one never."""
    segments = offset_segments(zone, start, end)
    for n, (begins, offset) in enumerate(segments):
        # The first stretch from the hour holding start, the others from their first whole hour.
        first = (begins + offset) // 3600 * 3600 - offset if n == 0 else -(-(begins + offset) // 3600) * 3600 - offset
        stop = segments[n + 1][0] if n + 1 < len(segments) else epoch(end) + 1
        for instant in range(first, stop, 3600):
            if (moment := datetime.fromtimestamp(instant, UTC)) < end:
                yield moment


def _next_day(interval: Interval, day: date) -> date:
    if interval is Interval.DAY:
        return day + timedelta(days=1)
    if interval is Interval.WEEK:
        return day + timedelta(days=7)
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def buckets(request: ReportRequest) -> list[Bucket]:
    """The report's buckets in order; without an interval, the one whole range."""
    if request.interval is None:
        return [Bucket(request.start, request.end)]
    starts = list(_calendar_starts(request.interval, request.start, request.end, request.zone))
    edges = [max(s, request.start) for s in starts] + [request.end]
    return [Bucket(a, b) for a, b in itertools.pairwise(edges) if a < b]


def bucket_count_estimate(interval: Interval | None, start: datetime, end: datetime) -> int:
    """An upper bound of the buckets a report would hold, without building them."""
    seconds = (end - start).total_seconds()
    per = {None: seconds + 1, Interval.HOUR: 3600, Interval.DAY: 82800, Interval.WEEK: 601200, Interval.MONTH: 2415600}
    return int(seconds // per[interval]) + 2


def offset_segments(zone: ZoneInfo, start: datetime, end: datetime) -> list[tuple[int, int]]:
    """``zone``'s UTC offset over [start, end) as (epoch from which it holds, offset seconds), in order.

    Offsets are read daily and a change is searched to the second; every change since 1970 falls on
    a quarter hour, so each segment starts on a rollup bucket boundary."""

    def offset(instant: int) -> int:
        delta = datetime.fromtimestamp(instant, UTC).astimezone(zone).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    first, last = epoch(start), epoch(end)
    segments = [(first, offset(first))]
    probe = first
    while probe < last:
        following = min(probe + 86400, last)
        if offset(following) != segments[-1][1]:
            low, high = probe, following  # offset(low) is the segment's, offset(high) is not
            while high - low > 1:
                mid = (low + high) // 2
                low, high = (mid, high) if offset(mid) == segments[-1][1] else (low, mid)
            segments.append((high, offset(high)))
        probe = following
    return segments


class Binner:
    """Which bucket a 15-minute rollup bucket (or a call's start) falls in, by bisection."""

    def __init__(self, report_buckets: Sequence[Bucket]) -> None:
        self._starts = [epoch(b.start) for b in report_buckets]

    def index(self, instant_epoch: int) -> int:
        return bisect.bisect_right(self._starts, instant_epoch) - 1


# A report's cell: the first eleven of ``SUMS`` and the one answered_within_N its service level reads.
CELL_SUMS = 12
_WITHIN = {n: SUMS.index(f"answered_within_{n}") for n in SERVICE_LEVELS}


def zero_sums() -> list[float]:
    return [0.0] * CELL_SUMS


def cell_columns(service_level_seconds: int) -> tuple[str, ...]:
    """The rollup columns a report's cells sum, in cell order."""
    return (*SUMS[: CELL_SUMS - 1], f"answered_within_{service_level_seconds}")


def report_cell(sums: Sequence[float], service_level_seconds: int) -> list[float]:
    """A cell from all of ``SUMS`` (one call's ``contribution``)."""
    return [*sums[: CELL_SUMS - 1], sums[_WITHIN[service_level_seconds]]]


def metrics(cell: Sequence[float]) -> dict[str, float | int]:
    """The report's metrics from one bucket's (or group's) cell (``cell_columns``).

    answer rate (ASR) = answered / total; abandoned = inbound calls the caller gave up on before an
    answer (missed or cancelled), abandon rate = abandoned / inbound; service level = answered
    within ``service_level_seconds`` of ringing / total; talk (ALOC) and hold over answered, ended
    calls; ring (time to answer) over answered calls. (Read by position: a year of hours is 8,760
    of these per request.)"""
    return dict(zip(METRICS, metric_values(cell), strict=True))


def metric_values(cell: Sequence[float]) -> tuple[float | int, ...]:
    """``metrics`` as values in ``METRICS`` order (the compact series' rows)."""
    total, answered, missed, inbound, outbound, abandoned, talk, talked, ring, rung, hold, within = cell
    return (
        int(total),
        int(answered),
        int(missed),
        int(inbound),
        int(outbound),
        int(abandoned),
        round(answered * 100 / total, 2) if total else 0.0,
        round(abandoned * 100 / inbound, 2) if inbound else 0.0,
        round(within * 100 / total, 2) if total else 0.0,
        int(within),
        round(talk, 2),
        round(talk / talked, 2) if talked else 0.0,
        round(ring / rung, 2) if rung else 0.0,
        round(hold / talked, 2) if talked else 0.0,
        # Every call is inbound, outbound or internal: the rollup keeps the first two and the total. Last,
        # so the CSV's earlier columns keep their places.
        int(total - inbound - outbound),
    )


METRICS: tuple[str, ...] = (
    "total_calls",
    "answered_calls",
    "missed_calls",
    "inbound_calls",
    "outbound_calls",
    "abandoned_calls",
    "answer_rate",
    "abandon_rate",
    "service_level",
    "answered_within_service_level",
    "total_talk_seconds",
    "average_talk_seconds",
    "average_ring_seconds",
    "average_hold_seconds",
    "internal_calls",
)


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What one call contributes to the sums (read from ``call_logs`` at a range's ragged edges)."""

    direction: str
    status: str
    answered: bool
    ended: bool
    duration_seconds: float | None
    ring_seconds: float | None
    hold_seconds: float


def contribution(call: CallFacts) -> list[float]:
    """The call's ``SUMS``, exactly as the rollup's triggers count it (migration 0013)."""
    talked = call.answered and call.ended and call.duration_seconds is not None
    timed = call.answered and call.ring_seconds is not None
    ring = call.ring_seconds if timed and call.ring_seconds is not None else 0.0
    abandoned = call.direction == "inbound" and not call.answered and call.status in ("missed", "cancelled")
    return [
        1,
        int(call.answered),
        int(call.status in ("missed", "no_answer")),
        int(call.direction == "inbound"),
        int(call.direction == "outbound"),
        int(abandoned),
        call.duration_seconds if talked and call.duration_seconds is not None else 0.0,
        int(talked),
        ring,
        int(timed),
        call.hold_seconds if talked else 0.0,
        *(int(timed and ring <= n) for n in SERVICE_LEVELS),
    ]


def extension_of(direction: str, caller: str, recipient: str) -> str:
    """The call's own extension (recipient of an inbound call, caller of an outbound or internal one) if it is
    one (2 to 6 digits), else '' — as the rollup keys it."""
    party = recipient if direction == "inbound" else caller
    return party if 2 <= len(party) <= 6 and party.isascii() and party.isdigit() else ""

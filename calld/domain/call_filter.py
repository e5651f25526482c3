"""What a list of calls or a statistic is restricted to, and the calendar periods statistics count over.

Pure values: the HTTP layer parses them, storage turns them into SQL.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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


class Compare(StrEnum):
    """How a column criterion compares the call's column with the value asked for."""

    ANY_OF = "any_of"  # the column is one of the values (repeatable or comma-separated)
    EQUALS = "equals"  # the column is this text
    AT_LEAST = "at_least"  # column >= value
    AT_MOST = "at_most"  # column <= value


@dataclass(frozen=True, slots=True)
class ColumnCriterion:
    """A list filter that compares one column of the call with the query parameter ``param``.

    ``values`` is what the parameter takes: an enum (its values), ``str`` (text of at most
    ``maximum`` characters) or ``float`` (a number from ``minimum`` to ``maximum``). The HTTP layer
    parses and documents it, storage turns it into SQL; the column needs an index
    (tests/storage/test_search_plans.py EXPLAINs every entry on both databases).
    """

    param: str
    column: str
    compare: Compare
    values: type[StrEnum] | type[float] | type[str]
    description: str
    minimum: float | None = None
    maximum: float | None = None


# The list's column filters: one entry each (plus the column's index, named ix_call_logs_<column>).
COLUMN_CRITERIA: tuple[ColumnCriterion, ...] = (
    ColumnCriterion(
        "min_duration",
        "duration_seconds",
        Compare.AT_LEAST,
        float,
        "Calls that talked at least this many seconds (answer to end).",
        0.0,
    ),
    ColumnCriterion(
        "max_duration",
        "duration_seconds",
        Compare.AT_MOST,
        float,
        "Calls that talked at most this many seconds (answer to end); unanswered calls have no duration.",
        0.0,
    ),
    ColumnCriterion(
        "hangup_cause", "hangup_cause", Compare.ANY_OF, HangupCause, "Calls that ended for any of these causes"
    ),
    ColumnCriterion("hangup_by", "hangup_by", Compare.ANY_OF, HangupBy, "Calls ended by any of these parties"),
    ColumnCriterion(
        "missed_reason",
        "missed_reason",
        Compare.ANY_OF,
        MissedReason,
        "Unanswered calls missed for any of these reasons",
    ),
    ColumnCriterion(
        "answered_by",
        "answered_by",
        Compare.EQUALS,
        str,
        "Calls this party answered (its number or endpoint, as in answered_by).",
        maximum=255,
    ),
    ColumnCriterion(
        "min_mos",
        "mos",
        Compare.AT_LEAST,
        float,
        "Calls whose MOS (worst leg) is at least this; unmeasured calls are left out.",
        1.0,
        5.0,
    ),
    ColumnCriterion(
        "max_mos",
        "mos",
        Compare.AT_MOST,
        float,
        "Calls whose MOS (worst leg) is at most this; unmeasured calls are left out.",
        1.0,
        5.0,
    ),
)
CRITERIA_BY_PARAM: Mapping[str, ColumnCriterion] = {c.param: c for c in COLUMN_CRITERIA}


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
    # A number pattern (``+4930*``): calls from or to numbers it matches (see ``NumberPattern``).
    number_pattern: NumberPattern | None = None
    has_recording: bool | None = None
    has_transcript: bool | None = None
    # Free text: every word starts a word of the notes, of the client's name, or of one transcript.
    text: SearchText | None = None
    # Calls carrying any of these tags.
    tags: Sequence[str] = ()
    # ``COLUMN_CRITERIA`` values by parameter name (a tuple for ANY_OF, text for EQUALS, a number otherwise).
    criteria: Mapping[str, object] = field(default_factory=dict)


# A pattern is a number's characters with ``*`` for any run of characters and ``?`` for one; it must
# start with at least two fixed characters so that the number indexes can find it (a leading
# wildcard would read every call).
_PATTERN = re.compile(r"^[+]?[0-9A-Za-z:*?]+$")
MIN_PATTERN_PREFIX = 2


@dataclass(frozen=True, slots=True)
class NumberPattern:
    """A number with wildcards: ``prefix`` is its fixed start, ``like`` the SQL LIKE pattern (None when
    the pattern is the prefix followed by one ``*``, which the prefix range alone decides)."""

    prefix: str
    like: str | None

    @property
    def upper(self) -> str:
        """The smallest string after every string starting with ``prefix`` (a range's exclusive end)."""
        return self.prefix[:-1] + chr(ord(self.prefix[-1]) + 1)


def is_number_pattern(raw: str) -> bool:
    """Whether a ``number`` value asks for a pattern rather than one number."""
    return "*" in raw or "?" in raw


def number_pattern(raw: str) -> NumberPattern:
    """``raw`` (``+4930*``, ``+49301234??``) read as a pattern; ``ValueError`` saying what is wrong."""
    value = raw.strip()
    if not _PATTERN.fullmatch(value):
        raise ValueError("a pattern is a number's digits (and +) with * for any characters and ? for one")
    fixed = re.split(r"[*?]", value, maxsplit=1)[0]
    if len(fixed) < MIN_PATTERN_PREFIX:
        raise ValueError(f"a pattern must start with at least {MIN_PATTERN_PREFIX} digits before * or ?")
    if value == fixed + "*":
        return NumberPattern(fixed, None)
    # Numbers hold no % or _, so the LIKE pattern needs no escapes.
    return NumberPattern(fixed, value.replace("*", "%").replace("?", "_"))


_WORD = re.compile(r"\w+")
MAX_SEARCH_WORDS = 16


@dataclass(frozen=True, slots=True)
class SearchText:
    """Free text read into words (letters and digits, lower-cased); each must start a word of the
    notes, or each of the client's name, or each of one transcript."""

    words: tuple[str, ...]


def search_text(raw: str) -> SearchText:
    """The words of ``raw``; ``ValueError`` when it has none or too many."""
    words = tuple(dict.fromkeys(w.lower() for w in _WORD.findall(raw)))
    if not words:
        raise ValueError("give at least one word (letters or digits)")
    if len(words) > MAX_SEARCH_WORDS:
        raise ValueError(f"give at most {MAX_SEARCH_WORDS} words")
    return SearchText(words)


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


# A tag: a short label, lower-cased; letters, digits and - _ . : / inside.
_TAG = re.compile(r"^[^\W_](?:[\w.:/-]|(?<! ) (?! )){0,62}[^\W_]$|^[^\W_]$")
MAX_TAGS = 20


def normalise_tag(raw: str) -> str:
    """``raw`` as a stored tag (trimmed, lower-cased); ``ValueError`` saying what is wrong."""
    tag = raw.strip().lower()
    if not _TAG.fullmatch(tag):
        raise ValueError(
            f"{raw!r} is not a tag: 1 to 64 letters, digits and - _ . : / (single spaces inside), "
            "starting and ending with a letter or digit"
        )
    return tag

"""What every provider module hands back: verified requests turned into calld events.

A provider event lists the calld events it may mean, in order of preference (``attempts``): the
first the call's state machine takes is stored. A report that none fits (a second leg's answer, a
hangup cause that contradicts a late answer) is stored as ``provider_event`` with what it said,
never refused and never dropped. ``implied`` events are derived, not reported (an answer implied by
a completed call's duration): when none of their attempts fits they are left out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl

from calld.domain.errors import InvalidValue
from calld.domain.phone import normalise_number
from calld.domain.vocabulary import CallDirection, EventType, RecordingStatus

# The call_logs number columns hold 32 characters; the full value is kept in the event metadata.
MAX_NUMBER = 32
# The dedup_key column holds 255 characters.
MAX_KEY = 255


class SignatureRejected(Exception):
    """The request is not signed by the provider (safe to tell the sender)."""


class PayloadProblem(Exception):
    """The payload lacks or garbles something calld needs; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """An HTTP request as the provider signed it: ``url`` is the URL the provider was given."""

    method: str
    url: str
    headers: Mapping[str, str]  # names in lower case
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True, slots=True)
class RecordingReport:
    """A provider's recording of a call: the recording row calld keeps for it."""

    status: RecordingStatus
    url: str | None
    duration_seconds: float | None = None
    format: str | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    """One calld event a provider event may mean."""

    event_type: EventType
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """One event of a call at a provider, in calld's vocabulary.

    ``call_ref`` is the provider's identity of the whole call (a child leg names its parent's), so
    every leg folds into one call log; calld keeps it as the call's SIP Call-ID ``<provider>:<ref>``.
    """

    provider: str
    call_ref: str
    attempts: tuple[Attempt, ...]
    timestamp: datetime
    dedup_key: str
    metadata: Mapping[str, Any]
    caller: str | None = None
    recipient: str | None = None
    direction: CallDirection = CallDirection.INBOUND
    implied: bool = False
    recording: RecordingReport | None = None

    @property
    def sip_call_id(self) -> str:
        return f"{self.provider}:{self.call_ref}"[:MAX_KEY]


def event_key(provider: str, *parts: object) -> str:
    """A delivery's identity from the provider's own ids (what a redelivery repeats)."""
    return ":".join([provider, *(str(part) for part in parts)])[:MAX_KEY]


def party(raw: str | None, region: str | None) -> str | None:
    """A party's number as calld stores it: E.164 or an extension where it reads as one, otherwise
    what the provider sent (``client:alice``, ``anonymous``, a SIP URI), cut to the column's size.
    Providers' numbers are never refused: the call happened whatever its caller ID."""
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    candidate = text[4:] if text.lower().startswith("tel:") else text
    # Vonage writes E.164 without its plus sign.
    if candidate.isdigit() and len(candidate) > 6:
        candidate = "+" + candidate
    try:
        return normalise_number(candidate, "number", region)
    except InvalidValue:
        return text[:MAX_NUMBER]


def number(value: Any, field_name: str) -> float | None:
    """A finite number from a provider's string or number field (``None`` when absent or empty)."""
    if value is None or value == "":
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise PayloadProblem(field_name, f"must be a number, got {value!r}") from None
    if not math.isfinite(result):
        raise PayloadProblem(field_name, f"must be a finite number, got {value!r}")
    return result


_NAIVE = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?$")


def instant(value: Any, field_name: str) -> datetime:
    """A provider's time: ISO 8601 (``Z`` or an offset; a naive one is UTC, as Plivo writes it) or
    RFC 2822 (Twilio's ``Tue, 24 Nov 2026 12:00:00 +0000``)."""
    if not isinstance(value, str) or not value.strip():
        raise PayloadProblem(field_name, "must be a date-time")
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            raise PayloadProblem(field_name, f"{text!r} is not an ISO 8601 or RFC 2822 date-time") from None
    if parsed.tzinfo is None:
        if not _NAIVE.match(text) and "," not in text:
            raise PayloadProblem(field_name, f"{text!r} has no time zone")
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59:59-01:00
        raise PayloadProblem(field_name, f"{text!r} is out of range") from None


def check_age(when: datetime | float, now: datetime, window: timedelta, what: str) -> None:
    """Refuse a request whose signed (or only) time (an instant or Unix seconds) lies outside the replay window."""
    age = now.timestamp() - (when.timestamp() if isinstance(when, datetime) else when)
    if not abs(age) <= window.total_seconds():  # also refuses NaN
        raise SignatureRejected(
            f"{what} outside the replay window of {int(window.total_seconds())} s ({age:.0f} s ago)"
        )


def form_fields(body: bytes) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (the last value of a repeated field)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadProblem("body", "is not UTF-8 form data") from None
    return dict(parse_qsl(text, keep_blank_values=True))


def required(fields: Mapping[str, Any], name: str) -> str:
    value = fields.get(name)
    if not isinstance(value, str) or not value.strip():
        raise PayloadProblem(name, "this field is required")
    return value.strip()


def optional(fields: Mapping[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def compact(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """``metadata`` without its empty values."""
    return {key: value for key, value in metadata.items() if value is not None and value != ""}


# Provider hangup causes in one vocabulary (Telnyx's, which names the same Q.850 causes the others do).
HANGUP_CAUSES: Mapping[str, str] = {
    "normal_clearing": "normal_clearing",
    "normal clearing": "normal_clearing",
    "normal hangup": "normal_clearing",
    "completed": "normal_clearing",
    "user_busy": "user_busy",
    "busy": "user_busy",
    "busy line": "user_busy",
    "no_answer": "no_answer",
    "no-answer": "no_answer",
    "no answer": "no_answer",
    "no_user_response": "no_answer",
    "timeout": "timeout",
    "unanswered": "no_answer",
    "call_rejected": "call_rejected",
    "rejected": "call_rejected",
    "originator_cancel": "originator_cancel",
    "canceled": "originator_cancel",
    "cancelled": "originator_cancel",
    "cancel": "originator_cancel",
    "not_found": "not_found",
    "unallocated_number": "not_found",
    "no_route_destination": "not_found",
    "time_limit": "time_limit",
    "failed": "unspecified",
    "unspecified": "unspecified",
}


def hangup_cause(raw: str | None) -> str | None:
    """A provider's hangup cause in calld's vocabulary (``unspecified`` for one it does not know)."""
    if raw is None or not raw.strip():
        return None
    return HANGUP_CAUSES.get(raw.strip().lower(), "unspecified")


# Who hung up, in one vocabulary: caller, callee, provider (the platform or the application), unknown.
HANGUP_BY: Mapping[str, str] = {
    "caller": "caller",
    "callee": "callee",
    "user": "caller",
    "plivo": "provider",
    "platform": "provider",
    "api request": "provider",
    "answer xml": "provider",
    "error": "provider",
    "unknown": "unknown",
}


def hangup_by(raw: str | None) -> str | None:
    if raw is None or not raw.strip():
        return None
    return HANGUP_BY.get(raw.strip().lower(), "unknown")


def ending(outcome: str | None, metadata: Mapping[str, Any]) -> tuple[Attempt, ...]:
    """The attempts of a call's end: ``outcome`` (busy, no_answer, cancelled, failed) where the call
    can still take it, else a plain end (a late answer already stored makes it an answered call)."""
    meta = dict(metadata)
    plain = Attempt(EventType.ENDED, meta)
    if outcome is None:
        return (plain,)
    if outcome == "failed":
        return (Attempt(EventType.FAILED, meta), plain)
    return (Attempt(EventType.ENDED, {**meta, "outcome": outcome}), plain)

"""Field-by-field validation of JSON bodies and query strings.

``Fields`` reads values out of a mapping and collects every problem, so one 422 answer names all
the bad fields at once (``{"error": "validation failed", "detail": {field: message}}``).
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from calld.domain.call_filter import local_midnight
from calld.domain.errors import InvalidValue
from calld.domain.numbers import MAX_PRESENTED_NUMBER, NumberPolicy
from calld.http.errors import ApiError

E = TypeVar("E", bound=StrEnum)

MISSING: Any = object()
_ASCII_DECIMAL = re.compile(r"-?[0-9]{1,12}(\.[0-9]{1,9})?")
_ASCII_INTEGER = re.compile(r"-?[0-9]{1,18}")
_ASCII_DECIMAL = re.compile(r"-?[0-9]{1,18}(\.[0-9]{1,18})?")
# CR, LF and NUL end a line or a string in the switches' protocols (AMI, Event Socket): a value
# that reaches a switch command must not carry them, or it could add headers or commands.
_FRAMING = re.compile(r"[\r\n\x00]")


def framing_problem(text: str) -> str | None:
    """Why ``text`` cannot be put into a line of a switch command, or None."""
    if _FRAMING.search(text):
        return "must not contain line breaks (CR, LF) or NUL characters"
    return None


# A plain calendar date, which some filters take as the local midnight it begins.
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def unstorable_text(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None: PostgreSQL refuses NUL, and JSON's "\\ud800" escapes
    can smuggle in lone surrogates that no database encoding accepts."""
    if "\x00" in text:
        return "must not contain NUL characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text (no lone surrogates)"
    return None


MAX_JSON_DEPTH = 20


def json_problem(value: Any, depth: int = 0) -> str | None:
    """Why ``value`` cannot be stored as JSON on both databases, or None (PostgreSQL's JSONB refuses
    NUL in text, as both refuse NaN; depth is bounded so reading it back cannot recurse too far)."""
    if depth > MAX_JSON_DEPTH:
        return f"must not be nested more than {MAX_JSON_DEPTH} levels deep"
    if isinstance(value, float) and not math.isfinite(value):
        return "must not contain NaN or Infinity"
    if isinstance(value, str):
        return unstorable_text(value)
    items: list[Any] = []
    if isinstance(value, dict):
        items = [*value.keys(), *value.values()]
    elif isinstance(value, list):
        items = value
    for item in items:
        problem = json_problem(item, depth + 1)
        if problem is not None:
            return problem
    return None


class Fields:
    """Typed reads from a JSON object (``query=False``) or a query string (``query=True``).

    Query strings carry only text, so there "5" reads as a number and "true" as a boolean; in a
    JSON body those are type errors.
    """

    def __init__(
        self,
        data: Mapping[str, Any],
        *,
        allowed: Iterable[str] | None = None,
        status: int = 422,
        query: bool = False,
    ) -> None:
        self.data = data
        self.errors: dict[str, str] = {}
        self.status = status
        self.query = query
        if allowed is not None:
            known = set(allowed)
            for key in data:
                if key not in known:
                    self.errors[key] = f"unknown field; allowed: {', '.join(sorted(known))}"

    def present(self, name: str) -> bool:
        return name in self.data

    def fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    def done(self) -> None:
        """Raise one 422 (or ``status``) naming every bad field, if any."""
        if self.errors:
            raise ApiError(self.status, "validation failed", self.errors)

    def _get(self, name: str, required: bool) -> Any:
        value = self.data.get(name, MISSING)
        if value is MISSING or value is None:
            if required:
                self.fail(name, "this field is required")
            return MISSING
        return value

    def string(
        self, name: str, *, required: bool = False, default: Any = None, max_length: int = 255, blank: bool = False
    ) -> Any:
        value = self._get(name, required)
        if value is MISSING:
            return default
        if not isinstance(value, str):
            self.fail(name, "must be a string")
            return default
        value = value.strip()
        problem = unstorable_text(value)
        if problem is not None:
            self.fail(name, problem)
            return default
        if not blank and not value:
            self.fail(name, "must not be blank")
            return default
        if len(value) > max_length:
            self.fail(name, f"must be at most {max_length} characters")
            return default
        return value

    def choice(self, name: str, enum: type[E], *, required: bool = False, default: Any = None) -> Any:
        value = self._get(name, required)
        if value is MISSING:
            return default
        try:
            return enum(value)
        except ValueError:
            self.fail(name, f"must be one of: {', '.join(m.value for m in enum)}")
            return default

    def integer(
        self,
        name: str,
        *,
        required: bool = False,
        default: Any = None,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> Any:
        value = self._get(name, required)
        if value is MISSING:
            return default
        if isinstance(value, str) and self.query:
            # int() also reads Unicode digits, "1_0" and " 10 ": a number in a request is ASCII digits only.
            if not _ASCII_INTEGER.fullmatch(value):
                self.fail(name, "must be a whole number")
                return default
            value = int(value, 10)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(name, "must be a whole number")
            return default
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            self.fail(name, f"must be from {minimum} to {maximum}" if maximum is not None else f"must be ≥ {minimum}")
            return default
        return value

    def number(
        self,
        name: str,
        *,
        required: bool = False,
        default: Any = None,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> Any:
        value = self._get(name, required)
        if value is MISSING:
            return default
        if isinstance(value, str) and self.query:
            # ASCII digits with an optional sign and fraction: no "1e400", "nan", "١٢" or "1_0".
            if not _ASCII_DECIMAL.fullmatch(value):
                self.fail(name, "must be a number")
                return default
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.fail(name, "must be a number")
            return default
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            self.fail(name, f"must be from {minimum} to {maximum}")
            return default
        return float(value)

    def boolean(self, name: str, *, required: bool = False, default: Any = None) -> Any:
        value = self._get(name, required)
        if value is MISSING:
            return default
        if isinstance(value, str) and self.query:
            lowered = value.lower()
            if lowered in ("true", "1", "yes"):
                return True
            if lowered in ("false", "0", "no"):
                return False
        if not isinstance(value, bool):
            self.fail(name, "must be true or false")
            return default
        return value

    def uuid(self, name: str, *, required: bool = False, default: Any = None) -> Any:
        value = self._get(name, required)
        if value is MISSING:
            return default
        try:
            return uuid.UUID(str(value)) if isinstance(value, str) else _raise()
        except ValueError:
            self.fail(name, "must be a UUID")
            return default

    def phone(self, name: str, region: str | None, *, required: bool = False, default: Any = None) -> Any:
        value = self._get(name, required)
        if value is MISSING:
            return default
        problem = framing_problem(value) if isinstance(value, str) else None
        if problem is not None:  # numbers are dialled: they reach Originate and uuid_transfer
            self.fail(name, problem)
            return default
        try:
            return NumberPolicy(region).dialable(value, name)
        except InvalidValue as exc:
            self.fail(name, exc.message)
            return default

    def presented(self, name: str, *, required: bool = False, default: Any = None) -> Any:
        """A number as a door was given it (a caller ID may be ``anonymous``, ``*67`` or a SIP URI): any
        text is taken, as ``calld.domain.numbers`` reads it later; only what cannot be stored is refused."""
        value = self._get(name, required)
        if value is MISSING:
            return default
        if not isinstance(value, str):
            self.fail(name, "must be a string (the number as presented)")
            return default
        problem = framing_problem(value) or unstorable_text(value)
        if problem is None and len(value.strip()) > MAX_PRESENTED_NUMBER:
            problem = f"must be at most {MAX_PRESENTED_NUMBER} characters"
        if problem is not None:
            self.fail(name, problem)
            return default
        return value.strip()

    def timestamp(self, name: str, *, required: bool = False, default: Any = None, zone: ZoneInfo | None = None) -> Any:
        """An ISO 8601 instant with a time zone (or a Unix epoch number in seconds); with ``zone``, also
        a plain date (``2026-11-24``), meaning the instant that day begins in ``zone``."""
        value = self._get(name, required)
        if value is MISSING:
            return default
        parsed = parse_instant(value)
        if parsed is None and zone is not None and isinstance(value, str) and _DATE.fullmatch(value.strip()):
            try:
                parsed = local_midnight(date.fromisoformat(value.strip()), zone)
            except ValueError:  # 2026-02-30
                self.fail(name, f"{value.strip()!r} is not a date")
                return default
            except OverflowError:  # 0001-01-01 east of UTC: its midnight is before year 1
                self.fail(name, f"{value.strip()!r} is out of range")
                return default
        if parsed is None:
            also = f", or a date (midnight in {zone.key}), e.g. 2026-11-24" if zone is not None else ""
            self.fail(name, f"must be an ISO 8601 date-time with a time zone, e.g. 2026-11-24T10:00:00Z{also}")
            return default
        return parsed

    def mapping(self, name: str, *, required: bool = False, default: Any = None) -> Any:
        value = self._get(name, required)
        if value is MISSING:
            return default
        if not isinstance(value, dict):
            self.fail(name, "must be a JSON object")
            return default
        return value

    def string_list(self, name: str, *, required: bool = False, default: Any = None, max_items: int = 50) -> Any:
        value = self._get(name, required)
        if value is MISSING:
            return default
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            self.fail(name, "must be a list of non-empty strings")
            return default
        if len(value) > max_items:
            self.fail(name, f"must have at most {max_items} items")
            return default
        return [v.strip() for v in value]


def is_http_url(value: str) -> bool:
    """An absolute http or https URL with a host."""
    try:
        parts = urlsplit(value)
        return parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # e.g. a port out of range
        return False


def _raise() -> Any:
    raise ValueError


def parse_instant(value: Any) -> datetime | None:
    """An aware datetime from ISO 8601 text (``Z`` allowed) or epoch seconds; None if it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if not math.isfinite(value) or not 0 <= value < 32503680000:
            return None
        return datetime.fromtimestamp(value, UTC)
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        return None


def path_uuid(raw: str, what: str) -> uuid.UUID:
    """A UUID from the URL path; a malformed one is a 404 (no such resource can exist)."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ApiError(404, f"{what} not found", {"id": f"{raw!r} is not a valid UUID"}) from None

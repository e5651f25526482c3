"""Domain errors. The HTTP layer turns each into a 4xx JSON response."""

from __future__ import annotations

from calld.domain.vocabulary import CallStatus, EventType


class DomainError(Exception):
    """Base of all errors the domain raises on bad input or illegal requests."""


class IllegalTransition(DomainError):
    """A call cannot move from its current status by the requested change."""

    def __init__(self, current: CallStatus, requested: CallStatus | EventType, reason: str) -> None:
        self.current = current
        self.requested = requested
        self.reason = reason
        if isinstance(requested, CallStatus):
            change = f"cannot change from {current.value} to {requested.value}"
        else:
            change = f"cannot record {requested.value} on a call that is {current.value}"
        super().__init__(f"{change}: {reason}")


class InvalidValue(DomainError):
    """A value failed validation; ``field`` names what was wrong."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class NotFound(DomainError):
    """What a request names does not exist; ``field`` names where it was named."""

    def __init__(self, what: str, field: str = "id", value: object = None) -> None:
        self.what = what
        self.field = field
        self.value = value
        super().__init__(f"no {what} with this id" if value is None else f"no {what} with id {value}")


class InvalidValues(DomainError):
    """Several values failed validation at once (``detail``: field → problem), e.g. references to rows
    that do not exist."""

    def __init__(self, detail: dict[str, str]) -> None:
        self.detail = dict(detail)
        super().__init__("; ".join(f"{field}: {problem}" for field, problem in detail.items()))


class Conflict(DomainError):
    """A request conflicts with what is stored. ``code`` is stable for machines, ``message`` and
    ``detail`` are for people; ``extra`` goes into the answer beside them."""

    def __init__(self, code: str, message: str, detail: dict[str, str], **extra: str) -> None:
        self.code = code
        self.message = message
        self.detail = dict(detail)
        self.extra = extra
        super().__init__(message)


class AlreadyExists(Conflict):
    """Storage refused a row because a unique value in it is taken (two requests racing to create one
    thing, say; a unique index is the last word on it). ``reason`` is the database's own words, for the log."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__("already_exists", "conflict with stored data", {"body": "a unique value is already taken"})


class BreaksARule(Conflict):
    """Storage refused a row that breaks one of its rules (a check or a reference), which validation
    should have caught first. ``reason`` is the database's own words, for the log."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(
            "breaks_a_rule", "conflict with stored data", {"body": "a value breaks a rule of the stored data"}
        )

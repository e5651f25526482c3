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

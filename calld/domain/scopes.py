"""What an API token may do: ``read`` < ``write`` < ``admin``, each including the ones below it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, required: Scope) -> bool:
        """Whether a token with this scope may use an endpoint that needs ``required``."""
        return self.rank >= required.rank


_RANK = {Scope.READ: 0, Scope.WRITE: 1, Scope.ADMIN: 2}


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What the API knows of the caller: never the token itself."""

    id: uuid.UUID
    name: str
    scope: Scope

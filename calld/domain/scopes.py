"""What an API token may do: ``read`` < ``write`` < ``admin``, each including the ones below it.

``softphone`` is a person's browser phone: it may do what ``write`` may (watch and control calls), and
it is bound to one SIP configuration, the one line whose SIP password its ``webrtc_config`` carries.
No other token, admin included, is ever answered a SIP secret."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"
    SOFTPHONE = "softphone"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, required: Scope) -> bool:
        """Whether a token with this scope may use an endpoint that needs ``required``."""
        return self.rank >= required.rank


_RANK = {Scope.READ: 0, Scope.WRITE: 1, Scope.SOFTPHONE: 1, Scope.ADMIN: 2}


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What the API knows of the caller: never the token itself."""

    id: uuid.UUID
    name: str
    scope: Scope
    # The one SIP configuration a softphone token registers as (None for every other scope).
    sip_configuration_id: uuid.UUID | None = None

    def may_see_sip_secret_of(self, config_id: uuid.UUID) -> bool:
        """Whether this token is the softphone bound to ``config_id`` (the only reader of its secret)."""
        return self.scope is Scope.SOFTPHONE and self.sip_configuration_id == config_id

"""TURN credentials minted by the TURN REST convention (draft-uberti-behave-turn-rest, coturn's
``use-auth-secret``): the TURN server and calld share a secret, calld mints a username that carries
its own expiry and a password derived from it, and the TURN server checks both without asking calld.

``username = "<expiry unix seconds>:<user>"``, ``credential = base64(HMAC-SHA1(secret, username))``.
Nothing is stored: a leaked credential is worthless after its expiry."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True, slots=True)
class TurnCredential:
    """One minted TURN username/password pair and when the TURN server stops accepting it."""

    username: str
    credential: str
    expires_at: datetime


def turn_password(secret: str, username: str) -> str:
    """``base64(HMAC-SHA1(secret, username))``: what coturn computes to check a REST-API username."""
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def mint(secret: str, user: str, now: datetime, lifetime: timedelta) -> TurnCredential:
    """Credentials for ``user`` valid from ``now`` for ``lifetime`` (whole seconds, rounded down)."""
    if not secret:
        raise ValueError("a TURN shared secret is needed to mint credentials")
    if lifetime.total_seconds() < 1:
        raise ValueError("a TURN credential's lifetime must be at least one second")
    expiry = int(now.timestamp() + lifetime.total_seconds())
    # The part before the first colon is the expiry; the user part may carry no colon of its own
    # only by convention, so it is replaced rather than let it confuse a strict server.
    username = f"{expiry}:{user.replace(':', '_')}"
    return TurnCredential(username, turn_password(secret, username), datetime.fromtimestamp(expiry, UTC))

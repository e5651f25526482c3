"""Webhook signatures, in both directions, in the style of Stripe's.

The header ``Calld-Signature: t=<unix seconds>,v1=<hex>`` carries the signing time and
HMAC-SHA256(secret, ``"<t>." + raw body``). Signing the time with the body lets the receiver refuse
an old request replayed later; several ``v1=`` entries may be sent (one per secret while a secret is
being rotated) and one matching is enough.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from datetime import datetime, timedelta

SIGNATURE_HEADER = "Calld-Signature"
SCHEME = "v1"
# A header bigger than this is not one calld or a sane sender wrote.
MAX_HEADER_LENGTH = 1024


class SignatureError(Exception):
    """Why a signature is refused (safe to tell the sender)."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, now: datetime) -> str:
    """The ``Calld-Signature`` header value for ``body`` sent at ``now``."""
    timestamp = int(now.timestamp())
    return f"t={timestamp},{SCHEME}={signature(secret, timestamp, body)}"


def parse(header: str) -> tuple[int, list[str]]:
    """The timestamp and the ``v1`` signatures in a header (entries of other schemes are ignored)."""
    if len(header) > MAX_HEADER_LENGTH:
        raise SignatureError("malformed signature header: too long")
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep:
            raise SignatureError("malformed signature header: expected t=<unix time>,v1=<hex digest>")
        if name == "t":
            # isdigit() alone also passes "¹" and "①", which int() then refuses: ASCII digits only.
            if not (value.isascii() and value.isdigit()) or len(value) > 12:
                raise SignatureError("malformed signature header: t must be Unix seconds")
            timestamp = int(value)
        elif name == SCHEME:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise SignatureError("malformed signature header: expected t=<unix time>,v1=<hex digest>")
    return timestamp, signatures


def verify(secrets: Iterable[str], header: str | None, body: bytes, now: datetime, window: timedelta) -> int:
    """Check ``header`` against ``body``; return its timestamp or raise ``SignatureError``."""
    if not header:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    timestamp, given = parse(header)
    age = now.timestamp() - timestamp
    if abs(age) > window.total_seconds():
        raise SignatureError(
            f"timestamp outside the replay window of {int(window.total_seconds())} s (signed {int(age)} s ago)"
        )
    expected = [signature(secret, timestamp, body) for secret in secrets]
    # Every pair is compared, in constant time, so the time taken says nothing about which was close.
    matched = False
    for candidate in given:
        for wanted in expected:
            matched |= hmac.compare_digest(candidate.encode(), wanted.encode())
    if not matched:
        raise SignatureError("signature does not match the body")
    return timestamp

"""Pseudonymous numbers: a keyed hash of a number that stays the same for the same number and key.

Retention replaces old calls' numbers (and the parties' caller ID names) with their pseudonyms, so
per-number reports still group (the same caller is the same token) while the number itself is gone;
without the key a token cannot be checked against a guessed number. The PBX's own extensions are not
a person's number: they stay, so reports per extension keep grouping the same calls.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from calld.domain.numbers import is_extension

PSEUDONYM_PREFIX = "anon:"
_DIGEST_CHARS = 24  # 96 bits: no collision among any realistic set of numbers; fits the 32-character column


def pseudonym(key: bytes, number: str) -> str:
    """``anon:`` and the first 96 bits of HMAC-SHA256(key, number), in hex. A pseudonym stays itself."""
    if is_pseudonym(number):
        return number
    digest = hmac.new(key, number.encode("utf-8"), hashlib.sha256).hexdigest()
    return PSEUDONYM_PREFIX + digest[:_DIGEST_CHARS]


def is_pseudonym(value: str) -> bool:
    """Whether ``value`` is a pseudonym as ``pseudonym`` makes them."""
    rest = value[len(PSEUDONYM_PREFIX) :]
    return (
        value.startswith(PSEUDONYM_PREFIX) and len(rest) == _DIGEST_CHARS and all(c in "0123456789abcdef" for c in rest)
    )


def pseudonyms(key: bytes, values: Iterable[str | None]) -> dict[str, str]:
    """The personal ones of ``values`` (not empty, not an extension, not a pseudonym already), each
    with its pseudonym."""
    return {v: pseudonym(key, v) for v in values if v and not is_extension(v) and not is_pseudonym(v)}

"""Phone number validation and normalisation.

Public numbers are stored in E.164 (``+14155550123``). PBX extensions (a short run of digits such
as ``1001``) are real parties on a switch and are kept as they are.
"""

from __future__ import annotations

import re
import unicodedata

import phonenumbers

from calld.domain.errors import InvalidValue

_EXTENSION = re.compile(r"^[0-9]{2,6}$")
_SEPARATORS = re.compile(r"[\s().\-/]")


def normalise_number(raw: object, field: str, default_region: str | None = None) -> str:
    """Return ``raw`` as E.164, or as an extension; raise ``InvalidValue`` naming ``field``."""
    if not isinstance(raw, str):
        raise InvalidValue(field, "must be a phone number string")
    text = ascii_digits(raw).strip()
    if not text:
        raise InvalidValue(field, "must not be empty")
    compact = _SEPARATORS.sub("", text)
    if _EXTENSION.match(compact):
        return compact
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    region = None if compact.startswith("+") else default_region
    if region is None and not compact.startswith("+"):
        raise InvalidValue(
            field,
            f"{raw!r} is not in international form (+country code) and no default region is configured",
        )
    try:
        parsed = phonenumbers.parse(compact, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidValue(field, f"{raw!r} is not a phone number ({exc._msg})") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidValue(field, f"{raw!r} is not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def ascii_digits(text: str) -> str:
    """``text`` with compatibility forms folded (NFKC: fullwidth digits become ASCII) and every other
    decimal digit (Arabic-Indic, Devanagari...) written in ASCII, so one number is stored, searched
    and matched one way."""
    folded = unicodedata.normalize("NFKC", text)
    if folded.isascii():
        return folded
    return "".join(str(unicodedata.decimal(ch)) if unicodedata.decimal(ch, None) is not None else ch for ch in folded)

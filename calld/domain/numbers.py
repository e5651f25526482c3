"""The number policy: what a caller ID or dialled number presented at any door means.

Every door (the REST API's log actions, the SIP webhook, both switch adapters) hands the number it
was given to ``NumberPolicy.classify``: the presentation is kept as it came (``raw``), the number
calld stores and matches clients by is its E.164 form where one can be derived (with
``calls.default_region`` and the trunk's national prefix), an extension stays an extension, a
withheld caller ID (``anonymous``, ``Restricted``, ``*67``, ``0``...) is marked withheld, and
anything else is kept as presented. No call is refused over its number: strict validation is only
for numbers a person defines (a client's phone numbers, ``calld.domain.phone.normalise_number``)
and for numbers calld itself dials (``dialable``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

import phonenumbers

from calld.domain.errors import InvalidValue
from calld.domain.phone import ascii_digits

# What is stored for a withheld caller ID (the presentation itself is kept in the raw column).
WITHHELD_NUMBER = "anonymous"
# call_logs.caller_number / recipient_number hold at most this many characters.
MAX_STORED_NUMBER = 32
# The longest presentation kept (call_logs.caller_number_raw / recipient_number_raw).
MAX_PRESENTED_NUMBER = 255

# Caller IDs that say "the number is not given": RFC 3325 / RFC 3323 anonymous, the words carriers
# and PBXs put in the From user part, the Bellcore "P" (private) and "O" (out of area) markers.
_WITHHELD_WORDS = frozenset(
    {
        "anonymous",
        "restricted",
        "private",
        "withheld",
        "unavailable",
        "unknown",
        "blocked",
        "out of area",
        "no caller id",
        "not available",
        "p",
        "o",
    }
)
# "0" is what several trunks present for a withheld number; *67 (NANP) and #31# (GSM) are the
# per-call "withhold my number" codes, which some gateways pass on in place of the number.
_WITHHELD_CODES = ("*67", "#31#")
_EXTENSION = re.compile(r"^[0-9]{2,6}$")
_SEPARATORS = re.compile(r"[\s().\-/]")
_INTERNATIONAL = re.compile(r"^\+[0-9]{6,15}$")
_DIGITS = re.compile(r"^[0-9]+$")
# sip:, sips: or tel: URI, optionally in a name-addr ("Alice" <sip:alice@example.com;transport=udp>).
_URI = re.compile(r"^(?:[^<]*<)?(?P<scheme>sips?|tel):(?P<user>[^@;>?]*)(?:@(?P<host>[^;>?]*))?", re.IGNORECASE)


def is_extension(value: str) -> bool:
    """Whether ``value`` is a PBX extension as calld stores them (2 to 6 digits)."""
    return bool(_EXTENSION.match(value))


class NumberKind(StrEnum):
    """What a presented number turned out to be."""

    E164 = "e164"  # a valid international number, stored in E.164
    NATIONAL = "national"  # a valid national number, stored in E.164 (derived with the region)
    INTERNATIONAL = "international"  # "+" and digits the numbering plan does not know: kept as presented
    EXTENSION = "extension"  # a PBX extension (2 to 6 digits)
    WITHHELD = "withheld"  # no number given (anonymous, Restricted, *67, 0...)
    SIP_URI = "sip_uri"  # a SIP address whose user part is not a number
    OTHER = "other"  # anything else, kept as presented


@dataclass(frozen=True, slots=True)
class PresentedNumber:
    """One presented number: as it came (``raw``), as stored (``number``), and what it is."""

    raw: str
    number: str
    kind: NumberKind

    @property
    def withheld(self) -> bool:
        return self.kind is NumberKind.WITHHELD


_DIALABLE = frozenset({NumberKind.E164, NumberKind.NATIONAL, NumberKind.INTERNATIONAL, NumberKind.EXTENSION})


@dataclass(frozen=True, slots=True)
class NumberPolicy:
    """How numbers are read: ``default_region`` (ISO 3166, e.g. ``AU``) for national numbers, and
    ``national_prefix``, the digits a trunk puts before a national number when they are not the
    region's own national prefix (libphonenumber already knows ``0`` in AU or GB, ``1`` in the US)."""

    default_region: str | None = None
    national_prefix: str | None = None

    def classify(self, raw: str) -> PresentedNumber:
        """What ``raw`` is and the number calld stores for it. Never raises."""
        presented = raw.strip()[:MAX_PRESENTED_NUMBER]
        kind, number = self._read(ascii_digits(presented).strip())
        return PresentedNumber(presented, number[:MAX_STORED_NUMBER], kind)

    def dialable(self, raw: object, field: str) -> str:
        """The number to dial for ``raw`` (E.164, or an extension); raise ``InvalidValue`` naming
        ``field`` when calld could not dial it (withheld, a name, a national number without a region)."""
        if not isinstance(raw, str):
            raise InvalidValue(field, "must be a phone number string")
        found = self.classify(raw)
        if found.kind in _DIALABLE:
            return found.number
        if not found.raw:
            raise InvalidValue(field, "must not be empty")
        if found.kind is NumberKind.WITHHELD:
            raise InvalidValue(field, f"{raw!r} is a withheld caller ID, not a number to dial")
        compact = _SEPARATORS.sub("", ascii_digits(found.raw))
        if _DIGITS.match(compact) and self.default_region is None:
            raise InvalidValue(
                field,
                f"{raw!r} is not in international form (+country code) and no default region is configured",
            )
        raise InvalidValue(field, f"{raw!r} is not a phone number or extension")

    def _read(self, text: str) -> tuple[NumberKind, str]:
        if _is_withheld(text):
            return NumberKind.WITHHELD, WITHHELD_NUMBER
        uri = _URI.match(text)
        if uri is not None:
            return self._read_uri(text, uri)
        compact = _SEPARATORS.sub("", text)
        if _EXTENSION.match(compact):
            return NumberKind.EXTENSION, compact
        if compact.startswith("00"):
            compact = "+" + compact[2:]
        if compact.startswith("+"):
            e164 = _valid_e164(compact, None)
            if e164 is not None:
                return NumberKind.E164, e164
            if _INTERNATIONAL.match(compact):
                return NumberKind.INTERNATIONAL, compact
            return NumberKind.OTHER, text
        if _DIGITS.match(compact) and self.default_region is not None:
            for national in self._national_forms(compact):
                e164 = _valid_e164(national, self.default_region)
                if e164 is not None:
                    return NumberKind.NATIONAL, e164
        return NumberKind.OTHER, compact if _DIGITS.match(compact) else text

    def _national_forms(self, digits: str) -> list[str]:
        """``digits`` as the region reads it, and without the trunk's own national prefix."""
        forms = [digits]
        prefix = self.national_prefix
        if prefix and digits.startswith(prefix) and len(digits) > len(prefix):
            forms.insert(0, digits[len(prefix) :])
        return forms

    def _read_uri(self, text: str, uri: re.Match[str]) -> tuple[NumberKind, str]:
        user = uri.group("user").strip()
        host = (uri.group("host") or "").strip().lower()
        if not user or host == "anonymous.invalid" or _is_withheld(user):
            return NumberKind.WITHHELD, WITHHELD_NUMBER
        kind, number = self._read(user)
        if kind in _DIALABLE:
            return kind, number
        address = f"{uri.group('scheme').lower()}:{user}" + (f"@{host}" if host else "")
        return NumberKind.SIP_URI, address if len(address) <= MAX_STORED_NUMBER else user


def _is_withheld(text: str) -> bool:
    lowered = " ".join(text.lower().split())
    if not lowered or lowered in _WITHHELD_WORDS or lowered == "0":
        return True
    return lowered.startswith(_WITHHELD_CODES)


def _valid_e164(text: str, region: str | None) -> str | None:
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)

"""The number policy, on plain strings: what each presentation is and what calld stores for it."""

from __future__ import annotations

import pytest

from calld.domain.errors import InvalidValue
from calld.domain.numbers import MAX_STORED_NUMBER, NumberKind, NumberPolicy

K = NumberKind


@pytest.mark.parametrize(
    ("raw", "number", "kind"),
    [
        # Withheld caller IDs, as carriers, PBXs and the handset codes present them.
        ("anonymous", "anonymous", K.WITHHELD),
        ("Anonymous", "anonymous", K.WITHHELD),
        ("Restricted", "anonymous", K.WITHHELD),
        ("PRIVATE", "anonymous", K.WITHHELD),
        ("unavailable", "anonymous", K.WITHHELD),
        ("*67", "anonymous", K.WITHHELD),
        ("*674155550100", "anonymous", K.WITHHELD),
        ("0", "anonymous", K.WITHHELD),
        ("", "anonymous", K.WITHHELD),
        ("  ", "anonymous", K.WITHHELD),
        ("sip:anonymous@anonymous.invalid", "anonymous", K.WITHHELD),
        ('"Anonymous" <sip:anonymous@anonymous.invalid>;tag=1', "anonymous", K.WITHHELD),
        # Numbers: E.164, national (read in the default region), extensions.
        ("+14155550100", "+14155550100", K.E164),
        ("+1 (415) 555-0100", "+14155550100", K.E164),
        ("0014155550100", "+14155550100", K.E164),
        ("(415) 555-0100", "+14155550100", K.NATIONAL),
        ("14155550100", "+14155550100", K.NATIONAL),
        ("\uff11\uff10\uff10\uff11", "1001", K.EXTENSION),  # fullwidth digits
        ("1001", "1001", K.EXTENSION),
        # "+" and digits the numbering plan does not know (the seed's own examples): kept as presented.
        ("+1234567890", "+1234567890", K.INTERNATIONAL),
        ("+0987654321", "+0987654321", K.INTERNATIONAL),
        # SIP URIs: a number in the user part is read as a number, a name is kept as the address.
        ("sip:alice@example.com", "sip:alice@example.com", K.SIP_URI),
        ("sip:+14155550100@trunk.example;user=phone", "+14155550100", K.E164),
        ('"Bob" <sip:1002@pbx.example:5060;transport=udp>', "1002", K.EXTENSION),
        ("tel:+14155550100", "+14155550100", K.E164),
        # Anything else is kept.
        ("not a number", "not a number", K.OTHER),
        ("5", "5", K.OTHER),
    ],
)
def test_what_a_presented_number_is(raw: str, number: str, kind: NumberKind) -> None:
    found = NumberPolicy("US").classify(raw)
    assert (found.number, found.kind) == (number, kind)
    assert found.raw == raw.strip()
    assert found.withheld is (kind is K.WITHHELD)


def test_national_numbers_need_the_region_and_the_trunks_prefix_is_taken_off() -> None:
    assert NumberPolicy().classify("0415 123 456").kind is K.OTHER  # no region: kept as given
    assert NumberPolicy().classify("0415 123 456").number == "0415123456"
    assert NumberPolicy("AU").classify("0415 123 456").number == "+61415123456"
    assert NumberPolicy("AU").classify("415123456").number == "+61415123456"
    # A PBX presenting "9" + the national number (its outside-line prefix).
    assert NumberPolicy("US").classify("94155550100").kind is K.OTHER
    assert NumberPolicy("US", "9").classify("94155550100").number == "+14155550100"
    assert NumberPolicy("US", "9").classify("4155550100").number == "+14155550100"


def test_what_is_stored_fits_the_column_and_the_presentation_is_kept() -> None:
    long_uri = "sip:" + "a" * 40 + "@example.com"
    found = NumberPolicy().classify(long_uri)
    assert found.kind is K.SIP_URI and found.raw == long_uri
    assert len(found.number) <= MAX_STORED_NUMBER and found.number == "a" * MAX_STORED_NUMBER
    assert len(NumberPolicy().classify("x" * 400).raw) == 255


def test_dialable_numbers() -> None:
    policy = NumberPolicy("US")
    assert policy.dialable("+1234567890", "recipient_number") == "+1234567890"
    assert policy.dialable("(415) 555-0100", "recipient_number") == "+14155550100"
    assert policy.dialable("1001", "recipient_number") == "1001"
    for raw, problem in [
        ("anonymous", "withheld"),
        ("*67", "withheld"),
        ("sip:alice@example.com", "not a phone number"),
        ("not a number", "not a phone number"),
        ("", "must not be empty"),
    ]:
        with pytest.raises(InvalidValue) as caught:
            policy.dialable(raw, "recipient_number")
        assert caught.value.field == "recipient_number" and problem in caught.value.message
    with pytest.raises(InvalidValue, match="no default region"):
        NumberPolicy().dialable("(415) 555-0100", "transfer_to")
    with pytest.raises(InvalidValue, match="string"):
        policy.dialable(4155550100, "transfer_to")

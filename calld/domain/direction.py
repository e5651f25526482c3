"""Which way a call goes: inbound, outbound, or internal (one of the PBX's own phones to another).

The switches do not say it; the PBX's configuration does. A call placed by a user (it enters the dialplan
in one of the contexts configured as ``outbound_contexts``, where the PBX's phones dial) is internal when
the number dialled is one of the PBX's own extensions (``internal_extensions``, a regular expression the
whole number must match), outbound otherwise (a trunk call). Calls from ``inbound_contexts`` (trunks) stay
inbound whatever they dial; a call the switch itself placed (calld's ``initiate_call``) is outbound.
"""

from __future__ import annotations

import re

from calld.domain.errors import InvalidValue
from calld.domain.vocabulary import CallDirection, CallStatus

# The PBX's own extensions when nothing else is configured: 2 to 6 digits, as the statistics' extension
# grouping reads them (calld.domain.statistics.extension_of).
DEFAULT_INTERNAL_EXTENSIONS = "[0-9]{2,6}"


def extensions_pattern(text: str, field: str = "internal_extensions") -> re.Pattern[str] | None:
    """``text`` compiled (None when empty: no call is internal); a bad expression names ``field``."""
    if not text:
        return None
    try:
        return re.compile(text)
    except re.error as exc:
        raise InvalidValue(field, f"not a regular expression: {exc}") from exc


def placed_direction(
    by_context: CallDirection, dialled: str, internal_extensions: re.Pattern[str] | None
) -> CallDirection:
    """The direction of a call its dialplan context calls ``by_context``, to ``dialled``: a user's call
    (outbound by its context) to one of the PBX's extensions is internal."""
    if by_context is not CallDirection.OUTBOUND or internal_extensions is None:
        return by_context
    return CallDirection.INTERNAL if internal_extensions.fullmatch(dialled) else by_context


def user_is_caller(direction: CallDirection) -> bool:
    """Whether calld's user (the near party) placed the call: on outbound and internal calls a phone of
    the PBX dialled; on an inbound call calld's user is the one called."""
    return direction is not CallDirection.INBOUND


def unanswered(direction: CallDirection) -> CallStatus:
    """What a call nobody answered and nothing else explains is: an inbound or internal call was
    missed by the phone it rang; on an outbound call the caller gave up (cancelled)."""
    return CallStatus.CANCELLED if direction is CallDirection.OUTBOUND else CallStatus.MISSED

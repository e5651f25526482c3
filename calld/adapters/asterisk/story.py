"""What Asterisk's AMI events tell of a call beyond its status (pure functions)."""

from __future__ import annotations

import math
from typing import Any

from calld.domain.hangup import HangupBy
from calld.domain.quality import LegQuality

# The channel variable Asterisk sets on each RTP channel as it hangs up (its VarSet reaches AMI just
# before the channel's Hangup): ``ssrc=…;themssrc=…;lp=…;rxjitter=…;rxcount=…;txjitter=…;txcount=…;
# rlp=…;rtt=…;rxmes=…;txmes=…``. The ``…BRIDGED`` copies on the peer channel repeat it.
QOS_VARIABLE = "RTPAUDIOQOS"


def hangup_by(caller_leg: str, first_request: tuple[str, str] | None) -> dict[str, Any]:
    """Who ended the call, from the first hangup request on any of its channels: ``HangupRequest`` is
    queued by the channel driver when the phone on that channel hangs up (a BYE, a CANCEL), so its
    channel says caller (the call's first channel) or callee; ``SoftHangupRequest`` is Asterisk ending
    the channel itself (a dialplan timeout, an AMI Hangup). No request at all: the dialplan ran its
    ``Hangup()`` (or out of steps), which is Asterisk too."""
    if first_request is None:
        return {"hangup_by": HangupBy.SWITCH.value}
    channel, kind = first_request
    if kind == "SoftHangupRequest":
        return {"hangup_by": HangupBy.SWITCH.value}
    return {"hangup_by": (HangupBy.CALLER if channel == caller_leg else HangupBy.CALLEE).value}


def _qos_fields(value: str) -> dict[str, float]:
    fields: dict[str, float] = {}
    for part in value.split(";"):
        name, sep, raw = part.strip().partition("=")
        if not sep:
            continue
        try:
            number = float(raw)
        except ValueError:
            continue
        if math.isfinite(number):
            fields[name] = number
    return fields


def leg_quality(uniqueid: str, value: str) -> LegQuality | None:
    """What Asterisk measured on the RTP one channel received, from its ``RTPAUDIOQOS`` value; None
    when it carries no packet count. ``rxcount`` packets received, ``lp`` lost (its share of the
    expected ``rxcount + lp`` is ``packet_loss_pct``), ``rxjitter`` and ``rtt`` in seconds (``rtt``
    stays unknown at 0: no RTCP report came back). No MOS: ``calld.domain.quality`` estimates it."""
    fields = _qos_fields(value)
    received = fields.get("rxcount")
    if received is None or received < 0:
        return None
    lost = max(fields.get("lp", 0.0), 0.0)
    expected = received + lost
    jitter = fields.get("rxjitter")
    rtt = fields.get("rtt")
    return LegQuality(
        leg=uniqueid,
        jitter_ms=round(jitter * 1000, 3) if jitter is not None and jitter >= 0 else None,
        packet_loss_pct=round(lost * 100 / expected, 2) if expected > 0 else None,
        rtt_ms=round(rtt * 1000, 3) if rtt is not None and rtt > 0 else None,
        packets=int(received),
    )

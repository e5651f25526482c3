"""What Asterisk's AMI events tell of a call beyond its status (pure functions)."""

from __future__ import annotations

from typing import Any

from calld.domain.hangup import HangupBy


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

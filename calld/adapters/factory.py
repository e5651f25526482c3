"""Build the switch adapter a configuration names (one switch per calld instance).

It takes the switches' own settings, not calld's whole configuration: ``calld.config`` imports
these settings, so nothing under ``calld.adapters`` imports it back.
"""

from __future__ import annotations

from calld.adapters.asterisk.settings import AsteriskConfig
from calld.adapters.freeswitch.settings import FreeswitchConfig
from calld.adapters.port import SwitchPort


def make_switch(*, asterisk: AsteriskConfig | None, freeswitch: FreeswitchConfig | None) -> SwitchPort | None:
    """The adapter for ``[asterisk]`` or ``[freeswitch]``; None when calld runs API-only."""
    if asterisk is not None:
        from calld.adapters.asterisk.adapter import AsteriskAdapter

        return AsteriskAdapter(asterisk)
    if freeswitch is not None:
        from calld.adapters.freeswitch.adapter import FreeswitchAdapter

        return FreeswitchAdapter(freeswitch)
    return None

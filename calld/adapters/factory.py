"""Build the switch adapter a configuration names (one switch per calld instance)."""

from __future__ import annotations

from calld.adapters.port import SwitchPort
from calld.config import Config


def make_switch(config: Config) -> SwitchPort | None:
    """The adapter for ``[asterisk]`` or ``[freeswitch]``; None when calld runs API-only."""
    if config.asterisk is not None:
        from calld.adapters.asterisk.adapter import AsteriskAdapter

        return AsteriskAdapter(config.asterisk)
    if config.freeswitch is not None:
        from calld.adapters.freeswitch.adapter import FreeswitchAdapter

        return FreeswitchAdapter(config.freeswitch)
    return None

"""The switch factory takes the switches' own settings (not calld's configuration, which sits above
the adapters: tests/test_layers.py keeps it so)."""

from __future__ import annotations

from calld.adapters.asterisk.adapter import AsteriskAdapter
from calld.adapters.asterisk.settings import AsteriskConfig
from calld.adapters.factory import make_switch
from calld.adapters.freeswitch.adapter import FreeswitchAdapter
from calld.adapters.freeswitch.settings import FreeswitchConfig


def test_the_configured_switch_is_built_and_none_means_api_only() -> None:
    asterisk = make_switch(asterisk=AsteriskConfig(name="pbx-a"), freeswitch=None)
    assert isinstance(asterisk, AsteriskAdapter) and asterisk.name == "pbx-a"
    freeswitch = make_switch(asterisk=None, freeswitch=FreeswitchConfig(name="pbx-f"))
    assert isinstance(freeswitch, FreeswitchAdapter) and freeswitch.name == "pbx-f"
    assert make_switch(asterisk=None, freeswitch=None) is None

"""The switch factory takes the switches' own settings; the adapters never import calld's upper layers."""

from __future__ import annotations

import ast
from pathlib import Path

from calld.adapters.asterisk.adapter import AsteriskAdapter
from calld.adapters.asterisk.settings import AsteriskConfig
from calld.adapters.factory import make_switch
from calld.adapters.freeswitch.adapter import FreeswitchAdapter
from calld.adapters.freeswitch.settings import FreeswitchConfig

ADAPTERS = Path(__file__).resolve().parents[2] / "calld" / "adapters"
# What sits above the adapters: they hand events to a sink and never reach up.
ABOVE = ("calld.config", "calld.storage", "calld.http", "calld.service", "calld.ingest", "calld.daemon")


def test_the_configured_switch_is_built_and_none_means_api_only() -> None:
    asterisk = make_switch(asterisk=AsteriskConfig(name="pbx-a"), freeswitch=None)
    assert isinstance(asterisk, AsteriskAdapter) and asterisk.name == "pbx-a"
    freeswitch = make_switch(asterisk=None, freeswitch=FreeswitchConfig(name="pbx-f"))
    assert isinstance(freeswitch, FreeswitchAdapter) and freeswitch.name == "pbx-f"
    assert make_switch(asterisk=None, freeswitch=None) is None


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_adapter_module_imports_the_layers_above() -> None:
    files = sorted(ADAPTERS.rglob("*.py"))
    assert len(files) > 10
    upward = {
        f"{path.relative_to(ADAPTERS)}: {name}"
        for path in files
        for name in imported_modules(path)
        if name.startswith(ABOVE) and name.split(".")[:2] in [above.split(".") for above in ABOVE]
    }
    assert upward == set()

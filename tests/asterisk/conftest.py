"""Tests marked ``asterisk`` need the lab Asterisk: they are skipped unless CALLD_LAB_ASTERISK=1
(``lab/asterisk/ci.sh`` sets it), so a plain ``pytest`` stays fast and needs no root."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("CALLD_LAB_ASTERISK") == "1":
        return
    skip = pytest.mark.skip(reason="needs the lab Asterisk: set CALLD_LAB_ASTERISK=1 (lab/asterisk/ci.sh does)")
    for item in items:
        if item.get_closest_marker("asterisk") is not None:
            item.add_marker(skip)

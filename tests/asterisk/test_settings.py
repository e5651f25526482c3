"""``[asterisk]`` in config.example.toml: every option is real and shown with its default."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from calld.adapters.asterisk.settings import AsteriskConfig
from calld.config import load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"
_OPTION = re.compile(r"^# ([a-z_]+ = .+)$")


def _uncommented_asterisk_section(text: str) -> str:
    lines = text.splitlines()
    start = lines.index("# [asterisk]")
    out = ["[asterisk]"]
    for line in lines[start + 1 :]:
        if not line.startswith("#"):
            break
        match = _OPTION.match(line)
        if match:
            out.append(match.group(1))
    return "\n".join(out) + "\n"


def test_the_example_asterisk_section_lists_every_option_with_its_default(tmp_path: Path) -> None:
    section = _uncommented_asterisk_section(EXAMPLE.read_text(encoding="utf-8"))
    shown = {line.split(" = ")[0] for line in section.splitlines()[1:]}
    assert shown == {f.name for f in dataclasses.fields(AsteriskConfig)}
    path = tmp_path / "calld.toml"
    path.write_text(section, encoding="utf-8")
    config = load_config(path, environ={})
    assert config.asterisk == AsteriskConfig(secret_file="/etc/calld/asterisk.secret")

"""The import rules of calld's layers, enforced: nothing imports upwards.

From the bottom: the domain (pure: imports nothing of calld outside itself); small utilities and
typed settings; the switch adapters and storage, side by side (an adapter never touches storage or
the transports; storage never an adapter); the services (use cases, ingest, outbound deliveries);
the HTTP transport, which reaches the rest only through the services, the domain and the switch
port; and on top the daemon and the command line that wire it all.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "calld"

# (rank, module prefixes); the longest matching prefix decides a module's layer.
LAYERS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (0, ("calld.domain",)),
    (1, ("calld", "calld.files", "calld.journal", "calld.logging", "calld.signing", "calld.egress")),
    (2, ("calld.config", "calld.adapters.asterisk.settings", "calld.adapters.freeswitch.settings", "calld.providers")),
    (3, ("calld.adapters", "calld.storage")),
    (4, ("calld.service", "calld.cluster", "calld.ingest", "calld.outbound", "calld.sip_probe")),
    (5, ("calld.http",)),
    (6, ("calld.daemon", "calld.cli")),
)
# What each of these may import of calld, whatever the ranks say.
ONLY: dict[str, tuple[str, ...]] = {
    "calld.domain": ("calld.domain",),
    "calld.adapters": ("calld.adapters", "calld.domain", "calld.files", "calld.logging"),
    "calld.storage": ("calld.storage", "calld.domain", "calld.files"),
    "calld.providers": ("calld.providers", "calld.domain"),
    "calld.http": (
        "calld.http",
        "calld.service",
        "calld.domain",
        "calld.adapters.port",
        "calld.providers",
        "calld.config",
        "calld.signing",
        "calld.egress",
        "calld",
    ),
}


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _allowed(imported: str, allowed: tuple[str, ...]) -> bool:
    # "calld" itself (its version) is allowed as such, not as the prefix of everything.
    return any(imported == a or (a != "calld" and _within(imported, a)) for a in allowed)


def problem(importer: str, imported: str) -> str | None:
    """Why ``importer`` may not import ``imported``, or None."""
    if rank(imported) > rank(importer):
        return "upwards"
    only = next((allowed for scope, allowed in ONLY.items() if _within(importer, scope)), None)
    if only is not None and not _allowed(imported, only):
        return f"not allowed in {importer.split('.')[1]}"
    return None


def rank(module: str) -> int:
    best: tuple[int, int] | None = None
    for level, prefixes in LAYERS:
        for prefix in prefixes:
            if _within(module, prefix) and (best is None or len(prefix) > best[1]):
                best = (level, len(prefix))
    assert best is not None, module
    return best[0]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def calld_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of calld in the file, at any depth (deferred ones too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if _within(alias.name, "calld")]
        elif isinstance(node, ast.ImportFrom) and node.module and _within(node.module, "calld") and node.level == 0:
            if node.module == "calld":  # from calld import signing
                found += [(node.lineno, f"calld.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


def violations() -> list[str]:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        importer = module_name(path)
        for line, imported in calld_imports(path):
            why = problem(importer, imported)
            if why is not None:
                problems.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {imported} ({why})")
    return problems


def test_no_module_imports_upwards_or_outside_what_its_layer_may_use() -> None:
    assert violations() == []


@pytest.mark.parametrize(
    ("importer", "imported", "allowed"),
    [
        ("calld.domain.call", "calld.storage.models", False),
        ("calld.adapters.asterisk.mapping", "calld.storage.calls", False),
        ("calld.adapters.factory", "calld.config", False),
        ("calld.http.call_logs", "calld.storage.calls", False),
        ("calld.http.call_logs", "calld.service.calls", True),
        ("calld.service.calls", "calld.http.errors", False),
        ("calld.storage.calls", "calld.domain.call", True),
        ("calld.http.openapi", "calld", True),
        ("calld.storage.calls", "calld.adapters.port", False),
    ],
)
def test_the_rules_refuse_what_they_should(importer: str, imported: str, allowed: bool) -> None:
    assert (problem(importer, imported) is None) is allowed

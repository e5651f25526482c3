"""``[asterisk]`` settings. Plain data, so the config loader can import it without I/O libraries."""

from __future__ import annotations

from dataclasses import dataclass

from calld.domain.direction import DEFAULT_INTERNAL_EXTENSIONS, extensions_pattern
from calld.domain.errors import InvalidValue


@dataclass(frozen=True, slots=True)
class AsteriskConfig:
    # This PBX's name in calld's database: give each PBX its own when several share one database.
    name: str = "asterisk"
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "calld"
    secret: str = ""
    # A file holding the secret (first line), so the config file itself need not carry it.
    secret_file: str = ""
    # Dialplan contexts whose channels are calls coming in from outside / going out.
    inbound_contexts: tuple[str, ...] = ("from-external",)
    outbound_contexts: tuple[str, ...] = ("from-internal",)
    # A call from an outbound context to an extension matching this (a regular expression, whole number)
    # is internal: one of the PBX's own phones. Empty: every such call is outbound.
    internal_extensions: str = DEFAULT_INTERNAL_EXTENSIONS
    # Where calls placed by calld start: the channel dialled first and the context the far party is sent to.
    originate_channel: str = "PJSIP/{caller}"
    originate_context: str = "from-internal"
    # How long an originated call's first channel may ring.
    originate_timeout_seconds: float = 30.0
    # The context transfer targets are dialled in (empty: originate_context).
    transfer_context: str = ""
    # Where relative recording paths live on the Asterisk host (MixMonitor writes there).
    recording_directory: str = "/var/spool/asterisk/monitor"
    # Dialplan context for calld's hold: extension "hold" plays music to the far party, "wait" keeps
    # calld's user waiting (see config.example.toml).
    hold_context: str = "calld-hold"
    # res_parking's lot park/ uses, and the context its spaces are dialled in (pickup/).
    parking_lot: str = "default"
    parking_context: str = "parkedcalls"
    # Asterisk's own call records, read after every (re)connect to recover what calld missed:
    # the cel_custom CSV file and/or the cel_sqlite3_custom database (README: "After a fault").
    cel_csv: str = ""
    cel_sqlite: str = ""
    cel_sqlite_table: str = "cel"
    # How far before the missed window records are read (a call may start long before it ends).
    records_lookback_seconds: float = 14400.0
    keepalive_seconds: float = 20.0
    reconnect_max_seconds: float = 30.0
    action_timeout_seconds: float = 5.0

    def problems(self) -> list[str]:
        """What is wrong with these settings (empty when valid)."""
        found = []
        if not 0 < self.port < 65536:
            found.append("asterisk.port: must be 1..65535")
        if not 0 < len(self.name) <= 64 or not self.name.replace("-", "").replace("_", "").isalnum():
            found.append("asterisk.name: 1 to 64 letters, digits, '-' or '_'")
        if not self.secret and not self.secret_file:
            found.append("asterisk.secret: set secret or secret_file")
        try:
            extensions_pattern(self.internal_extensions)
        except InvalidValue as exc:
            found.append(f"asterisk.internal_extensions: {exc.message}")
        if not self.cel_sqlite_table.replace("_", "").isalnum():
            found.append("asterisk.cel_sqlite_table: letters, digits and '_' only")
        timings = (
            "records_lookback_seconds",
            "keepalive_seconds",
            "reconnect_max_seconds",
            "action_timeout_seconds",
            "originate_timeout_seconds",
        )
        for name in timings:
            if getattr(self, name) <= 0:
                found.append(f"asterisk.{name}: must be positive")
        return found

"""``[freeswitch]`` settings. Plain data, so the config loader can import it without I/O libraries."""

from __future__ import annotations

from dataclasses import dataclass

from calld.domain.direction import DEFAULT_INTERNAL_EXTENSIONS, extensions_pattern
from calld.domain.errors import InvalidValue


@dataclass(frozen=True, slots=True)
class FreeswitchConfig:
    # This PBX's name in calld's database: give each PBX its own when several share one database.
    name: str = "freeswitch"
    host: str = "127.0.0.1"
    port: int = 8021
    password: str = ""
    # A file holding the Event Socket password (first line), so the config file need not carry it.
    password_file: str = ""
    # Dialplan contexts whose channels are calls coming in from outside / going out.
    inbound_contexts: tuple[str, ...] = ("public",)
    outbound_contexts: tuple[str, ...] = ("default",)
    # A call from an outbound context to a number matching this (a regular expression, whole number) is
    # internal: one of the PBX's own extensions. Empty: every such call is outbound.
    internal_extensions: str = DEFAULT_INTERNAL_EXTENSIONS
    # Where calls placed by calld start: the endpoint dialled first, then the far party in this context.
    originate_endpoint: str = "user/{caller}"
    originate_context: str = "default"
    # What the phone calld rings first shows (number empty: the number it is about to call).
    originate_caller_id_name: str = "calld"
    originate_caller_id_number: str = ""
    # The context blind transfers dial into (empty: originate_context).
    transfer_context: str = ""
    # What an attended transfer's consultation dials (att_xfer), {target} filled in.
    transfer_endpoint: str = "user/{target}"
    # The extension park/ dials when no slot is given (one running valet_park; empty: a slot is needed).
    park_extension: str = ""
    recording_directory: str = "/var/lib/freeswitch/recordings"
    # How events come: "json" decodes faster (bench/esl_parse.py); "plain" is FreeSWITCH's default.
    event_format: str = "json"
    # FreeSWITCH's own call records, read after every (re)connect to recover what calld missed:
    # directories of mod_json_cdr documents (its err-log-dir / log-dir) and mod_cdr_csv's file with
    # calld's template (README: "After a fault").
    cdr_json_directories: tuple[str, ...] = ()
    cdr_csv: str = ""
    # mod_json_cdr may post to calld (Basic credentials "user:password"); kept in this directory.
    cdr_receiver_credentials: str = ""
    cdr_receiver_directory: str = ""
    # How far before the missed window records are read (a call may start long before it ends).
    records_lookback_seconds: float = 14400.0
    reconnect_max_seconds: float = 30.0
    command_timeout_seconds: float = 5.0

    def problems(self) -> list[str]:
        """What is wrong with these settings (empty when valid)."""
        found = []
        if not 0 < self.port < 65536:
            found.append("freeswitch.port: must be 1..65535")
        if not 0 < len(self.name) <= 64 or not self.name.replace("-", "").replace("_", "").isalnum():
            found.append("freeswitch.name: 1 to 64 letters, digits, '-' or '_'")
        if not self.password and not self.password_file:
            found.append("freeswitch.password: set password or password_file")
        try:
            extensions_pattern(self.internal_extensions)
        except InvalidValue as exc:
            found.append(f"freeswitch.internal_extensions: {exc.message}")
        if bool(self.cdr_receiver_credentials) != bool(self.cdr_receiver_directory):
            found.append("freeswitch.cdr_receiver_credentials: give both it and cdr_receiver_directory, or neither")
        elif self.cdr_receiver_credentials and ":" not in self.cdr_receiver_credentials:
            found.append('freeswitch.cdr_receiver_credentials: "user:password", as mod_json_cdr\'s cred')
        if self.event_format not in ("json", "plain"):
            found.append("freeswitch.event_format: must be json or plain")
        for name in ("records_lookback_seconds", "reconnect_max_seconds", "command_timeout_seconds"):
            if getattr(self, name) <= 0:
                found.append(f"freeswitch.{name}: must be positive")
        return found

"""calld's configuration: a TOML file, validated, with environment overrides.

Every option and its default is documented in ``config.example.toml``. Environment variables
(``CALLD_DATABASE_URL``, ``CALLD_HOST``, ``CALLD_PORT``, ``CALLD_LOG_LEVEL``, ``CALLD_LOG_FORMAT``,
``CALLD_TIMEZONE``) override the file, so a unit file or container can change one setting without
editing it.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from calld.adapters.asterisk.settings import AsteriskConfig
from calld.adapters.freeswitch.settings import FreeswitchConfig
from calld.domain.numbers import NumberPolicy
from calld.domain.quality import DEFAULT_MOS_THRESHOLD
from calld.egress import EgressPolicy
from calld.providers.settings import PROVIDER_SETTINGS, SECRET_OPTION, ProvidersConfig
from calld.providers.telnyx import public_key


class ConfigError(Exception):
    """The configuration is invalid; the message names the option and the problem."""


LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("auto", "json", "console", "journal")


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 1_048_576
    shutdown_timeout_seconds: float = 10.0
    # A connection idle this long, or whose request headers are not complete by then, is closed.
    idle_timeout_seconds: float = 15.0
    # Open connections at most; more are answered 503 and closed (keep it well under LimitNOFILE).
    max_connections: int = 1000


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    url: str = "sqlite:///calld.db"
    pool_size: int = 10
    # PostgreSQL: longest connection attempt, statement and wait for a pooled connection; past it a
    # request is answered 503 with Retry-After.
    timeout_seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class CallsConfig:
    timezone: str = "UTC"
    default_region: str | None = None
    # Digits a trunk puts before national numbers when they are not the region's own national prefix.
    national_prefix: str | None = None
    # Where the switch's recording files are seen from calld ("" = at the paths the switch reports).
    recordings_root: str = ""
    # A call whose MOS (worst leg) is below this gets a quality_change event and counts as poor quality.
    mos_threshold: float = DEFAULT_MOS_THRESHOLD

    @property
    def numbers(self) -> NumberPolicy:
        """The number policy every door reads presented numbers with."""
        return NumberPolicy(self.default_region, self.national_prefix)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    level: str = "info"
    format: str = "auto"


@dataclass(frozen=True, slots=True)
class SipProbeConfig:
    timeout_seconds: float = 3.0


@dataclass(frozen=True, slots=True)
class TurnConfig:
    """The TURN server's shared secret (coturn ``static-auth-secret``): calld mints each browser
    time-limited TURN credentials from it (``calld.domain.turn``) and stores none."""

    secret: str = ""
    credential_lifetime_seconds: int = 3600

    def __repr__(self) -> str:
        # Keeps the secret out of tracebacks and debug output.
        return f"TurnConfig(secret='***', credential_lifetime_seconds={self.credential_lifetime_seconds})"


MIN_TURN_SECRET = 16
MAX_TURN_LIFETIME_SECONDS = 7 * 86400


@dataclass(frozen=True, slots=True)
class IngestConfig:
    batch_size: int = 500
    max_memory_events: int = 10000
    spill_path: str = "calld-spill.jsonl"
    max_spill_bytes: int = 1_073_741_824


@dataclass(frozen=True, slots=True)
class WebhookSource:
    """One inbound webhook source: the secret it signs with and, optionally, where it may call from."""

    secret: str = ""
    allow_ips: tuple[str, ...] = ()

    def __repr__(self) -> str:
        # Keeps the secret out of tracebacks and debug output.
        return f"WebhookSource(secret='***', allow_ips={self.allow_ips!r})"

    @property
    def networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(net, strict=False) for net in self.allow_ips)


# The inbound webhook endpoints, each its own source with its own secret.
WEBHOOK_SOURCES = ("sip", "recording")
MIN_WEBHOOK_SECRET = 16


@dataclass(frozen=True, slots=True)
class WebhooksConfig:
    replay_window_seconds: float = 300.0
    # An unconfigured source is refused: an open endpoint that writes calls is never the default.
    sip: WebhookSource | None = None
    recording: WebhookSource | None = None
    # SIP providers' own webhooks ([webhooks.providers.twilio] ...), each verified by its own scheme.
    providers: ProvidersConfig = field(default_factory=ProvidersConfig)

    def source(self, name: str) -> WebhookSource | None:
        found: WebhookSource | None = getattr(self, name)
        return found


@dataclass(frozen=True, slots=True)
class OutboundWebhooksConfig:
    """How calld delivers call events to webhook subscriptions."""

    timeout_seconds: float = 10.0
    max_attempts: int = 8
    backoff_base_seconds: float = 10.0
    backoff_max_seconds: float = 3600.0
    poll_interval_seconds: float = 5.0
    concurrency: int = 10


@dataclass(frozen=True, slots=True)
class LiveConfig:
    """The ``/api/ws`` push: how far a client may fall behind before it is dropped."""

    max_queued_messages: int = 256
    send_timeout_seconds: float = 10.0
    heartbeat_seconds: float = 30.0
    # Bytes in flight to one client at most (kernel send buffer and transport), so a client that
    # stops reading is dropped by the limits above rather than absorbed by kernel memory.
    max_buffered_bytes: int = 65536
    # How often the tokens of connected clients are re-checked (a revoked one closes its sockets).
    token_check_seconds: float = 0.5


@dataclass(frozen=True, slots=True)
class EgressConfig:
    """Where calld may connect for webhook deliveries and SIP probes (see ``calld.egress``)."""

    # Non-public networks calld may reach, e.g. ["192.168.10.0/24"] for the PBX's LAN.
    allow_networks: tuple[str, ...] = ()

    @property
    def policy(self) -> EgressPolicy:
        return EgressPolicy.allowing(self.allow_networks)


@dataclass(frozen=True, slots=True)
class RecordingsConfig:
    """Where recording files live on this host (``GET .../media/`` serves them, DELETE removes them)."""

    # Empty: the configured switch's recording_directory (calld beside the switch), else none.
    directories: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RetentionConfig:
    """How long calld keeps what it stores (0: for ever); run by the daemon every ``interval_seconds``."""

    calls_days: int = 0
    recordings_days: int = 0
    webhook_deliveries_days: int = 0
    pseudonymise_days: int = 0
    # The HMAC key of the pseudonyms, inline or as the first line of a file (at least 16 characters).
    pseudonym_key: str = ""
    pseudonym_key_file: str = ""
    interval_seconds: float = 3600.0
    batch_size: int = 500


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """Several calld for one PBX on one PostgreSQL database: one leads (connects to the switch and
    stores its events), the others stand by and serve the API (see README "Running more than one calld")."""

    # On PostgreSQL instances elect a leader per PBX; false: this instance always connects (as before).
    # Ignored on SQLite (one instance, no election).
    enabled: bool = True
    # This instance's name in pbx_leaders and calld_commands (empty: host name, process id, random suffix).
    instance_id: str = ""
    # How often a standby tries to take the lead, and a leader checks it still holds it.
    lock_poll_seconds: float = 0.5
    # How long a control action carried to another instance's switch waits for its answer.
    command_timeout_seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    calls: CallsConfig = field(default_factory=CallsConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    sip_probe: SipProbeConfig = field(default_factory=SipProbeConfig)
    turn: TurnConfig = field(default_factory=TurnConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    webhooks: WebhooksConfig = field(default_factory=WebhooksConfig)
    outbound_webhooks: OutboundWebhooksConfig = field(default_factory=OutboundWebhooksConfig)
    live: LiveConfig = field(default_factory=LiveConfig)
    egress: EgressConfig = field(default_factory=EgressConfig)
    recordings: RecordingsConfig = field(default_factory=RecordingsConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    # The switch this calld instance sits beside (one per PBX); neither means API-only.
    asterisk: AsteriskConfig | None = None
    freeswitch: FreeswitchConfig | None = None

    @property
    def switch_recording_directory(self) -> str | None:
        """Where the configured switch writes recordings on its own host, if a switch is configured."""
        switch = self.asterisk or self.freeswitch
        return switch.recording_directory if switch is not None else None

    @property
    def recording_directories(self) -> tuple[str, ...]:
        """The directories recording files are served from and removed in."""
        if self.recordings.directories:
            return self.recordings.directories
        switch = self.asterisk or self.freeswitch
        return (switch.recording_directory,) if switch is not None else ()


_ENV = {
    "CALLD_DATABASE_URL": ("database", "url", str),
    "CALLD_HOST": ("server", "host", str),
    "CALLD_PORT": ("server", "port", int),
    "CALLD_LOG_LEVEL": ("logging", "level", str),
    "CALLD_LOG_FORMAT": ("logging", "format", str),
    "CALLD_TIMEZONE": ("calls", "timezone", str),
}

_SECTIONS: dict[str, type[Any]] = {
    "server": ServerConfig,
    "database": DatabaseConfig,
    "calls": CallsConfig,
    "logging": LoggingConfig,
    "sip_probe": SipProbeConfig,
    "turn": TurnConfig,
    "ingest": IngestConfig,
    "webhooks": WebhooksConfig,
    "outbound_webhooks": OutboundWebhooksConfig,
    "live": LiveConfig,
    "egress": EgressConfig,
    "recordings": RecordingsConfig,
    "retention": RetentionConfig,
    "cluster": ClusterConfig,
    "asterisk": AsteriskConfig,
    "freeswitch": FreeswitchConfig,
}


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read ``path`` (if given), apply environment overrides, validate, and return the config."""
    env = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"{path}: no such file") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    for var, (section, key, kind) in _ENV.items():
        if var in env:
            try:
                value = kind(env[var])
            except ValueError as exc:
                raise ConfigError(f"{var}: must be {kind.__name__}, got {env[var]!r}") from exc
            raw.setdefault(section, {})[key] = value
    return _build(raw)


def _build(raw: Mapping[str, Any]) -> Config:
    sections: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in _SECTIONS:
            raise ConfigError(f"[{name}]: unknown section (known: {', '.join(sorted(_SECTIONS))})")
        if not isinstance(value, dict):
            raise ConfigError(f"[{name}]: must be a table")
        sections[name] = _webhooks(value) if name == "webhooks" else _section(name, _SECTIONS[name], value)
    config = Config(**sections)
    _validate(config)
    return config


def _webhooks(values: Mapping[str, Any]) -> WebhooksConfig:
    """``[webhooks]`` with one sub-table per source, ``[webhooks.sip]`` and ``[webhooks.recording]``."""
    flat = {key: value for key, value in values.items() if key not in (*WEBHOOK_SOURCES, "providers")}
    sources: dict[str, Any] = {}
    for name in WEBHOOK_SOURCES:
        if name in values:
            if not isinstance(values[name], dict):
                raise ConfigError(f"webhooks.{name}: must be a table ([webhooks.{name}])")
            sources[name] = _section(f"webhooks.{name}", WebhookSource, values[name])
    if "providers" in values:
        sources["providers"] = _providers(values["providers"])
    config: WebhooksConfig = _section("webhooks", WebhooksConfig, flat)
    return dataclasses.replace(config, **sources)


def _providers(values: Any) -> ProvidersConfig:
    """``[webhooks.providers.<name>]``, one table per provider."""
    if not isinstance(values, dict):
        raise ConfigError("webhooks.providers: must be a table ([webhooks.providers.twilio] ...)")
    tables: dict[str, Any] = {}
    for name, table in values.items():
        if name not in PROVIDER_SETTINGS:
            known = ", ".join(sorted(PROVIDER_SETTINGS))
            raise ConfigError(f"webhooks.providers.{name}: unknown provider (known: {known})")
        if not isinstance(table, dict):
            raise ConfigError(f"webhooks.providers.{name}: must be a table ([webhooks.providers.{name}])")
        tables[name] = _section(f"webhooks.providers.{name}", PROVIDER_SETTINGS[name], table)
    return ProvidersConfig(**tables)


def _section(name: str, cls: type[Any], values: Mapping[str, Any]) -> Any:
    defaults = cls()
    known = set(cls.__dataclass_fields__)
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{name}.{key}: unknown option (known: {', '.join(sorted(known))})")
        default = getattr(defaults, key)
        expected: tuple[type, ...]
        if isinstance(default, tuple):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{name}.{key}: must be a list of strings, got {value!r}")
            kwargs[key] = tuple(value)
            continue
        if isinstance(default, bool):
            expected = (bool,)
        elif isinstance(default, float):
            expected = (int, float)
        elif isinstance(default, int):
            expected = (int,)
        else:
            expected = (str,)
        if (isinstance(value, bool) and bool not in expected) or not isinstance(value, expected):
            raise ConfigError(f"{name}.{key}: must be {expected[0].__name__}, got {value!r}")
        kwargs[key] = float(value) if float in expected else value
    return cls(**kwargs)


def _validate(config: Config) -> None:
    if not 0 < config.server.port < 65536:
        raise ConfigError(f"server.port: must be 1..65535, got {config.server.port}")
    if config.server.max_body_bytes < 1024:
        raise ConfigError("server.max_body_bytes: must be at least 1024")
    if config.server.shutdown_timeout_seconds <= 0:
        raise ConfigError("server.shutdown_timeout_seconds: must be positive")
    if config.server.idle_timeout_seconds <= 0:
        raise ConfigError("server.idle_timeout_seconds: must be positive")
    if not 1 <= config.server.max_connections <= 1_000_000:
        raise ConfigError("server.max_connections: must be 1..1000000")
    if not config.database.url.startswith(("sqlite:", "postgresql:", "postgresql+")):
        raise ConfigError("database.url: must start with sqlite:/// or postgresql://")
    if config.database.pool_size < 1:
        raise ConfigError("database.pool_size: must be at least 1")
    if config.database.timeout_seconds <= 0:
        raise ConfigError("database.timeout_seconds: must be positive")
    try:
        ZoneInfo(config.calls.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"calls.timezone: unknown time zone {config.calls.timezone!r}") from exc
    region = config.calls.default_region
    if region is not None and region not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigError(f"calls.default_region: {region!r} is not an ISO 3166 region code such as 'US' or 'GB'")
    prefix = config.calls.national_prefix
    if prefix is not None and not (prefix.isascii() and prefix.isdigit() and len(prefix) <= 4):
        raise ConfigError(f'calls.national_prefix: {prefix!r} must be 1 to 4 digits, e.g. "9"')
    if not 1 <= config.calls.mos_threshold <= 5:
        raise ConfigError(f"calls.mos_threshold: must be a MOS from 1 to 5, got {config.calls.mos_threshold}")
    if config.logging.level not in LOG_LEVELS:
        raise ConfigError(f"logging.level: must be one of {', '.join(LOG_LEVELS)}")
    if config.logging.format not in LOG_FORMATS:
        raise ConfigError(f"logging.format: must be one of {', '.join(LOG_FORMATS)}")
    if config.sip_probe.timeout_seconds <= 0:
        raise ConfigError("sip_probe.timeout_seconds: must be positive")
    if config.turn.secret and len(config.turn.secret) < MIN_TURN_SECRET:
        raise ConfigError(f"turn.secret: must be at least {MIN_TURN_SECRET} characters")
    if not 60 <= config.turn.credential_lifetime_seconds <= MAX_TURN_LIFETIME_SECONDS:
        raise ConfigError(f"turn.credential_lifetime_seconds: must be 60..{MAX_TURN_LIFETIME_SECONDS}")
    for name in ("batch_size", "max_memory_events", "max_spill_bytes"):
        if getattr(config.ingest, name) < 1:
            raise ConfigError(f"ingest.{name}: must be at least 1")
    _validate_webhooks(config.webhooks)
    _validate_outbound(config.outbound_webhooks)
    _validate_live(config.live)
    for net in config.egress.allow_networks:
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError as exc:
            raise ConfigError(f"egress.allow_networks: {net!r} is not an IP address or network") from exc
    _validate_retention(config.retention)
    _validate_cluster(config.cluster)
    if config.asterisk is not None and config.freeswitch is not None:
        raise ConfigError("[asterisk] and [freeswitch]: configure one switch per calld instance")
    for switch in (config.asterisk, config.freeswitch):
        problems = switch.problems() if switch is not None else []
        if problems:
            raise ConfigError("; ".join(problems))


MIN_PSEUDONYM_KEY = 16


def _validate_cluster(cluster: ClusterConfig) -> None:
    if not 0.05 <= cluster.lock_poll_seconds <= 60:
        raise ConfigError("cluster.lock_poll_seconds: must be 0.05..60")
    if not 0.1 <= cluster.command_timeout_seconds <= 300:
        raise ConfigError("cluster.command_timeout_seconds: must be 0.1..300")
    if len(cluster.instance_id) > 200:
        raise ConfigError("cluster.instance_id: at most 200 characters")


def _validate_retention(retention: RetentionConfig) -> None:
    for name in ("calls_days", "recordings_days", "webhook_deliveries_days", "pseudonymise_days"):
        if getattr(retention, name) < 0:
            raise ConfigError(f"retention.{name}: must be 0 (keep for ever) or a number of days")
    if retention.interval_seconds < 1:
        raise ConfigError("retention.interval_seconds: must be at least 1")
    if not 1 <= retention.batch_size <= 10_000:
        raise ConfigError("retention.batch_size: must be 1..10000")
    if retention.pseudonymise_days and not (retention.pseudonym_key or retention.pseudonym_key_file):
        raise ConfigError("retention.pseudonym_key: set it or pseudonym_key_file to pseudonymise numbers")
    if retention.pseudonym_key and len(retention.pseudonym_key) < MIN_PSEUDONYM_KEY:
        raise ConfigError(f"retention.pseudonym_key: must be at least {MIN_PSEUDONYM_KEY} characters")
    if retention.calls_days and retention.pseudonymise_days >= retention.calls_days:
        raise ConfigError("retention.pseudonymise_days: must be fewer than calls_days (calls are gone by then)")


def pseudonym_key(retention: RetentionConfig) -> bytes:
    """The pseudonyms' HMAC key: ``pseudonym_key``, else the first line of ``pseudonym_key_file``."""
    if retention.pseudonym_key:
        return retention.pseudonym_key.encode("utf-8")
    try:
        with open(retention.pseudonym_key_file, encoding="utf-8") as handle:
            key = handle.readline().strip()
    except OSError as exc:
        raise ConfigError(f"retention.pseudonym_key_file: cannot read {retention.pseudonym_key_file}: {exc}") from exc
    if len(key) < MIN_PSEUDONYM_KEY:
        raise ConfigError(f"retention.pseudonym_key_file: the key must be at least {MIN_PSEUDONYM_KEY} characters")
    return key.encode("utf-8")


def unreadable_files(config: Config) -> list[str]:
    """The secret files the configuration names that this user cannot read (``calld check-config``
    runs as the service's user, before it starts), each with the option and the reason."""
    named = []
    # The adapters read a file only when the secret is not given inline.
    if config.asterisk is not None and not config.asterisk.secret and config.asterisk.secret_file:
        named.append(("asterisk.secret_file", config.asterisk.secret_file))
    if config.freeswitch is not None and not config.freeswitch.password and config.freeswitch.password_file:
        named.append(("freeswitch.password_file", config.freeswitch.password_file))
    if not config.retention.pseudonym_key and config.retention.pseudonym_key_file:
        named.append(("retention.pseudonym_key_file", config.retention.pseudonym_key_file))
    problems = []
    for option, path in named:
        try:
            with open(path, encoding="utf-8") as handle:
                first = handle.readline().strip()
        except OSError as exc:
            problems.append(f"{option}: cannot read {path}: {exc.strerror or exc}")
            continue
        except UnicodeDecodeError:
            problems.append(f"{option}: {path} is not UTF-8 text")
            continue
        if not first:
            problems.append(f"{option}: {path} is empty (the secret is its first line)")
    return problems


def _validate_webhooks(webhooks: WebhooksConfig) -> None:
    if not 0 < webhooks.replay_window_seconds <= 86400:
        raise ConfigError("webhooks.replay_window_seconds: must be more than 0 and at most 86400")
    for name in WEBHOOK_SOURCES:
        source = webhooks.source(name)
        if source is None:
            continue
        if len(source.secret) < MIN_WEBHOOK_SECRET:
            raise ConfigError(f"webhooks.{name}.secret: must be at least {MIN_WEBHOOK_SECRET} characters")
        for net in source.allow_ips:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as exc:
                raise ConfigError(f"webhooks.{name}.allow_ips: {net!r} is not an IP address or network") from exc
    _validate_providers(webhooks.providers)


def _validate_providers(providers: ProvidersConfig) -> None:
    for name, option in SECRET_OPTION.items():
        settings = getattr(providers, name)
        if settings is None:
            continue
        prefix = f"webhooks.providers.{name}"
        if not getattr(settings, option).strip():
            raise ConfigError(f"{prefix}.{option}: must be set (the provider's webhooks are verified with it)")
        public_url = getattr(settings, "public_url", "")
        if public_url and not public_url.startswith(("http://", "https://")):
            raise ConfigError(f"{prefix}.public_url: must be the http(s) URL the provider was given: {public_url!r}")
        for net in settings.allow_ips:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as exc:
                raise ConfigError(f"{prefix}.allow_ips: {net!r} is not an IP address or network") from exc
    if providers.telnyx is not None:
        try:
            public_key(providers.telnyx.public_key)
        except ValueError as exc:
            raise ConfigError(f"webhooks.providers.telnyx.public_key: {exc}") from None


def _validate_outbound(outbound: OutboundWebhooksConfig) -> None:
    for name in ("timeout_seconds", "backoff_base_seconds", "poll_interval_seconds"):
        if getattr(outbound, name) <= 0:
            raise ConfigError(f"outbound_webhooks.{name}: must be positive")
    if outbound.backoff_max_seconds < outbound.backoff_base_seconds:
        raise ConfigError("outbound_webhooks.backoff_max_seconds: must be at least backoff_base_seconds")
    if not 1 <= outbound.max_attempts <= 100:
        raise ConfigError("outbound_webhooks.max_attempts: must be 1..100")
    if not 1 <= outbound.concurrency <= 1000:
        raise ConfigError("outbound_webhooks.concurrency: must be 1..1000")


def _validate_live(live: LiveConfig) -> None:
    if not 1 <= live.max_queued_messages <= 100_000:
        raise ConfigError("live.max_queued_messages: must be 1..100000")
    if not 4096 <= live.max_buffered_bytes <= 16_777_216:
        raise ConfigError("live.max_buffered_bytes: must be 4096..16777216")
    for name in ("send_timeout_seconds", "heartbeat_seconds", "token_check_seconds"):
        if getattr(live, name) <= 0:
            raise ConfigError(f"live.{name}: must be positive")

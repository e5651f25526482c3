"""Configuration loading, validation and environment overrides."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from calld.config import Config, ConfigError, load_config
from tests.support import telnyx_public_key

ROOT = Path(__file__).resolve().parent.parent


def test_example_config_is_valid_and_matches_the_defaults() -> None:
    assert load_config(ROOT / "config.example.toml", environ={}) == Config()


def test_no_file_gives_defaults() -> None:
    config = load_config(None, environ={})
    assert config.server.host == "127.0.0.1"
    assert config.server.port == 8080
    assert config.database.url == "sqlite:///calld.db"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "calld.toml"
    path.write_text('[database]\nurl = "sqlite:///a.db"\n[server]\nport = 9000\n')
    config = load_config(path, environ={"CALLD_DATABASE_URL": "postgresql://x@127.0.0.1/db", "CALLD_PORT": "9100"})
    assert config.database.url == "postgresql://x@127.0.0.1/db"
    assert config.server.port == 9100


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("[server]\nport = 70000\n", {}, "server.port"),
        ('[server]\nport = "80"\n', {}, "server.port: must be int"),
        ("[server]\nprot = 80\n", {}, "server.prot: unknown option"),
        ("[srever]\n", {}, "[srever]: unknown section"),
        ('[calls]\ntimezone = "Mars/Olympus"\n', {}, "calls.timezone"),
        ('[calls]\ndefault_region = "XX"\n', {}, "calls.default_region"),
        ("[calls]\nmos_threshold = 6\n", {}, "calls.mos_threshold: must be a MOS from 1 to 5"),
        ('[logging]\nlevel = "loud"\n', {}, "logging.level"),
        ('[database]\nurl = "mysql://x"\n', {}, "database.url"),
        ("not toml [", {}, "not valid TOML"),
        ("", {"CALLD_PORT": "eighty"}, "CALLD_PORT"),
        ('[webhooks.sip]\nsecret = "short"\n', {}, "webhooks.sip.secret: must be at least 16 characters"),
        ('[webhooks.sip]\nsecret = "0123456789abcdef"\nallow_ips = ["10.0.0.300"]\n', {}, "webhooks.sip.allow_ips"),
        ("[webhooks]\nsip = 1\n", {}, "webhooks.sip: must be a table"),
        ("[webhooks.crm]\n", {}, "webhooks.crm: unknown option"),
        ("[webhooks]\nreplay_window_seconds = 0\n", {}, "webhooks.replay_window_seconds"),
        ("[webhooks.recording]\nsecert = 1\n", {}, "webhooks.recording.secert: unknown option"),
        ("[outbound_webhooks]\ntimeout_seconds = 0\n", {}, "outbound_webhooks.timeout_seconds: must be positive"),
        ("[outbound_webhooks]\nmax_attempts = 0\n", {}, "outbound_webhooks.max_attempts: must be 1..100"),
        ("[outbound_webhooks]\nbackoff_max_seconds = 1\n", {}, "outbound_webhooks.backoff_max_seconds"),
        ("[outbound_webhooks]\nconcurrency = 0\n", {}, "outbound_webhooks.concurrency"),
        ("[live]\nmax_queued_messages = 0\n", {}, "live.max_queued_messages: must be 1..100000"),
        ("[live]\nheartbeat_seconds = -1\n", {}, "live.heartbeat_seconds: must be positive"),
        ("[retention]\ncalls_days = -1\n", {}, "retention.calls_days: must be 0"),
        ("[retention]\npseudonymise_days = 30\n", {}, "retention.pseudonym_key: set it or pseudonym_key_file"),
        ('[retention]\npseudonymise_days = 30\npseudonym_key = "short"\n', {}, "retention.pseudonym_key: must be"),
        (
            '[retention]\ncalls_days = 30\npseudonymise_days = 30\npseudonym_key = "0123456789abcdef"\n',
            {},
            "retention.pseudonymise_days: must be fewer than calls_days",
        ),
        ("[retention]\nbatch_size = 0\n", {}, "retention.batch_size"),
        ("[retention]\ninterval_seconds = 0\n", {}, "retention.interval_seconds"),
        ('[recordings]\ndirectories = "/var/spool"\n', {}, "recordings.directories: must be a list of strings"),
        ("[cluster]\nlock_poll_seconds = 0\n", {}, "cluster.lock_poll_seconds: must be 0.05..60"),
        ("[cluster]\ncommand_timeout_seconds = 0\n", {}, "cluster.command_timeout_seconds: must be 0.1..300"),
        ('[cluster]\nenabled = "yes"\n', {}, "cluster.enabled: must be bool"),
    ],
)
def test_invalid_configuration_names_the_option(tmp_path: Path, text: str, env: dict[str, str], message: str) -> None:
    path = tmp_path / "calld.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ=env)
    assert message in str(info.value)


def test_check_config_command_exits_non_zero_with_a_clear_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nport = 0\n")
    result = subprocess.run(
        [sys.executable, "-m", "calld.cli", "--config", str(bad), "check-config"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "server.port: must be 1..65535" in result.stderr
    good = subprocess.run(
        [sys.executable, "-m", "calld.cli", "--config", str(ROOT / "config.example.toml"), "check-config"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert good.returncode == 0, good.stderr


def test_webhook_sources_each_have_a_secret_and_an_optional_allowlist(tmp_path: Path) -> None:
    path = tmp_path / "calld.toml"
    path.write_text(
        "[webhooks]\nreplay_window_seconds = 120\n"
        '[webhooks.sip]\nsecret = "sip-secret-0123456789"\nallow_ips = ["203.0.113.0/24", "2001:db8::1"]\n'
        '[webhooks.recording]\nsecret = "recording-secret-0123"\n'
    )
    webhooks = load_config(path, environ={}).webhooks
    assert webhooks.replay_window_seconds == 120.0
    assert webhooks.sip is not None and webhooks.sip.secret == "sip-secret-0123456789"
    assert webhooks.sip.allow_ips == ("203.0.113.0/24", "2001:db8::1")
    assert webhooks.recording is not None and webhooks.recording.allow_ips == ()
    assert "sip-secret" not in repr(webhooks)
    assert Config().webhooks.sip is None  # unconfigured sources refuse every delivery


def test_sip_providers_each_have_a_table(tmp_path: Path) -> None:
    path = tmp_path / "calld.toml"
    key = telnyx_public_key()
    path.write_text(
        "[webhooks.providers.twilio]\n"
        'auth_token = "twilio-auth-token-0123"\n'
        'public_url = "https://calld.example.com/api/webhooks/providers/twilio/"\n'
        f'[webhooks.providers.telnyx]\npublic_key = "{key}"\nallow_ips = ["192.76.120.0/24"]\n'
        '[webhooks.providers.vonage]\nsignature_secret = "vonage-signature-secret-0123"\n'
        '[webhooks.providers.plivo]\nauth_token = "plivo-auth-token-0123"\n'
    )
    providers = load_config(path, environ={}).webhooks.providers
    assert providers.twilio is not None and providers.twilio.public_url.endswith("/providers/twilio/")
    assert providers.telnyx is not None and providers.telnyx.allow_ips == ("192.76.120.0/24",)
    assert providers.vonage is not None and providers.plivo is not None and providers.plivo.public_url == ""
    for secret in ("twilio-auth-token", "vonage-signature-secret", "plivo-auth-token"):
        assert secret not in repr(providers)
    assert Config().webhooks.providers.twilio is None  # an unconfigured provider is refused


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[webhooks.providers.bandwidth]\n", "webhooks.providers.bandwidth: unknown provider"),
        ("[webhooks.providers]\ntwilio = 1\n", "webhooks.providers.twilio: must be a table"),
        ("[webhooks.providers.twilio]\n", "webhooks.providers.twilio.auth_token: must be set"),
        ('[webhooks.providers.twilio]\nauth_token = "x"\npublic_url = "calld.example.com"\n', "public_url"),
        ('[webhooks.providers.plivo]\nauth_token = "x"\nallow_ips = ["nope"]\n', "webhooks.providers.plivo.allow_ips"),
        ('[webhooks.providers.telnyx]\npublic_key = "c2hvcnQ="\n', "webhooks.providers.telnyx.public_key: must be"),
        ('[webhooks.providers.vonage]\nsecret = "x"\n', "webhooks.providers.vonage.secret: unknown option"),
        ("[webhooks.providers.vonage]\nsignature_secret = 5\n", "webhooks.providers.vonage.signature_secret: must be"),
    ],
)
def test_invalid_provider_tables_name_the_option(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "calld.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path, environ={})


def test_recording_directories_default_to_the_switch(tmp_path: Path) -> None:
    assert load_config(None, environ={}).recording_directories == ()
    path = tmp_path / "calld.toml"
    path.write_text('[asterisk]\nsecret = "x"\nrecording_directory = "/srv/monitor"\n')
    assert load_config(path, environ={}).recording_directories == ("/srv/monitor",)
    path.write_text('[asterisk]\nsecret = "x"\n[recordings]\ndirectories = ["/a", "/b"]\n')
    assert load_config(path, environ={}).recording_directories == ("/a", "/b")

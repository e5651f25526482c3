"""The ``[egress]`` policy: where calld connects on an API user's behalf (webhook deliveries, SIP
probes). Refusals are checked by the policy itself; nothing here connects outside loopback."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import pytest

from calld.config import ConfigError, EgressConfig, load_config
from calld.domain.vocabulary import SipTransport
from calld.egress import EgressPolicy, host_address
from calld.sip_probe import ProbeTarget, probe
from calld.storage.database import Database
from tests.fakes.sip_peers import LOOPBACK, StreamResponder
from tests.support import LOOPBACK_EGRESS, api_session, call_json, running_daemon, subscribe

DEFAULT = EgressPolicy()
LAN = EgressPolicy.allowing(["192.168.10.0/24"])

NEVER = ["169.254.169.254", "fd00:ec2::254", "fe80::1", "169.254.0.1", "0.0.0.0", "::", "224.0.0.1", "ff02::1"]
NON_PUBLIC = ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1", "10.0.0.5", "172.16.3.4", "192.168.10.20", "fc00::1"]


@pytest.mark.parametrize("address", NEVER)
def test_link_local_and_metadata_addresses_are_refused_whatever_is_allowed(address: str) -> None:
    everything = EgressPolicy.allowing(["0.0.0.0/0", "::/0"])
    for policy in (DEFAULT, LAN, everything):
        assert policy.refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", NON_PUBLIC)
def test_private_and_loopback_addresses_are_refused_by_default(address: str) -> None:
    problem = DEFAULT.refusal(ipaddress.ip_address(address))
    assert problem is not None and "allow_networks" in problem


def test_an_allowed_network_is_reachable_and_only_it() -> None:
    assert LAN.refusal(ipaddress.ip_address("192.168.10.20")) is None
    assert LAN.refusal(ipaddress.ip_address("192.168.11.20")) is not None
    assert LAN.refusal(ipaddress.ip_address("127.0.0.1")) is not None


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert DEFAULT.refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("host", ["2130706433", "0x7f000001", "127.1", "0177.0.0.1", "0x7f.1", "[::ffff:7f00:1]"])
def test_obfuscated_loopback_is_an_address_not_a_name(host: str) -> None:
    address = host_address(host)
    assert address is not None
    assert DEFAULT.host_problem(host) is not None


def test_the_egress_networks_are_one_line_of_configuration(tmp_path: Any) -> None:
    path = tmp_path / "calld.toml"
    path.write_text('[egress]\nallow_networks = ["192.168.10.0/24"]\n')
    config = load_config(path, environ={})
    assert config.egress == EgressConfig(allow_networks=("192.168.10.0/24",))
    assert config.egress.policy.refusal(ipaddress.ip_address("192.168.10.7")) is None
    path.write_text('[egress]\nallow_networks = ["the lan"]\n')
    with pytest.raises(ConfigError, match=r"egress\.allow_networks"):
        load_config(path, environ={})


# --- webhook subscriptions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://127.0.0.1:5432/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://127.1:8080/",
        "http://10.1.2.3/hook",
        "http://[::1]:9/",
    ],
)
async def test_a_subscription_to_a_refused_address_is_422(db: Database, url: str) -> None:
    async with running_daemon(db) as daemon, api_session(daemon) as http:
        body = await call_json(http, "POST", "/api/webhook-subscriptions/", 422, json={"url": url})
        assert "egress policy" in body["detail"]["url"]


async def test_credentials_in_a_subscription_url_are_write_only(db: Database) -> None:
    async with running_daemon(db) as daemon, api_session(daemon) as http:
        url = "https://crm-user:crm-pass-123@crm.example/hooks?x=1"
        created = await subscribe(http, url)
        shown = [
            created["url"],
            (await call_json(http, "GET", f"/api/webhook-subscriptions/{created['id']}/", 200))["url"],
            (await call_json(http, "GET", "/api/webhook-subscriptions/", 200))["results"][0]["url"],
        ]
        assert shown == ["https://***@crm.example/hooks?x=1"] * 3
        # Sending back what GET shows would replace the credentials with "***": refused.
        patch = {"url": shown[0]}
        refused = await call_json(http, "PATCH", f"/api/webhook-subscriptions/{created['id']}/", 422, json=patch)
        assert "masked credentials" in refused["detail"]["url"]


# --- the SIP probe --------------------------------------------------------------------------------

BANNER = b"SSH-2.0-OpenSSH_9.6p1 Debian-4\r\n\r\n"


async def test_the_probe_refuses_loopback_by_default_without_connecting() -> None:
    responder = await StreamResponder(lambda _req: BANNER).start()
    try:
        for host in (LOOPBACK, "localhost"):
            result = await probe(ProbeTarget(SipTransport.TCP, host, responder.port), timeout_seconds=2, egress=DEFAULT)
            assert result.reachable is False
            assert result.error is not None and "egress policy" in result.error
    finally:
        await responder.close()
    assert responder.requests == []


@pytest.mark.parametrize("transport", [SipTransport.UDP, SipTransport.TCP, SipTransport.WS])
async def test_the_probe_never_connects_to_metadata(transport: SipTransport) -> None:
    target = ProbeTarget(transport, "169.254.169.254", 80, websocket_url="ws://169.254.169.254/")
    # An allow-everything policy still refuses it; the timeout would only matter if it connected.
    everything = EgressPolicy.allowing(["0.0.0.0/0", "::/0"])
    result = await asyncio.wait_for(probe(target, timeout_seconds=5, egress=everything), 5)
    assert result.reachable is False
    assert result.error is not None and "egress policy" in result.error


async def test_the_probe_never_returns_a_foreign_banner() -> None:
    responder = await StreamResponder(lambda _req: BANNER).start()
    try:
        result = await probe(
            ProbeTarget(SipTransport.TCP, LOOPBACK, responder.port), timeout_seconds=2, egress=LOOPBACK_EGRESS.policy
        )
    finally:
        await responder.close()
    assert result.reachable is False
    assert result.error == "the server did not answer in SIP"
    assert "SSH" not in str(result.as_json())

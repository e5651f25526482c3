"""Inbound webhook signatures over real HTTP on both databases: good, bad, stale, replayed, and
allowlists. A refused delivery stores nothing and is logged with its source and reason."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta

import pytest

from calld import signing
from calld.config import Config, WebhookSource
from calld.http.app import create_app
from calld.service.wiring import Services
from calld.storage.database import Database
from tests.support import (
    SIP,
    WEBHOOK_SECRETS,
    AppClient,
    LogCapture,
    SettableClock,
    deliver,
    sip_body,
    stored,
    webhooks_config,
)

RECORDING = "/api/webhooks/recording/"
Client = Callable[..., Awaitable[AppClient]]


def rejections(log_capture: LogCapture) -> list[tuple[str, str]]:
    return [(line["source"], line["reason"]) for line in log_capture.lines() if line["event"] == "webhook rejected"]


async def make_api(aiohttp_client: Client, services: Services, config: Config | None = None) -> AppClient:
    return await aiohttp_client(create_app(replace(services, config=config or services.config)))


async def test_a_good_signature_is_accepted(
    services: Services, db: Database, clock: SettableClock, aiohttp_client: Client
) -> None:
    api = await make_api(aiohttp_client, services)
    body = sip_body(clock)
    status, answer = await deliver(api, SIP, body, signing.sign(WEBHOOK_SECRETS["sip"], body, clock.now))
    assert (status, answer["status"]) == (200, "stored")
    assert await stored(db) == (1, 1)


@pytest.mark.parametrize(
    ("make_header", "reason"),
    [
        (lambda body, now: None, "missing Calld-Signature header"),
        (lambda body, now: "", "missing Calld-Signature header"),
        (lambda body, now: "sha256=abc", "malformed signature header"),
        (lambda body, now: f"v1={signing.signature(WEBHOOK_SECRETS['sip'], 0, body)}", "malformed signature header"),
        (lambda body, now: "t=-5,v1=00", "malformed signature header"),
        (lambda body, now: "t=" + "9" * 400 + ",v1=00", "malformed signature header"),
        (lambda body, now: "x" * 2000, "malformed signature header: too long"),
        (lambda body, now: signing.sign("not-the-sip-secret-at-all", body, now), "signature does not match"),
        (lambda body, now: signing.sign(WEBHOOK_SECRETS["recording"], body, now), "signature does not match"),
        (lambda body, now: signing.sign(WEBHOOK_SECRETS["sip"], body + b" ", now), "signature does not match"),
        (lambda body, now: signing.sign(WEBHOOK_SECRETS["sip"], body, now).upper(), "malformed signature header"),
        (
            lambda body, now: signing.sign(WEBHOOK_SECRETS["sip"], body, now - timedelta(seconds=301)),
            "outside the replay window",
        ),
        (
            lambda body, now: signing.sign(WEBHOOK_SECRETS["sip"], body, now + timedelta(seconds=301)),
            "outside the replay window",
        ),
    ],
)
async def test_bad_signatures_are_401_store_nothing_and_are_logged(
    services: Services,
    db: Database,
    clock: SettableClock,
    aiohttp_client: Client,
    log_capture: LogCapture,
    make_header: Callable[..., str | None],
    reason: str,
) -> None:
    api = await make_api(aiohttp_client, services)
    body = sip_body(clock)
    status, answer = await deliver(api, SIP, body, make_header(body, clock.now))
    assert status == 401, answer
    assert answer["error"] == "webhook rejected"
    assert reason in answer["detail"]["signature"]
    assert await stored(db) == (0, 0)
    [(source, logged)] = rejections(log_capture)
    assert source == "sip" and reason in logged
    assert WEBHOOK_SECRETS["sip"] not in log_capture.text()


async def test_the_edge_of_the_replay_window_is_inside_it(
    services: Services, db: Database, clock: SettableClock, aiohttp_client: Client
) -> None:
    api = await make_api(aiohttp_client, services)
    body = sip_body(clock)
    header = signing.sign(WEBHOOK_SECRETS["sip"], body, clock.now - timedelta(seconds=300))
    assert (await deliver(api, SIP, body, header))[0] == 200


async def test_a_replay_inside_the_window_stores_nothing_twice_and_after_it_is_refused(
    services: Services, db: Database, clock: SettableClock, aiohttp_client: Client
) -> None:
    api = await make_api(aiohttp_client, services)
    body = sip_body(clock)
    header = signing.sign(WEBHOOK_SECRETS["sip"], body, clock.now)
    assert (await deliver(api, SIP, body, header))[1]["status"] == "stored"
    clock.advance(60)
    status, answer = await deliver(api, SIP, body, header)
    assert (status, answer["status"]) == (200, "duplicate")
    assert await stored(db) == (1, 1)
    clock.advance(241)
    status, answer = await deliver(api, SIP, body, header)
    assert status == 401 and "replay window" in answer["detail"]["signature"]
    # The captured signature cannot be moved onto another body either.
    other = sip_body(clock, delivery_id="d-2", event_type="call_ringing")
    status, _ = await deliver(api, SIP, other, header.replace(header.split(",")[0], f"t={int(clock.now.timestamp())}"))
    assert status == 401
    assert await stored(db) == (1, 1)


async def test_a_signature_made_while_rotating_secrets_may_carry_several(
    services: Services, db: Database, clock: SettableClock, aiohttp_client: Client
) -> None:
    api = await make_api(aiohttp_client, services)
    body = sip_body(clock)
    t = int(clock.now.timestamp())
    header = f"t={t},v0=legacy,v1={'0' * 64},v1={signing.signature(WEBHOOK_SECRETS['sip'], t, body)}"
    assert (await deliver(api, SIP, body, header))[0] == 200


async def test_each_source_has_its_own_secret(
    services: Services, db: Database, clock: SettableClock, aiohttp_client: Client, log_capture: LogCapture
) -> None:
    api = await make_api(aiohttp_client, services)
    body = json.dumps({"call_id": "00000000-0000-0000-0000-000000000000", "status": "completed"}).encode()
    status, _ = await deliver(api, RECORDING, body, signing.sign(WEBHOOK_SECRETS["sip"], body, clock.now))
    assert status == 401
    assert rejections(log_capture) == [("recording", "signature does not match the body")]
    status, answer = await deliver(api, RECORDING, body, signing.sign(WEBHOOK_SECRETS["recording"], body, clock.now))
    assert status == 404 and "call_id" in answer["detail"]  # past the signature: the call is unknown


async def test_an_unconfigured_source_is_refused(
    services: Services, db: Database, clock: SettableClock, aiohttp_client: Client, config: Config
) -> None:
    config = replace(config, webhooks=replace(config.webhooks, sip=None))
    api = await make_api(aiohttp_client, services, config)
    body = sip_body(clock)
    status, answer = await deliver(api, SIP, body, signing.sign(WEBHOOK_SECRETS["sip"], body, clock.now))
    assert status == 401 and "no secret configured" in answer["detail"]["signature"]
    assert await stored(db) == (0, 0)


async def test_a_bearer_token_is_no_substitute_for_a_signature(
    services: Services, db: Database, clock: SettableClock, aiohttp_client: Client, auth_headers: dict[str, str]
) -> None:
    api = await aiohttp_client(create_app(services), headers=auth_headers)
    assert (await deliver(api, SIP, sip_body(clock), None))[0] == 401


@pytest.mark.parametrize(
    ("allow", "status"),
    [(("192.0.2.0/24",), 403), (("192.0.2.7", "2001:db8::/32"), 403), (("127.0.0.0/8",), 200), (("127.0.0.1",), 200)],
)
async def test_the_allowlist_is_checked_before_the_signature(
    services: Services,
    db: Database,
    clock: SettableClock,
    aiohttp_client: Client,
    config: Config,
    log_capture: LogCapture,
    allow: tuple[str, ...],
    status: int,
) -> None:
    sip = WebhookSource(secret=WEBHOOK_SECRETS["sip"], allow_ips=allow)
    api = await make_api(aiohttp_client, services, replace(config, webhooks=webhooks_config(sip=sip)))
    body = sip_body(clock)
    got, answer = await deliver(api, SIP, body, signing.sign(WEBHOOK_SECRETS["sip"], body, clock.now))
    assert got == status, answer
    if status == 403:
        assert answer["detail"] == {"source": "address 127.0.0.1 is not allowed to deliver sip webhooks"}
        assert rejections(log_capture) == [("sip", "address 127.0.0.1 is not allowed to deliver sip webhooks")]
        assert await stored(db) == (0, 0)

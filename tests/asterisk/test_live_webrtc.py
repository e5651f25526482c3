"""Live: the console's Phone panel is a real WebRTC softphone on the lab Asterisk.

Headless Chromium with a fake microphone loads the console, signs in with a softphone token (which
calld answers the line's SIP password), registers as 2001 through ``ws://`` and ``wss://`` (the lab's
WebSocket certificate, made by ``lab/asterisk/webrtc.sh``, is the one certificate this browser
profile accepts: its key is pinned with ``--ignore-certificate-errors-spki-list``), calls the sipp
phone 1002, which answers and echoes the audio it receives (``-rtp_echo``). RTP is checked both ways
in the browser's own statistics and in Asterisk's ``pjsip show channelstats`` (the sipp channel's
received packets are sipp's echo: sipp got them); calld logs the call; ``end_call`` through the REST
API ends it in the browser. Then relay-only ICE through the lab's coturn with the credentials calld
minted, and the same with credentials that expired, which the TURN server refuses."""

from __future__ import annotations

import asyncio
import re
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from calld.config import TurnConfig
from calld.domain.scopes import Scope
from calld.storage.database import Database
from calld.storage.models import utcnow
from tests.asterisk.live import LAB_DIR, Live, asterisk_cli, eventually, live_daemon
from tests.console.browser import VIEWPORT, chromium, screenshot
from tests.support import fresh_database, mint_token

pytestmark = pytest.mark.asterisk

WEBRTC_DIR = LAB_DIR.parent / "webrtc"  # lab/asterisk/webrtc.sh
TURN = TurnConfig(secret="calld-lab-turn-secret-0123456789", credential_lifetime_seconds=600)  # turnserver.conf
USER, PASSWORD = "2001", "calld-lab-webrtc-2001"  # lab/asterisk/etc/pjsip_webrtc.conf
WEBSOCKETS = {"ws": "ws://127.0.0.1:8088/ws", "wss": "wss://127.0.0.1:8089/ws"}  # etc/http.conf
CHANNEL = re.compile(r"^(\d{4})-[0-9a-f]{8}$")


@pytest.fixture
async def db(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Database]:
    """The browser reaches the switch through the API, which the other live tests run on both databases."""
    database = await fresh_database("sqlite", tmp_path, sqlite_template)
    try:
        yield database
    finally:
        await database.close()


def lab_certificate_pin() -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)) of the lab's WebSocket certificate, as Chromium pins keys."""
    certificate = WEBRTC_DIR / "server.crt"
    public_key = subprocess.run(
        ["openssl", "x509", "-pubkey", "-noout", "-in", str(certificate)], check=True, capture_output=True
    ).stdout
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "der"], input=public_key, check=True, capture_output=True
    ).stdout
    digest = subprocess.run(["openssl", "dgst", "-sha256", "-binary"], input=der, check=True, capture_output=True)
    return subprocess.run(["base64", "-w0"], input=digest.stdout, check=True, capture_output=True).stdout.decode()


def browser_args() -> tuple[str, ...]:
    return (
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        # Asterisk's RTP and the TURN relay are on 127.0.0.1; Chromium leaves loopback out of ICE otherwise.
        "--allow-loopback-in-peer-connection",
        f"--ignore-certificate-errors-spki-list={lab_certificate_pin()}",
    )


async def line_for(live: Live, transport: str) -> str:
    """A SIP configuration for softphone 2001 over ``transport``, with the lab's coturn; its id."""
    created = await live.post(
        "/api/sip-configurations/",
        {
            "name": f"softphone {transport} {uuid.uuid4().hex[:6]}",
            "server": "127.0.0.1",
            "transport": transport,
            "username": USER,
            "secret": PASSWORD,
            "websocket_url": WEBSOCKETS[transport],
            "turn_servers": [{"urls": "turn:127.0.0.1:3478?transport=udp"}],
        },
        status=201,
    )
    return str(created["id"])


async def open_phone(page: Page, live: Live, token: str) -> None:
    await page.goto(f"http://127.0.0.1:{live.daemon.port}/")
    await page.fill("#token", token)
    await page.click("#sign-in-form button[type=submit]")
    await page.click("nav a[data-view=phone]")
    await page.wait_for_selector("#phone-register")


async def registered_phone(db: Database, live: Live, browser: Browser, transport: str) -> Page:
    """The console's Phone panel, signed in with a softphone token for a new line over ``transport``, registered."""
    line = await line_for(live, transport)
    token = await mint_token(db, Scope.SOFTPHONE, sip_configuration_id=uuid.UUID(line))
    page = await browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(15_000)
    await open_phone(page, live, token)
    assert await page.input_value("#phone-line") == line  # whoami names the token's line
    await register(page)
    return page


async def register(page: Page) -> None:
    await page.click("#phone-register")
    await page.wait_for_selector("#phone-status[data-state=registered]")


async def call(page: Page, number: str) -> None:
    await page.fill("#phone-dial", number)
    await page.click("#phone-call")


async def packets(page: Page) -> dict[str, Any]:
    media = page.locator("#phone-media")
    return {
        "sent": int(await media.get_attribute("data-sent") or 0),
        "received": int(await media.get_attribute("data-received") or 0),
        "candidate": await media.get_attribute("data-candidate"),
    }


async def media_flows(page: Page, at_least: int = 50) -> dict[str, Any]:
    """The browser's RTP statistics once it has sent and received ``at_least`` audio packets."""

    async def enough() -> dict[str, Any] | None:
        seen = await packets(page)
        return seen if seen["sent"] >= at_least and seen["received"] >= at_least else None

    return await eventually(enough, 15, f"{at_least} RTP packets each way in the browser")


async def channel_packets() -> dict[str, tuple[int, int]]:
    """Endpoint → (received, sent) RTP packets of its channel (``pjsip show channelstats``:
    BridgeId ChannelId UpTime Codec RxCount RxLost RxPct RxJitter TxCount ...)."""
    stats: dict[str, tuple[int, int]] = {}
    for line in (await asterisk_cli("pjsip show channelstats")).splitlines():
        parts = line.split()
        for index, part in enumerate(parts):
            match = CHANNEL.match(part)
            if match and len(parts) > index + 7:
                stats[match.group(1)] = (int(parts[index + 3]), int(parts[index + 7]))
    return stats


async def calld_call(live: Live) -> dict[str, Any]:
    call = await live.call_from(USER)
    return await live.call_reaches(call["id"], "answered")


@pytest.mark.parametrize("transport", ["ws", "wss"])
async def test_the_softphone_registers_calls_a_phone_and_a_rest_hangup_ends_it(db: Database, transport: str) -> None:
    async with live_daemon(db, turn=TURN) as live, chromium(*browser_args()) as browser:
        page = await registered_phone(db, live, browser, transport)
        assert WEBSOCKETS[transport] in (await page.text_content("#phone-status") or "")
        # The UA was given that one WebSocket; Asterisk holds the registration it made there.
        assert f"{USER}/sip:" in await asterisk_cli(f"pjsip show contacts like {USER}")

        await live.answers("1002", "answer", "-rtp_echo")
        await call(page, "1002")
        await page.wait_for_selector("#phone-call-state[data-state=confirmed]")
        browser_side = await media_flows(page)
        assert browser_side["candidate"] == "host"

        # Asterisk counts both ways on both legs; the sipp leg's received packets are sipp's echo of
        # what it received from Asterisk, that is the browser's audio.
        async def both_legs() -> dict[str, tuple[int, int]] | None:
            seen = await channel_packets()
            counts = [seen.get(USER, (0, 0)), seen.get("1002", (0, 0))]
            return seen if all(rx >= 20 and tx >= 20 for rx, tx in counts) else None

        legs = await eventually(both_legs, 10, "RTP both ways on the browser's and the sipp phone's channels")
        print(f"{transport}: browser {browser_side}, asterisk channels (rx, tx) {legs}")

        logged = await calld_call(live)
        assert (logged["caller_number"], logged["recipient_number"]) == (USER, "1002")
        await page.wait_for_selector(f"#phone-controls[data-call='{logged['id']}'] button.hold")
        await screenshot(page, f"live-webrtc-{transport}-in-call")
        # Like any other call, it is on the live board (another tab: the Phone panel keeps the call).
        board = await browser.new_page(viewport=VIEWPORT)
        await board.goto(f"http://127.0.0.1:{live.daemon.port}/")
        await board.fill("#token", await mint_token(db, Scope.READ))
        await board.click("#sign-in-form button[type=submit]")
        await board.wait_for_selector(f"table.board tr[data-call='{logged['id']}'][data-status=answered]")

        await live.post(f"/api/call-logs/{logged['id']}/end_call/")
        await page.wait_for_selector("#phone-call-state[data-state=ended]")
        assert "by the other side" in (await page.text_content("#phone-call-state") or "")
        ended = await live.call_reaches(logged["id"], "ended")
        assert ended["answered_at"] is not None
        assert await live.phones_done() == [0]


async def test_relay_only_ice_goes_through_coturn_with_minted_credentials(db: Database) -> None:
    async with live_daemon(db, turn=TURN) as live, chromium(*browser_args()) as browser:
        page = await registered_phone(db, live, browser, "wss")
        await page.check("#phone-relay")
        await live.answers("1002", "answer", "-rtp_echo")
        await call(page, "1002")
        await page.wait_for_selector("#phone-call-state[data-state=confirmed]")
        relayed = await media_flows(page)
        assert relayed["candidate"] == "relay"
        assert await page.text_content("#phone-ice") == ""
        logged = await calld_call(live)
        # The panel's own Hang up button is calld's REST end_call (actions.js), as on the live board.
        await page.click(f"#phone-controls[data-call='{logged['id']}'] button.hangup")
        await page.wait_for_selector("#phone-call-state[data-state=ended]")
        await live.call_reaches(logged["id"], "ended")
        assert await live.phones_done() == [0]


async def test_expired_turn_credentials_are_refused_and_no_media_flows(db: Database) -> None:
    async with live_daemon(db, turn=TURN) as live, chromium(*browser_args()) as browser:
        # calld mints as if it were two hours ago: the credentials expired an hour and fifty minutes ago.
        live.daemon.services.sip_configurations.clock = lambda: utcnow() - timedelta(hours=2)
        page = await registered_phone(db, live, browser, "ws")
        await page.check("#phone-relay")
        await live.answers("1002", "answer", "-rtp_echo")
        await call(page, "1002")
        await page.wait_for_selector("#phone-ice[data-code='401']")
        await asyncio.sleep(3)
        seen = await packets(page)
        outcome = await page.get_attribute("#phone-call-state", "data-state")
        print(
            f"expired: {await page.text_content('#phone-ice')!r}, call {outcome}: "
            f"{await page.text_content('#phone-call-state')!r}, media {seen}"
        )
        assert seen["received"] == 0 and seen["candidate"] != "relay"
        await screenshot(page, "live-webrtc-expired-turn")
        if outcome not in ("ended", "failed"):
            await page.click("#phone-hangup")
        await page.wait_for_selector("#phone-call-state[data-state=ended], #phone-call-state[data-state=failed]")
        live.kill_phones()


async def test_the_softphone_answers_a_call_and_its_record_and_hold_buttons_go_through_calld(db: Database) -> None:
    async with live_daemon(db, turn=TURN) as live, chromium(*browser_args()) as browser:
        page = await registered_phone(db, live, browser, "wss")
        await live.dials("1001", USER, "wait_bye")
        await page.wait_for_selector("#phone-incoming:not([hidden])")
        assert "1001" in (await page.text_content("#phone-incoming") or "")
        await page.click("#phone-answer")
        await page.wait_for_selector("#phone-call-state[data-state=confirmed]")
        logged = await live.call_from("1001")
        answered = await live.call_reaches(logged["id"], "answered")
        assert answered["recipient_number"] == USER

        async def sending() -> dict[str, Any] | None:
            seen = await packets(page)
            return seen if seen["sent"] >= 20 else None

        await eventually(sending, 10, "the browser's microphone audio going out")
        controls = f"#phone-controls[data-call='{logged['id']}']"
        await page.click(f"{controls} button.record")  # POST /api/call-logs/{id}/start_recording/

        async def recording() -> dict[str, Any] | None:
            current: dict[str, Any] = await live.call(logged["id"])
            return current if current["is_recording"] else None

        await eventually(recording, 10, "calld to report the call recording (MixMonitor)")
        await page.wait_for_selector(f"{controls} button.record:text('Stop recording')")  # the panel follows calld
        await page.click(f"{controls} button.record")  # POST /api/call-logs/{id}/stop_recording/

        async def not_recording() -> dict[str, Any] | None:
            current: dict[str, Any] = await live.call(logged["id"])
            return None if current["is_recording"] else current

        await eventually(not_recording, 10, "calld to report the recording stopped")
        await page.click(f"{controls} button.hold")  # POST /api/call-logs/{id}/toggle_hold/
        held = await live.call_reaches(logged["id"], "on_hold")
        assert held["events"][-1]["source"] == "switch"  # Asterisk confirmed it (MusicOnHoldStart)
        await page.click(f"{controls} button.hangup")  # POST /api/call-logs/{id}/end_call/
        await page.wait_for_selector("#phone-call-state[data-state=ended]")
        await live.call_reaches(logged["id"], "ended")
        assert await live.phones_done() == [0]

"""Live: the web console's hold and hang-up buttons drive the lab Asterisk. Hold puts the far party
in MusicOnHold (the switch runs the application on that channel and says so with MusicOnHoldStart,
which is what moves the call to on_hold), resume bridges the two phones again, hang-up ends it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from calld.domain.scopes import Scope
from calld.storage.database import Database
from tests.asterisk.live import Live, asterisk_cli, event_types, live_daemon
from tests.console.browser import VIEWPORT, chromium, screenshot
from tests.support import fresh_database, mint_token

pytestmark = pytest.mark.asterisk


@pytest.fixture
async def db(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Database]:
    """The console reaches the switch through the API, which the other live tests run on both databases."""
    database = await fresh_database("sqlite", tmp_path, sqlite_template)
    try:
        yield database
    finally:
        await database.close()


async def music_on_hold_channels() -> list[str]:
    """Channels the lab Asterisk is running MusicOnHold on (``core show channels concise``)."""
    lines = (await asterisk_cli("core show channels concise")).splitlines()
    return [line.split("!")[0] for line in lines if line.count("!") > 5 and line.split("!")[5] == "MusicOnHold"]


async def test_the_consoles_hold_button_plays_music_on_hold_to_the_far_party(db: Database) -> None:
    async with live_daemon(db) as live, chromium() as browser:
        call = await talking(live)
        page = await browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(10_000)
        await page.goto(f"http://127.0.0.1:{live.daemon.port}/")
        await page.fill("#token", await mint_token(db, Scope.WRITE))
        await page.click("#sign-in-form button[type=submit]")
        row = f"table.board tr[data-call='{call['id']}']"
        await page.wait_for_selector(f"{row}[data-status=answered]")

        await page.click(f"{row} button.hold")
        held = await live.call_reaches(call["id"], "on_hold")
        assert held["events"][-1]["source"] == "switch"  # Asterisk's MusicOnHoldStart, not the request
        await page.wait_for_selector(f"{row}[data-status=on_hold]")
        assert "Hold: sent to the switch" in (await page.text_content(f"{row} .message") or "")
        # One leg, the far party, hears the music; calld's user waits in silence (calld.adapters.asterisk).
        [music] = await music_on_hold_channels()
        assert music.split("-")[0] in ("PJSIP/1001", "PJSIP/1002")
        await screenshot(page, "live-asterisk-on-hold")

        await asyncio.sleep(0.5)
        await page.click(f"{row} button.hold")  # Resume
        await live.call_reaches(call["id"], "answered")
        assert await music_on_hold_channels() == []

        await page.click(f"{row} button.hangup")
        done = await live.call_reaches(call["id"], "ended")
        await page.wait_for_selector(row, state="detached")
        assert event_types(done) == ["initiated", "ringing", "answered", "hold", "unhold", "ended"]
        assert await live.phones_done() == [0, 0]


async def talking(live: Live) -> dict[str, object]:
    """1001 calls 1002, who answers; 1001 waits for the switch to end the call."""
    await live.answers("1002", "answer")
    await live.dials("1001", "1002", "wait_bye")
    call = await live.call_from("1001")
    return await live.call_reaches(call["id"], "answered")

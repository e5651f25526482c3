"""The web console in a real headless Chromium against a real calld (real port, real SQLite file):
sign-in, the live board fed by signed SIP webhooks and its controls, the call log's filters, a
recording that plays, charts over seeded calls, hostile names shown as text, and what a read-only
token does not get. Each page is saved at 1280x800 in .artifacts/console/."""

from __future__ import annotations

import asyncio
import math
import random
import socket
import struct
import time
import uuid
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Browser, Page

from calld.cli.seed import seed_calls
from calld.config import RecordingsConfig
from calld.daemon import Daemon
from calld.domain.scopes import Scope
from calld.storage.calls import CallStore
from calld.storage.database import Database
from calld.storage.tokens import TokenStore
from tests.console.browser import PHONE, VIEWPORT, chromium, screenshot
from tests.support import (
    LOOPBACK_EGRESS,
    api_session,
    bearer,
    fresh_database,
    mint_token,
    running_daemon,
    webhook_signer,
)

CALLS = "/api/call-logs/"
XSS = "<img src=x onerror=alert(1)>"
# Generous bounds for a busy machine, except where the issue sets one (the live board: 1 s).
UI_TIMEOUT_MS = 10_000
LIVE_SECONDS = 1.0


@pytest.fixture
async def db(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Database]:
    """The console talks only to the API, which is tested on both databases: SQLite here."""
    database = await fresh_database("sqlite", tmp_path, sqlite_template)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
async def daemon(db: Database) -> AsyncIterator[Daemon]:
    # Webhook receivers and SIP probes of these tests are on loopback, which egress refuses by default.
    async with running_daemon(db, egress=LOOPBACK_EGRESS) as running:
        yield running


@asynccontextmanager
async def loopback_server(
    path: str, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> AsyncIterator[str]:
    """A small HTTP server on loopback answering ``path``; yields its URL."""
    app = web.Application()
    app.router.add_get(path, handler)
    app.router.add_post(path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}{path}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as running:
        yield running


@pytest.fixture
async def http(daemon: Daemon, db: Database) -> AsyncIterator[aiohttp.ClientSession]:
    """An admin API client that also signs the webhooks as their sources do."""
    async with aiohttp.ClientSession(
        base_url=base_url(daemon),
        headers=bearer(await mint_token(db, Scope.ADMIN)),
        middlewares=(webhook_signer(lambda: datetime.now(UTC)),),
    ) as session:
        yield session


def base_url(daemon: Daemon) -> str:
    return f"http://127.0.0.1:{daemon.port}"


class PageProblems:
    """What went wrong in the page: uncaught errors, console errors, dialogs (an injected alert)."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", self._console)

        async def dismiss(dialog: Any) -> None:
            self.dialogs.append(dialog.message)
            await dialog.dismiss()

        page.on("dialog", dismiss)

    def _console(self, message: Any) -> None:
        # The browser also logs each 4xx answer a test provokes on purpose; those are checked on the page.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)


async def open_console(
    browser: Browser,
    daemon: Daemon,
    token: str,
    viewport: dict[str, int] = VIEWPORT,
    before: Callable[[Page], Awaitable[None]] | None = None,
) -> Page:
    """A new page, signed in with ``token`` through the sign-in form; ``before`` runs on the page first
    (a route to set up before the console's first request)."""
    page = await browser.new_page(viewport=viewport)
    page.set_default_timeout(UI_TIMEOUT_MS)
    if before is not None:
        await before(page)
    await page.goto(base_url(daemon) + "/")
    await page.fill("#token", token)
    await page.click("#sign-in-form button[type=submit]")
    await page.wait_for_selector("#nav:not([hidden])")
    return page


async def show(page: Page, hash_path: str) -> None:
    await page.evaluate("path => { location.hash = path; }", hash_path)
    await page.wait_for_selector(f"#view[data-view='{hash_path.split('/')[1].split('?')[0]}']")


async def ok(resp: aiohttp.ClientResponse, status: int = 200) -> Any:
    body = await resp.json()
    assert resp.status == status, body
    return body


async def sip_event(http: aiohttp.ClientSession, event_type: str, sip_call_id: str, **extra: Any) -> str:
    body = {
        "event_type": event_type,
        "sip_call_id": sip_call_id,
        "caller_number": "+14155550100",
        "recipient_number": "1001",
        "timestamp": datetime.now(UTC).isoformat(),
        "delivery_id": uuid.uuid4().hex,
        **extra,
    }
    async with http.post("/api/webhooks/sip/", json=body) as resp:
        answer = await ok(resp)
    return str(answer["call"])


async def call_of(http: aiohttp.ClientSession, call_id: str) -> dict[str, Any]:
    async with http.get(f"{CALLS}{call_id}/") as resp:
        body: dict[str, Any] = await ok(resp)
    return body


async def until(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 10.0) -> None:
    """Wait for user-visible state (the API's answer), on a busy machine."""
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def status_becomes(http: aiohttp.ClientSession, call_id: str, status: str) -> None:
    async def reached() -> bool:
        return (await call_of(http, call_id))["status"] == status

    await until(reached, f"call {call_id} to be {status}")


def board_row(call_id: str) -> str:
    return f"table.board tr[data-call='{call_id}']"


# --- sign-in and the live board ---------------------------------------------------------------


async def test_sign_in_and_the_live_board_follows_webhook_calls_within_a_second(
    browser: Browser, daemon: Daemon, db: Database, http: aiohttp.ClientSession
) -> None:
    page = await open_console(browser, daemon, await mint_token(db, Scope.WRITE, name="supervisor"))
    problems = PageProblems(page)
    assert await page.text_content("#who") == "supervisor (write)"
    assert await page.evaluate("() => location.href.includes('calld_')") is False  # no token in the URL
    await page.wait_for_selector("[data-state=connected]")

    # Counted from calld's answer to the webhook: the delivery's own durable commit (an fsync) can stall on a
    # busy disk, which is not the board's delay.
    call_id = await sip_event(http, "call_initiated", "board-1@provider")
    started = time.monotonic()
    await page.wait_for_selector(board_row(call_id), timeout=LIVE_SECONDS * 1000)
    assert time.monotonic() - started < LIVE_SECONDS
    await sip_event(http, "call_answered", "board-1@provider")
    await page.wait_for_selector(f"{board_row(call_id)}[data-status=answered]")
    assert "talking" in (await page.text_content(f"{board_row(call_id)} .timer") or "")
    await screenshot(page, "live")

    await sip_event(http, "call_ended", "board-1@provider")
    started = time.monotonic()
    await page.wait_for_selector(board_row(call_id), state="detached", timeout=LIVE_SECONDS * 1000)
    assert time.monotonic() - started < LIVE_SECONDS
    assert problems.errors == []


async def test_the_write_controls_reach_the_api_and_show_its_answer(
    browser: Browser, daemon: Daemon, db: Database, http: aiohttp.ClientSession
) -> None:
    page = await open_console(browser, daemon, await mint_token(db, Scope.WRITE))
    problems = PageProblems(page)
    await page.wait_for_selector("[data-state=connected]")
    call_id = await sip_event(http, "call_initiated", "controls-1@provider")
    await sip_event(http, "call_answered", "controls-1@provider")
    row = board_row(call_id)
    await page.wait_for_selector(f"{row}[data-status=answered]")

    # No switch is configured: calld records each action itself, and the board follows its pushes.
    await page.click(f"{row} button.hold")
    await status_becomes(http, call_id, "on_hold")
    await page.wait_for_selector(f"{row}[data-status=on_hold]")
    assert "on hold" in (await page.text_content(f"{row} .timer") or "")
    assert "Hold: done" in (await page.text_content(f"{row} .message") or "")
    await page.click(f"{row} button.hold")  # now "Resume"
    await status_becomes(http, call_id, "answered")

    await page.click(f"{row} button.record")
    await page.wait_for_selector(f"{row} .rec")
    assert (await call_of(http, call_id))["is_recording"] is True
    await page.click(f"{row} button.record")  # now "Stop recording"
    await page.wait_for_selector(f"{row} .rec", state="detached")

    # A refused request is shown in words: 422 naming the field.
    await page.click(f"{row} button.transfer-button")
    await page.wait_for_selector(f"{row} .message.error")
    refusal = await page.text_content(f"{row} .message") or ""
    assert "422" in refusal and "transfer_to" in refusal, refusal
    await page.fill(f"{row} input.target", "1002")
    await page.click(f"{row} button.transfer-button")
    await status_becomes(http, call_id, "transferred")
    assert (await call_of(http, call_id))["transfer_target"] == "1002"

    await page.click(f"{row} button.hangup")
    await status_becomes(http, call_id, "ended")
    await page.wait_for_selector(row, state="detached", timeout=LIVE_SECONDS * 1000)

    # Place a call: it is stored (no switch here) and appears on the board.
    await page.fill("#place-to", "+14155550123")
    await page.fill("#place-from", "1001")
    await page.click("form[aria-label='Place a call'] button[type=submit]")
    await page.wait_for_selector("table.board tr[data-status=initiated]")
    async with http.get(CALLS, params={"direction": "outbound"}) as resp:
        [placed] = (await ok(resp))["results"]
    assert (placed["recipient_number"], placed["caller_number"]) == ("+14155550123", "1001")
    assert problems.errors == []


async def test_an_answer_older_than_a_calls_end_does_not_bring_it_back(
    browser: Browser, daemon: Daemon, db: Database, http: aiohttp.ClientSession
) -> None:
    """Against a live Asterisk the hang-up button's own reply (the call still answered: the switch
    confirms the hang-up a moment later) arrived after the push of the call's end and put the row
    back on the board for good. Here the board's first snapshot is the late answer: the server's
    real reply, taken while the call was live, is held until the call's end has been pushed."""
    call_id = await sip_event(http, "call_initiated", "late-1@provider")
    await sip_event(http, "call_answered", "late-1@provider")
    taken = asyncio.Event()
    release = asyncio.Event()

    async def hold_back(route: Any) -> None:
        response = await route.fetch()
        taken.set()
        await release.wait()
        await route.fulfill(response=response)

    async def route_snapshot(page: Page) -> None:
        await page.route(lambda url: "/api/call-logs/?" in url and "status=" in url, hold_back)

    page = await open_console(browser, daemon, await mint_token(db, Scope.WRITE), before=route_snapshot)
    problems = PageProblems(page)
    await asyncio.wait_for(taken.wait(), UI_TIMEOUT_MS / 1000)

    await sip_event(http, "call_ended", "late-1@provider")
    # Pushes arrive in order on one socket: once the next call shows, the end before it was seen.
    marker = await sip_event(http, "call_initiated", "late-2@provider")
    await page.wait_for_selector(board_row(marker))
    async with page.expect_event("requestfinished", lambda request: "status=" in request.url):
        release.set()
    await page.wait_for_timeout(500)  # the snapshot's rows are drawn in the task that read it
    assert await page.locator(board_row(call_id)).count() == 0
    assert await page.locator(board_row(marker)).count() == 1
    assert problems.errors == []


async def test_a_read_only_token_sees_no_control(
    browser: Browser, daemon: Daemon, db: Database, http: aiohttp.ClientSession
) -> None:
    call_id = await sip_event(http, "call_initiated", "read-only-1@provider")
    await sip_event(http, "call_answered", "read-only-1@provider")
    page = await open_console(browser, daemon, await mint_token(db, Scope.READ))
    problems = PageProblems(page)
    await page.wait_for_selector(board_row(call_id))
    assert await page.locator("#view button").count() == 0
    assert await page.locator("form[aria-label='Place a call']").count() == 0
    assert await page.locator("#nav a[data-view=sip]").is_hidden()
    assert await page.locator("#nav a[data-view=webhooks]").is_hidden()

    await show(page, f"#/calls/{call_id}")
    await page.wait_for_selector("#view h2:text('Timeline')")
    assert await page.locator("#view button").count() == 0
    assert await page.locator("#view textarea").count() == 0
    await show(page, "#/clients")
    await page.wait_for_selector("table.clients")
    assert await page.locator("#view details").count() == 0  # no "New client"
    await page.evaluate("() => { location.hash = '#/sip'; }")  # not for this scope: the live board instead
    await page.wait_for_selector("#view[data-view=live]")

    await page.click("#sign-out")
    await page.wait_for_selector("#sign-in:not([hidden])")
    assert await page.evaluate("() => sessionStorage.length") == 0
    assert problems.errors == []


async def test_a_wrong_or_revoked_token_is_refused_and_kept_nowhere(
    browser: Browser, daemon: Daemon, db: Database
) -> None:
    page = await browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(UI_TIMEOUT_MS)
    await page.goto(base_url(daemon) + "/")
    await page.wait_for_selector("#sign-in:not([hidden])")
    await screenshot(page, "sign-in")
    await page.fill("#token", "calld_notakey_notasecret")
    await page.click("#sign-in-form button[type=submit]")
    await page.wait_for_function("() => document.querySelector('#sign-in-message').textContent.includes('unknown')")
    assert await page.evaluate("() => sessionStorage.length") == 0
    assert await page.locator("#nav").is_hidden()

    # Signed in, then the token is revoked: the next answer (401) brings the sign-in back.
    token = await mint_token(db, Scope.READ, name="revoked-soon")
    await page.fill("#token", token)
    await page.click("#sign-in-form button[type=submit]")
    await page.wait_for_selector("#nav:not([hidden])")
    assert await page.evaluate("() => sessionStorage.length") == 1
    async with db.write() as session:
        assert await TokenStore().revoke(session, "revoked-soon")
    await show(page, "#/calls")
    await page.wait_for_selector("#sign-in:not([hidden])")
    assert await page.evaluate("() => sessionStorage.length") == 0


# --- the call log ------------------------------------------------------------------------------


async def test_filters_narrow_the_call_log_and_sorting_pages_it(
    browser: Browser, daemon: Daemon, db: Database, http: aiohttp.ClientSession
) -> None:
    for n in range(3):
        body = {"caller_number": f"+1415555010{n}", "recipient_number": "1001", "sip_call_id": f"log-{n}@pbx"}
        async with http.post(f"{CALLS}log_incoming_call/", json=body) as resp:
            await ok(resp, 201)
    for n in range(2):
        body = {"direction": "outbound", "caller_number": "1002", "recipient_number": f"+1212555014{n}"}
        async with http.post(CALLS, json=body) as resp:
            await ok(resp, 201)

    page = await open_console(browser, daemon, await mint_token(db, Scope.READ))
    problems = PageProblems(page)
    await show(page, "#/calls")
    await page.wait_for_selector("table.calls")
    assert await page.locator("table.calls tbody tr").count() == 5
    await screenshot(page, "calls")

    await page.check("fieldset[data-filter=direction] input[value=outbound]")
    await page.click("form.filters button[type=submit]")
    await page.wait_for_function("() => document.querySelectorAll('table.calls tbody tr').length === 2")
    assert "direction=outbound" in await page.evaluate("() => location.hash")
    directions = await page.locator("table.calls tbody td:nth-child(2)").all_text_contents()
    assert directions == ["outbound", "outbound"]

    await page.fill("form.filters input[name=number]", "+12125550141")
    await page.click("form.filters button[type=submit]")
    await page.wait_for_function("() => document.querySelectorAll('table.calls tbody tr').length === 1")
    assert await page.locator("table.calls tbody td:nth-child(5)").all_text_contents() == ["+12125550141"]

    await show(page, "#/calls?limit=2&ordering=started_at")
    await page.wait_for_selector(".pager a[rel=next]")
    assert "1\u20132 of 5" in (await page.text_content(".pager") or "")
    assert await page.get_attribute("th[aria-sort=ascending]", "aria-sort") == "ascending"
    await page.click(".pager a[rel=next]")
    await page.wait_for_function("() => document.querySelector('.pager')?.textContent.includes('3\u20134 of 5')")
    assert problems.errors == []


def write_wav(path: Path, seconds: float = 3.0, rate: int = 8000) -> Path:
    """A real PCM WAV file: a 440 Hz tone."""
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * n / rate))) for n in range(int(seconds * rate))
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return path


@pytest.fixture
async def recording_server(tmp_path: Path) -> AsyncIterator[tuple[str, list[str]]]:
    """A recording system's file server on loopback (Range requests answered by aiohttp's FileResponse);
    yields its URL and the Range headers it was sent."""
    wav = write_wav(tmp_path / "call.wav")
    ranges: list[str] = []

    async def serve(request: web.Request) -> web.StreamResponse:
        ranges.append(request.headers.get("Range", ""))
        return web.FileResponse(wav)

    async with loopback_server("/recordings/call.wav", serve) as url:
        yield url, ranges


async def test_call_detail_plays_its_recording_and_edits_notes(
    browser: Browser, daemon: Daemon, db: Database, http: aiohttp.ClientSession, recording_server: tuple[str, list[str]]
) -> None:
    file_url, ranges = recording_server
    call_id = await sip_event(http, "call_initiated", "recorded-1@provider")
    for event in ("call_answered", "call_ended"):
        await sip_event(http, event, "recorded-1@provider", metadata={"reason": "caller hung up"})
    done = {"call_id": call_id, "status": "completed", "file_url": file_url, "format": "wav", "duration": 3}
    async with http.post("/api/webhooks/recording/", json=done) as resp:
        await ok(resp)

    page = await open_console(browser, daemon, await mint_token(db, Scope.WRITE))
    problems = PageProblems(page)
    await show(page, f"#/calls/{call_id}")
    await page.wait_for_selector("#view audio")
    assert await page.get_attribute("#view audio", "src") == file_url
    timeline = await page.locator("ol.timeline li strong").all_text_contents()
    assert timeline == ["initiated", "answered", "ended"]
    assert "caller hung up" in (await page.text_content("#view") or "")

    await page.evaluate("() => document.querySelector('#view audio').play()")
    await page.wait_for_function("() => document.querySelector('#view audio').currentTime > 0.3")
    await page.evaluate("() => document.querySelector('#view audio').pause()")
    assert any(r.startswith("bytes=") for r in ranges), ranges  # the browser streams it with Range
    await screenshot(page, "call-detail")

    await page.fill("textarea[name=notes]", "Asked for a callback")
    await page.fill("input[name=call_quality_score]", "4.5")
    await page.click("form.notes-form button[type=submit]")
    await page.wait_for_selector("form.notes-form .message.ok")
    stored = await call_of(http, call_id)
    assert (stored["notes"], stored["call_quality_score"]) == ("Asked for a callback", 4.5)
    assert problems.errors == []


async def test_a_recording_on_calld_s_host_plays_through_its_media_endpoint(
    browser: Browser, db: Database, tmp_path: Path
) -> None:
    """No file_url, only a file in the recording directory: the page fetches it with its token from
    the media endpoint and plays it; one whose file is not on this host says so."""
    rec_dir = tmp_path / "recordings"
    rec_dir.mkdir()
    wav = write_wav(rec_dir / "here.wav")
    settings = RecordingsConfig(directories=(str(rec_dir),))
    async with running_daemon(db, egress=LOOPBACK_EGRESS, recordings=settings) as daemon:
        async with aiohttp.ClientSession(
            base_url=base_url(daemon),
            headers=bearer(await mint_token(db, Scope.ADMIN)),
            middlewares=(webhook_signer(lambda: datetime.now(UTC)),),
        ) as http:
            calls = {}
            for name, path in (("here", str(wav)), ("elsewhere", "/srv/other-host/gone.wav")):
                calls[name] = await sip_event(http, "call_initiated", f"{name}@provider")
                done = {"call_id": calls[name], "status": "completed", "local_path": path, "format": "wav"}
                async with http.post("/api/webhooks/recording/", json=done) as resp:
                    await ok(resp)
        page = await open_console(browser, daemon, await mint_token(db, Scope.READ))
        problems = PageProblems(page)
        await show(page, f"#/calls/{calls['here']}")
        await page.wait_for_selector("#view audio[src^='blob:']")
        await page.evaluate("() => document.querySelector('#view audio').play()")
        await page.wait_for_function("() => document.querySelector('#view audio').currentTime > 0.3")
        await page.evaluate("() => document.querySelector('#view audio').pause()")
        await show(page, f"#/calls/{calls['elsewhere']}")
        await page.wait_for_selector("#view .recording p.muted")
        assert "not on this calld's host (404)" in (await page.text_content("#view .recording") or "")
        assert problems.errors == []


# --- statistics ---------------------------------------------------------------------------------


async def last_30_days(page: Page) -> tuple[str, str, str]:
    """The browser's time zone and the dates the statistics page asks its 30 days by: from 29 days ago to
    tomorrow (local midnights)."""
    zone, since, until = await page.evaluate(
        """() => {
            const day = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-`
                + String(d.getDate()).padStart(2, "0");
            const now = new Date();
            return [Intl.DateTimeFormat().resolvedOptions().timeZone,
                day(new Date(now.getFullYear(), now.getMonth(), now.getDate() - 29)),
                day(new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1))];
        }"""
    )
    return str(zone), str(since), str(until)


async def test_charts_render_with_seeded_calls(browser: Browser, daemon: Daemon, db: Database) -> None:
    await seed_calls(db, CallStore(), 150, random.Random(19), datetime.now(UTC))
    page = await open_console(browser, daemon, await mint_token(db, Scope.READ))
    problems = PageProblems(page)
    await show(page, "#/stats")
    await page.wait_for_selector("svg.chart rect.bar")
    async with api_session(daemon, Scope.READ) as http:
        for period in ("today", "week", "month"):
            async with http.get(f"{CALLS}statistics/", params={"period": period}) as resp:
                expected = await ok(resp)
            shown = await page.text_content(f".stat[data-period={period}] .big")
            assert shown == str(expected["total_calls"])
    assert await page.locator("svg.chart").count() == 6
    assert await page.locator("svg.chart path.line").count() >= 4
    drawn = await page.evaluate(
        "() => [...document.querySelectorAll('svg.chart')].slice(3, 4)"
        ".map(svg => [...svg.querySelectorAll('rect.bar')].length)[0]"
    )
    assert drawn > 5  # per-day bars of the last 30 days
    # The charts come from the statistics report over the same 30 days, in the browser's zone.
    zone, since, until = await last_30_days(page)
    async with api_session(daemon, Scope.READ) as http:
        query = {"from": since, "until": until, "interval": "day", "timezone": zone}
        async with http.get(f"{CALLS}statistics/", params=query) as resp:
            report = await ok(resp)
    assert report["totals"]["total_calls"] > 0
    assert (await page.text_content("#view .message") or "").startswith(
        f"{report['totals']['total_calls']} calls since"
    )
    await screenshot(page, "stats")
    assert problems.errors == []


async def test_a_report_by_day_and_direction_shows_and_downloads_what_the_api_answers(
    browser: Browser, daemon: Daemon, db: Database
) -> None:
    await seed_calls(db, CallStore(), 120, random.Random(23), datetime.now(UTC))
    page = await open_console(browser, daemon, await mint_token(db, Scope.READ))
    problems = PageProblems(page)
    zone, since, until = await last_30_days(page)
    await show(page, "#/stats")
    await page.fill("form.report-form input[name=from]", since)
    await page.fill("form.report-form input[name=until]", until)
    await page.select_option("form.report-form select[name=interval]", "day")
    await page.select_option("form.report-form select[name=group_by]", "direction")
    await page.click("form.report-form button[type=submit]")
    await page.wait_for_selector("table.report-table tfoot td")
    query = {"from": since, "until": until, "interval": "day", "group_by": "direction", "timezone": zone}
    async with api_session(daemon, Scope.READ) as http:
        async with http.get(f"{CALLS}statistics/", params={**query, "service_level_seconds": "20"}) as resp:
            report = await ok(resp)
        async with http.get(f"{CALLS}statistics/", params={**query, "format": "csv"}) as resp:
            csv_text = await resp.text()
    assert report["totals"]["total_calls"] > 0
    totals = await page.locator("table.report-table tfoot td").all_text_contents()
    assert totals[:5] == [
        "Total",
        "",
        str(report["totals"]["total_calls"]),
        str(report["totals"]["answered_calls"]),
        str(report["totals"]["missed_calls"]),
    ]
    assert await page.locator("table.report-table tbody tr").count() == len(report["series"])
    assert "from=" in page.url and "group_by=direction" in page.url  # the report is in the page's address
    async with page.expect_download() as download_info:
        await page.click("button.csv")
    download = await download_info.value
    assert download.suggested_filename == "calld-report.csv"
    assert await asyncio.to_thread(Path(await download.path()).read_bytes) == csv_text.encode()
    await screenshot(page, "report")
    assert problems.errors == []


async def test_the_call_log_downloads_its_selection_as_csv(browser: Browser, daemon: Daemon, db: Database) -> None:
    await seed_calls(db, CallStore(), 40, random.Random(29), datetime.now(UTC))
    page = await open_console(browser, daemon, await mint_token(db, Scope.READ))
    problems = PageProblems(page)
    await show(page, "#/calls?status=ended")
    await page.wait_for_selector("button.csv")
    async with page.expect_download() as download_info:
        await page.click("button.csv")
    download = await download_info.value
    async with (
        api_session(daemon, Scope.READ) as http,
        http.get(f"{CALLS}export/", params={"status": "ended", "format": "csv"}) as resp,
    ):
        expected = await resp.text()
    assert await asyncio.to_thread(Path(await download.path()).read_bytes) == expected.encode()
    assert expected.count("\r\n") > 1
    assert problems.errors == []


# --- hostile names, clients, admin pages ----------------------------------------------------------


async def test_a_hostile_client_name_renders_as_text(
    browser: Browser, daemon: Daemon, db: Database, http: aiohttp.ClientSession
) -> None:
    async with http.post("/api/clients/", json={"name": XSS, "phone_numbers": ["+14155550177"]}) as resp:
        client = await ok(resp, 201)
    body = {"direction": "inbound", "caller_number": "+14155550177", "recipient_number": "1001", "client": client["id"]}
    async with http.post(CALLS, json=body) as resp:
        await ok(resp, 201)

    page = await open_console(browser, daemon, await mint_token(db, Scope.WRITE))
    problems = PageProblems(page)
    await show(page, "#/clients")
    await page.wait_for_selector("a.client-name")
    assert await page.text_content("a.client-name") == XSS
    await screenshot(page, "clients")
    await show(page, "#/calls")
    await page.wait_for_selector("table.calls tbody tr")
    assert await page.text_content("table.calls tbody td:nth-child(6)") == XSS
    await show(page, f"#/clients/{client['id']}")
    await page.wait_for_selector("h1.client-name")
    assert await page.text_content("h1.client-name") == XSS
    await page.wait_for_selector("#view table.calls tbody tr")
    assert await page.locator("img").count() == 0
    assert problems.dialogs == []

    # Edit the client through the page.
    await page.fill("form[aria-label='Edit client'] input[name=company]", "Tailspin Toys")
    await page.click("form[aria-label='Edit client'] button[type=submit]")
    await page.wait_for_selector("form[aria-label='Edit client'] .message.ok")
    async with http.get(f"/api/clients/{client['id']}/") as resp:
        assert (await ok(resp))["company"] == "Tailspin Toys"
    assert problems.errors == []


async def test_admin_pages_configure_sip_and_webhooks(
    browser: Browser, daemon: Daemon, db: Database, http: aiohttp.ClientSession
) -> None:
    page = await open_console(browser, daemon, await mint_token(db, Scope.ADMIN))
    problems = PageProblems(page)
    await show(page, "#/sip")
    await page.click("details.card summary")
    form = "form[aria-label='New SIP configuration']"
    await page.fill(f"{form} input[name=name]", "office")
    await page.fill(f"{form} input[name=server]", "127.0.0.1")
    await page.fill(f"{form} input[name=port]", "9")
    await page.fill(f"{form} input[name=username]", "1001")
    await page.click(f"{form} button[type=submit]")
    await page.wait_for_selector("table.sip tbody tr")
    await page.click("table.sip tbody tr button:text('Test connection')")
    await page.wait_for_function(
        "() => /reachable/i.test(document.querySelector('table.sip tbody tr .message')?.textContent)",
        timeout=30_000,  # the probe waits up to sip_probe.timeout_seconds for an answer
    )
    await page.click("table.sip tbody tr button:text('WebRTC config')")
    await page.wait_for_selector("table.sip tbody tr .message.error")  # 409: no WebSocket URL, in words
    assert "websocket_url" in (await page.text_content("table.sip tbody tr .message") or "")
    await screenshot(page, "sip")

    async def unavailable(request: web.Request) -> web.Response:
        return web.json_response({"error": "down for maintenance"}, status=503)

    async with loopback_server("/hooks/calld", unavailable) as receiver:
        await subscribe_and_redeliver(page, http, receiver)
    await screenshot(page, "webhooks")
    assert problems.errors == []


async def subscribe_and_redeliver(page: Page, http: aiohttp.ClientSession, receiver: str) -> None:
    await show(page, "#/webhooks")
    await page.click("details.card summary")
    form = "form[aria-label='New webhook subscription']"
    await page.fill(f"{form} input[name=url]", receiver)
    await page.check(f"{form} input[value=initiated]")
    await page.click(f"{form} button[type=submit]")
    await page.wait_for_selector(f"{form} .secret:not([hidden])")
    await page.wait_for_selector("table.subscriptions tbody tr")
    await sip_event(http, "call_initiated", "webhook-1@provider")  # makes a delivery

    async def delivery_tried() -> bool:
        await page.click("table.subscriptions tbody tr button:text('Deliveries')")
        await asyncio.sleep(0.2)
        cells = await page.locator("table.deliveries tbody tr td").all_text_contents()
        return "503" in cells and "HTTP 503" in cells

    await until(delivery_tried, "the delivery to be tried and shown")
    await page.click("table.deliveries tbody tr button:text('Redeliver')")
    await page.wait_for_function(
        "() => document.querySelector('.deliveries-area .message')?.textContent.includes('queued again')"
    )


async def test_the_console_is_usable_on_a_phone_sized_screen(browser: Browser, daemon: Daemon, db: Database) -> None:
    page = await open_console(browser, daemon, await mint_token(db, Scope.WRITE), viewport=PHONE)
    await page.wait_for_selector("[data-state=connected]")
    width = await page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways ({width} px)"
    # Keyboard: the sign-out button and the navigation are reachable with Tab.
    focused = set()
    for _ in range(12):
        await page.keyboard.press("Tab")
        focused.add(await page.evaluate("() => document.activeElement.id || document.activeElement.textContent"))
    assert {"sign-out", "Live", "Call log"} <= focused
    await screenshot(page, "live-phone")


# --- the Phone panel (the live suite registers and calls: tests/asterisk/test_live_webrtc.py) ----------


async def test_the_phone_panel_gets_the_password_only_for_the_lines_softphone_token(
    browser: Browser, daemon: Daemon, db: Database, http: aiohttp.ClientSession
) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: the WebSocket is refused
    port = closed.getsockname()[1]
    body = {
        "name": "desk",
        "server": "127.0.0.1",
        "username": "2001",
        "secret": "line-secret-2001",
        "transport": "ws",
        "websocket_url": f"ws://127.0.0.1:{port}/ws",
    }
    async with http.post("/api/sip-configurations/", json=body) as resp:
        line = (await ok(resp, 201))["id"]
    try:
        reader = await open_console(browser, daemon, await mint_token(db, Scope.READ))
        problems = PageProblems(reader)
        await show(reader, "#/phone")
        assert await reader.input_value("#phone-line") == ""
        await reader.fill("#phone-line", line)
        await reader.click("#phone-register")
        await reader.wait_for_selector("#phone-status[data-state=failed]")
        assert "given no SIP password" in (await reader.text_content("#phone-status") or "")
        assert await reader.evaluate("() => window.JsSIP.version") == "3.13.8"  # loaded from /console/ under the CSP

        phone = await open_console(
            browser, daemon, await mint_token(db, Scope.SOFTPHONE, sip_configuration_id=uuid.UUID(line))
        )
        await show(phone, "#/phone")
        assert await phone.input_value("#phone-line") == line
        await phone.click("#phone-register")  # the password comes from calld; the PBX is not there
        await phone.wait_for_selector("#phone-status[data-state=failed]")
        assert f"Could not reach ws://127.0.0.1:{port}/ws" in (await phone.text_content("#phone-status") or "")
        await screenshot(phone, "phone-unreachable")
        assert problems.errors == [] and problems.dialogs == []
    finally:
        closed.close()

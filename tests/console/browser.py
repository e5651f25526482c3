"""Driving Debian's Chromium (``/usr/bin/chromium``) with Playwright, which never downloads a browser
of its own here: where the browser is missing the browser tests skip, except in CI (``CI=true``),
where ``.ci/run`` installs it and its absence is a failure."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

CHROMIUM = os.environ.get("CALLD_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / ".artifacts" / "console"
VIEWPORT = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def chromium_path() -> str:
    """The browser's path; skips the test without one (fails in CI, which must have it)."""
    found = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")
    if found is None:
        message = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}: CI must run the browser tests (.ci/run installs it)")
        pytest.skip(message)
    return found


@asynccontextmanager
async def chromium(*extra_args: str) -> AsyncIterator[Browser]:
    """A headless Chromium (``extra_args``: more command-line switches); closed after."""
    path = chromium_path()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=path,
            headless=True,
            # Root in CI and in containers: Chromium's sandbox needs user namespaces it may not have.
            args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required", "--mute-audio", *extra_args],
        )
        try:
            yield browser
        finally:
            await browser.close()


async def screenshot(page: Page, name: str) -> Path:
    """Save the page as .artifacts/console/<name>.png (CI keeps the folder; git ignores it)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=False)
    return path

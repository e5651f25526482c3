"""The console's files as calld serves them (headers, negotiation at ``/``, caching, compression),
``GET /api/auth/whoami/``, and properties of the shipped files: no HTML built from strings, no
inline script or style, nothing fetched from another origin, the statuses kept equal to calld's,
and the first load within its weight budget."""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Awaitable, Callable

import pytest

from calld.domain.scopes import Scope
from calld.domain.vocabulary import TERMINAL_STATUSES, CallStatus
from calld.http.app import create_app
from calld.http.console import ASSETS_DIR, PAGE, VENDORED, load_assets
from calld.service.wiring import Services
from tests.conftest import AppClient
from tests.support import bearer, mint_token

WEIGHT_BUDGET_BYTES = 250 * 1024


@pytest.fixture
async def anonymous(services: Services, aiohttp_client: Callable[..., Awaitable[AppClient]]) -> AppClient:
    return await aiohttp_client(create_app(services))


def shipped(suffix: str) -> dict[str, str]:
    """calld's own files (vendored ones are checked against their record instead)."""
    return {
        p.name: p.read_text() for p in sorted(ASSETS_DIR.iterdir()) if p.suffix == suffix and p.name not in VENDORED
    }


def test_vendored_files_are_those_their_record_names() -> None:
    """Each vendored file's version, licence and digest are recorded beside it (jssip-VENDORED.md)."""
    record = (ASSETS_DIR / "jssip-VENDORED.md").read_text()
    for name in VENDORED:
        body = (ASSETS_DIR / name).read_bytes()
        assert f"`{name}`" in record and hashlib.sha256(body).hexdigest() in record
        assert b'version:"3.13.8"' in body and "3.13.8" in name
    assert "MIT" in record and "Permission is hereby granted" in (ASSETS_DIR / "jssip-LICENSE.md").read_text()


def check_security_headers(headers: object) -> None:
    csp = headers["Content-Security-Policy"]  # type: ignore[index]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"  # type: ignore[index]
    assert headers["Referrer-Policy"] == "no-referrer"  # type: ignore[index]


async def test_a_browser_at_the_root_gets_the_console_and_curl_gets_the_index(anonymous: AppClient) -> None:
    resp = await anonymous.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert resp.status == 200 and resp.content_type == "text/html"
    page = await resp.text()
    assert '<script type="module" src="/console/app.js">' in page and 'href="/api/docs"' in page
    check_security_headers(resp.headers)
    for accept in ("*/*", "application/json", "text/html;q=0"):
        resp = await anonymous.get("/", headers={"Accept": accept})
        assert resp.content_type == "application/json", accept
        assert (await resp.json())["docs"] == "/api/docs"


async def test_every_file_is_served_with_the_security_headers_and_revalidated(anonymous: AppClient) -> None:
    names = sorted(load_assets())
    assert {"index.html", "app.js", "app.css"} <= set(names)
    for name in names:
        resp = await anonymous.get(f"/console/{name}")
        assert resp.status == 200, name
        check_security_headers(resp.headers)
        assert resp.headers["Cache-Control"] == "no-cache"
        assert await resp.read() == (ASSETS_DIR / name).read_bytes()
        again = await anonymous.get(f"/console/{name}", headers={"If-None-Match": resp.headers["ETag"]})
        assert again.status == 304 and await again.read() == b""
    js = await anonymous.get("/console/app.js")
    assert js.headers["Content-Type"] == "text/javascript; charset=utf-8"
    squeezed = await anonymous.get("/console/calls.js", headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    assert squeezed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(await squeezed.read()) == (ASSETS_DIR / "calls.js").read_bytes()


@pytest.mark.parametrize("name", ["missing.js", "index.html%00", ".gitignore", "app.js.map", "console.py"])
async def test_only_shipped_files_exist(anonymous: AppClient, name: str) -> None:
    resp = await anonymous.get(f"/console/{name}")
    assert resp.status == 404
    assert (await resp.json())["error"] == "not found"


async def test_whoami_tells_the_tokens_name_and_scope(anonymous: AppClient, services: Services) -> None:
    assert (await anonymous.get("/api/auth/whoami/")).status == 401
    for scope in Scope:
        token = await mint_token(services.db, scope, name=f"desk-{scope}")
        resp = await anonymous.get("/api/auth/whoami/", headers=bearer(token))
        body = await resp.json()
        assert resp.status == 200
        assert (body["name"], body["scope"]) == (f"desk-{scope}", scope.value)
        assert token not in str(body)


def test_the_pages_statuses_are_calld_s() -> None:
    source = (ASSETS_DIR / "vocabulary.js").read_text()

    def listed(name: str) -> set[str]:
        match = re.search(rf"export const {name} = \[([^\]]*)\]", source)
        assert match is not None, name
        return set(re.findall(r'"([a-z_]+)"', match.group(1)))

    assert listed("TERMINAL_STATUSES") == {s.value for s in TERMINAL_STATUSES}
    assert listed("LIVE_STATUSES") == {s.value for s in CallStatus} - {s.value for s in TERMINAL_STATUSES}


def test_no_html_is_built_from_strings_and_nothing_comes_from_elsewhere() -> None:
    for name, source in shipped(".js").items():
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in source, f"{name} uses {sink}"
        # The SVG namespace is a name and a placeholder an example, not fetches.
        origins = re.findall(r"""(?<!placeholder: )["'`]https?://(?!www\.w3\.org/2000/svg")""", source)
        assert origins == [], f"{name} names another origin"
        assert "localStorage" not in source, f"{name}: the token is kept for the session only"
    page = (ASSETS_DIR / PAGE).read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)", page), "inline script"
    assert "<style" not in page and " style=" not in page and " on" + "click=" not in page
    assert not re.search(r"""(src|href)="https?://""", page)


def test_the_first_load_is_within_250_kb_compressed() -> None:
    """Everything the page loads on first open (it imports every module at start) plus the page."""
    total = sum(len(gzip.compress(asset.body, 9)) for asset in load_assets().values())
    print(f"console first load: {total} bytes gzip-compressed")
    assert total < WEIGHT_BUDGET_BYTES

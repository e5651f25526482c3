"""The web console: static files shipped in the package (``calld/http/console_static/``), served at
``/`` (to a browser asking for HTML) and ``/console/{file}``.

The files are read once, when the routes are added, into a fixed table: only those names are
served (no path from a request ever reaches the file system). Every answer carries the console's
security headers: a Content-Security-Policy that allows no inline script or style and nothing from
another origin but recordings (``media-src``: a recording's ``file_url`` may live on a recording
server; ``blob:`` plays a file on calld's host, fetched with the token from its media endpoint) and
WebSockets (the Phone panel's SIP user agent reaches the PBX), no framing, no MIME
sniffing, no referrer. The console signs in with an API token kept in
``sessionStorage`` and talks only to the public API (``/api/...``, ``/api/ws``).
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from calld.http.errors import ApiError
from calld.http.routing import DOCS, Op, Routes

ASSETS_DIR = Path(__file__).with_name("console_static")
ASSET_PATH = "/console/{file}"
PAGE = "index.html"
# Third-party files shipped as they were built (their version, licence and digest: jssip-VENDORED.md).
VENDORED = frozenset({"jssip-3.13.8.min.js"})

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        # The Phone panel's SIP user agent talks to the PBX's WebSocket (webrtc_config's ws_servers),
        # which is another origin; nothing else may be fetched from elsewhere.
        "connect-src 'self' ws: wss:",
        "media-src 'self' blob: http: https:",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    # Assets change with calld's version; revalidating with the ETag costs a 304.
    "Cache-Control": "no-cache",
}
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True, slots=True)
class Asset:
    """One shipped file, held in memory."""

    name: str
    body: bytes
    content_type: str
    etag: str


def load_assets(directory: Path = ASSETS_DIR) -> dict[str, Asset]:
    """Every file of ``directory`` (not its subdirectories), by name."""
    assets: dict[str, Asset] = {}
    for path in sorted(directory.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        body = path.read_bytes()
        kind = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        assets[path.name] = Asset(path.name, body, kind, etag)
    return assets


CONSOLE_ASSETS = web.AppKey("console_assets", dict[str, Asset])


def wants_page(request: web.Request) -> bool:
    """Whether the client at ``/`` asked for HTML (a browser) rather than JSON (curl, scripts)."""
    for accepted in request.headers.getall("Accept", []):
        for item in accepted.split(","):
            kind, _, params = item.partition(";")
            refused = params.replace(" ", "").lower() in ("q=0", "q=0.0")
            if kind.strip().lower() in ("text/html", "application/xhtml+xml") and not refused:
                return True
    return False


def _respond(request: web.Request, asset: Asset) -> web.Response:
    headers = {**SECURITY_HEADERS, "ETag": asset.etag}
    if asset.etag in {tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")}:
        return web.Response(status=304, headers=headers)
    response = web.Response(body=asset.body, headers={**headers, "Content-Type": asset.content_type})
    if asset.content_type.startswith("text/") or asset.content_type.endswith("+xml"):
        response.enable_compression()
    return response


def page(request: web.Request) -> web.Response:
    """The console's page (``GET /`` from a browser)."""
    return _respond(request, request.app[CONSOLE_ASSETS][PAGE])


routes = Routes()


@routes.get(
    ASSET_PATH,
    Op(
        DOCS,
        "One of the web console's static files",
        {200: None},
        public=True,
        description="The page at `/` loads them; only the files shipped in the package exist.",
    ),
)
async def asset(request: web.Request) -> web.Response:
    """GET /console/{file} — one of the console's files."""
    name = request.match_info["file"]
    found = request.app[CONSOLE_ASSETS].get(name)
    if found is None:
        raise ApiError(404, "not found", {"file": f"the console has no file named {name!r}"})
    return _respond(request, found)


def load_files(app: web.Application, directory: Path = ASSETS_DIR) -> None:
    """Read the console's files into ``app`` (``routes`` serves them; ``/`` is routed by ``calld.http.openapi``)."""
    app[CONSOLE_ASSETS] = load_assets(directory)

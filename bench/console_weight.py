"""The web console's first load: what a browser downloads when it opens ``/`` (the page, its
stylesheet, icon and every ES module, which ``app.js`` imports at start; vendored JsSIP, which the Phone
panel loads when it opens, is shown apart), as calld serves it over
real HTTP (gzip-compressed where the browser accepts it) and uncompressed. Baseline in the same
run: the ``/api/docs`` page, also compressed. Target (issue 19): < 250 KB compressed.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from calld.config import Config
from calld.http.app import create_app
from calld.http.console import VENDORED, load_assets
from calld.logging import configure_logging
from calld.service.wiring import Services
from calld.storage.calls import CallStore
from calld.storage.database import Database

BUDGET = 250 * 1024
BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8", "Accept-Encoding": "gzip, deflate"}


async def fetch(session: aiohttp.ClientSession, url: str) -> tuple[int, int]:
    """(bytes on the wire, bytes uncompressed) of one GET, as a browser asks for it."""
    async with session.get(url, headers=BROWSER, auto_decompress=False) as resp:
        wire = await resp.read()
    async with session.get(url, headers={"Accept": BROWSER["Accept"]}) as resp:
        plain = await resp.read()
    return len(wire), len(plain)


def referenced(page: str) -> set[str]:
    return set(re.findall(r'(?:src|href)="(/console/[^"]+)"', page))


async def main() -> None:
    configure_logging("warning", "json")  # request lines on stderr would drown the table
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        await db.migrate()
        server = TestServer(create_app(Services(config=Config(), db=db, calls=CallStore())), host="127.0.0.1")
        await server.start_server()
        try:
            base = str(server.make_url("")).rstrip("/")
            async with aiohttp.ClientSession() as session:
                async with session.get(base + "/", headers=BROWSER) as resp:
                    page = await resp.text()
                # The page names the stylesheet, icon and entry module; the entry imports every module.
                modules = {f"/console/{n}" for n in load_assets() if n.endswith(".js") and n not in VENDORED}
                urls = ["/", *sorted(referenced(page) | modules)]
                rows = [(url, *await fetch(session, base + url)) for url in urls]
                # The Phone panel loads JsSIP when it opens, not at first load.
                lazy = [(f"/console/{n}", *await fetch(session, f"{base}/console/{n}")) for n in sorted(VENDORED)]
                docs = await fetch(session, base + "/api/docs")
        finally:
            await server.close()
            await db.close()
    print(f"{'file':32} {'on the wire':>12} {'uncompressed':>13}")
    for url, wire, plain in rows:
        print(f"{url:32} {wire:>12,} {plain:>13,}")
    wire_total = sum(r[1] for r in rows)
    plain_total = sum(r[2] for r in rows)
    print(f"{'first load (' + str(len(rows)) + ' requests)':32} {wire_total:>12,} {plain_total:>13,}")
    for url, wire, plain in lazy:
        print(f"{'later, ' + url:32} {wire:>12,} {plain:>13,}")
    print(f"{'baseline: /api/docs':32} {docs[0]:>12,} {docs[1]:>13,}")
    share, ratio = wire_total / BUDGET, wire_total / docs[0]
    print(f"first load: {share:.1%} of the {BUDGET:,}-byte budget; {ratio:.2f}x the docs page")


if __name__ == "__main__":
    asyncio.run(main())

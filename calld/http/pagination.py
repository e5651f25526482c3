"""Pagination shared by every list endpoint: ``limit``/``offset`` in, ``count``/``next``/``previous`` out."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from calld.http.validation import Fields

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
# Larger offsets would overflow the databases' integer and can never hold a row anyway.
MAX_OFFSET = 1_000_000_000


def page_window(fields: Fields) -> tuple[int, int]:
    """``limit`` (1..200, default 50) and ``offset`` (0..10⁹) read from a query string."""
    limit = fields.integer("limit", default=DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)
    offset = fields.integer("offset", default=0, minimum=0, maximum=MAX_OFFSET)
    return limit, offset


def page_json(
    request: web.Request, count: int, results: list[dict[str, Any]], limit: int, offset: int
) -> dict[str, Any]:
    """``{"count", "next", "previous", "results"}`` with absolute links that keep the request's filters."""
    nxt = str(request.url.update_query(limit=limit, offset=offset + limit)) if offset + limit < count else None
    prev = None
    if offset > 0:
        prev = str(request.url.update_query(limit=limit, offset=max(0, offset - limit)))
    return {"count": count, "next": nxt, "previous": prev, "results": results}

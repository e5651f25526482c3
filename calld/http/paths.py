"""Near misses of a route: a path that differs only by its trailing slash, and a method a fixed
action does not take.

``GET /api/call-logs`` is answered ``308`` to ``/api/call-logs/`` (and ``/api/docs/`` to
``/api/docs``); other methods get a 404 naming the right path, since a client that sends a body to
the wrong one should fix it rather than rely on a redirect. A fixed action such as
``/api/call-logs/initiate_call/`` would otherwise be taken for a call id by ``/api/call-logs/{id}/``
on a method it does not take: that is a 405 with ``Allow``.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web
from aiohttp.web_urldispatcher import PlainResource

from calld.http.errors import ApiError, Handler

# Fixed paths and the methods each takes, collected once the routes are added.
FIXED_PATHS = web.AppKey("fixed_paths", Mapping[str, frozenset[str]])
_REDIRECTED_METHODS = frozenset({"GET", "HEAD"})


def fixed_paths(app: web.Application) -> dict[str, frozenset[str]]:
    """Every path without a variable part, with the methods it takes."""
    found: dict[str, frozenset[str]] = {}
    for resource in app.router.resources():
        if isinstance(resource, PlainResource):
            found[resource.canonical] = found.get(resource.canonical, frozenset()) | {r.method for r in resource}
    return found


@web.middleware
async def path_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Redirect or explain near misses; everything else goes on untouched."""
    fixed = request.app[FIXED_PATHS]
    path = request.path
    failed = request.match_info.http_exception
    if failed is not None and failed.status == 404:
        other = path[:-1] if path.endswith("/") else path + "/"
        if other in fixed or await _resolves(request, other):
            if request.method in _REDIRECTED_METHODS:
                location = other + (f"?{request.query_string}" if request.query_string else "")
                return web.Response(status=308, headers={"Location": location})
            raise ApiError(404, "not found", {"path": f"no such endpoint; the path is {other}"})
        return await handler(request)
    methods = fixed.get(path)
    if methods is not None and request.method not in methods:
        # Matched a route with a variable part (a call id) that the fixed action's name filled.
        allowed = ", ".join(sorted(methods))
        raise ApiError(405, "method not allowed", {"method": f"{path} takes {allowed}"}, headers={"Allow": allowed})
    return await handler(request)


async def _resolves(request: web.Request, path: str) -> bool:
    """Whether ``path`` is a route (by any method)."""
    match = await request.app.router.resolve(request.clone(rel_url=request.rel_url.with_path(path)))
    return match.http_exception is None or match.http_exception.status != 404

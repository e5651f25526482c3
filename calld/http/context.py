"""What request handlers reach: the services the daemon hands to the app."""

from __future__ import annotations

from aiohttp import web

from calld.service.wiring import Services

SERVICES = web.AppKey("services", Services)


def services(request: web.Request) -> Services:
    return request.app[SERVICES]

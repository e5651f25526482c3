"""What request handlers reach: the parts the daemon hands to the app."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from calld.adapters.port import SwitchPort
from calld.config import Config
from calld.outbound.outbox import Outbox
from calld.service.live_feed import LiveHub
from calld.service.metrics import Metrics
from calld.storage.calls import CallStore
from calld.storage.database import Database
from calld.storage.tokens import TokenStore


@dataclass(slots=True)
class Services:
    """The parts handlers use, handed to the app by the daemon (no globals)."""

    config: Config
    db: Database
    calls: CallStore
    switch: SwitchPort | None = None
    tokens: TokenStore = field(default_factory=TokenStore)
    # Handlers that make deliveries due (redeliver) wake the delivery worker through it.
    outbox: Outbox = field(default_factory=Outbox)
    live: LiveHub = field(default_factory=LiveHub)
    metrics: Metrics = field(default_factory=Metrics)


SERVICES = web.AppKey("services", Services)


def services(request: web.Request) -> Services:
    return request.app[SERVICES]

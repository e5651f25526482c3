"""SIP configurations: where the PBX is, how browsers reach it, and a probe of it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from calld import sip_probe
from calld.config import TurnConfig
from calld.domain.errors import NotFound
from calld.domain.scopes import Scope, TokenInfo
from calld.domain.turn import mint
from calld.domain.vocabulary import SipTransport
from calld.egress import EgressPolicy
from calld.service.views import sip_configuration_json, webrtc_config_json
from calld.storage import sip_configurations as repo
from calld.storage.database import Database
from calld.storage.models import SipConfiguration, utcnow

WHAT = "SIP configuration"


@dataclass(frozen=True, slots=True)
class StoredTransport:
    """What a change is validated against: the stored transport and port."""

    transport: SipTransport
    port: int


# Reads a change's values, given what is stored (the port's default follows the transport).
ChangeReader = Callable[[StoredTransport], dict[str, Any]]


async def _load(session: AsyncSession, config_id: uuid.UUID, *, locked: bool = False) -> SipConfiguration:
    config = await (repo.load_locked if locked else repo.get_configuration)(session, config_id)
    if config is None:
        raise NotFound(WHAT, value=config_id)
    return config


class SipConfigurationService:
    """The configurations; the first becomes the default, and the default stays active."""

    def __init__(
        self,
        db: Database,
        probe_timeout_seconds: float,
        egress: EgressPolicy,
        turn: Callable[[], TurnConfig],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """``turn`` is read per request: a reloaded configuration's ``[turn]`` applies at once."""
        self.db = db
        self.probe_timeout_seconds = probe_timeout_seconds
        self.egress = egress
        self.turn = turn
        self.clock = clock

    async def page(self, active: bool | None, *, limit: int, offset: int) -> tuple[int, list[dict[str, Any]]]:
        async with self.db.read() as session:
            page = await repo.list_configurations(session, active=active, limit=limit, offset=offset)
            return page.count, [sip_configuration_json(c) for c in page.rows]

    async def create(self, values: dict[str, Any]) -> dict[str, Any]:
        async with self.db.write() as session:
            return sip_configuration_json(await repo.create_configuration(session, values))

    async def get(self, config_id: uuid.UUID) -> dict[str, Any]:
        async with self.db.read() as session:
            return sip_configuration_json(await _load(session, config_id))

    async def change(self, config_id: uuid.UUID, read: ChangeReader) -> dict[str, Any]:
        """Apply the values ``read`` finds valid against the stored configuration."""
        async with self.db.write() as session:
            config = await _load(session, config_id, locked=True)
            values = read(StoredTransport(config.transport, config.port))
            await repo.update_configuration(session, config, values)
            return sip_configuration_json(config)

    async def delete(self, config_id: uuid.UUID) -> None:
        """Delete it; deleting the default promotes another."""
        async with self.db.write() as session:
            await repo.delete_configuration(session, await _load(session, config_id, locked=True))

    async def set_default(self, config_id: uuid.UUID) -> dict[str, Any]:
        async with self.db.write() as session:
            config = await _load(session, config_id, locked=True)
            await repo.set_default(session, config)
            return sip_configuration_json(config)

    async def webrtc_config(self, config_id: uuid.UUID, caller: TokenInfo) -> dict[str, Any]:
        """What ``caller``'s browser needs to register on this line: its SIP password only for the
        softphone token bound to it (which sees no other line), TURN credentials minted now."""
        if caller.scope is Scope.SOFTPHONE and caller.sip_configuration_id != config_id:
            raise NotFound(WHAT, value=config_id)  # a softphone learns of no line but its own
        async with self.db.read() as session:
            config = await _load(session, config_id)
        password = config.secret or None if caller.may_see_sip_secret_of(config_id) else None
        settings = self.turn()
        turn = None
        if settings.secret:
            lifetime = timedelta(seconds=settings.credential_lifetime_seconds)
            turn = mint(settings.secret, f"calld-{caller.id.hex[:12]}", self.clock(), lifetime)
        return webrtc_config_json(config, password, turn)

    async def test_connection(self, config_id: uuid.UUID) -> dict[str, Any]:
        """Probe the server now; the outcome, whatever it is."""
        async with self.db.read() as session:
            config = await _load(session, config_id)
            target = sip_probe.ProbeTarget(
                transport=config.transport,
                host=config.server,
                port=config.port,
                username=config.username,
                websocket_url=config.websocket_url,
            )
        # The session is closed before the network wait: a slow server must not hold a database connection.
        result = await sip_probe.probe(target, timeout_seconds=self.probe_timeout_seconds, egress=self.egress)
        return result.as_json()

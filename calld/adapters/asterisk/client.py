"""The AMI client: ``panoramisk``'s connection, with its defects worked around.

panoramisk 1.4 on Python 3.11 works, with defects worked around here, in ``AmiClient`` and
``_Protocol`` only:

* it reconnects by itself at a fixed interval (no backoff) and re-sends, after the reconnect, every
  action that got no answer — an ``Originate`` could place the call twice. ``AmiClient`` never
  reconnects on its own and forgets unanswered actions (they fail as ``SwitchUnavailable``);
* its parser splits the stream on blank lines after decoding with ``errors="ignore"``, drops
  headers with an empty value at the end of a message and turns repeated headers into lists;
  ``_Protocol`` parses with calld's own byte-exact ``AmiParser``;
* its event path (a ``Message`` per event, case-insensitive callback matching in ``dispatch``, a
  queue hop per event) cost far more than parsing and mapping: ``_Protocol`` hands events to the
  adapter itself, as ``AmiMessage``s, one queue entry per socket read, in wire order. Only what an
  action waits for (its reply, the items of its list) goes through panoramisk, as a ``Message``
  built from the ``AmiMessage`` (kept as its ``ami``). A ``Shutdown`` ends the stream after the
  events before it, as panoramisk's protocol ends the connection on it;
* an async ``Originate`` waits for the ``OriginateResponse`` event (the end of the call setup)
  unless ``as_list=False`` is given; we always give it, so control returns once Asterisk accepted;
* its ``Ping`` fires and forgets (a dead peer is never noticed) and takes whole seconds: the
  adapter's keepalive awaits the ``Pong`` with a timeout;
* no action has a timeout: ``AmiClient.action`` awaits every one with the timeout it is given;
* on a lost connection the futures of unanswered actions are never finished (they are only queued
  for the re-send above): ``_Protocol.connection_lost`` fails them with ``SwitchUnavailable``;
* ``Message`` answers any missing attribute with ``''`` (so ``getattr(m, "ami", None)`` is never
  None for a panoramisk message): every reply here is built by ``_Protocol`` and carries ``ami``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from panoramisk import actions as pk_actions
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.manager import Manager
from panoramisk.message import Message

from calld.adapters.asterisk.ami_codec import AmiMessage, AmiParser
from calld.adapters.port import SwitchError, SwitchUnavailable


class _Everything:
    """``forgetable_actions`` that contains every action: panoramisk must never re-send one."""

    def __contains__(self, item: object) -> bool:
        return True


# What ``_Protocol`` hands the adapter per socket read: when it arrived, and its events in wire order.
Batch = tuple[datetime, list[AmiMessage]]


def _panoramisk_message(ami: AmiMessage) -> Message:
    """``ami`` as panoramisk's ``Message`` (repeated headers as lists), carrying ``ami``."""
    headers: dict[str, Any] = {}
    for name, value in ami.headers:
        if name in headers:
            previous = headers[name]
            headers[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            headers[name] = value
    message = Message(headers)
    message.ami = ami
    return message


class _Protocol(AMIProtocol):  # type: ignore[misc]
    """panoramisk's protocol with calld's byte-exact parser (see the module docstring). Only what
    an action waits for (its reply, the items of its list) goes through panoramisk; events go
    straight to ``AmiClient.events`` as ``AmiMessage``s, a list per socket read: a panoramisk
    ``Message`` and its case-insensitive dispatch cost more per event than parsing and mapping it."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.parser = AmiParser()

    def data_received(self, data: bytes) -> None:
        events: list[AmiMessage] = []
        shutdown = False
        responses = self.responses
        for ami in self.parser.feed(data):
            action_id = ami.get("ActionID")
            if action_id is not None and action_id in responses:
                self.handle_message(_panoramisk_message(ami))
            elif ami.event is not None:
                events.append(ami)
                shutdown = shutdown or ami.event == "Shutdown"
            # else a response no action waits for (it timed out): dropped, as panoramisk does
        if events:
            self.factory.events.put_nowait((datetime.now(UTC), events))
        if shutdown:
            # Asterisk is going away: the events before (and with) the Shutdown are queued
            # first, so the adapter maps them (Hangups) before it sees the end of the stream.
            self.connection_lost(None)

    def connection_lost(self, exc: object) -> None:
        # panoramisk's close() only queues unanswered actions for a re-send (which we refuse):
        # their futures would never finish. Fail them now.
        for action in list(self.responses.values()):
            if not action.future.done():
                lost = SwitchUnavailable(f"AMI connection lost before {action['Action']} was answered")
                action.future.set_exception(lost)
        super().connection_lost(exc)


class AmiClient(Manager):  # type: ignore[misc]
    """One AMI connection: panoramisk's Manager without its own reconnection, re-sending or
    fire-and-forget ping. Events arrive in ``events``; ``action`` sends one action."""

    def __init__(self, **config: Any) -> None:
        super().__init__(forgetable_actions=_Everything(), **config)
        # Events in wire order, one entry per socket read; None once the session is over. Not
        # bounded on purpose: Asterisk disconnects a client that stops reading (manager.conf
        # writetimeout), so the events wait here (and behind it in the ingest's spill file).
        self.events: asyncio.Queue[Batch | None] = asyncio.Queue()

    async def open(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self.loop = loop
        _, protocol = await loop.create_connection(_Protocol, host, port)
        self.protocol = protocol
        protocol.queue = None
        protocol.factory = self
        protocol.log = self.log
        protocol.config = self.config
        protocol.encoding = self.encoding = "utf8"
        self.responses = protocol.responses = {}
        self._connected = True

    @property
    def is_connected(self) -> bool:
        return bool(self._connected)

    def ping(self) -> None:  # the adapter's keepalive does this
        return None

    def end(self) -> None:
        """End the session's event stream (after what is already queued)."""
        self.events.put_nowait(None)

    def connection_lost(self, exc: object) -> None:
        if self._connected:
            self._connected = False
            self.end()

    async def action(
        self, action: str, headers: Mapping[str, str], timeout_seconds: float, *, as_list: bool = False
    ) -> Any:
        """Send ``action``; its response (or list of messages). Refused -> SwitchError; no answer
        within ``timeout_seconds`` -> SwitchUnavailable (a late answer is then dropped)."""
        request = pk_actions.Action({"Action": action, **headers}, as_list=as_list)
        future = self.send_action(request, as_list=as_list)
        try:
            response = await asyncio.wait_for(asyncio.shield(future), timeout_seconds)
        except TimeoutError:
            future.cancel()
            self.protocol.responses.pop(request.id, None)
            raise SwitchUnavailable(f"Asterisk did not answer {action} in time") from None
        first = response[0] if isinstance(response, list) else response
        ami: AmiMessage | None = getattr(first, "ami", None)
        if ami is not None and ami.response not in ("Success", "Goodbye"):
            raise SwitchError(f"Asterisk refused {action}: {ami.get('Message', ami.response or 'error')}")
        return response

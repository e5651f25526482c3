"""The Asterisk switch adapter: AMI over ``panoramisk``, events through ``AmiEventMapper``.

``AsteriskAdapter.run(sink)`` connects, logs in, installs an event filter (AMI ``Filter`` action, so
Asterisk only sends what the mapper uses), resynchronises with ``CoreShowChannels`` (adopting live
calls, ending those that vanished while we were away) and then feeds every event through the
mapper to ``sink`` in wire order. A ``Ping`` every ``keepalive_seconds`` detects a dead link; on
any loss it reconnects with capped exponential backoff. The mapper (and so the knowledge of open
calls) survives reconnects; event keys are stable, so the sink's de-duplication makes a replay
harmless.

panoramisk 1.4 on Python 3.11 works, with defects worked around here, in ``_Manager`` and
``_Protocol`` only:

* it reconnects by itself at a fixed interval (no backoff) and re-sends, after the reconnect, every
  action that got no answer — an ``Originate`` could place the call twice. ``_Manager`` never
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
  keepalive here awaits the ``Pong`` with a timeout;
* no action has a timeout: every action here is awaited with ``action_timeout_seconds``;
* on a lost connection the futures of unanswered actions are never finished (they are only queued
  for the re-send above): ``_Protocol.connection_lost`` fails them with ``SwitchUnavailable``;
* ``Message`` answers any missing attribute with ``''`` (so ``getattr(m, "ami", None)`` is never
  None for a panoramisk message): every reply here is built by ``_Protocol`` and carries ``ami``.

Checked live on Asterisk 22.10.1 (tests/asterisk/test_live_*.py). Hold: Asterisk 22 has no AMI action
for it, so ``hold`` is a dual ``Redirect`` into ``hold_context`` (far party to music on hold, calld's
user to a silent wait; its ``MusicOnHoldStart`` confirms it) and ``unhold`` an AMI ``Bridge`` of the
two channels (``MusicOnHoldStop``). Uniqueids and Linkedid survive both; after the Bridge a hangup of
either leg hangs up the other, and while held the adapter hangs up the leg left waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from panoramisk import actions as pk_actions
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.manager import Manager
from panoramisk.message import Message

from calld.adapters.asterisk.ami_codec import AmiMessage, AmiParser
from calld.adapters.asterisk.cel import cel_events
from calld.adapters.asterisk.cel_source import CelSource, cel_sources
from calld.adapters.asterisk.mapping import CALLD_CALL_ID_VAR, AmiEventMapper
from calld.adapters.asterisk.settings import AsteriskConfig
from calld.adapters.backoff import Backoff
from calld.adapters.port import EventSink, SwitchError, SwitchUnavailable
from calld.adapters.records import marked_missed
from calld.domain.events import SwitchEvent
from calld.domain.vocabulary import EventType

# The AMI events the mapper uses (``Shutdown`` tells us Asterisk is going away).
SUBSCRIBED_EVENTS: tuple[str, ...] = (
    "Newchannel",
    "Newstate",
    "NewCallerid",
    "DialBegin",
    "DialState",
    "DialEnd",
    "BridgeEnter",
    "Hold",
    "Unhold",
    "MusicOnHoldStart",
    "MusicOnHoldStop",
    "BlindTransfer",
    "AttendedTransfer",
    "DTMFEnd",
    "MixMonitorStart",
    "MixMonitorStop",
    "ConfbridgeJoin",
    "HangupRequest",
    "SoftHangupRequest",
    "Hangup",
    "OriginateResponse",
    "Shutdown",
)
# POSIX extended regexes, matched by Asterisk against the whole event text (legacy ``Filter``);
# an event is sent when any one matches. VarSet is noisy: only the two variables the mapper reads.
EVENT_FILTERS: tuple[str, ...] = (
    "^Event: (" + "|".join(SUBSCRIBED_EVENTS) + ")[[:space:]]",
    f"^Event: VarSet[[:space:]].*Variable: (MIXMONITOR_FILENAME|_*{CALLD_CALL_ID_VAR})[[:space:]]",
)

# Records are read from a little before the last event seen: a switch's clock and ours differ,
# and rows are written a moment after the event.
_RECORDS_MARGIN = timedelta(seconds=30)
# Asterisk writes CEL rows a moment after the channel event (its backends run in their own threads).
_FOLLOW_UPS = 10
_FOLLOW_UP_SECONDS = 0.5

# OriginateResponse ``Reason`` (AST_CONTROL_* of the first leg's outcome).
_ORIGINATE_REASONS = {
    "0": "no such channel or it could not be created",
    "1": "hung up",
    "3": "no answer",
    "5": "busy",
    "8": "congestion",
}


class _Everything:
    """``forgetable_actions`` that contains every action: panoramisk must never re-send one."""

    def __contains__(self, item: object) -> bool:
        return True


# What ``_Protocol`` hands the adapter per socket read: when it arrived, and its events in wire order.
_Batch = tuple[datetime, list[AmiMessage]]


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
    straight to ``_Manager.events`` as ``AmiMessage``s, a list per socket read: a panoramisk
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


class _Manager(Manager):  # type: ignore[misc]
    """panoramisk's Manager without its own reconnection, re-sending or fire-and-forget ping."""

    def __init__(self, **config: Any) -> None:
        super().__init__(forgetable_actions=_Everything(), **config)
        # Events in wire order, one entry per socket read; None once the session is over. Not
        # bounded on purpose: Asterisk disconnects a client that stops reading (manager.conf
        # writetimeout), so the events wait here (and behind it in the ingest's spill file).
        self.events: asyncio.Queue[_Batch | None] = asyncio.Queue()

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

    def ping(self) -> None:  # the adapter's keepalive does this
        return None

    def end(self) -> None:
        """End the session's event stream (after what is already queued)."""
        self.events.put_nowait(None)

    def connection_lost(self, exc: object) -> None:
        if self._connected:
            self._connected = False
            self.end()


@dataclass(slots=True)
class _CallChannels:
    """The live channels of one call (``Linkedid``), in creation order: uniqueid -> channel name."""

    legs: dict[str, str] = field(default_factory=dict)
    near_is_first: bool = False  # the first leg is calld's user (originated/outbound calls)


class AsteriskAdapter:
    """``SwitchPort`` for Asterisk over AMI."""

    name: str

    def __init__(self, settings: AsteriskConfig) -> None:
        self.settings = settings
        self.log = structlog.get_logger("calld.asterisk")
        self.mapper = AmiEventMapper(
            settings.inbound_contexts, settings.outbound_contexts, hold_context=settings.hold_context
        )
        self._manager: _Manager | None = None
        self._calls: dict[str, _CallChannels] = {}
        self._recording_channel: dict[str, str] = {}
        # Calls originated here that have no channel yet: if the originate fails before creating one,
        # only its OriginateResponse tells, and no Hangup will ever end the call.
        self._originating: set[str] = set()
        # call_ref -> (near, far) channels parted by ``hold``, until ``unhold`` bridges them again.
        self._held: dict[str, tuple[str, str]] = {}
        self.name = settings.name
        self.connected = asyncio.Event()
        self.resynced = asyncio.Event()
        self.sessions = 0  # successful logins, for diagnostics and tests
        self.records: list[CelSource] = cel_sources(
            settings.cel_csv,
            settings.cel_sqlite,
            settings.cel_sqlite_table,
            timedelta(seconds=settings.records_lookback_seconds),
        )
        # Where the next recovery from the records starts: set by the daemon before the first
        # session (the last call it stored), then the time of the last event each session received.
        self.recover_since: datetime | None = None
        self._live_at_resync: frozenset[str] = frozenset()
        # Calls the records show begun, not ended and not listed live: read again shortly.
        self._unfinished: set[str] = set()
        self._follow_up: asyncio.Task[None] | None = None

    # --- events ---------------------------------------------------------------------------------

    async def run(self, sink: EventSink) -> None:
        backoff = Backoff(self.settings.reconnect_max_seconds)
        refusals = 0
        while True:
            logged_in = False
            refused = False
            try:
                logged_in = await self._session(sink)
            except ConnectionRefusedError as exc:
                refused = True
                refusals += 1
                if refusals == 1:  # once per outage: it is retried every moment until the port opens
                    self.log.warning("asterisk AMI connection refused; retrying", error=str(exc))
            except (OSError, SwitchUnavailable, TimeoutError) as exc:
                self.log.warning("asterisk AMI connection failed", error=str(exc) or repr(exc))
            except SwitchError as exc:
                self.log.error("asterisk AMI login refused", error=str(exc))
            finally:
                self.connected.clear()
                manager, self._manager = self._manager, None
                if manager is not None:
                    manager.close()
            if logged_in:
                backoff.reset()
                refusals = 0
            if not refused:
                self.log.info("asterisk AMI reconnecting", delay_seconds=backoff.next_delay())
            await backoff.wait(refused)

    async def _session(self, sink: EventSink) -> bool:
        """One connection: login, filter, resync, then events until the link is lost."""
        manager = _Manager(loop=asyncio.get_running_loop(), log=self.log)
        self._manager = manager
        timeout = self.settings.action_timeout_seconds
        await asyncio.wait_for(manager.open(self.settings.host, self.settings.port), timeout)
        await self._action("Login", {"Username": self.settings.username, "Secret": self._secret(), "Events": "on"})
        for expression in EVENT_FILTERS:
            await self._action("Filter", {"Operation": "Add", "Filter": expression})
        self.sessions += 1
        self.log.info("asterisk AMI connected", host=self.settings.host, port=self.settings.port)
        await self._resync(sink)
        if self._follow_up is None:
            self.resynced.set()  # else once the records have said how the calls they left open ended
        self.connected.set()
        keepalive = asyncio.create_task(self._keepalive(manager))
        # A failed keepalive ends the stream like a lost connection (after what is queued).
        keepalive.add_done_callback(lambda _: manager.end())
        try:
            # Everything queued is delivered, also what arrived before a loss (Hangups before a
            # Shutdown): the end marker comes after it.
            while (batch := await manager.events.get()) is not None:
                received_at, messages = batch
                self.recover_since = received_at
                for ami in messages:
                    await self._deliver(sink, ami, received_at)
            if keepalive.done() and not keepalive.cancelled() and keepalive.exception() is not None:
                self.log.warning("asterisk AMI keepalive failed", error=repr(keepalive.exception()))
            return True
        finally:
            keepalive.cancel()
            if self._follow_up is not None:
                self._follow_up.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._follow_up
                self._follow_up = None
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await keepalive

    async def _keepalive(self, manager: _Manager) -> None:
        while True:
            await asyncio.sleep(self.settings.keepalive_seconds)
            if manager is not self._manager:
                return
            await self._action("Ping", {})

    async def _recover(self, sink: EventSink, live: set[str]) -> None:
        """Store what Asterisk's own records (CEL) say happened since ``recover_since``.

        ``live`` are the calls Asterisk listed just before. A call the records show begun but not
        ended that is not among them ended in the moment before the list, and Asterisk writes CEL
        rows a little after the fact: the records are read again shortly for such calls.
        """
        since = self.recover_since
        if since is None or not self.records:
            return
        since -= _RECORDS_MARGIN
        unfinished = await self._recover_from(sink, since, None)
        self._unfinished = unfinished - live
        if self._unfinished:
            self._follow_up = asyncio.create_task(self._recover_unfinished(sink, since), name="cel-follow-up")

    async def _recover_from(self, sink: EventSink, since: datetime, only: set[str] | None) -> set[str]:
        """Store the records' events (of the calls in ``only``, if given); the calls they leave open."""
        rows = []
        for source in self.records:
            try:
                rows.extend(await source.rows(since))
            except (OSError, sqlite3.Error, ValueError) as exc:
                self.log.error("asterisk CEL records unreadable; missed calls not recovered", error=str(exc))
        s = self.settings
        mapper = AmiEventMapper(s.inbound_contexts, s.outbound_contexts, hold_context=s.hold_context)
        events = [event for event in cel_events(rows, mapper) if only is None or event.call_ref in only]
        for event in events:
            await self._emit(sink, marked_missed(event, first_session=self.sessions == 1))
        self.log.info("asterisk CEL records read", since=since.isoformat(), rows=len(rows), call_events=len(events))
        return set(mapper.open_calls())

    async def _recover_unfinished(self, sink: EventSink, since: datetime) -> None:
        try:
            for _ in range(_FOLLOW_UPS):
                await asyncio.sleep(_FOLLOW_UP_SECONDS)
                # Calls the live stream took over since (their events named them) need nothing more.
                self._unfinished -= set(self.mapper.open_calls())
                if self._unfinished:
                    self._unfinished &= await self._recover_from(sink, since, self._unfinished)
                if not self._unfinished:
                    return
            # Neither live nor ended in the records: gone unseen, like a call the list no longer has.
            self.log.warning("calls begun in asterisk's CEL have no end there; closed", calls=len(self._unfinished))
            now = datetime.now(UTC)
            for ref in sorted(self._unfinished):
                meta = {"reason": "call no longer on the switch and no end in its records", "cause": "UNKNOWN"}
                lost = SwitchEvent(ref, EventType.FAILED, now, f"{ref}:cel-unfinished:failed", meta, None, None, "cel")
                await self._emit(sink, marked_missed(lost, first_session=self.sessions == 1))
            self._unfinished = set()
        finally:
            self.resynced.set()

    async def _resync(self, sink: EventSink) -> None:
        """Adopt the calls Asterisk has now, end the ones it no longer has, after storing what its
        records say. The list is taken first: a call that ends between the two is then in both (the
        records close it), and one that starts between them is in the records and its events follow;
        taken the other way round, a call ending in between would be in neither."""
        items = await self._action("CoreShowChannels", {}, as_list=True)
        now = datetime.now(UTC)
        rows: list[AmiMessage] = [message.ami for message in items if message.ami.event == "CoreShowChannel"]
        await self._recover(sink, {ami.get("Linkedid") or ami.get("Uniqueid", "") for ami in rows})
        live: set[str] = set()
        parted: dict[str, dict[str, str]] = {}  # ref -> {"hold"/"wait": channel} of calls calld holds
        for ami in rows:
            ref = ami.get("Linkedid") or ami.get("Uniqueid", "")
            live.add(ref)
            self._track(ami)
            if ami.get("Context") == self.settings.hold_context:
                parted.setdefault(ref, {})[ami.get("Exten", "")] = ami.get("Channel", "")
        for ref in [r for r in self._calls if r not in live]:
            self._calls.pop(ref, None)
        # What is held is what the switch shows in the hold context (a calld restarted during a
        # hold can still resume it; a call resumed or ended meanwhile is no longer held).
        self._held = {
            ref: (legs["wait"], legs["hold"]) for ref, legs in parted.items() if {"hold", "wait"} <= legs.keys()
        }
        for event in [*self.mapper.reconcile(live, now), *self.mapper.adopt(rows, now)]:
            await self._emit(sink, event)
        self._live_at_resync = frozenset(self.mapper.open_calls())
        self.log.info("asterisk resynchronised", live_calls=len(live))

    async def _deliver(self, sink: EventSink, ami: AmiMessage, received_at: datetime) -> None:
        self._track(ami)
        name = ami.event
        if name == "OriginateResponse":
            await self._originate_response(sink, ami)
        for event in self.mapper.map(ami, received_at):
            await self._emit(sink, event)
        if name == "Hangup":
            self._untrack(ami)
            ref = ami.get("Linkedid") or ami.get("Uniqueid", "")
            if ref in self._held:
                await self._end_held(ref)

    async def _emit(self, sink: EventSink, event: Any) -> None:
        try:
            await sink(event)
        except Exception:  # one failed write must not stop the stream
            self.log.exception("storing an asterisk event failed", call_ref=event.call_ref, event=event.event_type)

    async def _originate_response(self, sink: EventSink, ami: AmiMessage) -> None:
        """End an originated call that failed before Asterisk created any channel for it."""
        ref = ami.get("Uniqueid", "")
        if ref not in self._originating:
            return
        self._originating.discard(ref)
        if ami.get("Response") == "Success":
            return
        timestamp = ami.get("Timestamp")
        when = datetime.fromtimestamp(float(timestamp), UTC) if timestamp else datetime.now(UTC)
        reason = _ORIGINATE_REASONS.get(ami.get("Reason", ""), "failed")
        meta = {
            "reason": f"originate failed: {reason}",
            "reason_code": ami.get("Reason", ""),
            "channel": ami.get("Channel", ""),
        }
        await self._emit(
            sink, SwitchEvent(ref, EventType.FAILED, when, f"{ref}:OriginateResponse:failed", meta, None, ref)
        )

    def open_calls(self) -> list[str]:
        return self.mapper.open_calls()

    def live_at_resync(self) -> frozenset[str]:
        return self._live_at_resync

    # --- channel bookkeeping for control actions ------------------------------------------------

    def _track(self, ami: Mapping[str, str]) -> None:
        if ami.get("Event") not in ("Newchannel", "CoreShowChannel"):
            return
        uid, channel = ami.get("Uniqueid", ""), ami.get("Channel", "")
        ref = ami.get("Linkedid") or uid
        if not uid or not channel:
            return
        self._originating.discard(ref)
        call = self._calls.get(ref)
        if call is None:
            call = self._calls[ref] = _CallChannels()
            context = ami.get("Context", "")
            call.near_is_first = ami.get("ChannelState") == "0" or context in self.settings.outbound_contexts
        call.legs[uid] = channel

    def _untrack(self, ami: Mapping[str, str]) -> None:
        ref = ami.get("Linkedid") or ami.get("Uniqueid", "")
        call = self._calls.get(ref)
        if call is None:
            return
        call.legs.pop(ami.get("Uniqueid", ""), None)
        if not call.legs:
            del self._calls[ref]

    def _channels(self, call_ref: str) -> _CallChannels:
        call = self._calls.get(call_ref)
        if call is None or not call.legs:
            raise SwitchError(f"call {call_ref} has no live channel on Asterisk")
        return call

    def _near(self, call_ref: str) -> str:
        """calld's user's leg: the first one of an outbound/originated call, else the latest other."""
        call = self._channels(call_ref)
        legs = list(call.legs.values())
        if call.near_is_first or len(legs) == 1:
            return legs[0]
        return legs[-1]

    # --- actions --------------------------------------------------------------------------------

    def _secret(self) -> str:
        if self.settings.secret:
            return self.settings.secret
        with open(self.settings.secret_file, encoding="utf-8") as handle:
            return handle.readline().strip()

    async def _action(self, action: str, headers: Mapping[str, str], *, as_list: bool = False) -> Any:
        """Send ``action``; its response (or list of messages). Error -> SwitchError."""
        manager = self._manager
        if manager is None or not manager._connected:
            raise SwitchUnavailable("not connected to Asterisk AMI")
        request = pk_actions.Action({"Action": action, **headers}, as_list=as_list)
        future = manager.send_action(request, as_list=as_list)
        try:
            response = await asyncio.wait_for(asyncio.shield(future), self.settings.action_timeout_seconds)
        except TimeoutError:
            future.cancel()
            manager.protocol.responses.pop(request.id, None)
            raise SwitchUnavailable(f"Asterisk did not answer {action} in time") from None
        first = response[0] if isinstance(response, list) else response
        ami: AmiMessage | None = getattr(first, "ami", None)
        if ami is not None and ami.response not in ("Success", "Goodbye"):
            raise SwitchError(f"Asterisk refused {action}: {ami.get('Message', ami.response or 'error')}")
        return response

    async def originate(self, calld_call_id: str, recipient: str, caller: str | None) -> str:
        s = self.settings
        headers = {
            "Channel": s.originate_channel.format(caller=caller or "", recipient=recipient),
            "Context": s.originate_context,
            "Exten": recipient,
            "Priority": "1",
            "Async": "true",
            "ChannelId": calld_call_id,
            "Variable": f"{CALLD_CALL_ID_VAR}={calld_call_id}",
            "Timeout": str(int(s.originate_timeout_seconds * 1000)),
        }
        if caller:
            headers["CallerID"] = caller
        self._originating.add(calld_call_id)
        try:
            await self._action("Originate", headers)
        except (SwitchError, SwitchUnavailable):
            self._originating.discard(calld_call_id)
            raise
        # Asterisk uses ChannelId as the Uniqueid and Linkedid: the call's reference is our id.
        return calld_call_id

    async def hangup(self, call_ref: str) -> None:
        legs = list(self._channels(call_ref).legs.values())
        refused: SwitchError | None = None
        for channel in legs:
            try:
                await self._action("Hangup", {"Channel": channel})
                return
            except SwitchError as exc:  # that leg is already gone; try the next
                refused = exc
        assert refused is not None
        raise refused

    async def transfer(self, call_ref: str, target: str, attended: bool = False) -> None:
        context = self.settings.transfer_context or self.settings.originate_context
        held = None if attended else self._held.pop(call_ref, None)
        if held is not None:
            # Held by calld, the legs are in no bridge, so BlindTransfer would be refused ("Transfer
            # invalid"): send the far party from its music to the target, then hang up the near one.
            near, far = held
            try:
                await self._action("Redirect", {"Channel": far, "Context": context, "Exten": target, "Priority": "1"})
            except (SwitchError, SwitchUnavailable):
                self._held[call_ref] = held
                raise
            with contextlib.suppress(SwitchError):
                await self._action("Hangup", {"Channel": near})
            return
        headers = {"Channel": self._near(call_ref), "Exten": target, "Context": context}
        await self._action("Atxfer" if attended else "BlindTransfer", headers)

    def _far(self, call_ref: str) -> str:
        """The far party's leg: the first live leg that is not calld's user's."""
        near = self._near(call_ref)
        for channel in self._channels(call_ref).legs.values():
            if channel != near:
                return channel
        raise SwitchError(f"call {call_ref} has no far party to hold")

    async def hold(self, call_ref: str) -> None:
        """Asterisk 22 has no AMI hold action. A dual ``Redirect`` takes both legs out of their
        bridge into ``hold_context``: the far party to ``hold`` (MusicOnHold, hence the
        MusicOnHoldStart that confirms it), calld's user to ``wait`` (silence). Redirecting only
        one leg would hang the other up."""
        near, far = self._near(call_ref), self._far(call_ref)
        context = self.settings.hold_context
        await self._action(
            "Redirect",
            {
                "Channel": far,
                "Context": context,
                "Exten": "hold",
                "Priority": "1",
                "ExtraChannel": near,
                "ExtraContext": context,
                "ExtraExten": "wait",
                "ExtraPriority": "1",
            },
        )
        self._held[call_ref] = (near, far)

    async def unhold(self, call_ref: str) -> None:
        """``Bridge`` the two legs ``hold`` parted again (MusicOnHoldStop confirms it). Uniqueids
        stay; when either leg later hangs up, Asterisk hangs up the other (checked on 22.10)."""
        legs = self._held.get(call_ref)
        if legs is None:
            raise SwitchError(f"call {call_ref} was not put on hold by calld; only the phone that held it can resume")
        near, far = legs
        await self._action("Bridge", {"Channel1": near, "Channel2": far, "Tone": "no"})
        del self._held[call_ref]

    async def _end_held(self, ref: str) -> None:
        """A leg of a call calld holds hung up: the other one waits in the dialplan; hang it up."""
        for channel in self._held.pop(ref, ()):
            with contextlib.suppress(SwitchError, SwitchUnavailable):
                await self._action("Hangup", {"Channel": channel})

    def recording_file(self, path: str) -> str:
        """``path`` on the switch: relative paths live under ``recording_directory``."""
        if posixpath.isabs(path):
            return path
        return posixpath.join(self.settings.recording_directory, path.lstrip(os.sep))

    async def start_recording(self, call_ref: str, path: str) -> None:
        channel = self._near(call_ref)
        file = self.recording_file(path)
        await self._action("MixMonitor", {"Channel": channel, "File": file})
        self._recording_channel[file] = channel

    async def stop_recording(self, call_ref: str, path: str) -> None:
        file = self.recording_file(path) if path else ""
        channel = self._recording_channel.pop(file, None) or self._near(call_ref)
        await self._action("StopMixMonitor", {"Channel": channel})

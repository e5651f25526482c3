"""The Asterisk switch adapter: AMI through ``AmiClient``, events through ``AmiEventMapper``.

``AsteriskAdapter.run(sink)`` connects, logs in, installs an event filter (AMI ``Filter`` action, so
Asterisk only sends what the mapper uses), resynchronises with ``CoreShowChannels`` (adopting live
calls, ending those that vanished while we were away) and then feeds every event through the
mapper to ``sink`` in wire order. A ``Ping`` every ``keepalive_seconds`` detects a dead link; on
any loss it reconnects with capped exponential backoff. The mapper (and so the knowledge of open
calls) survives reconnects; event keys are stable, so the sink's de-duplication makes a replay
harmless.

The AMI connection itself (panoramisk, with its defects worked around) is ``client.AmiClient``.

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
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from calld.adapters.asterisk.ami_codec import AmiMessage
from calld.adapters.asterisk.cel import Row, call_starts, cel_events
from calld.adapters.asterisk.cel_source import CelSource, cel_sources
from calld.adapters.asterisk.client import AmiClient
from calld.adapters.asterisk.mapping import CALLD_CALL_ID_VAR, AmiEventMapper, ChannelTimes, cdr_instant
from calld.adapters.asterisk.settings import AsteriskConfig
from calld.adapters.asterisk.story import QOS_VARIABLE
from calld.adapters.backoff import Backoff
from calld.adapters.port import EventSink, SwitchError, SwitchUnavailable
from calld.adapters.records import marked_missed, missed_marker
from calld.domain.direction import extensions_pattern
from calld.domain.events import SwitchEvent
from calld.domain.vanished import vanished_end
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
    "ParkedCall",  # res_parking: park/ confirmed (a hold naming the slot)
    "UnParkedCall",  # the slot dialled: picked up
    "ParkedCallTimeOut",
    "BlindTransfer",
    "AttendedTransfer",
    "DTMFEnd",
    "MixMonitorStart",
    "MixMonitorStop",
    "MixMonitorMute",
    "ConfbridgeJoin",
    "AgentCalled",  # app_queue rings a member: that leg is a queue agent
    "HangupRequest",
    "SoftHangupRequest",
    "Hangup",
    "OriginateResponse",
    "Shutdown",
)
# POSIX extended regexes, matched by Asterisk against the whole event text (legacy ``Filter``);
# an event is sent when any one matches. VarSet is noisy: only the variables the mapper reads.
EVENT_FILTERS: tuple[str, ...] = (
    "^Event: (" + "|".join(SUBSCRIBED_EVENTS) + ")[[:space:]]",
    f"^Event: VarSet[[:space:]].*Variable: (MIXMONITOR_FILENAME|{QOS_VARIABLE}|_*{CALLD_CALL_ID_VAR})[[:space:]]",
)

# Records are read from a little before the last event seen: a switch's clock and ours differ,
# and rows are written a moment after the event.
_RECORDS_MARGIN = timedelta(seconds=30)
# Asterisk writes CEL rows a moment after the channel event (its backends run in their own threads).
_FOLLOW_UPS = 10
_FOLLOW_UP_SECONDS = 0.5
# ... and later under load (seen: 260 ms): a call that began and ended just before calld logged in
# can have no row yet at the first read. The records are read again this long after it, in steps.
_LATE_ROW_DELAYS = (0.5, 1.0, 2.0, 4.0)

# OriginateResponse ``Reason`` (AST_CONTROL_* of the first leg's outcome).
_ORIGINATE_REASONS = {
    "0": "no such channel or it could not be created",
    "1": "hung up",
    "3": "no answer",
    "5": "busy",
    "8": "congestion",
}


class AsteriskAdapter:
    """``SwitchPort`` for Asterisk over AMI."""

    name: str

    def __init__(self, settings: AsteriskConfig) -> None:
        self.settings = settings
        self.log = structlog.get_logger("calld.asterisk")
        self.mapper = self._new_mapper()
        self._manager: AmiClient | None = None
        self._recording_channel: dict[str, str] = {}
        # Calls originated here that have no channel yet: if the originate fails before creating one,
        # only its OriginateResponse tells, and no Hangup will ever end the call.
        self._originating: set[str] = set()
        # call_ref -> (transferer, channels before it) of an Atxfer in progress (issue 17).
        self._consulting: dict[str, tuple[str, frozenset[str]]] = {}
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
        self._unfinished: dict[str, bool] = {}  # call ref -> answered
        self._follow_up: asyncio.Task[None] | None = None
        # Reads the records again for calls whose rows were not written yet at the first read.
        self._late_rows: asyncio.Task[None] | None = None
        self._logged_in_at: datetime | None = None
        # Where events go; set by ``run``. MuteAudio and PlayDTMF raise no AMI event: their answer is the report.
        self._sink: EventSink | None = None

    # --- events ---------------------------------------------------------------------------------

    async def run(self, sink: EventSink) -> None:
        self._sink = sink
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
        manager = AmiClient(loop=asyncio.get_running_loop(), log=self.log)
        self._manager = manager
        timeout = self.settings.action_timeout_seconds
        await asyncio.wait_for(manager.open(self.settings.host, self.settings.port), timeout)
        await self._action("Login", {"Username": self.settings.username, "Secret": self._secret(), "Events": "on"})
        self._logged_in_at = datetime.now(UTC)  # calls begun since are in the event stream
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
            if self._late_rows is not None:
                self._late_rows.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._late_rows
                self._late_rows = None
            if self._follow_up is not None:
                self._follow_up.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._follow_up
                self._follow_up = None
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await keepalive

    async def _keepalive(self, manager: AmiClient) -> None:
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
        rows = await self._record_rows(since)
        unfinished = await self._replay(sink, since, rows, None)
        self._unfinished = {ref: answered for ref, answered in unfinished.items() if ref not in live}
        if self._unfinished:
            self._follow_up = asyncio.create_task(self._recover_unfinished(sink, since), name="cel-follow-up")
        if self._logged_in_at is not None:
            known = set(call_starts(rows)) | live
            self._late_rows = asyncio.create_task(
                self._recover_late(sink, since, known, self._logged_in_at), name="cel-late-rows"
            )

    async def _recover_late(self, sink: EventSink, since: datetime, known: set[str], logged_in_at: datetime) -> None:
        """Store the calls that began before calld logged in (so the event stream never told of them),
        were not listed live, and whose rows Asterisk had not yet written at the first read."""
        for delay in _LATE_ROW_DELAYS:
            await asyncio.sleep(delay)
            rows = await self._record_rows(since)
            open_now = set(self.mapper.open_calls())
            late = {
                ref
                for ref, started in call_starts(rows).items()
                if started < logged_in_at and ref not in known and ref not in open_now
            }
            if not late:
                continue
            known |= late
            self.log.info("asterisk CEL rows written late read", calls=len(late))
            told = await self._replay(sink, since, rows, late)
            unfinished = {ref: answered for ref, answered in told.items() if ref in late}
            if unfinished:  # neither live nor ended in the records yet: as for the first read
                self._unfinished.update(unfinished)
                if self._follow_up is None or self._follow_up.done():
                    self._follow_up = asyncio.create_task(self._recover_unfinished(sink, since), name="cel-follow-up")

    async def _recover_from(self, sink: EventSink, since: datetime, only: set[str] | None) -> dict[str, bool]:
        """Store the records' events (of the calls in ``only``, if given); the calls they leave open,
        each with whether it was answered."""
        return await self._replay(sink, since, await self._record_rows(since), only)

    async def _record_rows(self, since: datetime) -> list[Row]:
        """The rows of Asterisk's records (every configured source) since ``since``."""
        rows: list[Row] = []
        for source in self.records:
            try:
                rows.extend(await source.rows(since))
            except (OSError, sqlite3.Error, ValueError) as exc:
                self.log.error("asterisk CEL records unreadable; missed calls not recovered", error=str(exc))
        return rows

    async def _replay(
        self, sink: EventSink, since: datetime, rows: list[Row], only: set[str] | None
    ) -> dict[str, bool]:
        """Store the events ``rows`` (read from ``since``) tell, of the calls in ``only`` if given; the
        calls they leave open, each with whether it was answered."""
        mapper = self._new_mapper()
        events = [event for event in cel_events(rows, mapper) if only is None or event.call_ref in only]
        for event in events:
            await self._emit(sink, marked_missed(event, first_session=self.sessions == 1))
        self.log.info("asterisk CEL records read", since=since.isoformat(), rows=len(rows), call_events=len(events))
        return {call.ref: call.state.answered_at is not None for call in mapper.tracker.calls()}

    async def _recover_unfinished(self, sink: EventSink, since: datetime) -> None:
        try:
            for _ in range(_FOLLOW_UPS):
                await asyncio.sleep(_FOLLOW_UP_SECONDS)
                # Calls the live stream took over since (their events named them) need nothing more.
                for ref in self.mapper.open_calls():
                    self._unfinished.pop(ref, None)
                if self._unfinished:
                    still = await self._recover_from(sink, since, set(self._unfinished))
                    self._unfinished = {ref: still[ref] for ref in self._unfinished if ref in still}
                if not self._unfinished:
                    return
            # Neither live nor ended in the records: gone unseen, like a call the list no longer has.
            self.log.warning("calls begun in asterisk's CEL have no end there; closed", calls=len(self._unfinished))
            now = datetime.now(UTC)
            marker = missed_marker(first_session=self.sessions == 1)
            for ref, answered in sorted(self._unfinished.items()):
                end = vanished_end(answered, marker, "call no longer on the switch and no end in its records")
                key = f"{ref}:cel-unfinished:{end.event_type.value}"
                await self._emit(sink, SwitchEvent(ref, end.event_type, now, key, end.metadata, None, None, "cel"))
            self._unfinished = {}
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
            self._originating.discard(ref)
            if ami.get("Context") == self.settings.hold_context:
                parted.setdefault(ref, {})[ami.get("Exten", "")] = ami.get("Channel", "")
        # What is held is what the switch shows in the hold context (a calld restarted during a
        # hold can still resume it; a call resumed or ended meanwhile is no longer held).
        self._held = {
            ref: (legs["wait"], legs["hold"]) for ref, legs in parted.items() if {"hold", "wait"} <= legs.keys()
        }
        times = await self._channel_times([ami for ami in rows if not self.mapper.knows(ami)])
        for event in [*self.mapper.reconcile(live, now), *self.mapper.adopt(rows, now, times)]:
            await self._emit(sink, event)
        self._live_at_resync = frozenset(self.mapper.open_calls())
        self.log.info("asterisk resynchronised", live_calls=len(live))

    async def _channel_times(self, rows: list[AmiMessage]) -> dict[str, ChannelTimes]:
        """When each of these live channels started and was answered, as the switch's CDR says
        (``CDR(start,u)``, ``CDR(answer,u)``: microseconds, where the channel list has whole seconds
        of age). A channel whose CDR cannot be read (CDR off, channel gone) is left out."""

        async def read(ami: AmiMessage) -> tuple[str, ChannelTimes] | None:
            channel = ami.get("Channel", "")
            try:
                start, answer = [
                    await self._action("Getvar", {"Channel": channel, "Variable": f"CDR({field},u)"})
                    for field in ("start", "answer")
                ]
            except (SwitchError, SwitchUnavailable):
                return None
            times = ChannelTimes(cdr_instant(start.ami.get("Value")), cdr_instant(answer.ami.get("Value")))
            return ami.get("Uniqueid", ""), times

        found = await asyncio.gather(*(read(ami) for ami in rows if ami.get("Channel") and ami.get("Uniqueid")))
        return dict(item for item in found if item is not None)

    async def _deliver(self, sink: EventSink, ami: AmiMessage, received_at: datetime) -> None:
        name = ami.event
        if name == "Newchannel" and ami.get("Uniqueid") and ami.get("Channel"):
            # The originated call has a channel now: its Hangup will end it.
            self._originating.discard(ami.get("Linkedid") or ami.get("Uniqueid", ""))
        if name == "OriginateResponse":
            await self._originate_response(sink, ami)
        for event in self.mapper.map(ami, received_at):
            await self._emit(sink, event)
        if name == "Hangup":
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

    def _new_mapper(self) -> AmiEventMapper:
        s = self.settings
        return AmiEventMapper(
            s.inbound_contexts,
            s.outbound_contexts,
            hold_context=s.hold_context,
            internal_extensions=extensions_pattern(s.internal_extensions),
        )

    def open_calls(self) -> list[str]:
        return self.mapper.open_calls()

    def live_at_resync(self) -> frozenset[str]:
        return self._live_at_resync

    # --- the channels control actions act on (the mapper knows each call's live channels) --------

    def _channels(self, call_ref: str) -> list[str]:
        channels = self.mapper.channels(call_ref)
        if not channels:
            raise SwitchError(f"call {call_ref} has no live channel on Asterisk")
        return channels

    def _near(self, call_ref: str) -> str:
        """calld's user's channel (``calld.adapters.tracking.control_leg``)."""
        channel = self.mapper.control_channel(call_ref, near=True)
        if channel is None:
            raise SwitchError(f"call {call_ref} has no live channel on Asterisk")
        return channel

    def _far(self, call_ref: str) -> str:
        """The far party's channel: never calld's user's."""
        near = self._near(call_ref)
        far = self.mapper.control_channel(call_ref, near=False)
        if far is None or far == near:
            raise SwitchError(f"call {call_ref} has no far party to hold")
        return far

    # --- actions --------------------------------------------------------------------------------

    def _secret(self) -> str:
        if self.settings.secret:
            return self.settings.secret
        with open(self.settings.secret_file, encoding="utf-8") as handle:
            return handle.readline().strip()

    async def _action(self, action: str, headers: Mapping[str, str], *, as_list: bool = False) -> Any:
        """Send ``action``; its response (or list of messages). Error -> SwitchError."""
        manager = self._manager
        if manager is None or not manager.is_connected:
            raise SwitchUnavailable("not connected to Asterisk AMI")
        return await manager.action(action, headers, self.settings.action_timeout_seconds, as_list=as_list)

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
        legs = self._channels(call_ref)
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
        near = self._near(call_ref)
        before = frozenset(self._channels(call_ref))
        headers = {"Channel": near, "Exten": target, "Context": context}
        await self._action("Atxfer" if attended else "BlindTransfer", headers)
        if attended:
            self._consulting[call_ref] = (near, before)
            self.mapper.transfer_asked(call_ref, target)

    def _consultation(self, call_ref: str) -> tuple[str, frozenset[str]]:
        found = self._consulting.get(call_ref)
        if found is None or found[0] not in self.mapper.channels(call_ref):
            self._consulting.pop(call_ref, None)
            raise SwitchError(f"call {call_ref} has no attended transfer in progress begun by calld")
        return found

    async def complete_transfer(self, call_ref: str) -> None:
        # The transferer hanging up completes an Atxfer (atxferdropcall off): Asterisk merges the
        # bridges and sends AttendedTransfer (seen live, lab capture attended_transfer).
        transferer, _ = self._consultation(call_ref)
        await self._action("Hangup", {"Channel": transferer})
        self._consulting.pop(call_ref, None)

    async def cancel_transfer(self, call_ref: str) -> None:
        # The consultation's own legs (the Local pair dialling the target) hung up: Asterisk gives
        # the transferer back to the transferee (whose Unhold confirms it).
        transferer, before = self._consultation(call_ref)
        consultation = [c for c in self.mapper.channels(call_ref) if c not in before and c != transferer]
        if not consultation:
            raise SwitchError(f"call {call_ref}: the consultation call has already ended")
        for channel in consultation:
            with contextlib.suppress(SwitchError):
                await self._action("Hangup", {"Channel": channel})
        self._consulting.pop(call_ref, None)

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

    async def park(self, call_ref: str, slot: str | None) -> None:
        """AMI ``Park`` (res_parking) of the far party into ``parking_lot`` (``slot``, or the lot's
        next free space); its ``ParkedCall`` confirms it with the space."""
        headers = {"Channel": self._far(call_ref), "Parkinglot": self.settings.parking_lot}
        if slot:
            headers["ParkingSpace"] = slot
        await self._action("Park", headers)

    async def pickup(self, call_ref: str, slot: str, to: str) -> None:
        """Ring ``to`` and, answered, send it to the slot's extension in ``parking_context`` (res_parking
        registers one per space): it takes the call; ``UnParkedCall`` confirms it."""
        headers = {
            "Channel": self.settings.originate_channel.format(caller=to, recipient=slot),
            "Context": self.settings.parking_context,
            "Exten": slot,
            "Priority": "1",
            "Async": "true",
            "CallerID": slot,
            "Timeout": str(int(self.settings.originate_timeout_seconds * 1000)),
        }
        await self._action("Originate", headers)

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

    async def _report(self, call_ref: str, channel: str, kind: EventType, action: str, meta: dict[str, Any]) -> None:
        """Store what Asterisk answered Success to (it sends no event for MuteAudio nor PlayDTMF)."""
        now = datetime.now(UTC)
        key = f"{channel}:{action}:{now.timestamp():.6f}:{kind.value}"
        event = self.mapper.reported(call_ref, channel, kind, now, key, meta)
        if event is not None and self._sink is not None:
            await self._emit(self._sink, event)

    async def mute(self, call_ref: str, near: bool, on: bool) -> None:
        # Direction "in": the audio the channel brings into Asterisk, i.e. what that party says.
        channel = self._near(call_ref) if near else self._far(call_ref)
        await self._action("MuteAudio", {"Channel": channel, "Direction": "in", "State": "on" if on else "off"})
        await self._report(call_ref, channel, EventType.MUTED if on else EventType.UNMUTED, "MuteAudio", {})

    async def send_dtmf(self, call_ref: str, near: bool, digits: str, duration_ms: int | None) -> None:
        # PlayDTMF plays one digit to the channel's phone (RFC 4733 or SIP INFO, per the endpoint).
        channel = self._near(call_ref) if near else self._far(call_ref)
        for digit in digits:
            headers = {"Channel": channel, "Digit": digit}
            if duration_ms is not None:
                headers["Duration"] = str(duration_ms)
            await self._action("PlayDTMF", headers)
        meta: dict[str, Any] = {"digits": digits, "direction": "sent"}
        if duration_ms is not None:
            meta["duration_ms"] = duration_ms
        await self._report(call_ref, channel, EventType.DTMF, "PlayDTMF", meta)

    async def pause_recording(self, call_ref: str, path: str, paused: bool) -> None:
        # MixMonitorMute writes silence for both directions until unmuted; its MixMonitorMute event
        # (State 1 / 0) confirms it.
        file = self.recording_file(path) if path else ""
        channel = self._recording_channel.get(file) or self._near(call_ref)
        await self._action("MixMonitorMute", {"Channel": channel, "Direction": "both", "State": "1" if paused else "0"})

    async def answer(self, call_ref: str) -> None:
        # AMI has no action that answers a channel (ARI has); the phone or the dialplan answers.
        raise SwitchError(
            "Asterisk's manager interface cannot answer a ringing channel: answer from the phone, "
            "or route the call to an extension that answers"
        )

    async def reject(self, call_ref: str) -> None:
        # Hang the caller's channel up with cause 21 (call rejected): chan_pjsip answers it 403 (seen
        # live) and CANCELs the phone being rung; its Hangup (cause 21: busy, like a decline) ends the call.
        channel = self.mapper.control_channel(call_ref, near=False)
        if channel is None:
            raise SwitchError(f"call {call_ref} has no live channel on Asterisk")
        await self._action("Hangup", {"Channel": channel, "Cause": "21"})

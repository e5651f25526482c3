"""The FreeSWITCH switch adapter: the Event Socket (inbound mode) through ``EslConnection``.

``FreeswitchAdapter.run(sink)`` connects, authenticates, subscribes to the events the mapper uses
(``event json`` by default: cheaper to decode than plain, see ``client.py``), resynchronises from
``show channels as json`` (adopting calls already up, closing those that ended while we were
away) and then feeds every event through ``EventMapper`` to ``sink`` in wire order. On any loss it
reconnects with capped exponential backoff; the mapper (and so its knowledge of open calls)
survives reconnects, and event keys are stable, so the sink's de-duplication makes a replay
harmless. On shutdown it says ``exit`` so the switch closes its side cleanly.

Control commands are ``api`` commands (answered in order with an ``api/response``) except
``originate``, which can take as long as the far phone rings and so goes through ``bgapi``:
the REST call returns once FreeSWITCH accepted the job, and an origination that fails before
any channel exists (unknown user, unregistered phone) is reported from its BACKGROUND_JOB.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import posixpath
import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import structlog

from calld.adapters.backoff import Backoff
from calld.adapters.freeswitch.cdr import cdr_events
from calld.adapters.freeswitch.cdr_source import cdr_sources
from calld.adapters.freeswitch.client import EslAuthFailed, EslClosed, EslConnection
from calld.adapters.freeswitch.esl_codec import (
    CT_API_RESPONSE,
    EslProtocolError,
    Frame,
    encode_api,
    encode_bgapi,
    encode_event_subscription,
    encode_execute,
    encode_exit,
    not_wanted,
)
from calld.adapters.freeswitch.mapping import EventMapper, event_time
from calld.adapters.freeswitch.settings import FreeswitchConfig
from calld.adapters.port import EventSink, SwitchError, SwitchUnavailable
from calld.adapters.records import marked_missed
from calld.domain.direction import extensions_pattern
from calld.domain.events import SwitchEvent
from calld.domain.vocabulary import CallDirection, EventType

# The events EventMapper reads (tests/freeswitch/test_adapter_subscription.py checks that mapping
# only these gives the same call events as mapping everything), plus BACKGROUND_JOB for originate.
SUBSCRIBED_EVENTS: Final = (
    "CHANNEL_CREATE",
    "CHANNEL_UUID",
    "CHANNEL_OUTGOING",
    "CHANNEL_ORIGINATE",
    "CHANNEL_PROGRESS",
    "CHANNEL_PROGRESS_MEDIA",
    "CHANNEL_ANSWER",
    "CHANNEL_BRIDGE",
    "CHANNEL_UNBRIDGE",  # the first event of a blind-transferred leg with Caller-Transfer-Source
    "CHANNEL_HOLD",
    "CHANNEL_UNHOLD",
    "CHANNEL_EXECUTE",
    "CHANNEL_HANGUP_COMPLETE",
    "RECORD_START",
    "RECORD_STOP",
    "DTMF",
    "MEDIA_BUG_START",  # uuid_audio's mute bug: muted / unmuted
    "MEDIA_BUG_STOP",
    "BACKGROUND_JOB",
)
SUBSCRIBED_SUBCLASSES: Final = ("conference::maintenance", "valet_parking::info")
_WANTED: Final = frozenset(SUBSCRIBED_EVENTS)
_WANTED_OR_CUSTOM: Final = _WANTED | {"CUSTOM"}  # a CUSTOM event's subclass is known once decoded

# Records are read from a little before the last event seen: the switch writes a leg's record a
# moment after its hangup, and its clock and ours differ.
_RECORDS_MARGIN: Final = timedelta(seconds=30)

# Asked on every connect: the live channels (to resync) and the version (for the log).
LIST_CHANNELS: Final = encode_api("show channels as json")
VERSION: Final = encode_api("version")

# Characters that would end or break an originate variable (``{a=b,c='d e'}``) or the command.
_UNSAFE_IN_VARIABLE: Final = frozenset(",{}'\n\r\t")
_ORIGINATION_UUID: Final = re.compile(r"origination_uuid=([0-9a-fA-F-]{36})")
_SENT_DTMF: Final = re.compile(r"sent DTMF ([0-9*#A-Da-d]+)")


def _check_word(value: str, *, spaces: bool = False) -> None:
    """Refuse a value that would break the originate command it goes into."""
    if not value or _UNSAFE_IN_VARIABLE.intersection(value) or (not spaces and " " in value):
        raise SwitchError(f"cannot originate with {value!r}: empty, or a character FreeSWITCH would misread")


def subscription_command(event_format: str = "json") -> bytes:
    """``event json|plain <events> CUSTOM <subclasses>``: what calld listens to."""
    return encode_event_subscription(event_format, (*SUBSCRIBED_EVENTS, "CUSTOM", *SUBSCRIBED_SUBCLASSES))


def wanted(event: Mapping[str, str]) -> bool:
    """Whether calld subscribed to ``event`` (a switch may still send others, e.g. ``API``)."""
    name = event.get("Event-Name", "")
    if name == "CUSTOM":
        return event.get("Event-Subclass", "") in SUBSCRIBED_SUBCLASSES
    return name in _WANTED


class FreeswitchAdapter:
    """``SwitchPort`` for FreeSWITCH over the Event Socket."""

    name: str

    def __init__(self, settings: FreeswitchConfig, *, queue_reads: int = 64) -> None:
        self.settings = settings
        self.log = structlog.get_logger("calld.freeswitch")
        directions = {context: CallDirection.INBOUND for context in settings.inbound_contexts}
        directions.update({context: CallDirection.OUTBOUND for context in settings.outbound_contexts})
        self.mapper = EventMapper(directions, internal_extensions=extensions_pattern(settings.internal_extensions))
        self._queue_reads = queue_reads
        self._conn: EslConnection | None = None
        self.name = settings.name
        self.connected = asyncio.Event()
        self.resynced = asyncio.Event()
        self.sessions = 0  # successful logins, for diagnostics and tests
        directories = (*settings.cdr_json_directories, settings.cdr_receiver_directory)
        self.records = cdr_sources(settings.cdr_csv, [path for path in directories if path])
        # Where the next recovery from the records starts: set by the daemon before the first
        # session (the last call it stored), then the time of the last read of each session.
        self.recover_since: datetime | None = None
        self._live_at_resync: frozenset[str] = frozenset()
        # Where events go; set by ``run``. Digits sent raise no switch event: their answer is the report.
        self._sink: EventSink | None = None
        # call_ref -> (calld's user's leg, the call's legs before) of an att_xfer in progress.
        self._consulting: dict[str, tuple[str, frozenset[str]]] = {}

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
                    self.log.warning("freeswitch event socket refused; retrying", error=str(exc))
            except EslAuthFailed as exc:
                self.log.error("freeswitch refused the event socket password", error=str(exc))
            except (OSError, TimeoutError, EslClosed, EslProtocolError, SwitchError, SwitchUnavailable) as exc:
                self.log.warning("freeswitch event socket connection failed", error=str(exc) or repr(exc))
            finally:
                self.connected.clear()
                conn, self._conn = self._conn, None
                if conn is not None:
                    await self._goodbye(conn)
            if logged_in:
                backoff.reset()
                refusals = 0
            if not refused:
                self.log.info("freeswitch event socket reconnecting", delay_seconds=backoff.next_delay())
            await backoff.wait(refused)

    async def _session(self, sink: EventSink) -> bool:
        """One connection: auth, subscribe, resync, then events until the link is lost."""
        s = self.settings
        conn = await EslConnection.open(s.host, s.port, self._password(), s.command_timeout_seconds, self._queue_reads)
        self._conn = conn
        reply = await conn.command(subscription_command(s.event_format), s.command_timeout_seconds)
        if not reply.reply_text.startswith("+OK"):
            raise SwitchError(f"FreeSWITCH refused the event subscription: {reply.reply_text}")
        self.sessions += 1
        # Neither is awaited here: events queued meanwhile must be drained for replies to get
        # through. In band, the channel list takes its place in the event stream, so events that
        # arrived before it are applied before it and those after it, after.
        listing = asyncio.ensure_future(conn.command(LIST_CHANNELS, s.command_timeout_seconds, in_band=True))
        version = asyncio.ensure_future(conn.command(VERSION, s.command_timeout_seconds))
        version.add_done_callback(self._log_connected)
        listing.add_done_callback(self._log_unlisted)
        self.connected.set()
        last_read: datetime | None = None
        try:
            while (frames := await conn.frames.get()) is not None:
                last_read = datetime.now(UTC)
                for frame in frames:
                    if frame.is_event:
                        for switch_event in self._map_event(frame):
                            await self._emit(sink, switch_event)
                    elif frame.content_type == CT_API_RESPONSE:
                        await self._resync(sink, frame)
        finally:
            if listing.done() and last_read is not None:
                self.recover_since = last_read  # the next connect recovers from here
            for query in (listing, version):
                query.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await query
        self.log.warning("freeswitch event socket closed")
        return True

    def _log_connected(self, version: asyncio.Future[Frame]) -> None:
        if version.cancelled() or version.exception() is not None:
            return
        where = f"{self.settings.host}:{self.settings.port}"
        self.log.info("freeswitch event socket connected", address=where, version=version.result().text.strip())

    def _log_unlisted(self, listing: asyncio.Future[Frame]) -> None:
        if not listing.cancelled() and listing.exception() is not None:
            error = repr(listing.exception())
            self.log.warning("freeswitch channel list not answered; not resynchronised", error=error)

    def _map_event(self, frame: Frame) -> list[SwitchEvent]:
        """The call events one event frame causes (none for the many that change nothing)."""
        if not_wanted(frame, _WANTED_OR_CUSTOM):
            return []  # not subscribed (a switch may still send it): not worth decoding
        try:
            event = frame.event()
        except EslProtocolError as exc:
            self.log.warning("undecodable freeswitch event skipped", error=str(exc))
            return []
        if not wanted(event):
            return []
        if event.get("Event-Name") == "BACKGROUND_JOB":
            return self._job_done(event)
        return self.mapper.map(event)

    async def _resync(self, sink: EventSink, frame: Frame) -> None:
        """Adopt the calls FreeSWITCH has now; close the ones it no longer has."""
        try:
            listing: Any = json.loads(frame.body or b"{}")
            rows = [row for row in listing.get("rows", []) if isinstance(row, dict)]
        except (ValueError, AttributeError):
            self.log.warning("freeswitch channel list unreadable; not resynchronised", body=frame.text[:200])
            return
        await self._recover(sink)
        now = datetime.now(UTC)
        events = self.mapper.reconcile({str(row.get("uuid", "")) for row in rows}, now)
        events += self.mapper.adopt([{k: str(v) for k, v in row.items()} for row in rows])
        for switch_event in events:
            await self._emit(sink, replace(switch_event, recovered_from="channels"))
        self._live_at_resync = frozenset(self.mapper.open_calls())
        self.log.info("freeswitch resynchronised", live_channels=len(rows), open_calls=len(self.mapper.open_calls()))
        self.resynced.set()

    async def _recover(self, sink: EventSink) -> None:
        """Store what FreeSWITCH's own records (CDRs) say happened since ``recover_since``."""
        since = self.recover_since
        if since is None or not self.records:
            return
        since -= _RECORDS_MARGIN
        legs = []
        for source in self.records:
            try:
                legs.extend(await source.legs(since - timedelta(seconds=self.settings.records_lookback_seconds)))
            except OSError as exc:
                self.log.error("freeswitch CDR records unreadable; missed calls not recovered", error=str(exc))
        mapper = EventMapper(self.mapper.context_directions, internal_extensions=self.mapper.internal_extensions)
        events = cdr_events(legs, mapper)
        # Only calls with something in the window: older ones were stored when they happened.
        recent = {event.call_ref for event in events if event.timestamp >= since}
        events = [event for event in events if event.call_ref in recent]
        for event in events:
            await self._emit(sink, marked_missed(event, first_session=self.sessions == 1))
        self.log.info("freeswitch CDR records read", since=since.isoformat(), legs=len(legs), call_events=len(events))

    def open_calls(self) -> list[str]:
        return self.mapper.open_calls()

    def live_at_resync(self) -> frozenset[str]:
        return self._live_at_resync

    def _job_done(self, event: Mapping[str, str]) -> list[SwitchEvent]:
        """An originate job finished: report a refusal that left no channel behind.

        The job's arguments carry the ``origination_uuid`` (calld's call id); when that channel
        was never seen, nothing else will ever say the call failed.
        """
        result = event.get("_body", "").strip()
        if event.get("Job-Command") != "originate" or not result.startswith("-"):
            return []
        match = _ORIGINATION_UUID.search(event.get("Job-Command-Arg", ""))
        if match is None or self.mapper.has_seen(match.group(1)):
            return []  # not placed by calld, or its channel's own events tell how it ended
        call_id = match.group(1)
        reason = result.removeprefix("-ERR").strip() or result
        return [
            SwitchEvent(
                call_ref=call_id,
                event_type=EventType.FAILED,
                timestamp=event_time(event),
                key=f"fs:job:{event.get('Job-UUID', '')}",
                metadata={"cause": reason, "reason": f"FreeSWITCH could not place the call: {reason}"},
                calld_call_id=call_id,
            )
        ]

    async def _emit(self, sink: EventSink, event: SwitchEvent) -> None:
        try:
            await sink(event)
        except Exception:  # one failed write must not stop the stream
            self.log.exception("storing a freeswitch event failed", call_ref=event.call_ref, event=event.event_type)

    async def _goodbye(self, conn: EslConnection) -> None:
        # A polite "exit" lets FreeSWITCH drop our listener at once instead of at its next write.
        if not conn.closed:
            with contextlib.suppress(EslClosed, OSError, TimeoutError):
                await conn.command(encode_exit(), min(1.0, self.settings.command_timeout_seconds))
        await conn.close()

    # --- commands -------------------------------------------------------------------------------

    def _password(self) -> str:
        if self.settings.password:
            return self.settings.password
        with open(self.settings.password_file, encoding="utf-8") as handle:
            return handle.readline().strip()

    async def _send(self, command: bytes) -> Frame:
        conn = self._conn
        if conn is None or conn.closed or not self.connected.is_set():
            raise SwitchUnavailable("not connected to the FreeSWITCH event socket")
        try:
            return await conn.command(command, self.settings.command_timeout_seconds)
        except TimeoutError:
            raise SwitchUnavailable("FreeSWITCH did not answer in time") from None
        except EslClosed as exc:
            raise SwitchUnavailable(f"FreeSWITCH event socket closed: {exc}") from None

    async def _api(self, command: str) -> str:
        """Run ``api <command>``; its result, or SwitchError with FreeSWITCH's ``-ERR`` text."""
        reply = await self._send(encode_api(command))
        result = reply.text.strip()
        if result.startswith("-"):
            raise SwitchError(f"FreeSWITCH refused {command.split(' ', 1)[0]}: {result.removeprefix('-ERR').strip()}")
        return result

    def _leg(self, call_ref: str, *, near: bool) -> str:
        leg = self.mapper.control_leg(call_ref, near)
        if leg is None:
            raise SwitchError(f"call {call_ref} has no live channel on FreeSWITCH")
        return leg

    async def originate(self, calld_call_id: str, recipient: str, caller: str | None) -> str:
        s = self.settings
        if not caller:
            raise SwitchError("FreeSWITCH needs a caller_number: the phone calld rings first")
        number = s.originate_caller_id_number or recipient
        for value in (caller, recipient, number):
            _check_word(value)
        _check_word(s.originate_caller_id_name, spaces=True)
        # calld's call id becomes the first channel's uuid, so every event of it names the call.
        variables = (
            f"origination_uuid={calld_call_id},origination_caller_id_number={number},"
            f"origination_caller_id_name='{s.originate_caller_id_name}'"
        )
        endpoint = s.originate_endpoint.format(caller=caller, recipient=recipient)
        command = f"originate {{{variables}}}{endpoint} {recipient} XML {s.originate_context}"
        reply = await self._send(encode_bgapi(command))
        if not reply.reply_text.startswith("+OK"):
            raise SwitchError(f"FreeSWITCH refused originate: {reply.reply_text.removeprefix('-ERR').strip()}")
        return calld_call_id

    async def hangup(self, call_ref: str) -> None:
        # Killing the first leg ends the call (the others hang up after the bridge); if it is
        # already gone (transferred away), kill what is left.
        live = self.mapper.correlator.legs(call_ref)
        await self._api(f"uuid_kill {call_ref if call_ref in live else self._leg(call_ref, near=False)}")

    async def transfer(self, call_ref: str, target: str, attended: bool = False) -> None:
        if attended:
            await self._attended_transfer(call_ref, target)
            return
        far = self._leg(call_ref, near=False)
        context = self.settings.transfer_context or self.settings.originate_context
        await self._api(f"uuid_transfer {far} {target} XML {context}")

    async def hold(self, call_ref: str) -> None:
        # uuid_hold on a leg puts its peer on hold (music on hold): holding the near party's leg
        # is calld's user holding the far party.
        await self._api(f"uuid_hold {self._leg(call_ref, near=True)}")

    async def unhold(self, call_ref: str) -> None:
        await self._api(f"uuid_hold off {self._leg(call_ref, near=True)}")

    def recording_file(self, path: str) -> str:
        """``path`` on the switch: relative paths live under ``recording_directory``."""
        if posixpath.isabs(path):
            return path
        return posixpath.join(self.settings.recording_directory, path)

    async def start_recording(self, call_ref: str, path: str) -> None:
        await self._api(f"uuid_record {self._leg(call_ref, near=True)} start {self.recording_file(path)}")

    async def stop_recording(self, call_ref: str, path: str) -> None:
        target = self.recording_file(path) if path else "all"
        await self._api(f"uuid_record {self._leg(call_ref, near=True)} stop {target}")

    async def mute(self, call_ref: str, near: bool, on: bool) -> None:
        # "read" is what the leg's phone sends (what that party says). FreeSWITCH answers -USAGE to
        # "mute" without a level (n_controls); its MEDIA_BUG_START/STOP (audio, mute) confirm it.
        leg = self._leg(call_ref, near=near)
        await self._api(f"uuid_audio {leg} start read mute 1" if on else f"uuid_audio {leg} stop")

    async def send_dtmf(self, call_ref: str, near: bool, digits: str, duration_ms: int | None) -> None:
        # FreeSWITCH reads "<digits>@<ms>" as the digits and each one's duration.
        leg = self._leg(call_ref, near=near)
        answer = await self._api(f"uuid_send_dtmf {leg} {digits}" + ("" if duration_ms is None else f"@{duration_ms}"))
        # The answer is the only report: "+OK <uuid> sent DTMF 12#." (the digits as it took them).
        said = _SENT_DTMF.search(answer)
        await self._report(
            call_ref, leg, EventType.DTMF, {"digits": said.group(1) if said else digits, "direction": "sent"}
        )

    async def _report(self, call_ref: str, leg: str, kind: EventType, meta: dict[str, Any]) -> None:
        """Store what FreeSWITCH answered +OK to and raises no event for."""
        now = datetime.now(UTC)
        event = self.mapper.reported(call_ref, leg, kind, now, f"fs:{kind.value}:{leg}:{now.timestamp():.6f}", meta)
        if event is not None and self._sink is not None:
            await self._emit(self._sink, event)

    async def pause_recording(self, call_ref: str, path: str, paused: bool) -> None:
        # "mask" writes silence in place of the call's audio until "unmask" (n_controls); neither
        # raises an event, so their "+OK Success" is the report. The recording is on the near leg.
        if not path:
            raise SwitchError(f"call {call_ref}: no recording file known to {'pause' if paused else 'resume'}")
        leg = self._leg(call_ref, near=True)
        file = self.recording_file(path)
        await self._api(f"uuid_record {leg} {'mask' if paused else 'unmask'} {file}")
        kind = EventType.RECORDING_PAUSED if paused else EventType.RECORDING_RESUMED
        await self._report(call_ref, leg, kind, {"path": file})

    async def _attended_transfer(self, call_ref: str, target: str) -> None:
        # att_xfer run on calld's user's leg (n3_att_xfer): it dials the target while the far party
        # waits; when that leg hangs up, FreeSWITCH uuid_bridges the target to the far party.
        _check_word(target)
        near = self._leg(call_ref, near=True)
        before = self.mapper.correlator.legs(call_ref)
        endpoint = self.settings.transfer_endpoint.format(target=target)
        reply = await self._send(encode_execute(near, "att_xfer", endpoint))
        if not reply.reply_text.startswith("+OK"):
            raise SwitchError(f"FreeSWITCH refused att_xfer: {reply.reply_text.removeprefix('-ERR').strip()}")
        self._consulting[call_ref] = (near, before)

    def _consultation(self, call_ref: str) -> tuple[str, frozenset[str]]:
        found = self._consulting.get(call_ref)
        if found is None or found[0] not in self.mapper.correlator.legs(call_ref):
            self._consulting.pop(call_ref, None)
            raise SwitchError(f"call {call_ref} has no attended transfer in progress begun by calld")
        return found

    async def complete_transfer(self, call_ref: str) -> None:
        # calld's user's leg leaving is what completes att_xfer (n3_att_xfer: the agent hung up).
        near, _ = self._consultation(call_ref)
        await self._api(f"uuid_kill {near}")
        self._consulting.pop(call_ref, None)

    async def cancel_transfer(self, call_ref: str) -> None:
        # The consultation leg hung up: att_xfer gives calld's user back to the far party.
        near, before = self._consultation(call_ref)
        consultation = [leg for leg in self.mapper.correlator.legs(call_ref) if leg not in before and leg != near]
        if not consultation:
            raise SwitchError(f"call {call_ref}: the consultation call has already ended")
        for leg in consultation:
            await self._api(f"uuid_kill {leg}")
        self._consulting.pop(call_ref, None)

    async def park(self, call_ref: str, slot: str | None) -> None:
        # The far leg is sent to a slot's extension, whose dialplan runs valet_park (n5_valet_park:
        # "answer, valet_park valet_parking_lot 6001"); valet_parking::info Action hold confirms it.
        extension = slot or self.settings.park_extension
        if not extension:
            raise SwitchError(
                "FreeSWITCH parks by sending the call to a slot's extension: give slot, or set "
                "[freeswitch] park_extension"
            )
        far = self._leg(call_ref, near=False)
        context = self.settings.transfer_context or self.settings.originate_context
        await self._api(f"uuid_transfer {far} {extension} XML {context}")

    async def pickup(self, call_ref: str, slot: str, to: str) -> None:
        # As a phone takes a parked call (n5_valet_park: 1002 dials 6001): ``to`` is rung and, answered,
        # dials the slot; valet_park bridges it (valet_parking::info Action bridge confirms it).
        # No capture holds calld's own originate for this (the lab's phone dialled): see the README.
        _check_word(to)
        _check_word(slot)
        endpoint = self.settings.transfer_endpoint.format(target=to)
        context = self.settings.transfer_context or self.settings.originate_context
        variables = f"origination_caller_id_number={slot},origination_caller_id_name='parked call'"
        reply = await self._send(encode_bgapi(f"originate {{{variables}}}{endpoint} {slot} XML {context}"))
        if not reply.reply_text.startswith("+OK"):
            raise SwitchError(f"FreeSWITCH refused originate: {reply.reply_text.removeprefix('-ERR').strip()}")

    async def answer(self, call_ref: str) -> None:
        # The switch answers the caller's leg (n2_uuid_answer): its CHANNEL_ANSWER confirms it.
        await self._api(f"uuid_answer {self._first_leg(call_ref)}")

    async def reject(self, call_ref: str) -> None:
        # Hung up with CALL_REJECTED (Q.850 21); its hangup ends the call.
        # No capture holds this command (the lab recorded none): see tests/data/freeswitch/README.md.
        await self._api(f"uuid_kill {self._first_leg(call_ref)} CALL_REJECTED")

    def _first_leg(self, call_ref: str) -> str:
        """The caller's leg (the call's first), while it is up."""
        if call_ref not in self.mapper.correlator.legs(call_ref):
            raise SwitchError(f"call {call_ref}: the caller's leg is no longer on FreeSWITCH")
        return call_ref

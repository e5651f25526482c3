"""Map AMI events to calld ``SwitchEvent``s. Pure and synchronous: no I/O, no clock.

One calld call is one Asterisk ``Linkedid``: every leg (the caller's channel, the dialled one,
Local channel pairs, the target of a transfer) shares it, so a transfer stays ONE call with
transfer events. ``AmiEventMapper`` keeps the small per-call state needed to correlate legs and to
know when the last leg hung up; it mirrors each call through the domain reducer
(the shared ``calld.adapters.tracking.CallTracker``) and only emits events the domain accepts, so a
consumer never sees an illegal sequence (a second ``answered``, an ``unhold`` that Asterisk sends
without a ``Hold``, anything after ``ended``). What it drops is listed in ``dropped`` for diagnostics.

Observed on Asterisk 22 (see tests/data/asterisk/README.md): AMI events carry no sequence number,
so an event's ``key`` is ``<uniqueid>:<Event>:<Timestamp>:<event type>`` (``timestampevents=yes``
gives microsecond timestamps); an originated channel is created ``Down`` in its endpoint's context
and only later learns the originate's caller id and variables, so its ``initiated`` is held back
until the call's first significant event.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from calld.adapters.asterisk.ami_codec import AmiMessage
from calld.adapters.asterisk.story import QOS_VARIABLE, hangup_by, leg_quality
from calld.adapters.tracking import CallTracker, TrackedCall, control_leg, party_label
from calld.domain.call import new_call
from calld.domain.direction import placed_direction
from calld.domain.events import CallParties, SwitchEvent
from calld.domain.participants import PartyRole
from calld.domain.quality import LegQuality, quality_metadata
from calld.domain.vocabulary import CallDirection, CallStatus, EventType

CALLD_CALL_ID_VAR = "CALLD_CALL_ID"

# Channels that are machinery, not call legs: ConfBridge announcer/recorder, message queue.
DEFAULT_IGNORED_CHANNELS: tuple[str, ...] = ("CBAnn/", "CBRec/", "Message/", "Announcer/", "Recorder/")

# Events that may follow an originated channel's Newchannel before it means anything; they are
# where the originate's caller id and variables show up, so ``initiated`` waits past them.
_SETUP_EVENTS = frozenset({"VarSet", "Newexten", "NewCallerid", "NewConnectedLine", "NewAccountCode"})

# Where an event names the channel it is about: its own, or (events about two channels) the one
# that belongs to the call: the dialled leg of an originate's DialBegin, a transfer's transferee.
_UID_HEADERS = ("Uniqueid", "DestUniqueid", "TransfereeUniqueid", "OrigTransfererUniqueid", "ParkeeUniqueid")

_CHANNEL_STATE_DOWN = "0"
_CHANNEL_STATE_RINGING = "5"
_CHANNEL_STATE_UP = "6"

# Q.850 causes (AMI ``Cause``) of an unanswered call -> outcome.
_CAUSE_NORMAL = 16
_CAUSE_REJECTED = 21
_BUSY_CAUSES = frozenset({17, 21})  # user busy; call rejected (a decline is a busy signal to the caller)
_NO_ANSWER_CAUSES = frozenset({18, 19})  # no user responding; no answer
_CANCEL_CAUSES = frozenset({0, 127})  # Asterisk reports 0 or 127 (interworking) on a CANCEL

# Dial()'s DIALSTATUS is more precise than the caller leg's cause (a no-answer Dial ends the caller
# with cause 16; a CANCELled one with 127), so it wins when present.
_DIAL_STATUS_OUTCOME: Mapping[str, CallStatus] = {
    "NOANSWER": CallStatus.NO_ANSWER,
    "BUSY": CallStatus.BUSY,
    "CANCEL": CallStatus.CANCELLED,
}
_DIAL_STATUS_FAILED = frozenset({"CONGESTION", "CHANUNAVAIL", "INVALIDARGS"})


@dataclass(slots=True)
class _Leg:
    uniqueid: str
    channel: str
    caller_number: str = ""
    was_bridged: bool = False
    hanging_up: bool = False
    recording_path: str | None = None


@dataclass(slots=True, kw_only=True)
class _Call(TrackedCall):
    parties: CallParties
    legs: dict[str, _Leg] = field(default_factory=dict)
    dial_status: str | None = None
    # The caller's leg says why the call ended; the other legs are hung up as a consequence.
    first_leg_cause: tuple[int | None, str] | None = None
    # (Uniqueid, HangupRequest or SoftHangupRequest) of the first hangup request: who ended the call.
    first_hangup_request: tuple[str, str] | None = None
    transfer_to: str | None = None
    conference: str | None = None
    # Each channel's RTP figures (RTPAUDIOQOS, set as it hangs up), by Uniqueid.
    leg_qualities: dict[str, LegQuality] = field(default_factory=dict)
    # On hold by music alone (calld's own hold), so only the music stopping takes it off hold.
    held_by_music: bool = False
    # (timestamp, key) of a held-back ``initiated``; None once emitted.
    pending_initiated: tuple[datetime, str] | None = None


def parse_timestamp(value: str) -> datetime:
    """AMI ``Timestamp`` (``1795567136.622984``, unix seconds) as an aware UTC datetime."""
    return datetime.fromtimestamp(float(value), tz=UTC)


def _header_values(event: Mapping[str, str], name: str) -> list[str]:
    if isinstance(event, AmiMessage):
        return event.get_all(name)
    value = event.get(name)
    return [] if value is None else [value]


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class ChannelTimes:
    """When the switch says a live channel started and was answered (None: not known, not answered)."""

    started: datetime | None
    answered: datetime | None


def cdr_instant(value: str | None) -> datetime | None:
    """A CDR time read raw (``CDR(start,u)``: epoch seconds with microseconds); None for unset or unreadable."""
    try:
        seconds = float(value or "")
    except ValueError:
        return None
    return datetime.fromtimestamp(seconds, UTC) if seconds > 0 else None


def _age(row: Mapping[str, str]) -> timedelta:
    """A ``CoreShowChannel`` item's ``Duration`` (``HH:MM:SS`` since the channel was created)."""
    parts = row.get("Duration", "").split(":")
    if len(parts) != 3 or not all(part.isascii() and part.isdigit() for part in parts):
        return timedelta(0)
    hours, minutes, seconds = (int(part) for part in parts)
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


def _lost_key(ref: str, event_type: EventType) -> str:
    """The key of the event that closes a call gone from the switch at a reconnect."""
    return f"{ref}:lost:{event_type.value}"


def _known(value: str) -> str:
    """``value`` unless it is Asterisk's placeholder for nothing."""
    return "" if value in ("<unknown>", "") else value


def _number_from_channel(channel: str) -> str:
    """``PJSIP/1001-0000001f`` -> ``1001``; ``Local/1003@ctx-00000000;1`` -> ``1003``."""
    resource = channel.split("/", 1)[-1]
    resource = resource.split("@", 1)[0]
    head, sep, tail = resource.rpartition("-")
    return head if sep and len(tail) == 8 else resource


class AmiEventMapper:
    """Turns AMI events into ``SwitchEvent``s, one call per ``Linkedid``.

    ``inbound_contexts``/``outbound_contexts`` name the dialplan contexts whose incoming calls are
    inbound or outbound for calld; other incoming calls get ``default_direction``. A call whose
    first channel Asterisk itself created (AMI ``Originate``, call files) is outbound. A call from an
    outbound context whose first channel dialled (``Exten``) an extension matching
    ``internal_extensions`` is internal (``calld.domain.direction``).
    """

    def __init__(
        self,
        inbound_contexts: Iterable[str] = (),
        outbound_contexts: Iterable[str] = (),
        default_direction: CallDirection = CallDirection.INBOUND,
        ignored_channels: Iterable[str] = DEFAULT_IGNORED_CHANNELS,
        hold_context: str | None = None,
        internal_extensions: re.Pattern[str] | None = None,
    ) -> None:
        self.inbound_contexts = frozenset(inbound_contexts)
        self.internal_extensions = internal_extensions
        # Where calld's hold parks the far party (extension "hold"): an adopted leg there is held.
        self.hold_context = hold_context
        self.outbound_contexts = frozenset(outbound_contexts)
        self.default_direction = default_direction
        self.ignored_channels = tuple(ignored_channels)
        self.tracker = CallTracker[_Call]()
        self._leg_call: dict[str, str] = {}  # uniqueid -> call ref

    @property
    def dropped(self) -> list[tuple[str, str]]:
        """(event key, reason) of events the domain would have refused; for logs and tests."""
        return self.tracker.dropped

    # --- public API -----------------------------------------------------------------------------

    def map(self, event: Mapping[str, str], received_at: datetime | None = None) -> list[SwitchEvent]:
        """The calld events for one AMI event (often none). ``received_at`` is used when the
        event has no ``Timestamp`` header (``timestampevents`` off)."""
        name = event.get("Event")
        if name is None:
            return []
        if "ActionID" in event and name != "CoreShowChannel":
            return []  # items of a list an action asked for (ConfbridgeList...), not things that happened
        if name == "CoreShowChannel":
            return []  # the resync's list: see ``adopt``
        handler = _HANDLERS.get(name)
        call = self._call_for(event)
        if call is None:
            if name == "Newchannel":
                return self._newchannel(event, self._timestamp(event, received_at))
            return []
        ts = self._timestamp(event, received_at)
        self._learn(call, event)
        out: list[SwitchEvent] = []
        if call.pending_initiated is not None and name not in _SETUP_EVENTS:
            out.extend(self._flush_initiated(call))
        if name == "Newchannel":
            self._add_leg(call, event, ts)
        elif handler is not None:
            out.extend(handler(self, call, event, ts))
        return out

    def open_calls(self) -> list[str]:
        """``call_ref`` of every call not yet ended."""
        return self.tracker.open_calls()

    def reconcile(self, live_refs: Collection[str], timestamp: datetime) -> list[SwitchEvent]:
        """After a reconnect: close the calls the switch no longer has.

        ``live_refs`` are the ``Linkedid``s listed by ``CoreShowChannels``. A call that vanished
        without a ``Hangup`` (Asterisk crashed, or events were lost while disconnected) would
        otherwise stay open forever: it is closed at ``timestamp`` by the vanished-call rule
        (``calld.domain.vanished``: ``ended`` if answered, else ``failed``, cause ``UNKNOWN``,
        ``ended_while_disconnected``).
        """
        out: list[SwitchEvent] = []
        for call in self.tracker.vanished(live_refs):
            out.extend(self._flush_initiated(call))
            closed = self.tracker.close_vanished(call, timestamp, _lost_key, recovered="channels")
            out.extend([] if closed is None else [closed])
            self._forget(call)
        return out

    def knows(self, row: Mapping[str, str]) -> bool:
        """Whether the channel of a ``CoreShowChannel`` item is one of a call this mapper tracks
        (then ``adopt`` adds nothing of its timing)."""
        uid = row.get("Uniqueid", "")
        return uid in self._leg_call or self.tracker.get(row.get("Linkedid") or uid) is not None

    def channels(self, ref: str) -> list[str]:
        """The live channels of call ``ref``, oldest first."""
        call = self.tracker.get(ref)
        return [] if call is None else [leg.channel for leg in call.legs.values()]

    def control_channel(self, ref: str, near: bool) -> str | None:
        """The live channel of call ``ref`` a control command acts on: calld's user's (``near``)
        or the far party's, by ``calld.adapters.tracking.control_leg``. None when none is up."""
        call = self.tracker.get(ref)
        if call is None:
            return None
        first = call.legs.get(ref)
        others = [leg.channel for uid, leg in call.legs.items() if uid != ref]
        return control_leg(None if first is None else first.channel, others, call.state.direction, near=near)

    def transfer_asked(self, ref: str, target: str) -> None:
        """calld asked for an attended transfer of call ``ref`` to ``target`` (Atxfer): what its
        AttendedTransfer names when the event itself does not."""
        call = self.tracker.get(ref)
        if call is not None:
            call.transfer_to = target

    def reported(
        self, ref: str, channel: str, event_type: EventType, at: datetime, key: str, metadata: Mapping[str, Any]
    ) -> SwitchEvent | None:
        """The event of something Asterisk answered ``Success`` to and raises no event of its own
        for (MuteAudio, PlayDTMF), on ``channel`` of call ``ref``; None if the call is gone."""
        call = self.tracker.get(ref)
        if call is None:
            return None
        first = call.legs.get(ref)
        meta = {**metadata, "party": party_label(first is not None and first.channel == channel), "channel": channel}
        return self.tracker.emit(call, event_type, at, key, meta)

    # --- correlation ----------------------------------------------------------------------------

    def _call_for(self, event: Mapping[str, str]) -> _Call | None:
        for uid_header in _UID_HEADERS:
            uid = event.get(uid_header)
            if uid and uid in self._leg_call:
                return self.tracker.get(self._leg_call[uid])
        linkedid = event.get("Linkedid")
        if event.get("Event") == "Newchannel" and linkedid is not None:
            return self.tracker.get(linkedid)
        return None

    def _ignored(self, channel: str) -> bool:
        return channel.startswith(self.ignored_channels)

    def _newchannel(self, event: Mapping[str, str], ts: datetime) -> list[SwitchEvent]:
        channel = event.get("Channel", "")
        uid = event.get("Uniqueid", "")
        ref = event.get("Linkedid") or uid
        if not uid or self._ignored(channel):
            return []
        created_by_switch = event.get("ChannelState") == _CHANNEL_STATE_DOWN
        if created_by_switch:
            direction = CallDirection.OUTBOUND
            parties = CallParties(direction, event.get("CallerIDNum", ""), _number_from_channel(channel))
        else:
            direction = self._direction_for(event.get("Context", ""), event.get("Exten", ""))
            parties = CallParties(direction, event.get("CallerIDNum", ""), event.get("Exten", ""))
        call = self.tracker.add(_Call(ref=ref, state=new_call(direction, ts), parties=parties))
        self._add_leg(call, event, ts)
        self._learn(call, event)
        call.pending_initiated = (ts, self._key(event, EventType.INITIATED))
        if created_by_switch:
            # Caller id and CALLD_CALL_ID of an originate arrive in the next few events.
            return []
        return self._flush_initiated(call)

    def _direction_for(self, context: str, dialled: str) -> CallDirection:
        if context in self.outbound_contexts:
            return placed_direction(CallDirection.OUTBOUND, dialled, self.internal_extensions)
        if context in self.inbound_contexts:
            return CallDirection.INBOUND
        return self.default_direction

    def _add_leg(self, call: _Call, event: Mapping[str, str], ts: datetime | None = None) -> None:
        uid = event.get("Uniqueid", "")
        channel = event.get("Channel", "")
        if not uid or self._ignored(channel):
            return
        call.legs[uid] = _Leg(uid, channel, event.get("CallerIDNum", ""))
        self._leg_call[uid] = call.ref
        if ts is not None and not channel.startswith("Local/"):  # Local channels are plumbing, not parties
            self._book_party(call, uid, channel, event, ts)

    @staticmethod
    def _book_party(call: _Call, uid: str, channel: str, event: Mapping[str, str], ts: datetime) -> None:
        endpoint = channel.rsplit("-", 1)[0] if "-" in channel else channel  # PJSIP/1002-0000002a
        if uid == call.ref:
            role, number = PartyRole.CALLER, call.parties.caller_number or event.get("CallerIDNum", "")
            name = event.get("CallerIDName", "")
        else:
            role = PartyRole.TRANSFER_TARGET if call.transfer_to else PartyRole.CALLEE
            number, name = _number_from_channel(channel) or event.get("Exten", ""), ""
        call.participants.join(uid, role, ts, number=_known(number), name=_known(name), endpoint=endpoint)

    def adopt(
        self,
        rows: Iterable[Mapping[str, str]],
        seen_at: datetime,
        times: Mapping[str, ChannelTimes] | None = None,
    ) -> list[SwitchEvent]:
        """After a (re)connect: take over the calls up on the switch (``CoreShowChannel`` items).

        A call calld does not know yet gets ``initiated``, ``answered`` if a channel is up and
        ``hold`` if calld's hold parks its far party, under keys of its own and marked
        ``recovered_from="channels"``: storage creates the call if it is new and takes nothing twice
        if it has it (any of its legs, by ``Linkedid``). Its start and answer are the switch's own
        (``times``, by channel ``Uniqueid``: the channels' CDR), else the oldest channel's age
        (``Duration``, whole seconds) stands for both.
        """
        calls: dict[str, list[Mapping[str, str]]] = {}
        for row in rows:
            uid = row.get("Uniqueid", "")
            if not uid or self._ignored(row.get("Channel", "")) or uid in self._leg_call:
                continue
            calls.setdefault(row.get("Linkedid") or uid, []).append(row)
        out: list[SwitchEvent] = []
        for ref, legs in calls.items():
            out.extend(self._adopt_call(ref, legs, seen_at, times or {}))
        return out

    def _adopt_call(
        self, ref: str, rows: list[Mapping[str, str]], seen_at: datetime, times: Mapping[str, ChannelTimes]
    ) -> list[SwitchEvent]:
        # The channel that started the call (its Uniqueid is the Linkedid) says who called whom.
        rows = sorted(rows, key=lambda row: row.get("Uniqueid") != ref)
        first = rows[0]
        known = [times[uid] for row in rows if (uid := row.get("Uniqueid", "")) in times]
        starts = [t.started for t in known if t.started is not None]
        answers = [t.answered for t in known if t.answered is not None]
        started = min(starts) if starts else seen_at - max(_age(row) for row in rows)
        answered = min(answers) if answers else started
        call = self.tracker.get(ref)
        out: list[SwitchEvent] = []
        if call is None:
            # An adopted call's first channel may have moved on in the dialplan (its Exten is where it
            # is now); a Dial()ed phone keeps the number dialled in Exten, as on Newchannel.
            direction = self._direction_for(first.get("Context", ""), first.get("Exten", ""))
            parties = CallParties(direction, first.get("CallerIDNum", ""), first.get("Exten", ""))
            if first.get("Context") == self.hold_context:
                # Parked by calld's hold: the dialplan place no longer says whom the caller dialled.
                parties = CallParties(direction, first.get("CallerIDNum", ""), first.get("ConnectedLineNum", ""))
            call = self.tracker.add(_Call(ref=ref, state=new_call(direction, started), parties=parties))
            meta = {"adopted": True}
            out.append(
                SwitchEvent(
                    ref, EventType.INITIATED, started, f"{ref}:adopt:initiated", meta, parties, None, "channels"
                )
            )
        for row in rows:
            self._add_leg(call, row)
            self._learn(call, row)
            leg = call.legs.get(row.get("Uniqueid", ""))
            if leg is not None:
                # A talking leg can be held later: MusicOnHoldStart counts only for bridged legs.
                leg.was_bridged = bool(row.get("BridgeId"))
        if any(row.get("ChannelState") == _CHANNEL_STATE_UP for row in rows) and call.state.answered_at is None:
            out.extend(self._emit(call, EventType.ANSWERED, answered, f"{ref}:adopt:answered", recovered="channels"))
        held = any((row.get("Context"), row.get("Exten")) == (self.hold_context, "hold") for row in rows)
        if held and self.hold_context is not None and call.state.status in (CallStatus.ANSWERED, CallStatus.RECORDING):
            out.extend(self._emit(call, EventType.HOLD, seen_at, f"{ref}:adopt:hold", recovered="channels"))
            call.held_by_music = True
            for leg in call.legs.values():
                leg.was_bridged = True
        if call.calld_call_id is not None:
            out = [replace(event, calld_call_id=call.calld_call_id) for event in out]
        return out

    def _learn(self, call: _Call, event: Mapping[str, str]) -> None:
        """Pick up calld's call id and the leg's current caller id from any event."""
        if call.calld_call_id is None:
            for header in [h for h in event if h.startswith("ChanVariable")]:
                for value in _header_values(event, header):
                    var, _, val = value.partition("=")
                    if var.lstrip("_") == CALLD_CALL_ID_VAR and val:
                        call.calld_call_id = val
            if event.get("Event") == "VarSet" and event.get("Variable", "").lstrip("_") == CALLD_CALL_ID_VAR:
                call.calld_call_id = event.get("Value") or None
        leg = call.legs.get(event.get("Uniqueid", ""))
        if leg is not None and event.get("CallerIDNum"):
            leg.caller_number = event.get("CallerIDNum", "")

    def _forget(self, call: _Call) -> None:
        for uid in call.legs:
            self._leg_call.pop(uid, None)
        self.tracker.forget(call.ref)

    # --- emission -------------------------------------------------------------------------------

    @staticmethod
    def _timestamp(event: Mapping[str, str], received_at: datetime | None) -> datetime:
        raw = event.get("Timestamp")
        if raw:
            return parse_timestamp(raw)
        if received_at is None:
            raise ValueError("AMI event without Timestamp (enable timestampevents) and no received_at")
        return received_at

    @staticmethod
    def _key(event: Mapping[str, str], event_type: EventType) -> str:
        uid = next((event[h] for h in _UID_HEADERS if h in event), "")
        return f"{uid}:{event.get('Event', '')}:{event.get('Timestamp', '')}:{event_type.value}"

    def _flush_initiated(self, call: _Call) -> list[SwitchEvent]:
        if call.pending_initiated is None:
            return []
        ts, key = call.pending_initiated
        call.pending_initiated = None
        parties = call.parties
        if parties.direction is CallDirection.OUTBOUND and len(call.legs) >= 1:
            # The originate's caller id (NewCallerid) has replaced the endpoint's own by now.
            first = call.legs.get(call.ref) or next(iter(call.legs.values()))
            parties = CallParties(parties.direction, first.caller_number, parties.recipient_number)
            call.parties = parties
        return [SwitchEvent(call.ref, EventType.INITIATED, ts, key, {}, parties, call.calld_call_id)]

    def _emit(
        self,
        call: _Call,
        event_type: EventType,
        ts: datetime,
        key: str,
        metadata: dict[str, Any] | None = None,
        *,
        recovered: str | None = None,
    ) -> list[SwitchEvent]:
        event = self.tracker.emit(call, event_type, ts, key, metadata, recovered=recovered)
        return [] if event is None else [event]

    def _emit_for(
        self,
        call: _Call,
        event: Mapping[str, str],
        event_type: EventType,
        ts: datetime,
        metadata: dict[str, Any] | None = None,
    ) -> list[SwitchEvent]:
        return self._emit(call, event_type, ts, self._key(event, event_type), metadata)

    # --- handlers -------------------------------------------------------------------------------

    def _on_newstate(self, call: _Call, event: Mapping[str, str], ts: datetime) -> list[SwitchEvent]:
        state = event.get("ChannelState")
        if state == _CHANNEL_STATE_UP:
            call.participants.answer(event.get("Uniqueid", ""), ts)
        if state == _CHANNEL_STATE_RINGING and call.state.status is CallStatus.INITIATED:
            return self._emit_for(call, event, EventType.RINGING, ts)
        if state == _CHANNEL_STATE_UP and call.state.answered_at is None:
            return self._emit_for(call, event, EventType.ANSWERED, ts)
        return []

    def _on_dial_state(self, call: _Call, event: Mapping[str, str], ts: datetime) -> list[SwitchEvent]:
        if event.get("DialStatus") == "RINGING" and call.state.status is CallStatus.INITIATED:
            return self._emit_for(call, event, EventType.RINGING, ts)
        return []

    def _on_dial_begin(self, call: _Call, event: Mapping[str, str], ts: datetime) -> list[SwitchEvent]:
        leg = call.legs.get(event.get("Uniqueid", ""))
        # A leg that already talked in a bridge dialling someone new is being transferred by other
        # means than a transfer action (AMI Redirect, a dialplan transfer). Blind transfers are
        # already TRANSFERRED here; an attended transfer's consultation dials from a fresh Local leg.
        if leg is not None and leg.was_bridged and call.state.status in (CallStatus.ANSWERED, CallStatus.RECORDING):
            target = event.get("DialString") or event.get("DestExten", "")
            return self._transfer_initiated(call, event, ts, {"transfer_to": target, "kind": "redirect"})
        return []

    def _on_dial_end(self, call: _Call, event: Mapping[str, str], ts: datetime) -> list[SwitchEvent]:
        status = event.get("DialStatus")
        if status:
            call.dial_status = status
        return []

    def _on_bridge_enter(self, call: _Call, event: Mapping[str, str], ts: datetime) -> list[SwitchEvent]:
        leg = call.legs.get(event.get("Uniqueid", ""))
        if leg is not None:
            leg.was_bridged = True
        two_party_now = (_int(event.get("BridgeNumChannels")) or 0) >= 2
        if two_party_now:
            # The second to enter connects both: the one already in the bridge and itself.
            for uid in (event.get("Uniqueid", ""), *(u for u, other in call.legs.items() if other.was_bridged)):
                call.participants.connect(uid)
        two_party = (_int(event.get("BridgeNumChannels")) or 0) >= 2
        if call.state.status is CallStatus.TRANSFERRED and two_party:
            # The transferee is talking to someone again: the transfer went through.
            return self._emit_for(call, event, EventType.TRANSFER_COMPLETED, ts, {"transfer_to": call.transfer_to})
        return []

    def _on_hold(self, call: _Call, event: Mapping[str, str], ts: datetime) -> list[SwitchEvent]:
        return self._emit_for(call, event, EventType.HOLD, ts)

    def _on_unhold(self, call: _Call, event: Mapping[str, str], ts: datetime) -> list[SwitchEvent]:
        # Asterisk sends Unhold without Hold on a blind transfer; only a held call can resume.
        if call.state.status is not CallStatus.ON_HOLD:
            return []
        call.held_by_music = False
        return self._emit_for(call, event, EventType.UNHOLD, ts)

    def _on_parked(self, call: _Call, event: Mapping[str, str], ts: datetime) -> list[SwitchEvent]:
        # res_parking parked the far party (AMI Park, or a phone's park feature): a hold naming the
        # slot. Its music follows (MusicOnHoldStart on an on_hold call adds nothing).
        if call.state.status not in (CallStatus.ANSWERED, CallStatus.RECORDING):
            return []
        meta = {"parked": event.get("ParkingSpace", ""), "lot": event.get("Parkinglot", "")}
        return self._emit_for(call, event, EventType.HOLD, ts, meta)

    def _on_unparked(self, call: _Call, event: Mapping[str, str], ts: datetime) -> list[SwitchEvent]:
        # UnParkedCall: someone dialled the slot and took the call; ParkedCallTimeOut: nobody did in
        # time and it went back to the parker. ParkedCallGiveUp (the parkee hung up) ends the call.
        if call.state.status is not CallStatus.ON_HOLD:
            return []
        meta: dict[str, Any] = {"picked_up": event.get("ParkingSpace", ""), "lot": event.get("Parkinglot", "")}
        if event.get("Event") == "UnParkedCall":
            meta["picked_up_by"] = _number_from_channel(event.get("RetrieverChannel", ""))
        else:
            meta["timed_out"] = True
        return self._emit_for(call, event, EventType.UNHOLD, ts, meta)

    def _on_moh_start(self, call: _Call, event: Mapping[str, str], ts: datetime) -> list[SwitchEvent]:
        # calld's own hold (AsteriskAdapter.hold) takes both legs out of their bridge and plays music
        # to the far one: no Hold event, only this. A phone's hold already sent Hold (then this on
        # the peer), and music in the dialplan before anyone talked (MusicOnHold app) is no hold.
        leg = call.legs.get(event.get("Uniqueid", ""))
        if leg is None or not leg.was_bridged or call.state.status not in (CallStatus.ANSWERED, CallStatus.RECORDING):
            return []
        out = self._emit_for(call, event, EventType.HOLD, ts, {"music_on_hold": event.get("Class", "")})
        call.held_by_music = bool(out)
        return out

    def _on_moh_stop(self, call: _Call, event: Mapping[str, str], ts: datetime) -> list[SwitchEvent]:
        # Music also stops when a phone's hold ends or an attended transfer merges the bridges
        # (told by Unhold / AttendedTransfer), and when the held party hangs up.
        leg = call.legs.get(event.get("Uniqueid", ""))
        if not call.held_by_music or call.state.status is not CallStatus.ON_HOLD:
            return []
        if leg is not None and leg.hanging_up:
            return []  # the held party hung up: the call ends on hold, it was not resumed
        call.held_by_music = False
        return self._emit_for(call, event, EventType.UNHOLD, ts)

    def _on_hangup_request(self, call: _Call, event: Mapping[str, str], ts: datetime) -> list[SwitchEvent]:
        leg = call.legs.get(event.get("Uniqueid", ""))
        if leg is not None:
            leg.hanging_up = True
        if call.first_hangup_request is None:
            call.first_hangup_request = (event.get("Uniqueid", ""), event.get("Event", ""))
        return []

    def _on_blind_transfer(self, call: _Call, event: Mapping[str, str], ts: datetime) -> list[SwitchEvent]:
        if event.get("Result") != "Success":
            return []
        meta = {"transfer_to": event.get("Extension", ""), "context": event.get("Context", ""), "kind": "blind"}
        return self._transfer_initiated(call, event, ts, meta)

    def _on_attended_transfer(self, call: _Call, event: Mapping[str, str], ts: datetime) -> list[SwitchEvent]:
        if event.get("Result") != "Success":
            return []
        # The target's exten and number are sometimes both empty (seen live, calld's Atxfer): then the
        # target calld asked for.
        target = event.get("TransferTargetExten") or event.get("TransferTargetCallerIDNum") or call.transfer_to or ""
        meta = {"transfer_to": target, "kind": "attended"}
        out = []
        if call.state.status is not CallStatus.TRANSFERRED:
            out.extend(self._transfer_initiated(call, event, ts, meta))
        # The event is sent once both bridges are merged: the transferee already talks to the target.
        out.extend(self._emit_for(call, event, EventType.TRANSFER_COMPLETED, ts, {"transfer_to": target}))
        return out

    def _transfer_initiated(
        self, call: _Call, event: Mapping[str, str], ts: datetime, meta: dict[str, Any]
    ) -> list[SwitchEvent]:
        out = self._emit_for(call, event, EventType.TRANSFER_INITIATED, ts, meta)
        if out:
            call.transfer_to = meta["transfer_to"]
        return out

    def _on_dtmf_end(self, call: _Call, event: Mapping[str, str], ts: datetime) -> list[SwitchEvent]:
        # Each digit is reported Received on the leg that pressed it and Sent on the bridged leg.
        if event.get("Direction") != "Received":
            return []
        meta: dict[str, Any] = {"digit": event.get("Digit", "")}
        duration = _int(event.get("DurationMs"))
        if duration is not None:
            meta["duration_ms"] = duration
        return self._emit_for(call, event, EventType.DTMF, ts, meta)

    def _on_var_set(self, call: _Call, event: Mapping[str, str], ts: datetime) -> list[SwitchEvent]:
        # MixMonitorStart does not carry the file; MixMonitor sets MIXMONITOR_FILENAME just before.
        if event.get("Variable") == "MIXMONITOR_FILENAME":
            leg = call.legs.get(event.get("Uniqueid", ""))
            if leg is not None:
                leg.recording_path = event.get("Value") or None
        elif event.get("Variable") == QOS_VARIABLE:
            uniqueid = event.get("Uniqueid", "")
            quality = leg_quality(uniqueid, event.get("Value", ""))
            if quality is not None:
                call.leg_qualities[uniqueid] = quality
        return []

    def _recording_meta(self, call: _Call, event: Mapping[str, str]) -> dict[str, Any]:
        leg = call.legs.get(event.get("Uniqueid", ""))
        return {"path": leg.recording_path} if leg is not None and leg.recording_path else {}

    def _on_mixmonitor_start(self, call: _Call, event: Mapping[str, str], ts: datetime) -> list[SwitchEvent]:
        return self._emit_for(call, event, EventType.RECORDING_STARTED, ts, self._recording_meta(call, event))

    def _on_mixmonitor_stop(self, call: _Call, event: Mapping[str, str], ts: datetime) -> list[SwitchEvent]:
        return self._emit_for(call, event, EventType.RECORDING_STOPPED, ts, self._recording_meta(call, event))

    def _on_mixmonitor_mute(self, call: _Call, event: Mapping[str, str], ts: datetime) -> list[SwitchEvent]:
        # calld pauses both directions; a one-sided mute (read or write) is still a pause of the file.
        kind = EventType.RECORDING_PAUSED if event.get("State") == "1" else EventType.RECORDING_RESUMED
        meta = {**self._recording_meta(call, event), "direction": event.get("Direction", "")}
        return self._emit_for(call, event, kind, ts, meta)

    def _on_agent_called(self, call: _Call, event: Mapping[str, str], ts: datetime) -> list[SwitchEvent]:
        # app_queue rang a member for the caller (the event's Channel); the member's leg (Dest*) takes
        # part as a queue agent rather than as a dialled callee. Which agent answered follows from the
        # bridge, as with a ring group.
        call.participants.set_role(event.get("DestUniqueid", ""), PartyRole.QUEUE_AGENT)
        return []

    def _on_confbridge_join(self, call: _Call, event: Mapping[str, str], ts: datetime) -> list[SwitchEvent]:
        # No domain event for joining a conference: remembered and reported on ``ended``.
        call.conference = event.get("Conference") or call.conference
        call.participants.set_role(event.get("Uniqueid", ""), PartyRole.CONFERENCE_MEMBER)
        leg = call.legs.get(event.get("Uniqueid", ""))
        if call.state.status is CallStatus.TRANSFERRED and leg is not None and leg.was_bridged:
            # Blind-transferred into a conference: no phone answers, no two-party bridge forms, yet
            # the party reached where it was sent.
            meta = {"transfer_to": call.transfer_to, "application": "ConfBridge", "conference": call.conference}
            return self._emit_for(call, event, EventType.TRANSFER_COMPLETED, ts, meta)
        return []

    def _on_hangup(self, call: _Call, event: Mapping[str, str], ts: datetime) -> list[SwitchEvent]:
        uid = event.get("Uniqueid", "")
        cause = _int(event.get("Cause"))
        if uid == call.ref:
            call.first_leg_cause = (cause, event.get("Cause-txt", ""))
        call.participants.leave(uid, ts, event.get("Cause-txt") or None)
        call.legs.pop(uid, None)
        self._leg_call.pop(uid, None)
        if call.legs:
            return []
        out = self._end(call, event, ts, cause)
        self._forget(call)
        return out

    def _end(self, call: _Call, event: Mapping[str, str], ts: datetime, cause: int | None) -> list[SwitchEvent]:
        code, text = call.first_leg_cause or (cause, event.get("Cause-txt", ""))
        meta: dict[str, Any] = {"cause": text, "cause_code": code, **hangup_by(call.ref, call.first_hangup_request)}
        if call.dial_status:
            meta["dial_status"] = call.dial_status
        if call.conference:
            meta["conference"] = call.conference
        meta.update(quality_metadata("asterisk", list(call.leg_qualities.values())))
        if call.state.answered_at is not None:
            meta["outcome"] = CallStatus.ENDED.value
            return self._emit_for(call, event, EventType.ENDED, ts, meta)
        outcome = self._unanswered_outcome(call, code)
        if outcome is None:
            return self._emit_for(call, event, EventType.FAILED, ts, meta)
        meta["outcome"] = outcome.value
        return self._emit_for(call, event, EventType.ENDED, ts, meta)

    def _unanswered_outcome(self, call: _Call, cause: int | None) -> CallStatus | None:
        """How an unanswered call ended; None means it failed (congestion, unroutable...)."""
        if cause == _CAUSE_REJECTED:
            # The caller's leg itself was turned away (calld's reject: AMI Hangup with Cause 21): its
            # Dial in progress ends CANCEL, which must not make a declined call look abandoned.
            return CallStatus.BUSY
        if call.dial_status is not None:
            if call.dial_status in _DIAL_STATUS_OUTCOME:
                return _DIAL_STATUS_OUTCOME[call.dial_status]
            if call.dial_status in _DIAL_STATUS_FAILED:
                return None
        if cause in _BUSY_CAUSES:
            return CallStatus.BUSY
        if cause in _NO_ANSWER_CAUSES:
            return CallStatus.NO_ANSWER
        if cause in _CANCEL_CAUSES:
            return CallStatus.CANCELLED
        if cause == _CAUSE_NORMAL or cause is None:
            # Hung up normally before anyone answered: missed for inbound, unanswered for outbound.
            inbound = call.parties.direction is CallDirection.INBOUND
            return CallStatus.MISSED if inbound else CallStatus.NO_ANSWER
        return None


_Handler = Callable[[AmiEventMapper, _Call, Mapping[str, str], datetime], list[SwitchEvent]]

_HANDLERS: Mapping[str, _Handler] = {
    "Newstate": AmiEventMapper._on_newstate,
    "DialState": AmiEventMapper._on_dial_state,
    "DialBegin": AmiEventMapper._on_dial_begin,
    "DialEnd": AmiEventMapper._on_dial_end,
    "BridgeEnter": AmiEventMapper._on_bridge_enter,
    "Hold": AmiEventMapper._on_hold,
    "Unhold": AmiEventMapper._on_unhold,
    "HangupRequest": AmiEventMapper._on_hangup_request,
    "SoftHangupRequest": AmiEventMapper._on_hangup_request,
    "MusicOnHoldStart": AmiEventMapper._on_moh_start,
    "ParkedCall": AmiEventMapper._on_parked,
    "UnParkedCall": AmiEventMapper._on_unparked,
    "ParkedCallTimeOut": AmiEventMapper._on_unparked,
    "MusicOnHoldStop": AmiEventMapper._on_moh_stop,
    "BlindTransfer": AmiEventMapper._on_blind_transfer,
    "AttendedTransfer": AmiEventMapper._on_attended_transfer,
    "DTMFEnd": AmiEventMapper._on_dtmf_end,
    "VarSet": AmiEventMapper._on_var_set,
    "MixMonitorStart": AmiEventMapper._on_mixmonitor_start,
    "MixMonitorStop": AmiEventMapper._on_mixmonitor_stop,
    "MixMonitorMute": AmiEventMapper._on_mixmonitor_mute,
    "ConfbridgeJoin": AmiEventMapper._on_confbridge_join,
    "AgentCalled": AmiEventMapper._on_agent_called,
    "Hangup": AmiEventMapper._on_hangup,
}

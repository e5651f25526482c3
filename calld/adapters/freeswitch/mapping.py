"""Map FreeSWITCH ESL events (flat header dicts from esl_codec) onto calld ``SwitchEvent``s.

Pure and synchronous: ``EventMapper.map(event)`` returns the call events one switch event causes
(usually none). A call is the originating (A) leg plus every leg linked to it; ``call_ref`` is the
A leg's uuid. ``Channel-Call-UUID`` is deliberately not used: it is not stable (it changes after
transfers and can revert at hangup, see tests/data/freeswitch/README.md).

Every emitted event is first folded into a private copy of the call's domain state (the shared
``calld.adapters.tracking.CallTracker``); an event the state machine would refuse is dropped (and
listed in ``EventMapper.dropped``), so the sequence per call is always one the domain accepts.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from calld.adapters.freeswitch.story import (
    QUALITY_HANGUP_FIELDS,
    STORY_HANGUP_FIELDS,
    call_quality,
    end_story,
    recording_figures,
)
from calld.adapters.tracking import LANDING_APPLICATIONS, CallTracker, TrackedCall, control_leg, party_label
from calld.domain.call import new_call
from calld.domain.direction import placed_direction, unanswered
from calld.domain.events import CallParties, SwitchEvent
from calld.domain.participants import PartyRole
from calld.domain.vocabulary import CallDirection, CallStatus, EventType

Event = Mapping[str, str]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

# Hangup causes (Q.850 names as FreeSWITCH spells them) that mean the call could not be placed,
# as opposed to the far end being busy, not answering, or someone hanging up.
FAILURE_CAUSES: Final = frozenset(
    {
        "UNALLOCATED_NUMBER",
        "NO_ROUTE_TRANSIT_NET",
        "NO_ROUTE_DESTINATION",
        "CALL_REJECTED",
        "NUMBER_CHANGED",
        "DESTINATION_OUT_OF_ORDER",
        "INVALID_NUMBER_FORMAT",
        "FACILITY_REJECTED",
        "NORMAL_CIRCUIT_CONGESTION",
        "NETWORK_OUT_OF_ORDER",
        "NORMAL_TEMPORARY_FAILURE",
        "SWITCH_CONGESTION",
        "REQUESTED_CHAN_UNAVAIL",
        "OUTGOING_CALL_BARRED",
        "INCOMING_CALL_BARRED",
        "BEARERCAPABILITY_NOTAUTH",
        "BEARERCAPABILITY_NOTAVAIL",
        "SERVICE_UNAVAILABLE",
        "BEARERCAPABILITY_NOTIMPL",
        "CHAN_NOT_IMPLEMENTED",
        "FACILITY_NOT_IMPLEMENTED",
        "SERVICE_NOT_IMPLEMENTED",
        "INCOMPATIBLE_DESTINATION",
        "MANDATORY_IE_MISSING",
        "RECOVERY_ON_TIMER_EXPIRE",
        "PROTOCOL_ERROR",
        "INTERWORKING",
        "USER_NOT_REGISTERED",
        "SUBSCRIBER_ABSENT",
        "EXCHANGE_ROUTING_ERROR",
        "GATEWAY_DOWN",
        "INVALID_GATEWAY",
        "INVALID_URL",
        "INVALID_PROFILE",
    }
)
NO_ANSWER_CAUSES: Final = frozenset({"NO_ANSWER", "NO_USER_RESPONSE", "ALLOTTED_TIMEOUT"})
BUSY_CAUSES: Final = frozenset({"USER_BUSY"})
_BUSY_SIP_STATUSES: Final = frozenset({"486", "600"})

_PROGRESS_EVENTS: Final = frozenset({"CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA"})
# Events that may be the first one seen of a leg and carry its caller profile.
_LEG_START_EVENTS: Final = frozenset(
    {
        "CHANNEL_CREATE",
        "CHANNEL_UUID",
        "CHANNEL_OUTGOING",
        "CHANNEL_ORIGINATE",
        "CHANNEL_PROGRESS",
        "CHANNEL_PROGRESS_MEDIA",
        "CHANNEL_ANSWER",
    }
)
# An "audio" media bug targeting "mute" is what ``uuid_audio ... mute`` puts on a leg.
_MEDIA_BUG_EVENTS: Final = frozenset({"MEDIA_BUG_START", "MEDIA_BUG_STOP"})
_MAX_REMEMBERED: Final = 16384
# ``callstate`` values of a ``show channels`` row whose party is connected.
_TALKING_CALLSTATES: Final = frozenset({"ACTIVE", "HELD", "UNHELD"})


def event_time(event: Event) -> datetime:
    """``Event-Date-Timestamp`` (microseconds since the epoch, UTC) as an aware datetime."""
    return _EPOCH + timedelta(microseconds=int(event.get("Event-Date-Timestamp") or 0))


def _row_as_event(row: Mapping[str, str]) -> dict[str, str]:
    """A ``show channels as json`` row in the shape of a CHANNEL_CREATE event of that leg.

    Row fields (FreeSWITCH's ``channels`` table): ``uuid``, ``direction``, ``created_epoch``
    (seconds), ``cid_num``, ``dest``, ``context``, ``callstate``, ``call_uuid``.
    """
    created = row.get("created_epoch", "")
    micros = int(created) * 1_000_000 if created.isdigit() else 0
    outbound = row.get("direction") == "outbound"
    return {
        "Event-Name": "CHANNEL_CREATE",
        "Event-UUID": f"adopt:{row.get('uuid', '')}",
        "Event-Date-Timestamp": str(micros),
        "Unique-ID": row.get("uuid", ""),
        "Call-Direction": "outbound" if outbound else "inbound",
        "Caller-Context": row.get("context", ""),
        "Caller-Caller-ID-Number": row.get("cid_num", ""),
        "Caller-Destination-Number": row.get("dest", ""),
    }


def _is_loopback_b_leg(row: Mapping[str, str]) -> bool:
    return row.get("name", "").startswith("loopback/") and row.get("name", "").endswith("-b")


def _pair_loopback_legs(rows: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """``show channels`` rows of loopback legs: B leg uuid -> its A leg's uuid.

    The list does not link the halves of a loopback call (the B leg's ``call_uuid`` is empty), so
    they are paired by name (``loopback/9010-a`` / ``-b``) and creation second, in listing order;
    halves that these cannot tell apart belong to calls made to the same extension in the same
    second, which are alike in everything the call log keeps.
    """
    a_legs: dict[tuple[str, str], list[str]] = {}
    b_legs: list[Mapping[str, str]] = []
    for row in rows:
        name = row.get("name", "")
        if not name.startswith("loopback/"):
            continue
        if name.endswith("-a"):
            a_legs.setdefault((name[:-2], row.get("created_epoch", "")), []).append(row["uuid"])
        elif name.endswith("-b"):
            b_legs.append(row)
    pairs: dict[str, str] = {}
    for row in b_legs:
        candidates = a_legs.get((row.get("name", "")[:-2], row.get("created_epoch", "")))
        if candidates:
            pairs[row["uuid"]] = candidates.pop(0)
    return pairs


def event_key(event: Event) -> str:
    """A key unique per switch event and the same whenever that event is seen again.

    ``Event-Sequence`` is the core's event counter and ``Core-UUID`` changes on every restart,
    so together they identify an event. Only ``sendevent`` events carry an ``Event-UUID``.
    """
    core = event.get("Core-UUID")
    seq = event.get("Event-Sequence")
    if core and seq:
        return f"fs:{core}:{seq}"
    uuid = event.get("Event-UUID")
    if uuid:
        return f"fs:event:{uuid}"
    return "fs:{}:{}:{}".format(
        event.get("Unique-ID", ""), event.get("Event-Name", ""), event.get("Event-Date-Timestamp", "")
    )


def leg_number(event: Event) -> str:
    """The far party's number as seen from this leg: who it calls (outbound) or who calls (inbound)."""
    if event.get("Call-Direction") == "outbound":
        # A sofia leg to a registered user has the contact's user part as destination
        # ("gw+gw1001"); the dialled user is the number people know.
        return event.get("variable_dialed_user") or event.get("Caller-Destination-Number", "")
    return event.get("Caller-Caller-ID-Number", "")


# --------------------------------------------------------------------------- correlation


class LegCorrelator:
    """Groups channel legs into calls. Plain bookkeeping: no I/O, no domain logic.

    A leg joins the call of its parent, found (in this order) from ``variable_originating_leg_uuid``,
    ``Other-Leg-Unique-ID`` when ``Other-Type`` is ``originator``, ``variable_originator``, a
    loopback B leg's ``variable_other_loopback_leg_uuid``, then ``variable_bridge_uuid`` /
    ``variable_signal_bond`` if they name a known leg. A leg without a parent starts a call.
    """

    def __init__(self) -> None:
        self._call_of: dict[str, str] = {}  # live leg uuid -> call ref
        self._legs: dict[str, set[str]] = {}  # call ref -> live leg uuids

    def call_of(self, leg: str) -> str | None:
        return self._call_of.get(leg)

    def legs(self, ref: str) -> frozenset[str]:
        return frozenset(self._legs.get(ref, ()))

    def __contains__(self, ref: object) -> bool:
        return ref in self._legs

    def __len__(self) -> int:
        return len(self._legs)

    def parent_of(self, event: Event) -> str | None:
        """The uuid of the leg that created this one, if the event names one."""
        parent = event.get("variable_originating_leg_uuid")
        if parent:
            return parent
        if event.get("Other-Type") == "originator":
            parent = event.get("Other-Leg-Unique-ID")
            if parent:
                return parent
        parent = event.get("variable_originator")
        if parent:
            return parent
        if event.get("variable_loopback_leg") == "B":
            parent = event.get("variable_other_loopback_leg_uuid")
            if parent:
                return parent
        for name in ("variable_bridge_uuid", "variable_signal_bond"):
            parent = event.get(name)
            if parent and parent in self._call_of:
                return parent
        return None

    def start_call(self, leg: str) -> str:
        self._call_of[leg] = leg
        self._legs[leg] = {leg}
        return leg

    def attach(self, leg: str, ref: str) -> None:
        """Make ``leg`` a live leg of call ``ref`` (moving it out of any other call)."""
        self.detach(leg)
        self._call_of[leg] = ref
        self._legs.setdefault(ref, set()).add(leg)

    def detach(self, leg: str) -> str | None:
        """``leg`` is gone (hung up or moved); return the call it belonged to."""
        ref = self._call_of.pop(leg, None)
        if ref is not None:
            legs = self._legs.get(ref)
            if legs is not None:
                legs.discard(leg)
        return ref

    def rename(self, old: str, new: str) -> None:
        """CHANNEL_UUID: a leg changed its uuid (originate with ``origination_uuid``)."""
        ref = self._call_of.pop(old, None)
        if ref is None:
            return
        legs = self._legs[ref]
        legs.discard(old)
        legs.add(new)
        self._call_of[new] = ref

    def forget(self, ref: str) -> None:
        for leg in self._legs.pop(ref, ()):
            self._call_of.pop(leg, None)


# --------------------------------------------------------------------------- mapper


@dataclass(slots=True, kw_only=True)
class _Call(TrackedCall):
    seq: int  # creation order, to pick the surviving call when two calls are bridged
    first_event: Event  # the event that started the call (see EventMapper._initiate)
    leg_numbers: dict[str, str] = field(default_factory=dict)
    a_leg_hangup: dict[str, str] | None = None
    last_hangup: dict[str, str] | None = None
    leg_causes: list[str] = field(default_factory=list)
    leg_hangups: list[dict[str, str]] = field(default_factory=list)  # the other legs' hangup fields
    held_legs: set[str] = field(default_factory=set)
    recordings: dict[str, datetime] = field(default_factory=dict)  # file -> when it started
    transfer_ids: set[str] = field(default_factory=set)
    conferences: list[str] = field(default_factory=list)
    bridged: bool = False  # two parties were connected at some point
    initiated: bool = False  # ``initiated`` emitted (see EventMapper._initiate)


_HANGUP_FIELDS: Final = (
    "Hangup-Cause",
    "variable_originate_disposition",
    "variable_DIALSTATUS",
    "variable_sip_invite_failure_status",
    "variable_last_bridge_hangup_cause",
    "variable_billsec",
    "variable_duration",
    *STORY_HANGUP_FIELDS,
    *QUALITY_HANGUP_FIELDS,
)


class EventMapper:
    """Turns a FreeSWITCH event stream into per-call ``SwitchEvent`` sequences.

    ``context_directions`` maps a dialplan context (``Caller-Context`` of an inbound A leg) to the
    call direction calld should record, e.g. ``{"public": INBOUND, "default": OUTBOUND}`` when
    trunks land in ``public`` and the office phones dial out from ``default``. Inbound legs in
    other contexts get ``default_inbound``; a leg the switch itself originated is outbound. A call
    from an outbound context whose ``Caller-Destination-Number`` (what the phone dialled, in the A
    leg's CHANNEL_CREATE) matches ``internal_extensions`` is internal (``calld.domain.direction``).
    """

    def __init__(
        self,
        context_directions: Mapping[str, CallDirection] | None = None,
        default_inbound: CallDirection = CallDirection.INBOUND,
        internal_extensions: re.Pattern[str] | None = None,
    ) -> None:
        self.correlator = LegCorrelator()
        self._contexts = dict(context_directions or {})
        self.internal_extensions = internal_extensions
        self._default_inbound = default_inbound
        self.tracker = CallTracker[_Call]()
        self._next_seq = 0
        # Legs that hung up (late events must not start a call) and legs seen before their
        # parent (joined when it appears); both bounded, oldest forgotten first.
        self._finished: dict[str, None] = {}
        self._orphans: dict[str, dict[str, str]] = {}

    @property
    def context_directions(self) -> Mapping[str, CallDirection]:
        """The configured context -> direction map (a fresh mapper for the switch's records uses it)."""
        return self._contexts

    @property
    def dropped(self) -> list[tuple[str, str]]:
        """(event key, reason) of events the domain state machine refused (see module docstring)."""
        return self.tracker.dropped

    @property
    def active_calls(self) -> int:
        return len(self.tracker)

    def direction_of(self, event: Event) -> CallDirection:
        if event.get("Call-Direction") == "outbound":
            return CallDirection.OUTBOUND
        by_context = self._contexts.get(event.get("Caller-Context", ""), self._default_inbound)
        return placed_direction(by_context, event.get("Caller-Destination-Number", ""), self.internal_extensions)

    def map(self, event: Event) -> list[SwitchEvent]:
        """The call events caused by one ESL event (``[]`` for the many that change nothing)."""
        name = event.get("Event-Name")
        if name == "CUSTOM":
            subclass = event.get("Event-Subclass")
            if subclass == "conference::maintenance":
                return self._conference(event)
            if subclass == "valet_parking::info":
                return self._valet(event)
            return []
        uuid = event.get("Unique-ID")
        if not uuid or not name:
            return []
        out: list[SwitchEvent] = []
        if name == "CHANNEL_UUID":
            old = event.get("Old-Unique-ID")
            if old and self.correlator.call_of(old) is not None:
                self.correlator.rename(old, uuid)
                return out
        call = self._call_for(uuid)
        if call is None:
            call = self._register(event, name, uuid, out)
            if call is None:
                return out
        if name == "CHANNEL_CREATE":
            # The first channel event with variables (dialed_user): a better number than the
            # contact user part ("gw+gw1002") an earlier CHANNEL_OUTGOING gave.
            call.leg_numbers[uuid] = leg_number(event)
            if not call.initiated and uuid == call.ref:
                self._initiate(call, event, out)
        self._note_party(call, uuid, name, event)
        self._check_blind_transfer(call, event, out)
        if name in _PROGRESS_EVENTS:
            if call.state.status is CallStatus.INITIATED:
                self._emit(call, EventType.RINGING, event, out)
        elif name == "CHANNEL_ANSWER":
            call.participants.answer(uuid, event_time(event))
            # Answered once per call: whichever leg answers first (in a bridged call the B leg
            # answering is the call being answered; the A leg's answer follows).
            if call.state.status in (CallStatus.INITIATED, CallStatus.RINGING):
                self._emit(call, EventType.ANSWERED, event, out)
        elif name == "CHANNEL_HOLD":
            self._hold(call, uuid, event, out)
        elif name == "CHANNEL_UNHOLD":
            self._unhold(call, uuid, event, out)
        elif name == "CHANNEL_BRIDGE":
            for header in ("Bridge-A-Unique-ID", "Bridge-B-Unique-ID"):
                call.participants.connect(event.get(header, ""))
            self._bridge(call, event, out)
        elif name == "CHANNEL_EXECUTE":
            application = event.get("Application", "")
            if application == "uuid_bridge":
                self._uuid_bridge(call, event, out)
            elif call.state.status is CallStatus.TRANSFERRED and application.lower() in LANDING_APPLICATIONS:
                # Blind-transferred into an application that takes the call itself (a park, an IVR, a
                # conference): no phone answers, yet the party reached where it was sent.
                meta = {"transfer_to": call.state.transfer_target or "", "application": application}
                self._emit(call, EventType.TRANSFER_COMPLETED, event, out, meta)
        elif name == "RECORD_START":
            self._record_start(call, event, out)
        elif name == "RECORD_STOP":
            self._record_stop(call, event, out)
        elif name == "DTMF":
            meta = {"digit": event.get("DTMF-Digit", ""), "source": event.get("DTMF-Source", "")}
            self._emit(call, EventType.DTMF, event, out, meta)
        elif name in _MEDIA_BUG_EVENTS:
            self._mute_bug(call, uuid, event, out)
        elif name == "CHANNEL_HANGUP_COMPLETE":
            call.participants.leave(uuid, event_time(event), event.get("Hangup-Cause"))
            self._hangup_complete(call, uuid, event, out)
        return out

    def _mute_bug(self, call: _Call, leg: str, event: Event, out: list[SwitchEvent]) -> None:
        # ``uuid_audio <leg> start read mute 1`` starts an "audio" media bug targeting "mute";
        # ``uuid_audio <leg> stop`` stops it (n_controls). A hangup removes it too: no unmute then.
        if event.get("Media-Bug-Function") != "audio" or event.get("Media-Bug-Target") != "mute":
            return
        started = event.get("Event-Name") == "MEDIA_BUG_START"
        if not started and event.get("Answer-State") == "hangup":
            return
        meta = {"party": party_label(leg == call.ref), "leg": leg, "number": call.leg_numbers.get(leg, "")}
        self._emit(call, EventType.MUTED if started else EventType.UNMUTED, event, out, meta)

    def reported(
        self, ref: str, leg: str, event_type: EventType, at: datetime, key: str, metadata: Mapping[str, Any]
    ) -> SwitchEvent | None:
        """The event of a command FreeSWITCH answered ``+OK`` to and raises no event for
        (``uuid_send_dtmf``, ``uuid_record mask|unmask``: h_dtmf, n_controls), on ``leg`` of call
        ``ref``; None if the call is gone."""
        call = self.tracker.get(ref)
        if call is None:
            return None
        meta = {**metadata, "party": party_label(leg == call.ref), "leg": leg}
        return self.tracker.emit(call, event_type, at, key, meta)

    # ------------------------------------------------------------------ what the adapter asks

    def open_calls(self) -> list[str]:
        """``call_ref`` of every call not yet ended."""
        return self.tracker.open_calls()

    def has_seen(self, leg: str) -> bool:
        """Whether any event of ``leg`` was seen (it is live, or it hung up)."""
        return self.correlator.call_of(leg) is not None or leg in self._finished

    def control_leg(self, ref: str, near: bool) -> str | None:
        """The live leg of call ``ref`` that a control command acts on.

        The near party is calld's user: the first leg of an outbound call (the phone that dialled,
        or that calld rang first), the latest other leg of an inbound call (the phone that took
        it). The far party is the other one. None when the call has no live leg.
        """
        call = self.tracker.get(ref)
        if call is None:
            return None
        live = self.correlator.legs(ref)
        first = ref if ref in live else None
        others = [leg for leg in call.leg_numbers if leg in live and leg != ref]
        return control_leg(first, others, call.state.direction, near=near)

    def reconcile(self, live_legs: Collection[str], at: datetime) -> list[SwitchEvent]:
        """After a (re)connect: forget legs the switch no longer has and close calls left with none.

        ``live_legs`` are the uuids ``show channels`` lists. Their hangups happened while we were
        not listening, so the real end time and cause are unknown: the call is closed at ``at`` by
        the vanished-call rule (``calld.domain.vanished``: ``ended`` if it had been answered, else
        ``failed``, cause ``UNKNOWN``, ``ended_while_disconnected``).
        """
        out: list[SwitchEvent] = []
        live = set(live_legs)

        def key(ref: str, event_type: EventType) -> str:
            # As ``_emit`` keys it: a second event in ``out`` gets its type and call in the key.
            base = event_key({"Event-UUID": f"resync:{ref}"})
            return f"{base}:{event_type.value}:{ref}" if out else base

        for call in self.tracker.calls():
            ref = call.ref
            for leg in self.correlator.legs(ref) - live:
                self.correlator.detach(leg)
                call.held_legs.discard(leg)
            if self.correlator.legs(ref):
                continue
            if not call.initiated:
                self._initiate(call, call.first_event, out)
            closed = self.tracker.close_vanished(call, at, key)
            if closed is not None:
                out.append(closed)
            self.correlator.forget(ref)
        return out

    def adopt(self, rows: Iterable[Mapping[str, str]]) -> list[SwitchEvent]:
        """After a (re)connect: take over calls that were already up (``show channels as json`` rows).

        Their earlier events were reported by a previous session or are lost, so an adopted call
        gets ``initiated`` (and ``answered`` if it is talking) stamped with the channel's creation
        time, under keys of its own so that adopting the same call again stores nothing twice.
        A leg whose ``call_uuid`` names another listed or known leg joins that leg's call.
        """
        out: list[SwitchEvent] = []
        fresh = {row["uuid"]: row for row in rows if row.get("uuid") and not self.has_seen(row["uuid"])}
        loopback_peer = _pair_loopback_legs(fresh.values())

        def parent(row: Mapping[str, str]) -> str | None:
            ref = row.get("call_uuid", "") or loopback_peer.get(row["uuid"], "")
            known = ref in fresh or self.correlator.call_of(ref) is not None
            return ref if ref and ref != row["uuid"] and known else None

        for uuid, row in fresh.items():
            if parent(row) is None and not _is_loopback_b_leg(row):
                # A loopback B leg is the far half of its A leg's call, never a call of its own.
                self._start_call(_row_as_event(row), uuid, out)
        for uuid, row in fresh.items():
            ref = parent(row)
            call = None if ref is None else self._call_for(ref)
            if call is not None and self.correlator.call_of(uuid) is None:
                self._join(call, uuid, row.get("cid_num", ""))
        for uuid, row in fresh.items():
            call = self._call_for(uuid)
            talking = row.get("callstate") in _TALKING_CALLSTATES
            if call is not None and talking and call.state.status in (CallStatus.INITIATED, CallStatus.RINGING):
                self._emit(call, EventType.ANSWERED, _row_as_event(row), out)
        return [
            replace(e, metadata={**e.metadata, "adopted": True}) if e.event_type is EventType.INITIATED else e
            for e in out
        ]

    # ------------------------------------------------------------------ call lifecycle

    def _call_for(self, leg: str) -> _Call | None:
        ref = self.correlator.call_of(leg)
        return None if ref is None else self.tracker.get(ref)

    def _register(self, event: Event, name: str, uuid: str, out: list[SwitchEvent]) -> _Call | None:
        """First event of a leg: join its parent's call, or start a call if it is an A leg.

        CHANNEL_CREATE is not reliably a leg's first event: under load (j_load) a loopback A leg's
        CHANNEL_CREATE arrived after both legs' CHANNEL_ANSWER, while CHANNEL_UUID/OUTGOING came
        first. So a parentless leg starts its call on CHANNEL_CREATE or on any early event of a
        leg the switch originated (Call-Direction outbound).
        """
        if uuid in self._finished:
            return None
        parent = self.correlator.parent_of(event)
        if parent is not None:
            call = self._call_for(parent)
            if call is None:
                # The parent's first event has not arrived yet: remember the child for then.
                if len(self._orphans) >= _MAX_REMEMBERED:
                    del self._orphans[next(iter(self._orphans))]
                self._orphans.setdefault(parent, {})[uuid] = leg_number(event)
                return None
            self._join(call, uuid, leg_number(event))
            return call
        if name != "CHANNEL_CREATE" and not (name in _LEG_START_EVENTS and event.get("Call-Direction") == "outbound"):
            # Not enough to tell an A leg from a leg whose linking headers are missing here
            # (CODEC and CHANNEL_STATE events carry no channel variables).
            return None
        call = self._start_call(event, uuid, out)
        return call

    def _note_party(self, call: _Call, leg: str, name: str, event: Event) -> None:
        """Book ``leg`` as a party of ``call`` (loopback legs are plumbing, not parties)."""
        channel = event.get("Channel-Name", "")
        if channel.startswith("loopback/") or (leg in call.participants and name != "CHANNEL_CREATE"):
            return
        if leg == call.ref:
            role = PartyRole.CALLER
        elif call.bridged and call.transfer_ids:
            role = PartyRole.TRANSFER_TARGET
        else:
            role = PartyRole.CALLEE
        outbound = event.get("Call-Direction") == "outbound"
        call.participants.join(
            leg,
            role,
            event_time(event),
            number=call.leg_numbers.get(leg) or leg_number(event),
            # An outbound leg's Caller-Callee-ID-Name is FreeSWITCH's "Outbound Call" until the phone says.
            name="" if outbound and leg != call.ref else event.get("Caller-Caller-ID-Name", ""),
            endpoint=channel,
            better=name == "CHANNEL_CREATE",
        )

    def _join(self, call: _Call, leg: str, number: str) -> None:
        self.correlator.attach(leg, call.ref)
        call.leg_numbers[leg] = number
        for orphan, orphan_number in self._orphans.pop(leg, {}).items():
            self._join(call, orphan, orphan_number)

    def _start_call(self, event: Event, uuid: str, out: list[SwitchEvent]) -> _Call:
        direction = self.direction_of(event)
        self.correlator.start_call(uuid)
        call = _Call(
            ref=uuid,
            seq=self._next_seq,
            state=new_call(direction, event_time(event)),
            calld_call_id=event.get("variable_calld_call_id") or None,
            first_event=event,
        )
        self._next_seq += 1
        self.tracker.add(call)
        self._join(call, uuid, leg_number(event))
        if event.get("Event-Name") == "CHANNEL_CREATE":
            self._initiate(call, event, out)
        return call

    def _initiate(self, call: _Call, event: Event, out: list[SwitchEvent]) -> None:
        """Emit ``initiated``: parties from ``event`` (ideally the A leg's CHANNEL_CREATE, the
        first event with its channel variables), time from the first event seen of the call.

        Deferred until CHANNEL_CREATE when an earlier event (CHANNEL_OUTGOING, CHANNEL_UUID)
        started the call: those lack variables such as ``dialed_user``. If something must be
        emitted before CHANNEL_CREATE arrives, the first event's data has to do.
        """
        call.initiated = True
        first = call.first_event
        call.calld_call_id = call.calld_call_id or event.get("variable_calld_call_id") or None
        # leg_number() of an inbound A leg is the caller; the recipient is what it dialled.
        if event.get("Call-Direction") == "outbound":
            recipient = leg_number(event)
        else:
            recipient = event.get("Caller-Destination-Number", "")
        call.leg_numbers[call.ref] = leg_number(event)
        parties = CallParties(
            direction=call.state.direction,
            caller_number=event.get("Caller-Caller-ID-Number", ""),
            recipient_number=recipient,
            sip_call_id=event.get("variable_sip_call_id") or None,
        )
        out.append(
            SwitchEvent(
                call_ref=call.ref,
                event_type=EventType.INITIATED,
                timestamp=call.state.started_at,
                key=event_key(first),
                parties=parties,
                calld_call_id=call.calld_call_id,
            )
        )

    def _hangup_complete(self, call: _Call, uuid: str, event: Event, out: list[SwitchEvent]) -> None:
        info = {name: event.get(name, "") for name in _HANGUP_FIELDS}
        call.last_hangup = info
        if uuid == call.ref:
            call.a_leg_hangup = info
        elif info["Hangup-Cause"]:
            call.leg_causes.append(info["Hangup-Cause"])
            call.leg_hangups.append(info)
        call.held_legs.discard(uuid)
        self.correlator.detach(uuid)
        self._finished[uuid] = None
        if len(self._finished) > _MAX_REMEMBERED:
            del self._finished[next(iter(self._finished))]
        if not self.correlator.legs(call.ref):
            self._end(call, event, out)

    def _end(self, call: _Call, event: Event, out: list[SwitchEvent]) -> None:
        """The call's last leg is gone: one ``ended`` (or ``failed``) event, then forget it."""
        info = call.a_leg_hangup or call.last_hangup or {}
        hangup_cause = info.get("Hangup-Cause") or "NORMAL_CLEARING"
        meta: dict[str, Any] = {"hangup_cause": hangup_cause}
        for src, dst in (("variable_billsec", "billsec"), ("variable_duration", "duration")):
            value = info.get(src, "")
            if value.isdigit():
                meta[dst] = int(value)
        if call.conferences:
            meta["conference"] = call.conferences[-1]
        meta.update(call_quality(call.a_leg_hangup, call.leg_hangups))
        if call.state.answered_at is not None:
            meta["outcome"] = CallStatus.ENDED.value
            meta["cause"] = hangup_cause
            meta.update(end_story(call.a_leg_hangup, call.leg_hangups, hangup_cause, True))
            self._emit(call, EventType.ENDED, event, out, meta)
        else:
            outcome, cause = self._unanswered_outcome(call, info)
            meta["cause"] = cause
            meta.update(end_story(call.a_leg_hangup, call.leg_hangups, cause, False))
            if outcome is CallStatus.FAILED:
                self._emit(call, EventType.FAILED, event, out, meta)
            else:
                meta["outcome"] = outcome.value
                self._emit(call, EventType.ENDED, event, out, meta)
        self.correlator.forget(call.ref)
        self.tracker.forget(call.ref)

    def _unanswered_outcome(self, call: _Call, info: Mapping[str, str]) -> tuple[CallStatus, str]:
        """Why a call that was never answered ended, and the cause that says so.

        The A leg of a failed bridge ends NORMAL_CLEARING: the real reason is in its originate
        disposition, DIALSTATUS, SIP failure status, last bridge hangup cause, or in the cause
        the B legs ended with.
        """
        cause = info.get("Hangup-Cause", "")
        disposition = info.get("variable_originate_disposition", "")
        bridge_cause = info.get("variable_last_bridge_hangup_cause", "")
        dial_status = info.get("variable_DIALSTATUS", "")
        causes = [c for c in (cause, disposition, bridge_cause, *call.leg_causes) if c]
        busy = next((c for c in causes if c in BUSY_CAUSES), None)
        if (
            busy is not None
            or dial_status == "BUSY"
            or info.get("variable_sip_invite_failure_status", "") in _BUSY_SIP_STATUSES
        ):
            return CallStatus.BUSY, busy or "USER_BUSY"
        no_answer = next((c for c in causes if c in NO_ANSWER_CAUSES), None)
        if no_answer is not None or dial_status == "NOANSWER":
            return CallStatus.NO_ANSWER, no_answer or "NO_ANSWER"
        failure = next((c for c in causes if c in FAILURE_CAUSES), None)
        if failure is not None:
            return CallStatus.FAILED, failure
        # Someone hung up before it was answered: the far end missed an inbound (or internal) call; on
        # an outbound call we gave up (cancelled).
        return unanswered(call.state.direction), cause or "ORIGINATOR_CANCEL"

    # ------------------------------------------------------------------ hold, recording, conference

    def _hold(self, call: _Call, leg: str, event: Event, out: list[SwitchEvent]) -> None:
        # Either party may hold (API uuid_hold, phone re-INVITE, transferor during consultation);
        # the call is on hold while any of its legs is.
        first = not call.held_legs
        call.held_legs.add(leg)
        if first and call.state.status in (CallStatus.ANSWERED, CallStatus.RECORDING):
            self._emit(call, EventType.HOLD, event, out)

    def _unhold(self, call: _Call, leg: str, event: Event, out: list[SwitchEvent]) -> None:
        call.held_legs.discard(leg)
        if not call.held_legs and call.state.status is CallStatus.ON_HOLD:
            self._emit(call, EventType.UNHOLD, event, out)

    def _record_start(self, call: _Call, event: Event, out: list[SwitchEvent]) -> None:
        # Only Record-File-Path is trusted: Record-Completion-Cause is unreliable and
        # variable_record_ms carries over from an earlier recording on the same channel.
        path = event.get("Record-File-Path", "")
        if path in call.recordings:
            return
        if not call.recordings and not self._emit(call, EventType.RECORDING_STARTED, event, out, {"path": path}):
            return
        call.recordings[path] = event_time(event)

    def _record_stop(self, call: _Call, event: Event, out: list[SwitchEvent]) -> None:
        path = event.get("Record-File-Path", "")
        if path not in call.recordings:
            return
        started = call.recordings.pop(path)
        if not call.recordings:
            figures = recording_figures(event, started, event_time(event))
            self._emit(call, EventType.RECORDING_STOPPED, event, out, {"path": path, **figures})

    def _conference(self, event: Event) -> list[SwitchEvent]:
        uuid = event.get("Unique-ID")
        call = None if not uuid else self._call_for(uuid)
        if call is None:
            return []
        action = event.get("Action", "")
        name = event.get("Conference-Name", "")
        member = event.get("Member-ID", "")
        meta = {"conference": name, "member_id": member}
        out: list[SwitchEvent] = []
        if action == "add-member":
            # Joining/leaving is not a call event of its own: it shows as metadata (muted,
            # unmuted, and ``conference`` on the final event) and as the party's role.
            call.conferences.append(name)
            if uuid:
                call.participants.set_role(uuid, PartyRole.CONFERENCE_MEMBER)
        elif action == "mute-member":
            self._emit(call, EventType.MUTED, event, out, meta)
        elif action == "unmute-member":
            self._emit(call, EventType.UNMUTED, event, out, meta)
        return out

    def _valet(self, event: Event) -> list[SwitchEvent]:
        # mod_valet_parking (n5_valet_park): "hold" when the leg enters a lot's slot, "bridge" when
        # someone dialling the slot takes it (Bridge-To-UUID), "exit" when it leaves either way.
        # A park is a hold with {"parked": slot}; the pickup ends it (unhold with {"picked_up": slot}).
        uuid = event.get("Unique-ID")
        call = None if not uuid else self._call_for(uuid)
        if call is None:
            return []
        slot = event.get("Valet-Extension", "")
        lot = event.get("Valet-Lot-Name", "")
        action = event.get("Action", "")
        out: list[SwitchEvent] = []
        if action == "hold" and call.state.status in (CallStatus.ANSWERED, CallStatus.RECORDING):
            self._emit(call, EventType.HOLD, event, out, {"parked": slot, "lot": lot})
        elif action == "bridge" and call.state.status is CallStatus.ON_HOLD:
            # "exit" alone is no pickup: the parked caller hung up (its hangup ends the call on hold)
            # or was sent elsewhere (its transfer events say where).
            meta = {"picked_up": slot, "lot": lot}
            retriever = event.get("Bridge-To-UUID", "")
            taker = self._call_for(retriever) if retriever else None
            if taker is not None and taker.leg_numbers.get(retriever):
                meta["picked_up_by"] = taker.leg_numbers[retriever]
            self._emit(call, EventType.UNHOLD, event, out, meta)
        return out

    # ------------------------------------------------------------------ transfers

    def _check_blind_transfer(self, call: _Call, event: Event, out: list[SwitchEvent]) -> None:
        # uuid_transfer and SIP REFER re-run a leg's dialplan; FreeSWITCH then stamps the leg's
        # caller profile with "<time>:<transfer uuid>:bl_xfer:<ext>/<context>/<dialplan>".
        source = event.get("Caller-Transfer-Source")
        if not source:
            return
        parts = source.split(":", 3)
        if len(parts) != 4 or parts[2] != "bl_xfer" or parts[1] in call.transfer_ids:
            return
        call.transfer_ids.add(parts[1])
        if not call.bridged:
            # Unbridged: originate "<dest> <ext> XML <ctx>" (and a trunk's transfer out of its inbound
            # context) sends the leg into the dialplan as a bl_xfer; that is the call starting, not a
            # party being transferred. The stamp stays on every later event of the leg, hangup
            # included, so it is remembered as seen.
            return
        target = parts[3].split("/", 1)[0]
        if call.state.status in (CallStatus.ANSWERED, CallStatus.RECORDING, CallStatus.ON_HOLD):
            self._emit(call, EventType.TRANSFER_INITIATED, event, out, {"transfer_to": target})

    def _survivor(self, first: _Call, second: _Call) -> tuple[_Call, _Call]:
        """When legs of two calls get bridged, the call that lives on and the one absorbed.

        The survivor is the call whose A leg is still up (the transferred party's call); if both
        or neither are, the older call.
        """
        first_up = first.ref in self.correlator.legs(first.ref)
        second_up = second.ref in self.correlator.legs(second.ref)
        if first_up != second_up:
            return (first, second) if first_up else (second, first)
        return (first, second) if first.seq <= second.seq else (second, first)

    def _uuid_bridge(self, call: _Call, event: Event, out: list[SwitchEvent]) -> None:
        # Attended transfer: the transferee's leg is uuid_bridge'd with the consultation call's
        # leg (CHANNEL_EXECUTE uuid_bridge on both legs, then CHANNEL_BRIDGE).
        target = event.get("Application-Data", "").strip()
        other = self._call_for(target)
        if other is call and event.get("Unique-ID") == call.ref:
            # att_xfer's completion (n3_att_xfer): the consultation leg, already one of this call's
            # (its Other-Leg was calld's user's), is uuid_bridge'd to the caller's leg.
            number = call.leg_numbers.get(target, "")
            if call.state.status in (CallStatus.ANSWERED, CallStatus.RECORDING, CallStatus.ON_HOLD):
                self._emit(call, EventType.TRANSFER_INITIATED, event, out, {"transfer_to": number, "kind": "attended"})
            return
        if other is None or other is call:
            return
        survivor, absorbed = self._survivor(call, other)
        moved_leg = target if survivor is call else event.get("Unique-ID", "")
        number = absorbed.leg_numbers.get(moved_leg, "")
        if survivor.state.status in (CallStatus.ANSWERED, CallStatus.RECORDING, CallStatus.ON_HOLD):
            self._emit(survivor, EventType.TRANSFER_INITIATED, event, out, {"transfer_to": number})

    def _bridge(self, call: _Call, event: Event, out: list[SwitchEvent]) -> None:
        call.bridged = True
        leg_a = event.get("Bridge-A-Unique-ID", "")
        leg_b = event.get("Bridge-B-Unique-ID", "")
        call_a = self._call_for(leg_a)
        call_b = self._call_for(leg_b)
        if call_a is None or call_b is None:
            # A leg we did not know yet (created before we listened): it joins this call.
            for leg, known in ((leg_a, call_a), (leg_b, call_b)):
                if leg and known is None:
                    self.correlator.attach(leg, call.ref)
            target = call
        elif call_a is call_b:
            target = call_a
        else:
            survivor, absorbed = self._survivor(call_a, call_b)
            moved = leg_b if survivor is call_a else leg_a
            number = absorbed.leg_numbers.get(moved, "")
            self.correlator.attach(moved, survivor.ref)
            survivor.leg_numbers[moved] = number
            survivor.participants.adopt(absorbed.participants, moved, PartyRole.TRANSFER_TARGET)
            if absorbed.ref in self.tracker and moved in absorbed.held_legs:
                absorbed.held_legs.discard(moved)
            if survivor.state.status in (CallStatus.ANSWERED, CallStatus.RECORDING, CallStatus.ON_HOLD):
                self._emit(survivor, EventType.TRANSFER_INITIATED, event, out, {"transfer_to": number})
            if survivor.state.status is CallStatus.TRANSFERRED:
                self._emit(survivor, EventType.TRANSFER_COMPLETED, event, out, {"transfer_to": number})
            if not self.correlator.legs(absorbed.ref):
                # The consultation call handed its last leg over: it is over.
                self._end(absorbed, event, out)
            return
        if target.state.status is CallStatus.TRANSFERRED:
            meta = {"transfer_to": target.state.transfer_target or ""}
            self._emit(target, EventType.TRANSFER_COMPLETED, event, out, meta)

    # ------------------------------------------------------------------ emission

    def _emit(
        self,
        call: _Call,
        event_type: EventType,
        event: Event,
        out: list[SwitchEvent],
        metadata: Mapping[str, Any] | None = None,
    ) -> bool:
        """Append the event if the call's state machine accepts it; return whether it did."""
        if not call.initiated:
            self._initiate(call, call.first_event, out)
        key = event_key(event)
        # One switch event can cause several call events (bridge -> transfer initiated and
        # completed, or a call ending): the type keeps their keys distinct and stable.
        if out:
            key = f"{key}:{event_type.value}:{call.ref}"
        emitted = self.tracker.emit(call, event_type, event_time(event), key, metadata)
        if emitted is None:
            return False
        out.append(emitted)
        return True

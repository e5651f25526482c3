"""Acting on a live call: answer or reject it, hang up, hold or resume, park and pick up, transfer, start,
pause, resume and stop recording, mute or unmute a party, send DTMF.

THE SWITCH SEAM for live calls. A call the configured switch controls is acted on by asking the
switch, whose own events later confirm the change through the call store; any other call is changed
in storage directly. The switch is never asked inside a transaction: on SQLite the write lock would
make switch-event ingest wait behind one slow command. So an action locks and checks the call, adds
what it must (a pending recording row) and commits; then asks the switch; a refusal marks that row
failed in a second short transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from calld.adapters.port import SwitchError, SwitchPort, SwitchUnavailable
from calld.domain.call import apply_event, hold_toggle
from calld.domain.controls import Party, near_party, party_of, require_connected, require_offered_inbound
from calld.domain.errors import IllegalTransition, InvalidValue
from calld.domain.parking import PARK_EVENTS, check_park, check_pickup, parked_now
from calld.domain.recording_pauses import SPAN_EVENTS, check_pause, is_paused
from calld.domain.vocabulary import CallDirection, CallStatus, EventSource, EventType, RecordingStatus
from calld.service.calls import detail_of, locked_call, read_detail
from calld.storage import call_queries as q
from calld.storage.calls import CallStore, state_of
from calld.storage.cluster import has_leader
from calld.storage.database import Database
from calld.storage.models import CallLog, CallRecording

# No switch records this call: say, on the event the client gets back, what finishes the recording.
RECORDING_WITHOUT_SWITCH = (
    "no switch records calls here: the recording stays 'recording' until the recording system reports it "
    "with POST /api/webhooks/recording/ {call_id, status, file_url or local_path, ...}"
)


def recording_file_name(call_id: uuid.UUID, nth: int) -> str:
    """``<call id>.wav`` for a call's first recording, ``<call id>-<n>.wav`` for its n-th: one flat
    directory (the switch's recording directory) where a call's files are found by its id."""
    return f"{call_id}.wav" if nth == 1 else f"{call_id}-{nth}.wav"


@dataclass(frozen=True, slots=True)
class SwitchRequest:
    """What the switch is asked, prepared (and committed) before it is asked."""

    kind: EventType
    call_ref: str
    metadata: dict[str, Any]
    recording_path: str = ""
    pending_recording: uuid.UUID | None = None


class CallControl:
    """Actions on live calls, through ``switch`` for the calls it controls."""

    def __init__(
        self,
        db: Database,
        calls: CallStore,
        switch: SwitchPort | None,
        remote: Callable[[str], SwitchPort] | None = None,
    ) -> None:
        """``remote``: another PBX's switch by name, reached through the calld instance that leads it
        (several calld on PostgreSQL); None: calls of other PBXs are changed in storage."""
        self.db = db
        self.calls = calls
        self.switch = switch
        self.remote = remote

    async def end(self, call_id: uuid.UUID) -> dict[str, Any]:
        """Hang up (the outcome per the domain: ended, missed or cancelled)."""
        return await self._act(call_id, EventType.ENDED, {})

    async def toggle_hold(self, call_id: uuid.UUID) -> dict[str, Any]:
        """Hold an answered or recording call, or resume a held one."""
        return await self._act(call_id, None, {})

    async def transfer(self, call_id: uuid.UUID, target: str, attended: bool) -> dict[str, Any]:
        """Transfer a connected call to a number or extension."""
        return await self._act(call_id, EventType.TRANSFER_INITIATED, {"transfer_to": target, "attended": attended})

    async def start_recording(self, call_id: uuid.UUID) -> dict[str, Any]:
        """Start recording (refused if already recording)."""
        return await self._act(call_id, EventType.RECORDING_STARTED, {})

    async def stop_recording(self, call_id: uuid.UUID) -> dict[str, Any]:
        """Stop the recording (refused if not recording)."""
        return await self._act(call_id, EventType.RECORDING_STOPPED, {})

    async def mute(self, call_id: uuid.UUID, party: Party | None, on: bool) -> dict[str, Any]:
        """Mute (``on``) or unmute what ``party`` says (None: the far party) on a connected call."""
        return await self._in_call(call_id, EventType.MUTED if on else EventType.UNMUTED, party, {})

    async def send_dtmf(
        self, call_id: uuid.UUID, digits: str, duration_ms: int | None, party: Party | None = None
    ) -> dict[str, Any]:
        """Play validated DTMF ``digits`` to ``party`` (None: the far party) on a connected call."""
        metadata: dict[str, Any] = {"digits": digits, "direction": "sent"}
        if duration_ms is not None:
            metadata["duration_ms"] = duration_ms
        return await self._in_call(call_id, EventType.DTMF, party, metadata)

    async def _in_call(
        self, call_id: uuid.UUID, kind: EventType, party: Party | None, metadata: dict[str, Any]
    ) -> dict[str, Any]:
        """An action on one party of a connected call that changes no status (mute, DTMF)."""
        async with self.db.write() as session:
            call = await locked_call(self.calls, session, call_id)
            require_connected(CallStatus(call.status), kind)
            near = near_party(CallDirection(call.direction), party)
            metadata = {**metadata, "party": party_of(CallDirection(call.direction), near).value}
            target = await self._switch_ref(session, call)
            if target is None:
                return await self._stored(session, call, kind, metadata)
            switch, ref = target
        if kind is EventType.DTMF:
            await switch.send_dtmf(ref, near, metadata["digits"], metadata.get("duration_ms"))
        else:
            await switch.mute(ref, near, kind is EventType.MUTED)
        return await read_detail(self.db, call_id)

    async def park(self, call_id: uuid.UUID, slot: str | None) -> dict[str, Any]:
        """Park the far party of an answered call in ``slot`` (None: the switch's default slot).

        Without a switch the park is recorded (a ``hold`` naming the slot), so a slot is needed."""
        async with self.db.write() as session:
            call = await locked_call(self.calls, session, call_id)
            check_park(CallStatus(call.status))
            target = await self._switch_ref(session, call)
            if target is None:
                if slot is None:
                    raise InvalidValue("slot", "this field is required: no switch chooses a slot for this call")
                return await self._stored(session, call, EventType.HOLD, {"parked": slot})
            switch, ref = target
        await switch.park(ref, slot)
        return await read_detail(self.db, call_id)

    async def pickup(self, call_id: uuid.UUID, to: str) -> dict[str, Any]:
        """Ring ``to``, which takes the parked call out of its slot once answered."""
        async with self.db.write() as session:
            call = await locked_call(self.calls, session, call_id)
            status = CallStatus(call.status)
            holds = await q.events_of_types(session, call.id, tuple(PARK_EVENTS))
            slot = check_pickup(status, parked_now(status, holds))
            target = await self._switch_ref(session, call)
            if target is None:
                return await self._stored(session, call, EventType.UNHOLD, {"picked_up": slot, "picked_up_by": to})
            switch, ref = target
        await switch.pickup(ref, slot, to)
        return await read_detail(self.db, call_id)

    async def finish_transfer(self, call_id: uuid.UUID, complete: bool) -> dict[str, Any]:
        """Complete or cancel the attended transfer begun with ``transfer(..., attended=True)``.

        Without a switch an attended transfer was recorded as begun (the call is ``transferred``):
        completing it records its completion; there is no consultation to cancel."""
        async with self.db.write() as session:
            call = await locked_call(self.calls, session, call_id)
            status = CallStatus(call.status)
            target = await self._switch_ref(session, call)
            if target is None:
                if not complete:
                    raise IllegalTransition(
                        status, EventType.TRANSFER_COMPLETED, "no switch holds a consultation call to cancel"
                    )
                return await self._stored(session, call, EventType.TRANSFER_COMPLETED, {})
            require_connected(status, EventType.TRANSFER_COMPLETED)
            switch, ref = target
        await (switch.complete_transfer(ref) if complete else switch.cancel_transfer(ref))
        return await read_detail(self.db, call_id)

    async def answer(self, call_id: uuid.UUID) -> dict[str, Any]:
        """Answer a ringing inbound call on the switch (or record its answer without one)."""
        return await self._offered(call_id, EventType.ANSWERED, {})

    async def reject(self, call_id: uuid.UUID) -> dict[str, Any]:
        """Decline a ringing inbound call: the caller hears it refused (busy, like a phone's decline)."""
        return await self._offered(call_id, EventType.ENDED, {"outcome": CallStatus.BUSY.value, "reason": "rejected"})

    async def _offered(self, call_id: uuid.UUID, kind: EventType, metadata: dict[str, Any]) -> dict[str, Any]:
        async with self.db.write() as session:
            call = await locked_call(self.calls, session, call_id)
            require_offered_inbound(CallStatus(call.status), CallDirection(call.direction), kind)
            target = await self._switch_ref(session, call)
            if target is None:
                return await self._stored(session, call, kind, metadata)
            switch, ref = target
        await (switch.answer(ref) if kind is EventType.ANSWERED else switch.reject(ref))
        return await read_detail(self.db, call_id)

    async def pause_recording(self, call_id: uuid.UUID, pausing: bool) -> dict[str, Any]:
        """Pause (the file goes on silent) or resume the call's recording."""
        kind = EventType.RECORDING_PAUSED if pausing else EventType.RECORDING_RESUMED
        async with self.db.write() as session:
            call = await locked_call(self.calls, session, call_id)
            paused = is_paused(await q.events_of_types(session, call.id, tuple(SPAN_EVENTS)))
            check_pause(CallStatus(call.status), call.recording, paused, pausing)
            active = await q.active_recording(session, call.id)
            path = active.local_path if active is not None and active.local_path else ""
            target = await self._switch_ref(session, call)
            if target is None:
                return await self._stored(session, call, kind, {"path": path} if path else {})
            switch, ref = target
        await switch.pause_recording(ref, path, pausing)
        return await read_detail(self.db, call_id)

    async def _switch_ref(self, session: AsyncSession, call: CallLog) -> tuple[SwitchPort, str] | None:
        """The switch controlling ``call`` and the call's reference on it, or None."""
        switch = await self.switch_for(session, call)
        if switch is None:
            return None
        assert call.switch_call_ref is not None  # switch_for checked it
        return switch, call.switch_call_ref

    async def _stored(
        self, session: AsyncSession, call: CallLog, kind: EventType, metadata: dict[str, Any]
    ) -> dict[str, Any]:
        """No switch controls ``call``: the action is recorded in storage (source ``api``)."""
        await self.calls.apply(session, call, kind, EventSource.API, metadata=metadata)
        return await detail_of(session, call)

    async def switch_for(self, session: AsyncSession, call: CallLog) -> SwitchPort | None:
        """The switch that controls ``call``, or None (then actions change storage): this instance's,
        or another PBX's that a calld instance leads (reached through it)."""
        if call.switch_call_ref is None or call.switch_name is None:
            return None
        switch = self.switch
        if switch is not None and call.switch_name == switch.name:
            return switch
        if self.remote is not None and await has_leader(session, call.switch_name):
            return self.remote(call.switch_name)
        return None

    async def _act(self, call_id: uuid.UUID, kind: EventType | None, metadata: dict[str, Any]) -> dict[str, Any]:
        async with self.db.write() as session:
            call = await locked_call(self.calls, session, call_id)
            event_type = kind if kind is not None else hold_toggle(CallStatus(call.status))
            switch = await self.switch_for(session, call)
            if switch is None:
                if event_type is EventType.RECORDING_STARTED:
                    metadata.setdefault("completed_by", RECORDING_WITHOUT_SWITCH)
                await self.calls.apply(session, call, event_type, EventSource.API, metadata=metadata)
                return await detail_of(session, call)
            # Refuse (409) what the call cannot do now before asking the switch.
            apply_event(state_of(call), event_type, self.calls.clock(), metadata)
            request = await self._prepare(session, call, event_type, metadata)
        try:
            await _ask(switch, request)
        except (SwitchError, SwitchUnavailable):
            if request.pending_recording is not None:
                await self._recording_refused(request.pending_recording)
            raise
        return await read_detail(self.db, call_id)

    async def _prepare(
        self, session: AsyncSession, call: CallLog, kind: EventType, metadata: dict[str, Any]
    ) -> SwitchRequest:
        ref = call.switch_call_ref
        assert ref is not None  # switch_for checked it
        if kind is EventType.RECORDING_STARTED:
            path = recording_file_name(call.id, len(await q.recordings_of(session, call.id)) + 1)
            row = CallRecording(
                id=uuid.uuid4(), call_id=call.id, status=RecordingStatus.PENDING, local_path=path, format="wav"
            )
            session.add(row)
            return SwitchRequest(kind, ref, metadata, path, row.id)
        if kind is EventType.RECORDING_STOPPED:
            active = await q.active_recording(session, call.id)
            path = active.local_path if active is not None and active.local_path else ""
            return SwitchRequest(kind, ref, metadata, path)
        return SwitchRequest(kind, ref, metadata)

    async def _recording_refused(self, recording_id: uuid.UUID) -> None:
        async with self.db.write() as session:
            row = await session.get(CallRecording, recording_id, with_for_update=True)
            if row is not None and RecordingStatus(row.status) is RecordingStatus.PENDING:
                row.status = RecordingStatus.FAILED


async def _ask(switch: SwitchPort, request: SwitchRequest) -> None:
    ref, kind = request.call_ref, request.kind
    if kind is EventType.ENDED:
        await switch.hangup(ref)
    elif kind is EventType.HOLD:
        await switch.hold(ref)
    elif kind is EventType.UNHOLD:
        await switch.unhold(ref)
    elif kind is EventType.TRANSFER_INITIATED:
        await switch.transfer(ref, request.metadata["transfer_to"], bool(request.metadata.get("attended", False)))
    elif kind is EventType.RECORDING_STARTED:
        await switch.start_recording(ref, request.recording_path)
    elif kind is EventType.RECORDING_STOPPED:
        await switch.stop_recording(ref, request.recording_path)

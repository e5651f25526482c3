"""Calls as the API records them: list, log, initiate, change, set status, add events, delete.

Every status change goes through ``CallStore.apply`` (the domain's transition table is the one rule);
callers validate the whole request before they get here, so a refused request stores nothing.
A call placed on a switch is committed before the switch is asked, so its first events (which carry
the calld call id) always find it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from calld.adapters.port import SwitchError, SwitchPort, SwitchUnavailable
from calld.domain.call import NewCall, event_for_status
from calld.domain.call_filter import CallFilter, Period, period_start
from calld.domain.errors import AlreadyExists, InvalidValue, InvalidValues, NotFound
from calld.domain.numbers import NumberPolicy
from calld.domain.quality import SCORED_BY_MOS, SCORED_BY_PERSON
from calld.domain.statistics import ReportRequest
from calld.domain.vocabulary import TERMINAL_STATUSES, CallDirection, CallStatus, CallType, EventSource, EventType
from calld.service.access import AccessCheck, guarded_read
from calld.service.live_feed import LiveHub, call_message
from calld.service.recording_files import RecordingFiles
from calld.service.views import (
    call_detail_json,
    call_event_json,
    call_log_json,
    statistics_json,
    statistics_report_json,
)
from calld.storage import call_queries as q
from calld.storage.calls import CallStore, state_of
from calld.storage.database import Database
from calld.storage.models import CallLog, CallTag, SipConfiguration
from calld.storage.stats_report import report_sums

WHAT = "call log"


@dataclass(frozen=True, slots=True)
class CallChanges:
    """What a person may change on a call; only the names in ``given`` change (None clears)."""

    values: dict[str, Any] = field(default_factory=dict)

    @property
    def client_id(self) -> uuid.UUID | None:
        value = self.values.get("client")
        return value if isinstance(value, uuid.UUID) else None

    @property
    def tags(self) -> list[str] | None:
        value = self.values.get("tags")
        return list(value) if isinstance(value, list | tuple) else None

    @property
    def sip_configuration_id(self) -> uuid.UUID | None:
        value = self.values.get("sip_configuration")
        return value if isinstance(value, uuid.UUID) else None


@dataclass(frozen=True, slots=True)
class Logged:
    """A logged call as the API shows it; ``created`` is False when it was already logged."""

    detail: dict[str, Any]
    created: bool


async def locked_call(calls: CallStore, session: AsyncSession, call_id: uuid.UUID) -> CallLog:
    """The call, its row locked for this transaction, or ``NotFound``."""
    call = await calls.get_for_update(session, call_id)
    if call is None:
        raise NotFound(WHAT)
    return call


async def detail_of(session: AsyncSession, call: CallLog) -> dict[str, Any]:
    """The call as ``GET /api/call-logs/{id}/`` shows it, read in ``session``'s transaction."""
    await session.flush()
    found = await session.run_sync(lambda sync: q.call_detail(sync.connection(), call.id))
    assert found is not None  # flushed in this transaction
    return call_detail_json(found.call, found.events, found.recordings, found.participants, found.tags)


async def read_detail(db: Database, call_id: uuid.UUID, guard: AccessCheck | None = None) -> dict[str, Any]:
    """A call with its events and recordings, read on its own connection."""
    found = await guarded_read(db, guard, q.call_detail, call_id)
    if found is None:
        raise NotFound(WHAT)
    return call_detail_json(found.call, found.events, found.recordings, found.participants, found.tags)


class CallService:
    """The call-log use cases; the switch (if any) places the calls it initiates."""

    def __init__(
        self,
        db: Database,
        calls: CallStore,
        live: LiveHub,
        switch: SwitchPort | None,
        default_region: str | None,
        recordings: RecordingFiles,
    ) -> None:
        self.db = db
        self.calls = calls
        self.live = live
        self.switch = switch
        self.default_region = default_region
        self.recordings = recordings

    # --- reads -----------------------------------------------------------------------------

    async def page(
        self, flt: CallFilter, *, ordering: str, limit: int, offset: int, guard: AccessCheck | None = None
    ) -> tuple[int, list[dict[str, Any]]]:
        """The number of calls matching ``flt`` and one page of them."""
        total, rows, tags = await guarded_read(
            self.db, guard, q.tagged_call_page, flt, ordering=ordering, limit=limit, offset=offset
        )
        return total, [call_log_json(row, tags.get(row.id, [])) for row in rows]

    async def detail(self, call_id: uuid.UUID, guard: AccessCheck | None = None) -> dict[str, Any]:
        """A call with its events and recordings."""
        return await read_detail(self.db, call_id, guard)

    async def statistics(
        self, period: Period, now: datetime, zone: ZoneInfo, guard: AccessCheck | None = None
    ) -> dict[str, Any]:
        """Counts from the start of ``period`` (in ``zone``) until ``now``."""
        stats = await guarded_read(self.db, guard, q.call_statistics, period_start(period, now, zone), now)
        return statistics_json(period, stats)

    async def statistics_report(
        self, request: ReportRequest, guard: AccessCheck | None = None, *, compact: bool = False
    ) -> dict[str, Any]:
        """The report over [request.start, request.end): totals and the series by interval and group
        (``compact``: as field names and rows of values)."""
        sums = await guarded_read(self.db, guard, report_sums, request)
        return statistics_report_json(request, sums, compact=compact)

    # --- logging calls ---------------------------------------------------------------------

    async def log(self, new: NewCall) -> Logged:
        """Create the call, or answer the one already logged under its SIP Call-ID (filling in what it
        lacked) and store nothing twice. Two requests logging one new call at once: the second finds
        the first's."""
        new = self.calls.presented(new)
        for attempt in (1, 2):
            try:
                async with self.db.write() as session:
                    await self._check_references(session, new.client_id, new.sip_configuration_id)
                    existing = await self._logged_already(session, new)
                    if existing is not None:
                        return Logged(await detail_of(session, existing), created=False)
                    call = await self.calls.create(session, new, EventSource.API)
                    return Logged(await detail_of(session, call), created=True)
            except AlreadyExists:
                if attempt == 2 or new.sip_call_id is None:
                    raise
        raise AssertionError("unreachable")

    async def _logged_already(self, session: AsyncSession, new: NewCall) -> CallLog | None:
        """The call a webhook or the switch already created for ``new``'s SIP Call-ID, with what it
        lacked filled in from ``new`` (the seed's inbound flow logs a call its provider announced)."""
        if new.sip_call_id is None:
            return None
        call = await self.calls.find_by(session, sip_call_id=new.sip_call_id)
        if call is None:
            return None
        if not call.caller_number and new.caller_number:
            call.caller_number, call.caller_number_raw = new.caller_number, new.caller_number_raw
            call.caller_withheld = new.caller_withheld
        if not call.recipient_number and new.recipient_number:
            call.recipient_number, call.recipient_number_raw = new.recipient_number, new.recipient_number_raw
        if call.client_id is None and new.client_id is not None:
            call.client_id = new.client_id
        if call.sip_configuration_id is None and new.sip_configuration_id is not None:
            call.sip_configuration_id = new.sip_configuration_id
        if not call.notes and new.notes:
            call.notes = new.notes
        return call

    async def _check_references(
        self, session: AsyncSession, client_id: uuid.UUID | None, sip_configuration_id: uuid.UUID | None
    ) -> None:
        errors: dict[str, str] = {}
        if client_id is not None and not await q.client_exists(session, client_id):
            errors["client"] = f"no client with id {client_id}"
        if sip_configuration_id is not None and await q.sip_configuration(session, sip_configuration_id) is None:
            errors["sip_configuration"] = f"no SIP configuration with id {sip_configuration_id}"
        if errors:
            raise InvalidValues(errors)

    # --- placing calls ---------------------------------------------------------------------

    async def initiate(
        self,
        recipient: str,
        call_type: CallType,
        sip_configuration_id: uuid.UUID | None,
        caller: str | None,
    ) -> dict[str, Any]:
        """Record an outbound call (``initiated``) and, with a switch, have the switch place it."""
        async with self.db.write() as session:
            config, origin = await self._origin(session, sip_configuration_id, caller)
            new = NewCall(
                direction=CallDirection.OUTBOUND,
                caller_number=origin,
                recipient_number=recipient,
                call_type=call_type,
                sip_configuration_id=config.id if config is not None else None,
                # What calld dials is what it presents (already read by the number policy).
                caller_number_raw=origin,
                recipient_number_raw=recipient,
            )
            call = await self.calls.create(session, new, EventSource.API)
            detail = await detail_of(session, call)
        if self.switch is not None:
            detail = await self._originate_on_switch(self.switch, call.id, recipient, origin)
        return detail

    async def _origin(
        self, session: AsyncSession, config_id: uuid.UUID | None, caller: str | None
    ) -> tuple[SipConfiguration | None, str]:
        """The SIP configuration an outbound call uses and the number it is placed from."""
        if config_id is not None:
            config = await q.sip_configuration(session, config_id)
            if config is None:
                raise InvalidValues({"sip_configuration": f"no SIP configuration with id {config_id}"})
            if not config.active:
                raise InvalidValues({"sip_configuration": "this SIP configuration is not active"})
        else:
            config = await q.default_sip_configuration(session)
        if caller is not None:
            return config, caller
        if config is None:
            raise InvalidValues({"caller_number": "required: there is no default active SIP configuration"})
        try:
            return config, NumberPolicy(self.default_region).dialable(config.username, "caller_number")
        except InvalidValue:
            raise InvalidValues(
                {"caller_number": f"required: the SIP username {config.username!r} is not a number or extension"}
            ) from None

    async def _originate_on_switch(
        self, switch: SwitchPort, call_id: uuid.UUID, recipient: str, caller: str
    ) -> dict[str, Any]:
        """THE SWITCH SEAM for new calls. A refused origination is kept as a ``failed`` call with the
        switch's reason (the attempt happened), and the switch's error goes on to the caller."""
        try:
            ref = await switch.originate(str(call_id), recipient, caller)
        except (SwitchError, SwitchUnavailable) as exc:
            async with self.db.write() as session:
                call = await locked_call(self.calls, session, call_id)
                if CallStatus(call.status) not in TERMINAL_STATUSES:
                    meta = {"reason": str(exc), "switch": switch.name}
                    await self.calls.apply(session, call, EventType.FAILED, EventSource.API, metadata=meta)
            raise
        async with self.db.write() as session:
            call = await locked_call(self.calls, session, call_id)
            call.switch_name = switch.name
            call.switch_call_ref = call.switch_call_ref or ref
            return await detail_of(session, call)

    # --- changing calls --------------------------------------------------------------------

    async def change(self, call_id: uuid.UUID, changes: CallChanges) -> dict[str, Any]:
        """Set notes, quality score, client, SIP configuration or tags."""
        async with self.db.write() as session:
            call = await locked_call(self.calls, session, call_id)
            await self._check_references(session, changes.client_id, changes.sip_configuration_id)
            _set(call, changes)
            if changes.tags is not None:
                await _replace_tags(session, call.id, changes.tags)
            detail = await detail_of(session, call)
            self.live.after_commit(session, call_message("call.updated", call))
        return detail

    async def set_status(self, call_id: uuid.UUID, requested: CallStatus, changes: CallChanges) -> dict[str, Any]:
        """Move the call to ``requested`` by the event the domain says leads there."""
        async with self.db.write() as session:
            call = await locked_call(self.calls, session, call_id)
            event_type, metadata = event_for_status(state_of(call), requested)
            await self.calls.apply(session, call, event_type, EventSource.API, metadata=metadata)
            _set(call, changes)
            detail = await detail_of(session, call)
            if changes.values:  # the event's own message showed the call before these
                self.live.after_commit(session, call_message("call.updated", call))
        return detail

    async def add_event(self, call_id: uuid.UUID, event_type: EventType, metadata: dict[str, Any]) -> dict[str, Any]:
        """Record one event as the API reported it; the stored event."""
        async with self.db.write() as session:
            call = await locked_call(self.calls, session, call_id)
            event = await self.calls.apply(session, call, event_type, EventSource.API, metadata=metadata)
            await session.flush()
            return call_event_json(event)

    async def delete(self, call_id: uuid.UUID) -> None:
        """Delete the call with its events and recordings, the recordings' files included (the
        rows' cascade alone would leave them on disk with nothing pointing at them)."""
        async with self.db.write() as session:
            call = await locked_call(self.calls, session, call_id)
            await self.recordings.delete_of_call(session, call.id)
            self.live.after_commit(session, call_message("call.deleted", call))
            await session.delete(call)


def _set(call: CallLog, changes: CallChanges) -> None:
    columns = {"client": "client_id", "sip_configuration": "sip_configuration_id"}
    for name, value in changes.values.items():
        if name != "tags":  # rows of their own (_replace_tags)
            setattr(call, columns.get(name, name), value)
    if "call_quality_score" in changes.values:  # a person's score: a measurement never replaces it
        if changes.values["call_quality_score"] is not None:
            call.quality_score_by = SCORED_BY_PERSON
        else:  # cleared: the measured MOS (if any) scores the call again
            call.call_quality_score = call.mos
            call.quality_score_by = SCORED_BY_MOS if call.mos is not None else None


async def _replace_tags(session: AsyncSession, call_id: uuid.UUID, tags: Sequence[str]) -> None:
    """The call's tags become ``tags``."""
    await session.execute(sa.delete(CallTag).where(CallTag.call_id == call_id))
    session.add_all(CallTag(call_id=call_id, tag=tag) for tag in dict.fromkeys(tags))

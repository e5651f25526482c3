"""Many events applied to calls in one transaction, with a few statements per batch.

The switch ingest's write path. ``CallStore`` stores one event at a time through the ORM (a
look-up, a flush and a unit of work per event), which is right for an API request but caps a
busy switch at a few hundred events per second. A ``CallBatch`` loads every call a batch touches
with one query, folds the events into in-memory state with the same domain reducer, then writes
new calls, changed calls and events with one multi-row statement each. What is observable is the
same as through ``CallStore``: the rows, the recordings and the hooks (each hook sees the call as
it was right after its event); the per-event log line is at debug (the switch ingest logs one line
per batch at info). It is synchronous: the whole batch runs in ``Database.transact``.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from calld.domain.call import CallState, NewCall, apply_event, new_call
from calld.domain.participants import participants_of
from calld.domain.quality import apply_quality, quality_alert
from calld.domain.recording import implied_events
from calld.domain.vocabulary import CallStatus, EventSource, EventType
from calld.storage.calls import (
    STATE_FIELDS,
    STORY_COLUMNS,
    CallStore,
    call_values,
    far_then_near,
    first_owner,
    number_owners,
    recording_changed,
    state_of,
    state_values,
    story_columns,
)
from calld.storage.models import CallEvent, CallLog, utcnow
from calld.storage.participants import store_participants

_CALLS: sa.Table = CallLog.__table__  # type: ignore[assignment]  # declarative tables are Tables
_EVENTS: sa.Table = CallEvent.__table__  # type: ignore[assignment]
_Model = TypeVar("_Model", CallLog, CallEvent)
_IN_LIST = 500  # bounded IN lists (SQLite's variable limit, PostgreSQL's plan cache)
# What an event can change in a stored call: its state, when it was updated, and which switch
# call it is (one UPDATE statement, executed with a row of parameters per call).
_UPDATED = (*STATE_FIELDS, *STORY_COLUMNS, "updated_at", "switch_name", "switch_call_ref")
_UPDATE = (
    sa.update(_CALLS)
    .where(_CALLS.c.id == sa.bindparam("call_id"))
    .values({name: sa.bindparam(f"new_{name}") for name in _UPDATED})
)
# The calls a batch names, by calld id or switch reference (built once: a statement built per
# batch costs more to construct and look up in the cache than to run).
_LOAD = (
    sa.select(_CALLS)
    .where(
        sa.or_(
            _CALLS.c.id.in_(sa.bindparam("ids", expanding=True)),
            sa.and_(
                _CALLS.c.switch_name == sa.bindparam("switch"),
                _CALLS.c.switch_call_ref.in_(sa.bindparam("refs", expanding=True)),
            ),
        )
    )
    .with_for_update()
)
_INSERT_EVENTS = {
    dialect: insert(_EVENTS)
    .on_conflict_do_nothing(index_elements=["dedup_key"])
    .returning(_EVENTS.c.dedup_key, _EVENTS.c.id)
    for dialect, insert in (("sqlite", sqlite_insert), ("postgresql", postgresql_insert))
}


class AlreadyStored(Exception):
    """An event of the batch was stored before (its de-duplication key is taken): nothing of the
    batch is written; run it again, asking first which keys are stored (``existing_dedup_keys``)."""


@dataclass(eq=False, slots=True)
class BatchCall:
    """One call as this batch sees it: its stored columns and its state now."""

    values: dict[str, Any]  # call_logs columns by attribute name, as stored (or to be inserted)
    state: CallState
    is_new: bool = False
    changed: bool = False
    client_from: tuple[str, str] | None = None  # a new call's numbers to match a client with

    @property
    def id(self) -> uuid.UUID:
        value: uuid.UUID = self.values["id"]
        return value

    @property
    def switch_name(self) -> str | None:
        name: str | None = self.values["switch_name"]
        return name

    @property
    def switch_call_ref(self) -> str | None:
        ref: str | None = self.values["switch_call_ref"]
        return ref


@dataclass(slots=True)
class _Event:
    call: BatchCall
    state: CallState  # the call's state right after this event
    values: dict[str, Any]
    # ((was, now), the event's metadata, its time)
    recording_change: tuple[tuple[bool, bool], Mapping[str, Any], datetime] | None = None


@dataclass(slots=True)
class _Loaded:
    by_id: dict[uuid.UUID, BatchCall] = field(default_factory=dict)
    by_switch: dict[tuple[str, str], BatchCall] = field(default_factory=dict)


class CallBatch:
    """Calls created and events applied in ``session``'s transaction, written by ``write()``.

    Every event has a de-duplication key (the switch's identity of it), unique in the database.
    """

    def __init__(self, store: CallStore, session: Session) -> None:
        self.store = store
        self.session = session
        self.conn = session.connection()  # Core statements skip the ORM session's execute path
        self._loaded = _Loaded()
        self._calls: list[BatchCall] = []
        self._events: list[_Event] = []

    def load(self, ids: Collection[uuid.UUID], switch_name: str, refs: Collection[str]) -> None:
        """Read (and on PostgreSQL lock) the stored calls with these ids or switch references."""
        id_list, ref_list = list(set(ids)), list(set(refs))
        for start in range(0, max(len(id_list), len(ref_list)), _IN_LIST):
            wanted = {
                "ids": id_list[start : start + _IN_LIST],
                "switch": switch_name,
                "refs": ref_list[start : start + _IN_LIST],
            }
            for row in self.conn.execute(_LOAD, wanted).all():
                self._adopt(row)

    def _adopt(self, row: sa.Row[Any]) -> None:
        if row.id in self._loaded.by_id:
            return
        call = BatchCall(values=dict(row._mapping), state=state_of(row))
        self._loaded.by_id[call.id] = call
        if call.switch_name is not None and call.switch_call_ref is not None:
            self._loaded.by_switch[(call.switch_name, call.switch_call_ref)] = call

    def by_id(self, call_id: uuid.UUID) -> BatchCall | None:
        """A loaded (or created) call by its calld id."""
        return self._loaded.by_id.get(call_id)

    def by_switch(self, switch_name: str, ref: str) -> BatchCall | None:
        """A loaded (or created) call by its switch reference."""
        return self._loaded.by_switch.get((switch_name, ref))

    def set_switch(self, call: BatchCall, name: str, ref: str) -> None:
        """Record which switch call ``call`` is (a call calld originated learns it from the switch)."""
        call.values["switch_name"], call.values["switch_call_ref"] = name, ref
        self._loaded.by_switch[(name, ref)] = call
        self._touch(call)

    def _touch(self, call: BatchCall) -> None:
        if not call.is_new and not call.changed:
            call.changed = True
            self._calls.append(call)

    def create(self, new: NewCall, source: EventSource, *, started_at: datetime, dedup_key: str) -> BatchCall:
        """A new call and its ``initiated`` event (its client is matched in ``write()``)."""
        new = self.store.presented(new)
        state = new_call(new.direction, started_at)
        call = BatchCall(
            values=call_values(new, self.store.call_ids(), new.client_id, state),
            state=state,
            is_new=True,
            client_from=far_then_near(new) if new.client_id is None else None,
        )
        self._loaded.by_id[call.id] = call
        if new.switch_name is not None and new.switch_call_ref is not None:
            self._loaded.by_switch[(new.switch_name, new.switch_call_ref)] = call
        self._calls.append(call)
        self._add(call, EventType.INITIATED, started_at, dict(new.metadata), source, dedup_key)
        return call

    def apply(
        self,
        call: BatchCall,
        event_type: EventType,
        source: EventSource,
        *,
        metadata: Mapping[str, Any],
        timestamp: datetime,
        dedup_key: str,
    ) -> None:
        """Apply one event to ``call`` (raises ``IllegalTransition`` / ``InvalidValue``)."""
        meta = dict(metadata)
        for implied, implied_meta in implied_events(call.state.status, event_type):
            self._apply_one(call, implied, source, implied_meta, timestamp, f"{dedup_key}:{implied.value}")
        self._apply_one(call, event_type, source, meta, timestamp, dedup_key)
        alert = quality_alert(event_type, meta, self.store.mos_threshold)
        if alert is not None:
            self._apply_one(call, EventType.QUALITY_CHANGE, source, alert, timestamp, f"{dedup_key}:quality")

    def _apply_one(
        self,
        call: BatchCall,
        event_type: EventType,
        source: EventSource,
        meta: dict[str, Any],
        timestamp: datetime,
        dedup_key: str,
    ) -> None:
        was = call.state.recording
        call.state = apply_event(call.state, event_type, timestamp, meta)
        call.state, quality = apply_quality(call.state, event_type, meta, call.values["quality_score_by"])
        call.values.update(story_columns(event_type, meta, call.state.status), **quality)
        self._touch(call)
        event = self._add(call, event_type, call.state.last_event_at, meta, source, dedup_key)
        if call.state.recording != was:
            event.recording_change = ((was, call.state.recording), meta, call.state.last_event_at)

    def _add(
        self,
        call: BatchCall,
        event_type: EventType,
        timestamp: datetime,
        meta: dict[str, Any],
        source: EventSource,
        dedup_key: str,
    ) -> _Event:
        values = {
            "call_id": call.id,
            "event_type": event_type,
            "timestamp": timestamp,
            "metadata": meta,
            "source": source,
            "dedup_key": dedup_key,
        }
        event = _Event(call, call.state, values)
        self._events.append(event)
        return event

    def write(self, *, checked: bool = True) -> None:
        """Write everything in the session's transaction, then run the hooks on each event.

        ``checked``: the events' de-duplication keys were looked up before they were applied. If not,
        an event whose key is taken raises ``AlreadyStored`` before any hook ran (the caller rolls
        back and runs the batch again, checked): a stream with no replays costs no look-up.
        """
        if not self._events and not self._calls:
            return
        now = utcnow()
        self._match_clients()
        new = [call for call in self._calls if call.is_new]
        changed = [call for call in self._calls if not call.is_new]
        if new:
            rows = []
            for call in new:
                call.values.update(state_values(call.state), created_at=now, updated_at=now)
                rows.append(call.values)
            self.conn.execute(sa.insert(_CALLS), rows)
        if changed:
            rows = []
            for call in changed:
                call.values.update(state_values(call.state), updated_at=now)
                rows.append(
                    {f"new_{name}": value for name, value in call.values.items() if name in _UPDATED}
                    | {"call_id": call.id}
                )
            self.conn.execute(_UPDATE, rows)
        if not self._events:
            return
        for event in self._events:
            event.values["created_at"] = now
        # Ids are matched to events by their (unique) key: asking for RETURNING in parameter
        # order makes SQLAlchemy insert one row at a time on SQLite (4x slower here).
        if checked:
            insert = sa.insert(_EVENTS).returning(_EVENTS.c.dedup_key, _EVENTS.c.id)
        else:
            insert = _INSERT_EVENTS[self.conn.dialect.name]
        returned = self.conn.execute(insert, [event.values for event in self._events])
        ids: dict[str, int] = {key: event_id for key, event_id in returned}
        if len(ids) < len(self._events):
            raise AlreadyStored
        for event in self._events:
            parties = participants_of(event.values["metadata"])
            if parties is not None:
                store_participants(self.session, event.call.id, parties)
            if event.recording_change is not None:
                change, meta, at = event.recording_change
                seeded = event.call.values["seeded"]
                recording_changed(self.session, event.call.id, seeded, change, meta, at, self.store.files)
        for event in self._events:
            self._stored(event, ids[event.values["dedup_key"]])

    def _match_clients(self) -> None:
        pending = [call for call in self._calls if call.client_from is not None]
        numbers = {number for call in pending if call.client_from for number in call.client_from}
        owners = number_owners(self.session, numbers)
        for call in pending:
            assert call.client_from is not None
            call.values["client_id"] = first_owner(owners, call.client_from)

    def _stored(self, event: _Event, event_id: int) -> None:
        # The hooks take ORM objects: transient copies (never added to the session) of the call
        # as it was right after this event, and of the event with its id.
        values = event.values
        call = _transient(CallLog, event.call.values | state_values(event.state))
        stored = _transient(
            CallEvent,
            {
                "id": event_id,
                "call_id": values["call_id"],
                "event_type": values["event_type"],
                "timestamp": values["timestamp"],
                "meta": values["metadata"],
                "source": values["source"],
                "dedup_key": values["dedup_key"],
                "created_at": values["created_at"],
            },
        )
        self.store.log.debug(
            "call event stored",
            call_id=str(call.id),
            event_type=stored.event_type.value,
            status=CallStatus(call.status).value,
            source=stored.source.value,
        )
        self.store.run_hooks(self.session, call, stored)


def _transient(cls: type[_Model], values: dict[str, Any]) -> _Model:
    """A transient ORM object holding ``values`` (attribute names), made the way the ORM's own
    loader makes objects: 20x cheaper than the constructor, which tracks each attribute's history
    for a flush that never comes here."""
    obj: _Model = sa.inspect(cls).class_manager.new_instance()
    obj.__dict__.update(values)
    return obj

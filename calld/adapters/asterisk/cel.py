"""Asterisk's own call records (CEL) as calld call events. Pure and synchronous: no I/O.

While calld is away (stopped, killed, or its AMI link cut) AMI tells it nothing, but Asterisk
still writes a Channel Event Logging row for every channel start, answer, bridge and hangup. After
every (re)connect the adapter reads the rows of the window it missed (``calld.adapters.asterisk.
cel_source``) and hands them here: each row becomes the AMI event it stands for (``CHAN_START`` a
``Newchannel``, ``ANSWER`` a ``Newstate`` Up, ``HANGUP`` a ``DialEnd`` with the dial status and a
``Hangup`` with the cause from the row's ``extra``, ``BRIDGE_ENTER`` a ``BridgeEnter``), folded by
a fresh ``AmiEventMapper`` exactly as live events are: one call per ``Linkedid``, the same
outcome rules. The events come out marked ``recovered_from="cel"`` with keys of their own, so
storage adds them only where calld lacks them (a call it never saw, or the end of a call it had
open) and a second recovery of the same rows stores nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from calld.adapters.asterisk.mapping import AmiEventMapper
from calld.adapters.records import recovered
from calld.domain.events import SwitchEvent

# The columns calld reads, in the order of the ``cel_custom.conf`` mapping the README gives (the
# names of the cel_pgsql / cel_sqlite3_custom columns, which are read by name).
CEL_COLUMNS: tuple[str, ...] = (
    "eventtype",
    "eventtime",
    "cid_name",
    "cid_num",
    "cid_dnid",
    "exten",
    "context",
    "channame",
    "appname",
    "appdata",
    "uniqueid",
    "linkedid",
    "peer",
    "extra",
)

Row = Mapping[str, str]

# CEL event types that say something the call log keeps; the rest (APP_START, CHAN_END...) are skipped.
USED_EVENT_TYPES = frozenset({"CHAN_START", "ANSWER", "BRIDGE_ENTER", "HANGUP"})


def parse_eventtime(value: str) -> datetime | None:
    """CEL ``eventtime``: unix seconds (``1796229061.025704``) or ``YYYY-MM-DD HH:MM:SS[.ffffff]``
    (UTC: calld's lab and the README's ``cel.conf`` keep Asterisk's records in UTC)."""
    text = value.strip()
    if not text:
        return None
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except ValueError:
        pass
    for layout in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(text, layout).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def _extra(row: Row) -> dict[str, object]:
    try:
        value = json.loads(row.get("extra") or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _as_ami(row: Row, at: datetime) -> list[dict[str, str]]:
    """The AMI events a CEL row stands for (empty for rows the call log does not use)."""
    base = {
        "Channel": row.get("channame", ""),
        "Uniqueid": row.get("uniqueid", ""),
        "Linkedid": row.get("linkedid", "") or row.get("uniqueid", ""),
        "CallerIDNum": row.get("cid_num", ""),
        "Exten": row.get("exten", ""),
        "Context": row.get("context", ""),
        "Timestamp": f"{at.timestamp():.6f}",
    }
    kind = row.get("eventtype", "")
    if kind == "CHAN_START":
        # A ringing state: the channel starts the call as the caller (AMI's Down means "created by
        # an originate", whose calls calld already knows by their Linkedid = its call id).
        return [{"Event": "Newchannel", "ChannelState": "4", **base}]
    if kind == "ANSWER":
        return [{"Event": "Newstate", "ChannelState": "6", **base}]
    if kind == "BRIDGE_ENTER":
        return [{"Event": "BridgeEnter", **base}]
    if kind == "HANGUP":
        extra = _extra(row)
        out = []
        dial_status = str(extra.get("dialstatus") or "")
        if dial_status:
            out.append({"Event": "DialEnd", "DialStatus": dial_status, **base})
        cause = extra.get("hangupcause")
        out.append({"Event": "Hangup", "Cause": str(cause) if cause is not None else "", **base})
        return out
    return []


def cel_events(rows: Iterable[Row], mapper: AmiEventMapper) -> list[SwitchEvent]:
    """The call events Asterisk's CEL ``rows`` tell, through ``mapper`` (a fresh one per recovery).

    Rows may come in any order and from several files or queries: they are sorted by time (a
    channel's start before its answer before its hangup at equal times).
    """
    order = {"CHAN_START": 0, "ANSWER": 1, "BRIDGE_ENTER": 2, "HANGUP": 3}
    timed = []
    for row in rows:
        kind = row.get("eventtype", "")
        at = parse_eventtime(row.get("eventtime", ""))
        if kind in USED_EVENT_TYPES and at is not None and row.get("uniqueid"):
            timed.append((at, order[kind], row))
    timed.sort(key=lambda item: (item[0], item[1]))
    out: list[SwitchEvent] = []
    for at, _, row in timed:
        for ami in _as_ami(row, at):
            for event in mapper.map(ami):
                out.append(recovered(event, "cel", key=f"cel:{event.key}"))
    return out


def call_starts(rows: Iterable[Row]) -> dict[str, datetime]:
    """When each call (``linkedid``) in ``rows`` began: its first channel's ``CHAN_START``."""
    starts: dict[str, datetime] = {}
    for row in rows:
        linkedid = row.get("linkedid") or row.get("uniqueid", "")
        if row.get("eventtype") == "CHAN_START" and row.get("uniqueid") == linkedid:
            at = parse_eventtime(row.get("eventtime", ""))
            if at is not None:
                starts[linkedid] = at
    return starts


def window_rows(rows: Iterable[Row], since: datetime, lookback: timedelta) -> list[Row]:
    """The rows of every call (``linkedid``) that has a row at or after ``since``, from rows going
    back at most ``lookback`` before it (a call's start may precede the window it ended in)."""
    earliest = since - lookback
    kept: list[tuple[Row, datetime]] = []
    wanted: set[str] = set()
    for row in rows:
        at = parse_eventtime(row.get("eventtime", ""))
        if at is None or at < earliest:
            continue
        kept.append((row, at))
        if at >= since:
            wanted.add(row.get("linkedid") or row.get("uniqueid", ""))
    return [row for row, _ in kept if (row.get("linkedid") or row.get("uniqueid", "")) in wanted]

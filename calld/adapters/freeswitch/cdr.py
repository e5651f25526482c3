"""FreeSWITCH's own call records (CDRs) as calld call events. Pure and synchronous: no I/O.

While calld is away FreeSWITCH still writes one CDR per leg when the leg is destroyed:
``mod_json_cdr`` (a JSON document; where its POST fails, the same document in ``err-log-dir``) or
``mod_cdr_csv`` (one line, columns of a template). After every (re)connect the adapter reads the
legs of the window it missed (``calld.adapters.freeswitch.cdr_source``) and hands them here: each
leg becomes the events it stands for (CHANNEL_CREATE at ``start_uepoch``, CHANNEL_ANSWER at
``answer_uepoch``, CHANNEL_HANGUP_COMPLETE at ``end_uepoch`` carrying the hangup cause and the
dial outcome), folded by a fresh ``EventMapper`` exactly as live events are: legs joined into one
call by ``originating_leg_uuid``/``originator``/loopback/bridge variables, the same outcome rules.
The events come out marked ``recovered_from="cdr"`` with keys of their own, so storage adds them
only where calld lacks them, and a second recovery of the same records stores nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import unquote

from calld.adapters.freeswitch.mapping import EventMapper
from calld.adapters.records import recovered
from calld.domain.events import SwitchEvent

Leg = Mapping[str, str]

# Channel variables a leg's events carry for the mapper (correlation, parties, outcome).
_VARIABLES = (
    "originating_leg_uuid",
    "originator",
    "other_loopback_leg_uuid",
    "loopback_leg",
    "bridge_uuid",
    "signal_bond",
    "sip_call_id",
    "dialed_user",
    "calld_call_id",
    "originate_disposition",
    "DIALSTATUS",
    "sip_invite_failure_status",
    "last_bridge_hangup_cause",
    "billsec",
    "duration",
)


def leg_from_json(document: Mapping[str, Any]) -> dict[str, str]:
    """One ``mod_json_cdr`` document as a flat leg: its variables (URL-decoded: the module sends
    them encoded by default) plus the caller profile of the leg's first dialplan pass."""
    variables = document.get("variables")
    if not isinstance(variables, dict):
        raise ValueError("not a FreeSWITCH JSON CDR: no variables")
    leg = {str(name): unquote(str(value)) for name, value in variables.items()}
    profile = _first_profile(document.get("callflow"))
    for name in ("caller_id_number", "destination_number", "context"):
        if not leg.get(name) and isinstance(profile.get(name), str):
            leg[name] = unquote(profile[name])
    channel = document.get("channel_data")
    if not leg.get("direction") and isinstance(channel, dict):
        leg["direction"] = str(channel.get("direction", ""))
    return leg


def _first_profile(callflow: object) -> Mapping[str, Any]:
    """The caller profile of the leg's first dialplan pass (the context it was created in)."""
    flows = callflow if isinstance(callflow, list) else [callflow] if isinstance(callflow, dict) else []
    flows = [flow for flow in flows if isinstance(flow, dict) and isinstance(flow.get("caller_profile"), dict)]
    if not flows:
        return {}
    first = min(flows, key=lambda flow: str(flow.get("profile_index", "")))
    profile: Mapping[str, Any] = first["caller_profile"]
    return profile


def leg_from_json_text(text: str | bytes) -> dict[str, str]:
    document = json.loads(text)
    if not isinstance(document, dict):
        raise ValueError("not a FreeSWITCH JSON CDR")
    return leg_from_json(document)


def legs_from_csv(rows: Iterable[Sequence[str]], columns: Sequence[str]) -> list[dict[str, str]]:
    """``mod_cdr_csv`` lines (already split) as legs, named by the template's ``columns``."""
    return [dict(zip(columns, row, strict=False)) for row in rows if len(row) >= len(columns) // 2]


def _micros(leg: Leg, name: str) -> int:
    value = leg.get(name, "")
    return int(value) if value.isascii() and value.isdigit() else 0


def _as_events(leg: Leg) -> list[dict[str, str]]:
    """The switch events a leg's record stands for: create, answer (if answered), hangup."""
    uuid = leg.get("uuid", "")
    start, answer, end = (_micros(leg, name) for name in ("start_uepoch", "answer_uepoch", "end_uepoch"))
    if not uuid or not start:
        return []
    base = {
        "Unique-ID": uuid,
        "Call-Direction": leg.get("direction", ""),
        "Caller-Context": leg.get("context", ""),
        "Caller-Caller-ID-Number": leg.get("caller_id_number", ""),
        "Caller-Destination-Number": leg.get("destination_number", ""),
        **{f"variable_{name}": leg[name] for name in _VARIABLES if leg.get(name)},
    }

    def event(name: str, part: str, at: int, **extra: str) -> dict[str, str]:
        return {
            "Event-Name": name,
            "Event-UUID": f"cdr:{uuid}:{part}",
            "Event-Date-Timestamp": str(at),
            **base,
            **extra,
        }

    out = [event("CHANNEL_CREATE", "create", start)]
    if answer:
        out.append(event("CHANNEL_ANSWER", "answer", answer))
    if end:
        cause = leg.get("hangup_cause", "") or "NORMAL_CLEARING"
        out.append(event("CHANNEL_HANGUP_COMPLETE", "hangup", end, **{"Hangup-Cause": cause}))
    return out


def cdr_events(legs: Iterable[Leg], mapper: EventMapper) -> list[SwitchEvent]:
    """The call events FreeSWITCH's leg records tell, through ``mapper`` (a fresh one per recovery).

    Legs may come in any order (CDRs are written as legs are destroyed): their events are sorted
    by time, creations before answers before hangups at equal times, A legs before B legs.
    """
    order = {"CHANNEL_CREATE": 0, "CHANNEL_ANSWER": 1, "CHANNEL_HANGUP_COMPLETE": 2}
    events = [event for leg in legs for event in _as_events(leg)]
    events.sort(key=lambda e: (int(e["Event-Date-Timestamp"]), order[e["Event-Name"]], "variable_originator" in e))
    out: list[SwitchEvent] = []
    for event in events:
        out.extend(recovered(found, "cdr") for found in mapper.map(event))
    return out

"""The closed vocabularies of calld: statuses, directions, event types and the like.

Values are the strings stored in the database and spoken by the REST API.
"""

from __future__ import annotations

from enum import StrEnum


class CallStatus(StrEnum):
    INITIATED = "initiated"
    RINGING = "ringing"
    ANSWERED = "answered"
    MISSED = "missed"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TRANSFERRED = "transferred"
    ENDED = "ended"
    RECORDING = "recording"
    ON_HOLD = "on_hold"


TERMINAL_STATUSES: frozenset[CallStatus] = frozenset(
    {
        CallStatus.MISSED,
        CallStatus.BUSY,
        CallStatus.NO_ANSWER,
        CallStatus.FAILED,
        CallStatus.CANCELLED,
        CallStatus.ENDED,
    }
)

# Statuses in which a call is connected (media flowing between parties).
CONNECTED_STATUSES: frozenset[CallStatus] = frozenset(
    {CallStatus.ANSWERED, CallStatus.RECORDING, CallStatus.ON_HOLD, CallStatus.TRANSFERRED}
)

# Outcomes an ``ended`` event may carry in its metadata (``{"outcome": ...}``).
END_OUTCOMES: frozenset[CallStatus] = frozenset(
    {CallStatus.ENDED, CallStatus.MISSED, CallStatus.BUSY, CallStatus.NO_ANSWER, CallStatus.CANCELLED}
)


class CallDirection(StrEnum):
    """Inbound: from outside the PBX to it; outbound: from the PBX out; internal: one of the PBX's own
    phones to another (decided by the adapters from the PBX's configured contexts and extensions)."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"
    INTERNAL = "internal"


class CallType(StrEnum):
    VOICE = "voice"
    VIDEO = "video"
    CONFERENCE = "conference"


class EventType(StrEnum):
    INITIATED = "initiated"
    RINGING = "ringing"
    ANSWERED = "answered"
    HOLD = "hold"
    UNHOLD = "unhold"
    TRANSFER_INITIATED = "transfer_initiated"
    TRANSFER_COMPLETED = "transfer_completed"
    RECORDING_STARTED = "recording_started"
    RECORDING_STOPPED = "recording_stopped"
    # The recording goes on silent (card numbers): the span between the two is not heard.
    RECORDING_PAUSED = "recording_paused"
    RECORDING_RESUMED = "recording_resumed"
    MUTED = "muted"
    UNMUTED = "unmuted"
    DTMF = "dtmf"
    QUALITY_CHANGE = "quality_change"
    ENDED = "ended"
    FAILED = "failed"
    ERROR = "error"
    # What a SIP provider reported that changes no status: an event type calld has no meaning for,
    # a leg of the call other than the one it tracks, a recording's progress. Stored as reported.
    PROVIDER_EVENT = "provider_event"


class EventSource(StrEnum):
    API = "api"
    SWITCH = "switch"
    WEBHOOK = "webhook"
    SEED = "seed"  # test data made by `calld seed`


class RecordingStatus(StrEnum):
    PENDING = "pending"
    RECORDING = "recording"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    DELETED = "deleted"


class SipTransport(StrEnum):
    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"
    WS = "ws"
    WSS = "wss"


# The events that end a call: after one of them the call is over (its story is complete).
ENDING_EVENTS: frozenset[EventType] = frozenset({EventType.ENDED, EventType.FAILED})

"""Inbound webhooks: call events from a third-party SIP provider and results from a recording system.

Every delivery passes ``verify_delivery`` first (signed by its source, from an allowed address), is
parsed here (one 422 naming every bad field) and stored by ``calld.service.provider``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from calld.domain.call import validate_quality_score
from calld.domain.errors import InvalidValue
from calld.domain.vocabulary import CallDirection, CallType, RecordingStatus
from calld.http.context import services
from calld.http.errors import read_json_object
from calld.http.routing import ILLEGAL, INBOUND, Op, Routes
from calld.http.validation import Fields, framing_problem, is_http_url, json_problem
from calld.http.webhook_auth import verify_delivery
from calld.service.provider import RecordingDelivery, RecordingFormat, SipDelivery, SipEventType

# Providers' clocks drift a little; anything further ahead than this is a bad or forged timestamp.
MAX_CLOCK_SKEW = timedelta(minutes=5)
# The dedup_key column holds 255 characters, "sip:" included.
MAX_DELIVERY_ID = 200
# The largest file size the recordings' BIGINT column can store.
MAX_FILE_SIZE = 2**63 - 1

SIP_FIELDS = (
    "event_type",
    "sip_call_id",
    "caller_number",
    "recipient_number",
    "direction",
    "call_type",
    "timestamp",
    "delivery_id",
    "metadata",
)


RECORDING_FIELDS = (
    "call_id",
    "status",
    "recording_id",
    "file_url",
    "local_path",
    "file_size",
    "duration",
    "format",
    "transcript",
    "transcript_confidence",
)

routes = Routes()


def parse_sip_delivery(body: Mapping[str, Any], now: datetime) -> SipDelivery:
    """Validate a SIP webhook body (one 422 naming every bad field)."""
    f = Fields(body, allowed=SIP_FIELDS)
    event = f.choice("event_type", SipEventType, required=True)
    sip_call_id = f.string("sip_call_id", required=True)
    caller = f.presented("caller_number")
    recipient = f.presented("recipient_number")
    direction = f.choice("direction", CallDirection, default=CallDirection.INBOUND)
    call_type = f.choice("call_type", CallType, default=CallType.VOICE)
    timestamp = f.timestamp("timestamp", required=True)
    delivery_id = f.string("delivery_id", max_length=MAX_DELIVERY_ID)
    metadata = f.mapping("metadata", default={})
    if timestamp is not None and timestamp > now + MAX_CLOCK_SKEW:
        f.fail("timestamp", f"is more than {MAX_CLOCK_SKEW.seconds // 60} minutes in the future")
    if event is not None and metadata is not None:
        _check_metadata(f, event, metadata)
    f.done()
    return SipDelivery(
        event, sip_call_id, caller, recipient, direction, call_type, timestamp, delivery_id, dict(metadata)
    )


def _check_metadata(f: Fields, event: SipEventType, metadata: Mapping[str, Any]) -> None:
    problem = json_problem(metadata)
    if problem is not None:
        f.fail("metadata", problem)
    if event is SipEventType.CALL_QUALITY:
        if "score" not in metadata:
            f.fail("metadata.score", "this field is required for call_quality")
        else:
            try:
                validate_quality_score(metadata["score"], "metadata.score")
            except InvalidValue as exc:
                f.fail(exc.field, exc.message)
    if event is SipEventType.CALL_TRANSFERRED and "transfer_to" in metadata:
        target = metadata["transfer_to"]
        if not isinstance(target, str) or not target.strip():
            f.fail("metadata.transfer_to", "must be a non-empty string")


@routes.post(
    "/api/webhooks/sip/",
    Op(
        INBOUND,
        "A call event from a SIP provider",
        {200: "SipWebhookResult"},
        "SipWebhook",
        errors={409: ILLEGAL},
        description="Creates or updates the call by sip_call_id; a redelivery (same delivery_id, or same call, "
        "type and timestamp) stores nothing and answers duplicate.",
    ),
)
async def sip_webhook(request: web.Request) -> web.Response:
    """``POST /api/webhooks/sip/``: apply one call event reported by a SIP provider."""
    await verify_delivery(request, "sip")
    svc = services(request)
    delivery = parse_sip_delivery(await read_json_object(request), svc.calls.clock())
    return web.json_response(await svc.provider.store_sip(delivery))


def parse_recording_delivery(body: Mapping[str, Any]) -> RecordingDelivery:
    """Validate a recording webhook body (one 422 naming every bad field)."""
    f = Fields(body, allowed=RECORDING_FIELDS)
    call_id = f.uuid("call_id", required=True)
    status = f.choice("status", RecordingStatus, required=True)
    recording_id = f.uuid("recording_id")
    file_url = f.string("file_url", max_length=2048)
    if file_url is not None and not is_http_url(file_url):
        f.fail("file_url", "must be an http or https URL")
    fmt = f.choice("format", RecordingFormat)
    local_path = f.string("local_path", max_length=1024)
    problem = framing_problem(local_path) if local_path is not None else None
    if problem is not None:  # stop_recording hands it to the switch (uuid_record ... stop <path>)
        f.fail("local_path", problem)
    candidates = {
        "external_url": file_url,
        "local_path": local_path,
        "file_size": f.integer("file_size", minimum=0, maximum=MAX_FILE_SIZE),
        "duration_seconds": f.number("duration", minimum=0),
        "format": fmt.value if fmt is not None else None,
        "transcript": f.string("transcript", max_length=1_000_000, blank=True),
        "transcript_confidence": f.number("transcript_confidence", minimum=0, maximum=1),
    }
    f.done()
    changes = {name: value for name, value in candidates.items() if value is not None}
    return RecordingDelivery(call_id, status, recording_id, changes)


@routes.post(
    "/api/webhooks/recording/",
    Op(
        INBOUND,
        "A recording's state from a recording system",
        {200: "Recording"},
        "RecordingWebhook",
        errors={
            404: "no such call, or no such recording of it",
            409: "a deleted or completed recording cannot go back",
        },
    ),
)
async def recording_webhook(request: web.Request) -> web.Response:
    """``POST /api/webhooks/recording/``: a recording system reports a recording's state."""
    await verify_delivery(request, "recording")
    delivery = parse_recording_delivery(await read_json_object(request))
    return web.json_response(await services(request).provider.store_recording(delivery))

"""What verifying and reading a SIP provider's webhook costs, in-process: each provider's signature
check and payload mapping (``calld.providers.<name>``) per delivery, against calld's own SIP webhook
(``/api/webhooks/sip/``: ``calld.signing.verify`` and ``parse_sip_delivery``), which reads two numbers too.

    .venv/bin/python bench/provider_verify.py [--count 20000]

Requests are signed here with calld's own helpers and ``cryptography`` (the tests sign with the
providers' SDKs), so the bench needs only what calld installs.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from calld import signing
from calld.http.webhooks import parse_sip_delivery
from calld.providers import plivo, telnyx, twilio, vonage
from calld.providers.model import SignedRequest

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=5)
URL = "https://calld.example.com/api/webhooks/providers/{}/"
TOKEN = "bench-auth-token-0123456789abcdef"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def cases() -> dict[str, tuple[Callable[[], Any], int]]:
    stamp = "Tue, 24 Nov 2026 11:59:00 +0000"
    form = {
        "AccountSid": "AC0123456789abcdef0123456789abcdef",
        "CallSid": "CA0123456789abcdef0123456789abcdef",
        "CallStatus": "completed",
        "From": "+14155550100",
        "To": "+14155550199",
        "Direction": "outbound-api",
        "CallDuration": "45",
        "Timestamp": stamp,
        "SequenceNumber": "3",
        "CallbackSource": "call-progress-events",
    }
    twilio_body = urlencode(form).encode()
    twilio_request = SignedRequest(
        "POST",
        URL.format("twilio"),
        {"x-twilio-signature": twilio.signature(TOKEN, URL.format("twilio"), form)},
        twilio_body,
    )

    private = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    public = base64.b64encode(private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    event = {
        "data": {
            "event_type": "call.hangup",
            "id": "e1",
            "occurred_at": "2026-11-24T11:59:00Z",
            "payload": {
                "call_session_id": "s1",
                "call_leg_id": "s1",
                "from": "+14155550100",
                "to": "+14155550199",
                "hangup_cause": "normal_clearing",
                "hangup_source": "caller",
                "sip_hangup_cause": "200",
                "call_quality_stats": {"inbound": {"mos": "4.5"}},
            },
        }
    }
    telnyx_body = json.dumps(event).encode()
    ts = str(int(NOW.timestamp()))
    telnyx_request = SignedRequest(
        "POST",
        "/",
        {
            "telnyx-timestamp": ts,
            "telnyx-signature-ed25519": base64.b64encode(private.sign(ts.encode() + b"|" + telnyx_body)).decode(),
        },
        telnyx_body,
    )
    key = telnyx.public_key(public)

    vonage_body = json.dumps(
        {
            "from": "14155550100",
            "to": "14155550199",
            "uuid": "u1",
            "conversation_uuid": "CON-1",
            "status": "completed",
            "duration": "45",
            "timestamp": "2026-11-24T11:59:00.000Z",
        }
    ).encode()
    head = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = _b64url(
        json.dumps({"iat": int(NOW.timestamp()), "payload_hash": hashlib.sha256(vonage_body).hexdigest()}).encode()
    )
    mac = _b64url(hmac.new(TOKEN.encode(), f"{head}.{claims}".encode(), hashlib.sha256).digest())
    vonage_request = SignedRequest("POST", "/", {"authorization": f"Bearer {head}.{claims}.{mac}"}, vonage_body)

    params = {
        "CallUUID": "u1",
        "CallStatus": "completed",
        "Event": "Hangup",
        "From": "14155550100",
        "To": "14155550199",
        "Duration": "45",
        "HangupCause": "NORMAL_CLEARING",
        "HangupSource": "Caller",
        "AnswerTime": "2026-11-24 11:58:15",
        "EndTime": "2026-11-24 11:59:00",
    }
    plivo_body = urlencode(params).encode()
    plivo_request = SignedRequest(
        "POST",
        URL.format("plivo"),
        {
            "x-plivo-signature-v3": plivo.signature(TOKEN, URL.format("plivo"), "n1", params),
            "x-plivo-signature-v3-nonce": "n1",
        },
        plivo_body,
    )

    calld_body = json.dumps(
        {
            "event_type": "call_ended",
            "sip_call_id": "a84b4c76e66710@pbx",
            "timestamp": "2026-11-24T11:59:00Z",
            "caller_number": "+14155550100",
            "recipient_number": "+14155550199",
            "delivery_id": "evt-000123",
        }
    ).encode()
    header = signing.sign(TOKEN, calld_body, NOW)

    def calld_own() -> Any:
        signing.verify([TOKEN], header, calld_body, NOW, WINDOW)
        return parse_sip_delivery(json.loads(calld_body), None, NOW)

    return {
        "calld's own (baseline)": (calld_own, len(calld_body)),
        "twilio": (lambda: twilio.parse(twilio.verify(TOKEN, twilio_request), None, NOW, WINDOW), len(twilio_body)),
        "telnyx": (lambda: telnyx.parse(telnyx.verify(key, telnyx_request, NOW, WINDOW), None, NOW), len(telnyx_body)),
        "vonage": (
            lambda: vonage.parse(vonage.verify(TOKEN, vonage_request, NOW, WINDOW), None, NOW),
            len(vonage_body),
        ),
        "plivo": (lambda: plivo.parse(plivo.verify(TOKEN, plivo_request), None, NOW, WINDOW), len(plivo_body)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20000)
    args = parser.parse_args()
    results = {}
    for name, (run, size) in cases().items():
        run()  # warm up (and fail loudly if a signature does not verify)
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            for _ in range(args.count):
                run()
            best = min(best, (time.perf_counter() - started) / args.count)
        results[name] = (best, size)
    baseline = results["calld's own (baseline)"][0]
    print(f"{'verify + read':<24}{'body bytes':>12}{'µs/delivery':>14}{'deliveries/s':>14}{'x baseline':>12}")
    for name, (seconds, size) in results.items():
        print(f"{name:<24}{size:>12}{seconds * 1e6:>14.1f}{1 / seconds:>14,.0f}{seconds / baseline:>12.1f}")


if __name__ == "__main__":
    main()

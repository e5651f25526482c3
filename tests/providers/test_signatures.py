"""Each provider's signature scheme, checked by calld against requests its own SDK signed (pure)."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta

import jwt
import nacl.signing
import pytest
from twilio.request_validator import RequestValidator

from calld.providers import plivo, telnyx, twilio, vonage
from calld.providers.model import SignatureRejected, SignedRequest
from tests.providers import signing
from tests.support import (
    PLIVO_AUTH_TOKEN,
    TELNYX_SEED,
    TWILIO_AUTH_TOKEN,
    VONAGE_SIGNATURE_SECRET,
    telnyx_public_key,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=5)
PARAMS = {"CallSid": "CA123", "CallStatus": "ringing", "From": "+14155550100", "To": "+14155550199"}


def request(url: str, body: bytes, headers: dict[str, str]) -> SignedRequest:
    return SignedRequest("POST", url, {k.lower(): v for k, v in headers.items()}, body)


# --- Twilio ---


def test_twilio_form_callback_signed_by_the_sdk() -> None:
    raw, headers = signing.twilio(PARAMS)
    assert twilio.verify(TWILIO_AUTH_TOKEN, request(signing.public_url("twilio"), raw, headers)) == PARAMS


def test_twilio_json_body_is_signed_through_body_sha256() -> None:
    body = json.dumps({"CallSid": "CA123", "CallStatus": "completed"}).encode()
    url = signing.public_url("twilio") + "?bodySHA256=" + hashlib.sha256(body).hexdigest()
    signature = RequestValidator(TWILIO_AUTH_TOKEN).compute_signature(url, {})
    verified = twilio.verify(TWILIO_AUTH_TOKEN, request(url, body, {"X-Twilio-Signature": signature}))
    assert verified["CallStatus"] == "completed"
    with pytest.raises(SignatureRejected, match="bodySHA256"):
        twilio.verify(
            TWILIO_AUTH_TOKEN, request(url, body.replace(b"completed", b"busy"), {"X-Twilio-Signature": signature})
        )


def test_twilio_signature_with_or_without_the_default_port() -> None:
    with_port = "https://calld.example.com:443/api/webhooks/providers/twilio/"
    signature = RequestValidator(TWILIO_AUTH_TOKEN).compute_signature(with_port, PARAMS)
    raw, _ = signing.twilio(PARAMS)
    assert twilio.verify(
        TWILIO_AUTH_TOKEN, request(signing.public_url("twilio"), raw, {"X-Twilio-Signature": signature})
    )


def test_twilio_sha256_shared_key_signature() -> None:
    url = signing.public_url("twilio")
    signature = RequestValidator(TWILIO_AUTH_TOKEN).compute_signature(url, PARAMS, "HMAC_SHA256")
    raw, _ = signing.twilio(PARAMS)
    headers = {"X-Twilio-Signature": signature, "X-Twilio-Webhooks-Signature-Settings": "key=k1,algorithm=HMAC_SHA256"}
    assert twilio.verify(TWILIO_AUTH_TOKEN, request(url, raw, headers)) == PARAMS


@pytest.mark.parametrize(
    "how", ["wrong token", "tampered", "other url", "no header", "not form data", "unknown algorithm"]
)
def test_twilio_refusals(how: str) -> None:
    url = signing.public_url("twilio")
    raw, headers = signing.twilio(PARAMS, token="another-token" if how == "wrong token" else TWILIO_AUTH_TOKEN)
    if how == "tampered":
        raw = raw.replace(b"ringing", b"in-progress")
    elif how == "other url":
        url = "http://127.0.0.1:8080/api/webhooks/providers/twilio/"
    elif how == "no header":
        headers = {}
    elif how == "not form data":
        raw = b"\xff\xfe"
    elif how == "unknown algorithm":
        headers["X-Twilio-Webhooks-Signature-Settings"] = "algorithm=HMAC_MD5"
    with pytest.raises(SignatureRejected):
        twilio.verify(TWILIO_AUTH_TOKEN, request(url, raw, headers))


# --- Telnyx ---


def test_telnyx_ed25519_signature() -> None:
    raw, headers = signing.telnyx({"data": {"id": "e1"}}, NOW)
    key = telnyx.public_key(telnyx_public_key())
    assert telnyx.verify(key, request("/", raw, headers), NOW, WINDOW) == {"data": {"id": "e1"}}


@pytest.mark.parametrize("how", ["other key", "tampered", "stale", "far future", "not base64", "missing"])
def test_telnyx_refusals(how: str) -> None:
    raw, headers = signing.telnyx({"data": {"id": "e1"}}, NOW, seed=bytes(32) if how == "other key" else TELNYX_SEED)
    if how == "tampered":
        raw = raw.replace(b"e1", b"e2")
    elif how == "stale":
        raw, headers = signing.telnyx({"data": {"id": "e1"}}, NOW - timedelta(minutes=6))
    elif how == "far future":
        headers["telnyx-timestamp"] = "999999999999"
    elif how == "not base64":
        headers["telnyx-signature-ed25519"] = "%%%"
    elif how == "missing":
        del headers["telnyx-signature-ed25519"]
    with pytest.raises(SignatureRejected):
        telnyx.verify(telnyx.public_key(telnyx_public_key()), request("/", raw, headers), NOW, WINDOW)


def test_telnyx_public_key_must_be_32_bytes_of_base64() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        telnyx.public_key(base64.b64encode(b"short").decode())
    signing_key = nacl.signing.SigningKey(TELNYX_SEED)
    assert telnyx_public_key() == base64.b64encode(signing_key.verify_key.encode()).decode()


# --- Vonage ---


def test_vonage_signed_jwt() -> None:
    raw, headers = signing.vonage({"status": "started"}, NOW)
    assert vonage.verify(VONAGE_SIGNATURE_SECRET, request("/", raw, headers), NOW, WINDOW) == {"status": "started"}


@pytest.mark.parametrize("how", ["wrong secret", "tampered", "stale", "alg none", "no bearer", "no payload_hash"])
def test_vonage_refusals(how: str) -> None:
    body = {"status": "started"}
    secret = "another-signature-secret-of-32-bytes" if how == "wrong secret" else VONAGE_SIGNATURE_SECRET
    raw, headers = signing.vonage(body, NOW - timedelta(minutes=6) if how == "stale" else NOW, secret=secret)
    if how == "tampered":
        raw = raw.replace(b"started", b"answered")
    elif how == "alg none":
        token = jwt.encode({"iat": int(NOW.timestamp()), "payload_hash": hashlib.sha256(raw).hexdigest()}, None, "none")
        headers["Authorization"] = f"Bearer {token}"
    elif how == "no bearer":
        headers["Authorization"] = "Basic dXNlcjpwYXNz"
    elif how == "no payload_hash":
        token = jwt.encode({"iat": int(NOW.timestamp())}, VONAGE_SIGNATURE_SECRET, algorithm="HS256")
        headers["Authorization"] = f"Bearer {token}"
    with pytest.raises(SignatureRejected):
        vonage.verify(VONAGE_SIGNATURE_SECRET, request("/", raw, headers), NOW, WINDOW)


# --- Plivo ---


@pytest.mark.parametrize("url", [signing.public_url("plivo"), signing.public_url("plivo") + "?tenant=a&b=2"])
def test_plivo_v3_signature(url: str) -> None:
    params = {"CallUUID": "u1", "CallStatus": "ringing", "Event": "Ring"}
    raw, headers = signing.plivo(params, url=url)
    assert plivo.verify(PLIVO_AUTH_TOKEN, request(url, raw, headers)) == params
    # Several signatures (one per token while a token is rotated): one matching is enough.
    headers["X-Plivo-Signature-V3"] = "bm9wZQ==, " + headers["X-Plivo-Signature-V3"]
    assert plivo.verify(PLIVO_AUTH_TOKEN, request(url, raw, headers)) == params


@pytest.mark.parametrize("how", ["wrong token", "tampered", "other nonce", "missing nonce"])
def test_plivo_refusals(how: str) -> None:
    params = {"CallUUID": "u1", "CallStatus": "ringing"}
    raw, headers = signing.plivo(params, token="another-token" if how == "wrong token" else PLIVO_AUTH_TOKEN)
    if how == "tampered":
        raw = raw.replace(b"ringing", b"busy")
    elif how == "other nonce":
        headers["X-Plivo-Signature-V3-Nonce"] = "0000"
    elif how == "missing nonce":
        del headers["X-Plivo-Signature-V3-Nonce"]
    with pytest.raises(SignatureRejected):
        plivo.verify(PLIVO_AUTH_TOKEN, request(signing.public_url("plivo"), raw, headers))

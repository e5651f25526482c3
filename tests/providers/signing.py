"""Requests signed as each provider signs them, with the provider's own SDK (test-only dependencies):
``twilio``'s RequestValidator, PyNaCl's Ed25519 (the library Telnyx's SDK verifies with), PyJWT as
``vonage-jwt`` checks it, ``plivo``'s V3 signature helpers. Each signer also checks its signature
with the SDK's own validator, so a test cannot pass on a signature only calld would accept."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import jwt
import nacl.signing
import vonage_jwt
from plivo.utils.signature_v3 import construct_post_url, get_signature_v3, validate_v3_signature
from twilio.request_validator import RequestValidator

from tests.support import (
    PLIVO_AUTH_TOKEN,
    PUBLIC_BASE,
    TELNYX_SEED,
    TWILIO_AUTH_TOKEN,
    VONAGE_SIGNATURE_SECRET,
)

PATH = "/api/webhooks/providers/{}/"


def public_url(provider: str) -> str:
    return PUBLIC_BASE + PATH.format(provider)


def twilio(
    params: Mapping[str, str], url: str | None = None, token: str = TWILIO_AUTH_TOKEN
) -> tuple[bytes, dict[str, str]]:
    """A form-encoded Twilio callback and its headers."""
    url = url or public_url("twilio")
    validator = RequestValidator(token)
    signature = validator.compute_signature(url, dict(params))
    assert validator.validate(url, dict(params), signature)
    return urlencode(params).encode(), {
        "X-Twilio-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }


def telnyx(body: Mapping[str, Any], at: datetime, seed: bytes = TELNYX_SEED) -> tuple[bytes, dict[str, str]]:
    """A Telnyx webhook and its headers, signed with the Ed25519 key ``seed``."""
    raw = json.dumps(body).encode()
    timestamp = str(int(at.timestamp()))
    signature = nacl.signing.SigningKey(seed).sign(timestamp.encode() + b"|" + raw).signature
    headers = {
        "telnyx-signature-ed25519": base64.b64encode(signature).decode(),
        "telnyx-timestamp": timestamp,
        "Content-Type": "application/json",
    }
    # Checked as Telnyx's SDK checks it (webhooks.unwrap): PyNaCl's VerifyKey over "<timestamp>|<body>".
    verify_key = nacl.signing.VerifyKey(nacl.signing.SigningKey(seed).verify_key.encode())
    verify_key.verify(timestamp.encode() + b"|" + raw, signature)
    return raw, headers


def vonage(
    body: Mapping[str, Any], at: datetime, secret: str = VONAGE_SIGNATURE_SECRET
) -> tuple[bytes, dict[str, str]]:
    """A Vonage event and its headers: the signed-webhook JWT Vonage sends (HS256, payload_hash)."""
    raw = json.dumps(body).encode()
    claims = {
        "iat": int(at.timestamp()),
        "jti": str(uuid.uuid4()),
        "iss": "Vonage",
        "payload_hash": hashlib.sha256(raw).hexdigest(),
        "api_key": "a1b2c3d4",
        "application_id": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
    }
    token = jwt.encode(claims, secret, algorithm="HS256")
    assert vonage_jwt.verify_signature(token, secret)
    return raw, {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def plivo(
    params: Mapping[str, str], url: str | None = None, token: str = PLIVO_AUTH_TOKEN
) -> tuple[bytes, dict[str, str]]:
    """A form-encoded Plivo callback and its V3 signature headers."""
    url = url or public_url("plivo")
    nonce = uuid.uuid4().hex[:20]
    base_url = construct_post_url(url, dict(params)).decode()
    signature = get_signature_v3(token.encode(), base_url, nonce.encode()).decode()
    assert validate_v3_signature("POST", url, nonce, token, signature, dict(params))
    return urlencode(params).encode(), {
        "X-Plivo-Signature-V3": signature,
        "X-Plivo-Signature-V3-Nonce": nonce,
        "Content-Type": "application/x-www-form-urlencoded",
    }

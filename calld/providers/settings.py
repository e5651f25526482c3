"""``[webhooks.providers.<name>]``: one table per SIP provider whose webhooks calld accepts.

A provider without its table is not accepted: its endpoint refuses every delivery (401, naming the
table to configure). ``public_url`` is the URL
the provider was given for calld (Twilio and Plivo sign it): behind a reverse proxy calld sees
another one. ``allow_ips`` optionally limits the addresses deliveries may come from.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TwilioSettings:
    auth_token: str = ""
    public_url: str = ""
    allow_ips: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"TwilioSettings(auth_token='***', public_url={self.public_url!r}, allow_ips={self.allow_ips!r})"


@dataclass(frozen=True, slots=True)
class TelnyxSettings:
    # Not a secret: the account's Ed25519 public key (base64), from the Telnyx portal.
    public_key: str = ""
    allow_ips: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class VonageSettings:
    signature_secret: str = ""
    allow_ips: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"VonageSettings(signature_secret='***', allow_ips={self.allow_ips!r})"


@dataclass(frozen=True, slots=True)
class PlivoSettings:
    auth_token: str = ""
    public_url: str = ""
    allow_ips: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"PlivoSettings(auth_token='***', public_url={self.public_url!r}, allow_ips={self.allow_ips!r})"


@dataclass(frozen=True, slots=True)
class ProvidersConfig:
    """The configured providers (``None``: that provider's webhooks are refused)."""

    twilio: TwilioSettings | None = None
    telnyx: TelnyxSettings | None = None
    vonage: VonageSettings | None = None
    plivo: PlivoSettings | None = None


PROVIDER_SETTINGS: dict[str, type] = {
    "twilio": TwilioSettings,
    "telnyx": TelnyxSettings,
    "vonage": VonageSettings,
    "plivo": PlivoSettings,
}
# Each provider's secret option, which must be set.
SECRET_OPTION = {"twilio": "auth_token", "telnyx": "public_key", "vonage": "signature_secret", "plivo": "auth_token"}

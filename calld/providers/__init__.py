"""SIP providers' own webhooks (Twilio, Telnyx, Vonage, Plivo): each module verifies its provider's
signature scheme and turns its payloads into calld events. Pure: no I/O, no clock of their own."""

"""Outbound webhook deliveries: their states and how long to wait before trying again."""

from __future__ import annotations

import random
from enum import StrEnum

from calld.domain.vocabulary import EventType

# The summary sent once a call is over (see calld.service.summary): asked for by name only, so a
# subscription to "every event" keeps getting exactly the call's events.
CALL_COMPLETED = "call.completed"
# What a webhook subscription may ask for.
SUBSCRIBABLE = (*(kind.value for kind in EventType), CALL_COMPLETED)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


def retry_delay(attempts: int, base: float, cap: float, rand: random.Random) -> float:
    """Seconds to wait after ``attempts`` failed tries: base·2^(attempts-1), at most ``cap``, with
    "equal jitter" (half fixed, half random) so receivers that failed together do not get retried
    together, yet each wait still grows."""
    ceiling = min(cap, base * 2.0 ** min(max(attempts - 1, 0), 62))
    return ceiling / 2 + rand.uniform(0, ceiling / 2)

"""Outbound webhook deliveries: their states and how long to wait before trying again."""

from __future__ import annotations

import random
from enum import StrEnum


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

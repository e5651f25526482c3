"""Retry waits: doubling from the base, capped, jittered within the upper half."""

from __future__ import annotations

import random

from calld.domain.delivery import retry_delay


def test_waits_double_up_to_the_cap_with_jitter_in_the_upper_half() -> None:
    rand = random.Random(3)
    for attempts, ceiling in [(1, 10), (2, 20), (3, 40), (7, 640), (8, 1000), (50, 1000), (10_000, 1000)]:
        waits = [retry_delay(attempts, 10, 1000, rand) for _ in range(200)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits), (attempts, min(waits), max(waits))
        assert max(waits) - min(waits) > ceiling / 10  # really jittered


def test_zero_attempts_waits_like_one() -> None:
    assert 5 <= retry_delay(0, 10, 1000, random.Random(1)) <= 10

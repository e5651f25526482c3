"""Capped exponential backoff between reconnection attempts to a switch."""

from __future__ import annotations

import asyncio

# A refused connection is a switch that is (re)starting: its port opens within moments, so the
# next try comes this soon, every time, instead of backing off to seconds and missing calls.
REFUSED_RETRY_SECONDS = 0.25


class Backoff:
    """Waits ``initial`` seconds, then twice as long each time, at most ``cap``; ``reset`` after success."""

    def __init__(self, cap: float, initial: float = 0.5) -> None:
        self.initial = initial
        self.cap = cap
        self.delay = initial

    def reset(self) -> None:
        self.delay = self.initial

    def next_delay(self, refused: bool = False) -> float:
        """How long the coming ``wait`` sleeps."""
        return min(REFUSED_RETRY_SECONDS, self.cap) if refused else self.delay

    async def wait(self, refused: bool = False) -> None:
        """Sleep before the next attempt; a ``refused`` connection is retried at once, without growing."""
        if refused:
            await asyncio.sleep(self.next_delay(refused=True))
            return
        await asyncio.sleep(self.delay)
        self.delay = min(self.delay * 2, self.cap)

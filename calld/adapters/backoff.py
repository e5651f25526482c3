"""Capped exponential backoff between reconnection attempts to a switch."""

from __future__ import annotations

import asyncio


class Backoff:
    """Waits ``initial`` seconds, then twice as long each time, at most ``cap``; ``reset`` after success."""

    def __init__(self, cap: float, initial: float = 0.5) -> None:
        self.initial = initial
        self.cap = cap
        self.delay = initial

    def reset(self) -> None:
        self.delay = self.initial

    async def wait(self) -> None:
        await asyncio.sleep(self.delay)
        self.delay = min(self.delay * 2, self.cap)

"""Reconnection pacing: a refused connection (a switch restarting) is retried at once, every time."""

from __future__ import annotations

from calld.adapters.backoff import REFUSED_RETRY_SECONDS, Backoff


async def test_failures_back_off_and_refusals_do_not() -> None:
    backoff = Backoff(cap=30.0, initial=0.01)
    delays = []
    for _ in range(4):
        delays.append(backoff.next_delay())
        await backoff.wait()
    assert delays == [0.01, 0.02, 0.04, 0.08]
    # A switch whose port refuses is starting up: the next try is soon, and stays soon.
    for _ in range(3):
        assert backoff.next_delay(refused=True) == REFUSED_RETRY_SECONDS <= 0.5
    assert backoff.next_delay() == 0.16  # the refusals did not grow the other delay
    backoff.reset()
    assert backoff.next_delay() == 0.01

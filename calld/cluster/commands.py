"""Control actions carried to the calld instance connected to the call's switch.

Behind a load balancer a REST action (hold, transfer, record, end, originate...) may reach an
instance that is not connected to the call's switch (a standby, or an instance for another PBX). It
is then queued in ``calld_commands`` with a ``NOTIFY calld_commands`` waking the PBX's leader, which
claims it (``FOR UPDATE SKIP LOCKED``), asks its switch exactly as for a local request, and writes
the answer with a ``NOTIFY calld_command_done``. The asking request waits for that answer (or polls
for it, should a notification be missed) until its deadline: the HTTP answer is then the one a local
request would have had (the switch's refusal is 409, its absence 502), or 503 ``no_leader`` when no
instance took the command up, or 504 ``command_timeout`` when one did but did not answer in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
import structlog

from calld.adapters.port import CommandTimedOut, NoLeader, SwitchError, SwitchPort, SwitchUnavailable
from calld.cluster.listener import Listener
from calld.storage.database import Database
from calld.storage.models import CalldCommand

WAKE_CHANNEL = "calld_commands"  # payload: the PBX a command waits for
DONE_CHANNEL = "calld_command_done"  # payload: the command's id
# The SwitchPort methods a command may name (what the control and call services ask a switch).
ACTIONS = frozenset(
    {
        "originate",
        "hangup",
        "transfer",
        "hold",
        "unhold",
        "start_recording",
        "stop_recording",
        "mute",
        "send_dtmf",
        "complete_transfer",
        "cancel_transfer",
        "answer",
        "reject",
        "pause_recording",
        "park",
        "pickup",
    }
)
_POLL_SECONDS = 0.5  # a missed notification costs at most this much
# Answered and expired commands are kept this long (to look into), then deleted by the PBX's leader.
KEEP = timedelta(hours=1)
_PURGE_EVERY_SECONDS = 60.0
_NOTIFY = sa.text("SELECT pg_notify(:channel, :payload)")


class CommandQueue:
    """Asks a PBX's leader to run a switch action (``ask``); runs those asked of this instance's
    PBX while it leads (``serve``)."""

    def __init__(self, db: Database, instance: str, listener: Listener, timeout_seconds: float) -> None:
        self.db = db
        self.instance = instance
        self.timeout = timeout_seconds
        self.log = structlog.get_logger("calld.cluster")
        self._answers: dict[int, asyncio.Event] = {}
        self._wake = asyncio.Event()
        self._serving: str | None = None
        self.served = 0
        listener.on(WAKE_CHANNEL, self._woken)
        listener.on(DONE_CHANNEL, self._answered)

    def _woken(self, pbx: str) -> None:
        if pbx == self._serving:
            self._wake.set()

    def _answered(self, payload: str) -> None:
        with contextlib.suppress(ValueError):
            event = self._answers.get(int(payload))
            if event is not None:
                event.set()

    # --- asking -------------------------------------------------------------------------------

    async def ask(self, pbx: str, action: str, args: list[Any], call_id: uuid.UUID | None = None) -> Any:
        """Have ``pbx``'s leader run ``action(*args)`` on its switch; its return value, or its error."""
        assert action in ACTIONS, action
        now = datetime.now(UTC)
        async with self.db.write() as session:
            command = CalldCommand(
                pbx=pbx,
                call_id=call_id,
                action=action,
                args=args,
                status="pending",
                requested_by=self.instance,
                created_at=now,
                deadline=now + timedelta(seconds=self.timeout),
            )
            session.add(command)
            await session.flush()
            await session.execute(_NOTIFY, {"channel": WAKE_CHANNEL, "payload": pbx})
        answered = self._answers[command.id] = asyncio.Event()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        try:
            while True:
                row = await self._read(command.id)
                if row.status in ("done", "failed"):
                    return _outcome(row)
                left = deadline - loop.time()
                if left <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(answered.wait(), min(left, _POLL_SECONDS))
        finally:
            self._answers.pop(command.id, None)
        return await self._expire(command.id, pbx, action)

    async def _read(self, command_id: int) -> CalldCommand:
        async with self.db.read() as session:
            row = await session.get(CalldCommand, command_id)
        assert row is not None
        return row

    async def _expire(self, command_id: int, pbx: str, action: str) -> Any:
        """The deadline passed: withdraw the command if nobody took it up, else say it timed out."""
        async with self.db.write() as session:
            row = await session.get(CalldCommand, command_id, with_for_update=True)
            assert row is not None
            if row.status in ("done", "failed"):  # answered at the last moment
                return _outcome(row)
            if row.status == "pending":
                row.status, row.finished_at = "expired", datetime.now(UTC)
                raise NoLeader(f"no calld instance connected to {pbx} took up {action} within {self.timeout:g} s")
        raise CommandTimedOut(
            f"the calld instance connected to {pbx} did not answer {action} within {self.timeout:g} s"
        )

    # --- serving ------------------------------------------------------------------------------

    async def serve(self, switch: SwitchPort) -> None:
        """While this instance leads ``switch``'s PBX: run the commands asked of it, oldest first."""
        self._serving = switch.name
        loop = asyncio.get_running_loop()
        purged = 0.0
        try:
            while True:
                self._wake.clear()
                while await self._serve_one(switch):
                    pass
                if loop.time() - purged > _PURGE_EVERY_SECONDS:
                    await self._purge(switch.name)
                    purged = loop.time()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), _POLL_SECONDS * 2)
        finally:
            self._serving = None

    async def _serve_one(self, switch: SwitchPort) -> bool:
        claimed = await self._claim(switch.name)
        if claimed is None:
            return False
        command_id, action, args = claimed
        try:
            value = await _run(switch, action, args)
            status, result = "done", {"value": value}
        except SwitchError as exc:
            status, result = "failed", {"error": "switch_refused", "message": str(exc)}
        except SwitchUnavailable as exc:
            status, result = "failed", {"error": "switch_unavailable", "message": str(exc)}
        except Exception as exc:  # a bug: the asker gets a failure rather than a wait
            self.log.exception("command failed", command=command_id, action=action)
            status, result = "failed", {"error": "switch_unavailable", "message": repr(exc)}
        async with self.db.write() as session:
            await session.execute(
                sa.update(CalldCommand)
                .where(CalldCommand.id == command_id)
                .values(status=status, result=result, finished_at=datetime.now(UTC))
            )
            await session.execute(_NOTIFY, {"channel": DONE_CHANNEL, "payload": str(command_id)})
        self.served += 1
        self.log.info("command run for another instance", command=command_id, action=action, status=status)
        return True

    async def _purge(self, pbx: str) -> None:
        try:
            async with self.db.write() as session:
                await session.execute(
                    sa.delete(CalldCommand).where(
                        CalldCommand.pbx == pbx, CalldCommand.deadline < datetime.now(UTC) - KEEP
                    )
                )
        except Exception as exc:  # the database is away: the next turn tries again
            self.log.warning("old commands not deleted", error=repr(exc))

    async def _claim(self, pbx: str) -> tuple[int, str, list[Any]] | None:
        async with self.db.write() as session:
            stmt = (
                sa.select(CalldCommand)
                .where(CalldCommand.pbx == pbx, CalldCommand.status == "pending", CalldCommand.deadline > sa.func.now())
                .order_by(CalldCommand.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            row = (await session.execute(stmt)).scalar_one_or_none()
            if row is None:
                return None
            row.status, row.claimed_by, row.claimed_at = "running", self.instance, datetime.now(UTC)
            return row.id, row.action, list(row.args)


async def _run(switch: SwitchPort, action: str, args: list[Any]) -> Any:
    if action not in ACTIONS:
        raise SwitchError(f"unknown action {action!r}")
    method: Callable[..., Awaitable[Any]] = getattr(switch, action)
    value = await method(*args)
    json.dumps(value)  # what goes back must be JSON (originate's reference is a string)
    return value


def _outcome(row: CalldCommand) -> Any:
    result = row.result or {}
    if row.status == "done":
        return result.get("value")
    if result.get("error") == "switch_refused":
        raise SwitchError(str(result.get("message")))
    raise SwitchUnavailable(str(result.get("message")))

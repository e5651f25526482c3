"""A small asyncio Event Socket (inbound mode) client on top of ``esl_codec``.

Why not ``greenswitch`` (the client the design names): measured 2026-11-25 against
``tests.fakes.esl_server.FakeEslServer`` replaying the real FreeSWITCH 1.10.12 ``j_load`` captures
(200 calls, ~9,600 events), greenswitch 0.0.19 in a dedicated thread with its own gevent hub,
events handed over with ``loop.call_soon_threadsafe``:

* without process-wide monkey patching greenswitch deadlocks on connect: it uses the blocking
  ``socket`` module, so its receive greenlet blocks the thread's hub in ``recv`` and the greenlet
  waiting to send ``auth`` never runs (a real switch waits for ``auth`` too). Swapping
  ``greenswitch.esl.socket`` for ``gevent.socket`` (greenswitch only) makes it run;
* ``event plain``: all 9,603 events arrive in 0.81 s (≈11,900 events/s, enough for the ≈970/s
  peak) but 200 of them (every BACKGROUND_JOB) decode wrongly: greenswitch percent-decodes the
  whole block *before* splitting lines and folds the job's body into the headers;
* ``event json``: greenswitch has no JSON support; its receive greenlet dies on the first JSON
  event (``AttributeError: 'NoneType' object has no attribute 'strip'``): 0 events delivered.

``esl_codec`` parses and decodes the same streams at ≈28,000 events/s (plain) and ≈34,000 events/s
(json) in the event loop itself, with no thread, no bridge and correct bodies; json costs less to
decode (see the codec bench), so the adapter subscribes with ``event json``.

Replies come back in command order (README "ESL framing as observed"), so each command gets a
future in a FIFO; a reply resolves the oldest one. Events go, in stream order, into a bounded
queue the adapter drains (a slow consumer slows reading, TCP pushes back on the switch): one
entry per socket read, the list of frames it completed, so a busy stream costs one queue hop per
read (~100 events at 256 KiB) instead of one per event.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass
from typing import Final

from calld.adapters.freeswitch.esl_codec import (
    CT_API_RESPONSE,
    CT_AUTH_REQUEST,
    CT_COMMAND_REPLY,
    CT_DISCONNECT_NOTICE,
    EslParser,
    EslProtocolError,
    Frame,
    encode_auth,
)

# Bytes asked of the socket per read: large reads mean few wake-ups and few queue entries.
READ_SIZE: Final = 262144


class EslClosed(Exception):
    """The connection is gone (closed by either side, or it never authenticated)."""


class EslAuthFailed(Exception):
    """The switch refused the password."""


@dataclass(slots=True)
class _Pending:
    future: asyncio.Future[Frame]
    in_band: bool  # also put the reply into the event queue, at its place in the stream


class EslConnection:
    """One authenticated Event Socket connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, queue_reads: int) -> None:
        self._reader = reader
        self._writer = writer
        self._parser = EslParser()
        self._pending: deque[_Pending] = deque()
        # Event frames and in-band replies, in stream order, a list per socket read (at most
        # queue_reads of them, each from at most READ_SIZE bytes); None once the connection ended.
        self.frames: asyncio.Queue[list[Frame] | None] = asyncio.Queue(queue_reads)
        self._auth_request: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._closed = False
        self._reader_task = asyncio.create_task(self._read(), name="esl-reader")

    @classmethod
    async def open(
        cls, host: str, port: int, password: str, wait_seconds: float, queue_reads: int = 64
    ) -> EslConnection:
        """Connect and authenticate; raises OSError, TimeoutError, EslClosed or EslAuthFailed."""
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), wait_seconds)
        conn = cls(reader, writer, queue_reads)
        try:
            await asyncio.wait_for(asyncio.shield(conn._auth_request), wait_seconds)
            reply = await conn.command(encode_auth(password), wait_seconds)
            if not reply.reply_text.startswith("+OK"):
                raise EslAuthFailed(reply.reply_text or "authentication refused")
        except BaseException:
            await conn.close()
            raise
        return conn

    @property
    def closed(self) -> bool:
        return self._closed

    async def command(self, data: bytes, wait_seconds: float, *, in_band: bool = False) -> Frame:
        """Send one encoded command and return its reply frame (command/reply or api/response)."""
        if self._closed:
            raise EslClosed("not connected")
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        # Append and write with no await in between, so the FIFO order is the wire order.
        self._pending.append(_Pending(future, in_band))
        self._writer.write(data)
        try:
            await asyncio.wait_for(self._writer.drain(), wait_seconds)
            # On timeout the future is cancelled but stays queued, so the late reply is consumed
            # by it and the replies of later commands still line up.
            return await asyncio.wait_for(future, wait_seconds)
        except ConnectionError as exc:
            raise EslClosed(str(exc)) from exc

    async def close(self) -> None:
        self._finish()
        self._reader_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader_task
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()

    async def wait_closed(self) -> None:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.shield(self._reader_task)

    def _finish(self) -> None:
        if self._closed:
            return
        self._closed = True
        while self._pending:
            pending = self._pending.popleft()
            if not pending.future.done():
                pending.future.set_exception(EslClosed("connection closed before the reply"))
        if not self._auth_request.done():
            self._auth_request.set_exception(EslClosed("connection closed before auth/request"))

    async def _read(self) -> None:
        try:
            going = True
            while going and (chunk := await self._reader.read(READ_SIZE)):
                batch: list[Frame] = []
                for frame in self._parser.feed(chunk):
                    if frame.is_event or self._on_frame(frame):
                        batch.append(frame)
                    elif frame.content_type == CT_DISCONNECT_NOTICE:
                        going = False  # the switch is closing; nothing after this counts
                        break
                if batch:
                    await self.frames.put(batch)
        except (ConnectionError, EslProtocolError):
            pass
        finally:
            self._finish()
        # Not reached when cancelled (close()): then nobody is waiting for the end marker.
        await self.frames.put(None)

    def _on_frame(self, frame: Frame) -> bool:
        """Handle a non-event frame; True when it also goes into the stream (an in-band reply)."""
        content_type = frame.content_type
        if content_type == CT_AUTH_REQUEST:
            if not self._auth_request.done():
                self._auth_request.set_result(frame)
        elif content_type in (CT_COMMAND_REPLY, CT_API_RESPONSE) and self._pending:
            pending = self._pending.popleft()
            if not pending.future.done():
                pending.future.set_result(frame)
            return pending.in_band
        return False

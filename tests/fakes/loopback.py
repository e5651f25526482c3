"""What the fake switches share: a TCP server on 127.0.0.1 that serves each client in a task and
cancels those still running when it closes."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Self


class LoopbackServer:
    """Listens on an ephemeral loopback port once started (``async with`` or ``start()``); each
    connection is handed to ``serve``, and closed after it, however it ends."""

    _server: asyncio.Server | None = None
    _clients: set[asyncio.Task[None]]

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One client's conversation (a subclass says what the switch says)."""
        raise NotImplementedError

    async def start(self) -> tuple[str, int]:
        self._clients = set()
        self._server = await asyncio.start_server(self._on_client, "127.0.0.1", 0)
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._clients):
            task.cancel()
        for task in list(self._clients):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        try:
            await self.serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._clients.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

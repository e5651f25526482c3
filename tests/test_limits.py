"""Connection limits of a running daemon on loopback: idle and slow (slowloris) connections are
closed after ``server.idle_timeout_seconds``, connections past ``server.max_connections`` are
answered 503 and closed, repeated error lines are rate-limited and counted, and the unit file
gives calld the file descriptors its cap needs. Small and bounded: a few connections, seconds."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path

from calld.config import Config, ServerConfig
from calld.daemon import Daemon
from calld.logging import RepeatLimiter
from calld.service.metrics import Metrics
from calld.storage.database import Database
from tests.support import LogCapture, running_daemon

ROOT = Path(__file__).resolve().parent.parent
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@contextlib.asynccontextmanager
async def daemon_with(db: Database, **server: float) -> AsyncIterator[Daemon]:
    settings = ServerConfig(host="127.0.0.1", port=0, **server)  # type: ignore[arg-type]
    async with running_daemon(db, server=settings) as daemon:
        yield daemon


async def connect(daemon: Daemon) -> Connection:
    return await asyncio.open_connection("127.0.0.1", daemon.port)


async def healthz(conn: Connection) -> bytes:
    """One keep-alive request on ``conn``; the response head and body."""
    reader, writer = conn
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: calld\r\n\r\n")
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    length = int(re.search(rb"Content-Length: (\d+)", head, re.IGNORECASE).group(1))  # type: ignore[union-attr]
    return head + await reader.readexactly(length)


async def closed_by_server(reader: asyncio.StreamReader, within: float = 10.0) -> bool:
    """True once the server closed the connection (EOF or reset); False if still open after ``within``."""
    try:
        async with asyncio.timeout(within):
            while await reader.read(1024):
                pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


async def test_an_idle_connection_is_closed_after_the_idle_timeout(db: Database) -> None:
    async with daemon_with(db, idle_timeout_seconds=0.5) as daemon:
        never_sent = await connect(daemon)
        after_a_request = await connect(daemon)
        assert b" 200 " in await healthz(after_a_request)
        assert await closed_by_server(never_sent[0])
        assert await closed_by_server(after_a_request[0])
        for _, writer in (never_sent, after_a_request):
            writer.close()


async def test_a_request_whose_headers_never_end_is_closed(db: Database) -> None:
    """Slowloris: a header line now and then keeps no connection open past the timeout."""
    async with daemon_with(db, idle_timeout_seconds=0.5) as daemon:
        reader, writer = await connect(daemon)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: calld\r\n")

        async def dribble() -> None:
            with contextlib.suppress(ConnectionError):
                for n in range(100):  # at most 10 s
                    writer.write(f"X-Slow-{n}: a\r\n".encode())
                    await writer.drain()
                    await asyncio.sleep(0.1)

        sending = asyncio.create_task(dribble())
        try:
            assert await closed_by_server(reader)
        finally:
            sending.cancel()
            writer.close()


async def once_served(daemon: Daemon, request: bytes) -> bytes:
    """Send ``request`` on a new connection until one is not turned away (a slot frees as the
    server notices a closed connection)."""
    for _ in range(200):
        reader, writer = await connect(daemon)
        writer.write(request)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        if not answer.startswith(b"HTTP/1.1 503 "):
            return answer
        await asyncio.sleep(0.05)
    raise AssertionError("calld never served a connection again")


async def test_connections_past_the_cap_are_answered_503_and_closed(db: Database) -> None:
    async with daemon_with(db, idle_timeout_seconds=30, max_connections=5) as daemon:
        held = [await connect(daemon) for _ in range(5)]
        for conn in held:  # each is open and served (and now idle, holding its slot)
            assert b" 200 " in await healthz(conn)
        reader, writer = await connect(daemon)
        refused = await asyncio.wait_for(reader.read(), 10)  # answered and closed without a request
        writer.close()
        head, _, body = refused.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503 ")
        assert b"Retry-After: 1" in head
        assert json.loads(body)["error"] == "too many connections"

        held[0][1].close()  # a slot frees: calld answers again
        text = (
            await once_served(daemon, b"GET /metrics HTTP/1.1\r\nHost: calld\r\nConnection: close\r\n\r\n")
        ).decode()
        assert text.startswith("HTTP/1.1 200 ")
        assert re.search(r"^calld_http_connections_refused_total ([1-9]\d*)\.0$", text, re.MULTILINE), text
        for _, held_writer in held:
            held_writer.close()


def test_repeated_error_lines_are_rate_limited_and_counted(log_capture: LogCapture) -> None:
    metrics = Metrics()
    now = [0.0]
    limiter = RepeatLimiter(metrics.log_line_suppressed, burst=5, interval_seconds=10, clock=lambda: now[0])
    limiter.install()
    try:
        log = logging.getLogger("asyncio")
        for _ in range(200):
            log.error("socket.accept() out of system resource", exc_info=OSError(24, "Too many open files"))
        logging.getLogger("calld.other").error("a different problem")
        now[0] = 10.0  # the next interval lets the first lines through again
        log.error("socket.accept() out of system resource", exc_info=OSError(24, "Too many open files"))
    finally:
        limiter.remove()
    accept_lines = [line for line in log_capture.lines() if line["event"].startswith("socket.accept()")]
    assert len(accept_lines) == 6
    assert any(line["event"] == "a different problem" for line in log_capture.lines())
    assert 'calld_log_lines_suppressed_total{logger="asyncio"} 195.0' in metrics.render().decode()


def test_the_unit_file_raises_the_descriptor_limit_above_the_connection_cap() -> None:
    unit = (ROOT / "systemd" / "calld.service").read_text()
    match = re.search(r"^LimitNOFILE=(\d+)$", unit, re.MULTILINE)
    assert match is not None
    assert int(match.group(1)) >= 4 * Config().server.max_connections

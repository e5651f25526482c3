"""Tokens never reach a log line, whatever logs them: malformed requests carrying a token (aiohttp's
own error log quotes the offending header) and calld's own lines. Each case greps the captured log
for the token's secret part, and checks the answer is JSON that does not echo the token."""

from __future__ import annotations

import asyncio
import json

import pytest

from calld.domain.scopes import Scope
from calld.storage.database import Database
from tests.support import LogCapture, mint_token, running_daemon

MALFORMED = [
    b"GET /api/call-logs/ HTTP/1.1\r\nHost: calld\r\nAuthorization: Bearer {token}\x01\r\n\r\n",
    b"GET /api/call-logs/ HTTP/1.1\r\nHost: calld\r\nAuthorization: Bearer {token}\x7f\r\n\r\n",
    b"GET /api/call-logs/ HTTP/1.1\r\nHost: calld\r\nAuthorization : Bearer {token}\r\n\r\n",
    b"GET /api/call-logs/ HTTP/1.1\r\nHost: calld\r\nAuthorization: Bearer {token}\r\n\x00\r\n\r\n",
    b"GET /api/call-logs/ HTTP/1.1\r\nHost: calld\r\nAuthorization: Bearer {token}\nX: \x01\r\n\r\n",
    b"GET /api/call-logs/?access_token={token}\x01 HTTP/1.1\r\nHost: calld\r\n\r\n",
    b"GET /api/ws?access_token={token} HTTP/1.1\x01\r\nHost: calld\r\n\r\n",
    b"\x16\x03\x01 Authorization: Bearer {token}\r\n\r\n",
    b"GET /api/call-logs/ HTTP/1.1\r\nHost: calld\r\nCookie: s={token}\x01\r\nAuthorization: Basic {token}\r\n\r\n",
]


@pytest.mark.parametrize("raw", MALFORMED)
async def test_a_malformed_request_never_logs_its_token(db: Database, log_capture: LogCapture, raw: bytes) -> None:
    async with running_daemon(db) as daemon:
        token = await mint_token(daemon.db, Scope.ADMIN)
        reader, writer = await asyncio.open_connection("127.0.0.1", daemon.port)
        writer.write(raw.replace(b"{token}", token.encode()))
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)  # answered (400) and closed
        writer.close()
        assert answer.split(b" ", 2)[1].startswith(b"4"), answer[:80]
        head, _, body = answer.partition(b"\r\n\r\n")
        assert b"Content-Type: application/json" in head
        assert json.loads(body)["error"] == "malformed HTTP request"
        assert token.encode() not in answer  # not echoed back either
    secret = token.removeprefix("calld_")[13:]  # after the 12-character key (the secret may hold "_")
    assert len(secret) == 43
    text = log_capture.text()
    assert secret not in text
    assert secret[:20] not in text

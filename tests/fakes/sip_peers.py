"""SIP peers on loopback that answer (or ignore) the probe's OPTIONS: UDP, TCP/TLS and WebSocket."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable
from typing import Any, cast

LOOPBACK = "127.0.0.1"


def sip_reply(request: bytes, status: int = 200, reason: str = "OK", call_id: str | None = None) -> bytes:
    """A response echoing the request's Via, From, To (tagged), Call-ID and CSeq, as RFC 3261 §8.2.6."""
    _, headers = request_headers(request)
    lines = [
        f"SIP/2.0 {status} {reason}",
        f"Via: {headers['via']}",
        f"From: {headers['from']}",
        f"To: {headers['to']};tag=responder",
        f"Call-ID: {call_id or headers['call-id']}",
        f"CSeq: {headers['cseq']}",
        "Server: loopback-responder",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def free_port(kind: socket.SocketKind) -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
    return port


class StreamResponder:
    """A TCP (or TLS) SIP responder on loopback; ``reply`` turns a request into what is sent back."""

    def __init__(self, reply: Callable[[bytes], bytes] = sip_reply) -> None:
        self.reply = reply
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def start(self, context: ssl.SSLContext | None = None) -> StreamResponder:
        self.server = await asyncio.start_server(self._serve, LOOPBACK, 0, ssl=context)
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            self.requests.append(request)
            writer.write(self.reply(request))
            await writer.drain()
            await reader.read()  # until the client closes
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


class UdpResponder(asyncio.DatagramProtocol):
    """Answers SIP requests on a loopback UDP port; can ignore the first few, or send a stray answer first."""

    def __init__(self, status: int = 200, ignore_first: int = 0, stray_first: bool = False) -> None:
        self.status = status
        self.ignore_first = ignore_first
        self.stray_first = stray_first
        self.requests: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.requests.append(data)
        if len(self.requests) <= self.ignore_first:
            return
        assert self.transport is not None
        if self.stray_first:
            self.transport.sendto(sip_reply(data, 500, "Not Yours", call_id="someone-else@x"), addr)
            self.transport.sendto(b"garbage that is not SIP", addr)
        self.transport.sendto(sip_reply(data, self.status, "OK" if self.status == 200 else "Whatever"), addr)

    @property
    def port(self) -> int:
        assert self.transport is not None
        port: int = self.transport.get_extra_info("sockname")[1]
        return port


async def start_udp_responder(**kwargs: Any) -> UdpResponder:
    loop = asyncio.get_running_loop()
    _, responder = await loop.create_datagram_endpoint(lambda: UdpResponder(**kwargs), local_addr=(LOOPBACK, 0))
    return responder


def request_headers(request: bytes) -> tuple[str, dict[str, str]]:
    """The request line and the headers (lower-case names) of a SIP request."""
    head = request.decode().split("\r\n\r\n", 1)[0]
    first, *lines = head.split("\r\n")
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return first, headers

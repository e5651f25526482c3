"""A real reachability probe of a SIP server: a SIP ``OPTIONS`` request over the configured transport.

* udp — an OPTIONS datagram from an ephemeral port, retransmitted on RFC 3261's timer schedule
  (500 ms, doubling), until a final response with our Call-ID arrives;
* tcp / tls — a TCP connection (for tls a TLS handshake with the system's default trust store and
  host name check), then the same OPTIONS over the stream;
* ws / wss — a WebSocket upgrade with the ``sip`` subprotocol (RFC 7118) to the configured
  WebSocket URL, then the same OPTIONS as a text message.

The server is *reachable* when it answers the OPTIONS with any final SIP status (even 401 or 404:
a SIP server is there). Failures — unknown host, refused, certificate problems, silence — are
reported as text in ``error``, never raised. The probe never carries a password.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import secrets
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import structlog

from calld.domain.vocabulary import SipTransport
from calld.egress import EgressPolicy, EgressRefused

T1_SECONDS = 0.5  # RFC 3261 §17.1.1.1: the first retransmission interval over UDP
T2_SECONDS = 4.0  # ...and the largest one for non-INVITE requests
MAX_MESSAGE_BYTES = 65_536

_STATUS_LINE = re.compile(r"^SIP/2\.0\s+(\d{3})(?:\s+(.*))?$")
_COMPACT = {"i": "call-id", "l": "content-length", "v": "via", "f": "from", "t": "to"}


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    """Where and how to probe."""

    transport: SipTransport
    host: str
    port: int
    username: str = "calld"
    websocket_url: str | None = None


@dataclass(frozen=True, slots=True)
class ProbeResult:
    reachable: bool
    latency_ms: float | None
    transport: SipTransport
    target: str
    status_code: int | None
    error: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "reachable": self.reachable,
            "latency_ms": self.latency_ms,
            "transport": self.transport.value,
            "target": self.target,
            "status_code": self.status_code,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class SipResponse:
    status_code: int
    reason: str
    headers: dict[str, str]

    @property
    def call_id(self) -> str | None:
        return self.headers.get("call-id")


class NotSip(Exception):
    """The peer answered with something that is not a SIP response (the message is calld's own
    account, never the peer's words)."""


class _Progress:
    """What the probe is doing, so a timeout can say where it stopped; and when OPTIONS left."""

    def __init__(self) -> None:
        self.stage = "starting"
        self.sent_at: float | None = None


# --- SIP messages ---------------------------------------------------------------------------------


def host_in_uri(host: str) -> str:
    """``host`` as it appears in a SIP URI or Via (IPv6 literals in brackets)."""
    try:
        return f"[{host}]" if isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address) else host
    except ValueError:
        return host


def new_token() -> str:
    return secrets.token_hex(8)


def build_options(
    target: ProbeTarget, *, via_transport: str, local_host: str, local_port: int | None, call_id: str
) -> bytes:
    """An RFC 3261 OPTIONS request to ``target`` sent from ``local_host:local_port``."""
    server = host_in_uri(target.host)
    local = host_in_uri(local_host) + (f":{local_port}" if local_port else "")
    param = "" if via_transport == "UDP" else f";transport={via_transport.lower()}"
    lines = [
        f"OPTIONS sip:{server}:{target.port}{param} SIP/2.0",
        f"Via: SIP/2.0/{via_transport} {local};branch=z9hG4bK{new_token()};rport",
        "Max-Forwards: 70",
        f"From: <sip:{target.username}@{server}>;tag={new_token()}",
        f"To: <sip:{target.username}@{server}>",
        f"Call-ID: {call_id}",
        "CSeq: 1 OPTIONS",
        f"Contact: <sip:{target.username}@{local}{param}>",
        "Accept: application/sdp",
        "User-Agent: calld",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def parse_response(data: bytes) -> SipResponse:
    """The status line and headers of a SIP response; ``NotSip`` if ``data`` is not one."""
    text = data.decode("utf-8", "replace")
    head = re.split(r"\r?\n\r?\n", text.lstrip("\r\n"), maxsplit=1)[0]
    lines = re.split(r"\r?\n", head)
    match = _STATUS_LINE.match(lines[0].strip())
    if match is None:
        # What a foreign service said (an SSH or SMTP banner...) is never repeated: the probe
        # must not be a way to read other services' banners.
        raise NotSip("the server did not answer in SIP")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = name.strip().lower()
        headers.setdefault(_COMPACT.get(key, key), value.strip())
    return SipResponse(int(match.group(1)), match.group(2) or "", headers)


def _is_answer(response: SipResponse, call_id: str) -> bool:
    """A final response (≥ 200) to our request; provisional ones and strays are skipped."""
    return response.call_id == call_id and response.status_code >= 200


# --- transports -----------------------------------------------------------------------------------


async def _resolve(
    host: str, port: int, kind: socket.SocketKind, progress: _Progress, egress: EgressPolicy
) -> list[Any]:
    """The addresses of ``host`` that ``egress`` allows (``EgressRefused`` if none): the probe then
    connects to exactly these, so what was checked is what is reached."""
    progress.stage = f"resolving {host!r}"
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=kind)
    addresses: list[Any] = []
    refused: EgressRefused | None = None
    for info in infos:
        try:
            egress.check(str(info[4][0]))
        except EgressRefused as exc:
            refused = exc
            continue
        if info[4] not in addresses:
            addresses.append(info[4])
    if not addresses:
        assert refused is not None  # getaddrinfo never returns an empty list
        raise refused
    return addresses


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        self.answer: asyncio.Future[SipResponse] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            response = parse_response(data)
        except NotSip:
            return  # a stray datagram on our ephemeral port; keep waiting for ours
        if _is_answer(response, self.call_id) and not self.answer.done():
            self.answer.set_result(response)

    def error_received(self, exc: Exception) -> None:
        # On a connected UDP socket an ICMP "port unreachable" arrives here as ConnectionRefusedError.
        if not self.answer.done():
            self.answer.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc or ConnectionError("socket closed"))


async def _probe_udp(target: ProbeTarget, progress: _Progress, egress: EgressPolicy) -> SipResponse:
    address = (await _resolve(target.host, target.port, socket.SOCK_DGRAM, progress, egress))[0]
    call_id = f"{new_token()}@calld"
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(lambda: _UdpProtocol(call_id), remote_addr=address)
    try:
        local_host, local_port = transport.get_extra_info("sockname")[:2]
        request = build_options(
            target, via_transport="UDP", local_host=local_host, local_port=local_port, call_id=call_id
        )
        progress.stage = "waiting for a SIP response (UDP)"
        progress.sent_at = time.perf_counter()
        interval = T1_SECONDS
        while True:
            transport.sendto(request)
            try:
                return await asyncio.wait_for(asyncio.shield(protocol.answer), interval)
            except TimeoutError:
                interval = min(interval * 2, T2_SECONDS)
    finally:
        # Settle the future before closing, so a late connection_lost leaves no unretrieved error.
        if not protocol.answer.done():
            protocol.answer.cancel()
        transport.close()


async def _read_message(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"content-length", b"l"):
            digits = value.strip() or b"0"
            if not digits.isdigit():  # bytes.isdigit() is ASCII only
                raise NotSip("the server did not answer in SIP: a response with an invalid Content-Length")
            length = int(digits)
    if not 0 <= length <= MAX_MESSAGE_BYTES:
        raise NotSip("the server did not answer in SIP: a response with an unreasonable Content-Length")
    body = await reader.readexactly(length) if length else b""
    return head + body


async def _probe_stream(
    target: ProbeTarget, progress: _Progress, ssl_context: ssl.SSLContext | None, egress: EgressPolicy
) -> SipResponse:
    addresses = await _resolve(target.host, target.port, socket.SOCK_STREAM, progress, egress)
    tls = target.transport is SipTransport.TLS
    context = (ssl_context or ssl.create_default_context()) if tls else None
    reader, writer = await _connect(addresses, target, progress, context)
    try:
        local_host, local_port = writer.get_extra_info("sockname")[:2]
        call_id = f"{new_token()}@calld"
        request = build_options(
            target, via_transport="TLS" if tls else "TCP", local_host=local_host, local_port=local_port, call_id=call_id
        )
        progress.stage = f"waiting for a SIP response ({'TLS' if tls else 'TCP'})"
        progress.sent_at = time.perf_counter()
        writer.write(request)
        await writer.drain()
        while True:
            message = await _read_message(reader)
            if not message.strip():
                continue  # a CRLF keep-alive (RFC 5626)
            response = parse_response(message)
            if _is_answer(response, call_id):
                return response
    finally:
        writer.close()
        # The server closing first is not the probe's concern.
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()


async def _connect(
    addresses: list[Any], target: ProbeTarget, progress: _Progress, context: ssl.SSLContext | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to the first resolved address that accepts (refused ones are skipped)."""
    last: OSError | None = None
    for address in addresses:
        progress.stage = f"connecting to {address[0]} port {target.port}" + (" and TLS handshake" if context else "")
        try:
            return await asyncio.open_connection(
                address[0], address[1], ssl=context, server_hostname=target.host if context else None
            )
        except ssl.SSLError:
            raise
        except OSError as exc:
            last = exc
    assert last is not None  # getaddrinfo never returns an empty list
    raise last


def websocket_url(target: ProbeTarget) -> str:
    """The configured WebSocket URL, or one made of the server and port."""
    if target.websocket_url:
        return target.websocket_url
    scheme = "wss" if target.transport is SipTransport.WSS else "ws"
    return f"{scheme}://{host_in_uri(target.host)}:{target.port}/"


def target_of(target: ProbeTarget) -> str:
    """``host:port`` the probe talks to."""
    if target.transport in (SipTransport.WS, SipTransport.WSS):
        parts = urlsplit(websocket_url(target))
        host = parts.hostname or target.host
        port = parts.port or (443 if parts.scheme == "wss" else 80)
        return f"{host_in_uri(host)}:{port}"
    return f"{host_in_uri(target.host)}:{target.port}"


async def _probe_websocket(
    target: ProbeTarget, progress: _Progress, ssl_context: ssl.SSLContext | None, egress: EgressPolicy
) -> SipResponse:
    url = websocket_url(target)
    secure = urlsplit(url).scheme == "wss"
    context: ssl.SSLContext | bool = (ssl_context or ssl.create_default_context()) if secure else False
    progress.stage = f"connecting and upgrading {url} to a WebSocket"
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(socket_factory=egress.socket_factory)) as http,
        http.ws_connect(url, protocols=("sip",), ssl=context, autoping=True) as ws,
    ):
        if ws.protocol != "sip":
            raise NotSip("the server did not answer in SIP: the WebSocket server did not accept the 'sip' subprotocol")
        call_id = f"{new_token()}@calld"
        request = build_options(
            target,
            via_transport="WSS" if secure else "WS",
            local_host=f"{new_token()}.invalid",  # RFC 7118 §5.2: WebSocket clients have no reachable address
            local_port=None,
            call_id=call_id,
        )
        progress.stage = "waiting for a SIP response (WebSocket)"
        progress.sent_at = time.perf_counter()
        await ws.send_str(request.decode())
        async for message in ws:
            if message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                raw = message.data.encode() if isinstance(message.data, str) else message.data
                response = parse_response(raw)
                if _is_answer(response, call_id):
                    return response
        raise ConnectionError("the WebSocket closed before a SIP response")


# --- the probe ------------------------------------------------------------------------------------


def describe_error(exc: BaseException, target: ProbeTarget) -> str:
    """A plain-language account of why the probe failed."""
    if isinstance(exc, EgressRefused):
        return str(exc)
    if isinstance(exc, aiohttp.WSServerHandshakeError):
        return f"WebSocket upgrade refused: HTTP {exc.status}"  # not the server's words: see NotSip
    if isinstance(exc, aiohttp.ClientConnectorError):
        return describe_error(exc.os_error, target)
    if isinstance(exc, aiohttp.ClientError):
        return f"WebSocket error: {type(exc).__name__}"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host {target.host!r}: {exc.strerror or exc}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed: {exc.verify_message or exc.reason or exc}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {exc.reason or exc}"
    if isinstance(exc, ConnectionRefusedError):
        if target.transport is SipTransport.UDP:
            return f"connection refused: ICMP port unreachable from {target_of(target)} (nothing listening on UDP)"
        return f"connection refused by {target_of(target)} (nothing listening)"
    if isinstance(exc, asyncio.IncompleteReadError | ConnectionResetError | BrokenPipeError):
        return "the server closed the connection before a SIP response"
    if isinstance(exc, asyncio.LimitOverrunError):
        return "the server sent an oversized or unterminated message (not SIP?)"
    if isinstance(exc, NotSip):
        return str(exc)
    if isinstance(exc, OSError):
        return f"network error: {exc.strerror or exc}"
    return f"{type(exc).__name__}: {exc}"


async def probe(
    target: ProbeTarget, *, timeout_seconds: float, egress: EgressPolicy, ssl_context: ssl.SSLContext | None = None
) -> ProbeResult:
    """Probe ``target`` within ``timeout_seconds``, connecting only where ``egress`` allows.
    ``ssl_context`` replaces the default trust (tests, private CAs)."""
    progress = _Progress()
    status: int | None = None
    error: str | None = None
    latency: float | None = None
    try:
        async with asyncio.timeout(timeout_seconds):
            if target.transport is SipTransport.UDP:
                response = await _probe_udp(target, progress, egress)
            elif target.transport in (SipTransport.TCP, SipTransport.TLS):
                response = await _probe_stream(target, progress, ssl_context, egress)
            else:
                response = await _probe_websocket(target, progress, ssl_context, egress)
        status = response.status_code
        if progress.sent_at is not None:
            latency = round((time.perf_counter() - progress.sent_at) * 1000, 3)
    except TimeoutError:
        error = f"timed out after {timeout_seconds:g}s while {progress.stage}"
    except (OSError, NotSip, aiohttp.ClientError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        error = describe_error(exc, target)
    except ValueError:  # e.g. a URL aiohttp refuses; its text may quote what the server sent
        error = "invalid response or address"
    result = ProbeResult(
        reachable=status is not None,
        latency_ms=latency,
        transport=target.transport,
        target=target_of(target),
        status_code=status,
        error=error,
    )
    structlog.get_logger("calld.sip_probe").info("sip probe", **result.as_json())
    return result

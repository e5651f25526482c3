"""The SIP probe against real sockets on loopback: UDP, TCP, TLS and WebSocket responders written
here, a closed port, a silent port. Only 127.0.0.0/8 addresses are used."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from calld import sip_probe
from calld.domain.vocabulary import SipTransport
from calld.egress import EgressPolicy
from calld.sip_probe import ProbeTarget, parse_response, probe
from tests.fakes.sip_peers import (
    LOOPBACK,
    StreamResponder,
    UdpResponder,
    free_port,
    request_headers,
    sip_reply,
    start_udp_responder,
)

# The responders listen on loopback, which calld's egress policy refuses unless allowed.
LOOPBACK_ALLOWED = EgressPolicy.allowing(["127.0.0.0/8", "::1/128"])


# --- responders (also used by tests/http/test_sip_configurations.py) ------------------------------


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture
async def udp_responder() -> AsyncIterator[UdpResponder]:
    responder = await start_udp_responder()
    yield responder
    assert responder.transport is not None
    responder.transport.close()


@pytest.fixture
async def tcp_responder() -> AsyncIterator[StreamResponder]:
    responder = await StreamResponder().start()
    yield responder
    await responder.close()


@pytest.fixture
def silent_udp_port() -> Any:
    """A bound UDP socket that never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        yield sock.getsockname()[1]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (certificate file, key file)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


# --- UDP ------------------------------------------------------------------------------------------


async def test_udp_options_is_answered(udp_responder: UdpResponder) -> None:
    result = await probe(
        ProbeTarget(SipTransport.UDP, LOOPBACK, udp_responder.port, username="1001"),
        timeout_seconds=2,
        egress=LOOPBACK_ALLOWED,
    )
    assert result.reachable is True
    assert result.status_code == 200
    assert result.error is None
    assert result.target == f"{LOOPBACK}:{udp_responder.port}"
    assert result.latency_ms is not None and 0 <= result.latency_ms < 2000
    assert len(udp_responder.requests) == 1
    first, headers = request_headers(udp_responder.requests[0])
    assert first == f"OPTIONS sip:{LOOPBACK}:{udp_responder.port} SIP/2.0"
    assert headers["via"].startswith(f"SIP/2.0/UDP {LOOPBACK}:")
    assert ";branch=z9hG4bK" in headers["via"]
    assert headers["max-forwards"] == "70"
    assert headers["from"].startswith(f"<sip:1001@{LOOPBACK}>;tag=")
    assert headers["to"] == f"<sip:1001@{LOOPBACK}>"
    assert headers["call-id"]
    assert headers["cseq"] == "1 OPTIONS"
    assert headers["contact"].startswith(f"<sip:1001@{LOOPBACK}:")
    assert headers["content-length"] == "0"


async def test_udp_any_final_status_means_reachable() -> None:
    responder = await start_udp_responder(status=404)
    try:
        result = await probe(
            ProbeTarget(SipTransport.UDP, LOOPBACK, responder.port), timeout_seconds=2, egress=LOOPBACK_ALLOWED
        )
    finally:
        assert responder.transport is not None
        responder.transport.close()
    assert (result.reachable, result.status_code, result.error) == (True, 404, None)


async def test_udp_retransmits_and_ignores_answers_to_other_requests() -> None:
    responder = await start_udp_responder(ignore_first=1, stray_first=True)
    try:
        result = await probe(
            ProbeTarget(SipTransport.UDP, LOOPBACK, responder.port), timeout_seconds=3, egress=LOOPBACK_ALLOWED
        )
    finally:
        assert responder.transport is not None
        responder.transport.close()
    assert result.reachable is True
    assert result.status_code == 200  # not the stray 500 with another Call-ID
    assert len(responder.requests) == 2
    # A retransmission is the same transaction: identical bytes (same branch and Call-ID).
    assert responder.requests[0] == responder.requests[1]
    assert result.latency_ms is not None and result.latency_ms >= 400  # waited for T1 (500 ms)


async def test_udp_closed_port_is_refused() -> None:
    port = free_port(socket.SOCK_DGRAM)
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await probe(ProbeTarget(SipTransport.UDP, LOOPBACK, port), timeout_seconds=3, egress=LOOPBACK_ALLOWED)
    assert result.reachable is False
    assert result.status_code is None and result.latency_ms is None
    assert result.error is not None and "refused" in result.error and "ICMP" in result.error
    assert loop.time() - started < 2  # the ICMP answer ends the wait, not the timeout


async def test_udp_silence_times_out(silent_udp_port: int) -> None:
    result = await probe(
        ProbeTarget(SipTransport.UDP, LOOPBACK, silent_udp_port), timeout_seconds=0.3, egress=LOOPBACK_ALLOWED
    )
    assert result.as_json() == {
        "reachable": False,
        "latency_ms": None,
        "transport": "udp",
        "target": f"{LOOPBACK}:{silent_udp_port}",
        "status_code": None,
        "error": "timed out after 0.3s while waiting for a SIP response (UDP)",
    }


async def test_unresolvable_host_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    # No DNS traffic in tests: the loop's resolver fails as a real one does for an unknown name.
    async def no_such_host(*_args: Any, **_kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", no_such_host)
    for transport in (SipTransport.UDP, SipTransport.TCP):
        result = await probe(
            ProbeTarget(transport, "pbx.example.invalid", 5060), timeout_seconds=1, egress=LOOPBACK_ALLOWED
        )
        assert result.reachable is False
        assert result.error == "cannot resolve host 'pbx.example.invalid': Name or service not known"
        assert result.target == "pbx.example.invalid:5060"


# --- TCP and TLS ----------------------------------------------------------------------------------


async def test_tcp_options_is_answered(tcp_responder: StreamResponder) -> None:
    result = await probe(
        ProbeTarget(SipTransport.TCP, LOOPBACK, tcp_responder.port), timeout_seconds=2, egress=LOOPBACK_ALLOWED
    )
    assert (result.reachable, result.status_code, result.error) == (True, 200, None)
    first, headers = request_headers(tcp_responder.requests[0])
    assert first == f"OPTIONS sip:{LOOPBACK}:{tcp_responder.port};transport=tcp SIP/2.0"
    assert headers["via"].startswith(f"SIP/2.0/TCP {LOOPBACK}:")
    assert headers["cseq"] == "1 OPTIONS"


async def test_tcp_closed_port_is_refused() -> None:
    port = free_port(socket.SOCK_STREAM)
    result = await probe(ProbeTarget(SipTransport.TCP, LOOPBACK, port), timeout_seconds=2, egress=LOOPBACK_ALLOWED)
    assert result.reachable is False
    assert result.error == f"connection refused by {LOOPBACK}:{port} (nothing listening)"


async def test_tcp_server_that_is_not_sip() -> None:
    responder = await StreamResponder(lambda _req: b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n").start()
    try:
        result = await probe(
            ProbeTarget(SipTransport.TCP, LOOPBACK, responder.port), timeout_seconds=2, egress=LOOPBACK_ALLOWED
        )
    finally:
        await responder.close()
    assert result.reachable is False
    assert result.error == "the server did not answer in SIP"  # never the foreign server's words


async def test_tcp_server_that_closes_without_answer() -> None:
    server = await asyncio.start_server(lambda _reader, writer: writer.close(), LOOPBACK, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        result = await probe(ProbeTarget(SipTransport.TCP, LOOPBACK, port), timeout_seconds=2, egress=LOOPBACK_ALLOWED)
    finally:
        server.close()
        await server.wait_closed()
    assert result.reachable is False
    assert result.error in (
        "the server closed the connection before a SIP response",
        "network error: Connection reset by peer",
    )


async def test_tls_self_signed_certificate_is_reported(certificate: tuple[Path, Path]) -> None:
    responder = await StreamResponder().start(server_context(certificate))
    try:
        result = await probe(
            ProbeTarget(SipTransport.TLS, LOOPBACK, responder.port), timeout_seconds=2, egress=LOOPBACK_ALLOWED
        )
    finally:
        await responder.close()
    assert result.reachable is False
    assert result.error is not None
    assert result.error.startswith("TLS certificate verification failed: ")
    assert "self-signed" in result.error or "self signed" in result.error


async def test_tls_options_with_trusted_certificate(certificate: tuple[Path, Path]) -> None:
    responder = await StreamResponder().start(server_context(certificate))
    trust = ssl.create_default_context(cafile=str(certificate[0]))
    try:
        result = await probe(
            ProbeTarget(SipTransport.TLS, LOOPBACK, responder.port),
            timeout_seconds=2,
            egress=LOOPBACK_ALLOWED,
            ssl_context=trust,
        )
    finally:
        await responder.close()
    assert (result.reachable, result.status_code, result.error) == (True, 200, None)
    _, headers = request_headers(responder.requests[0])
    assert headers["via"].startswith(f"SIP/2.0/TLS {LOOPBACK}:")


# --- WebSocket ------------------------------------------------------------------------------------


ServerFactory = Callable[..., Awaitable[TestServer]]


async def _ws_server(aiohttp_server: ServerFactory, protocols: tuple[str, ...]) -> tuple[TestServer, list[str]]:
    received: list[str] = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=protocols)
        await ws.prepare(request)
        async for message in ws:
            if message.type is WSMsgType.TEXT:
                received.append(message.data)
                await ws.send_str(sip_reply(message.data.encode()).decode())
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    return await aiohttp_server(app, host=LOOPBACK), received


async def test_websocket_options_is_answered(aiohttp_server: ServerFactory) -> None:
    server, received = await _ws_server(aiohttp_server, ("sip",))
    url = f"ws://{LOOPBACK}:{server.port}/ws"
    result = await probe(
        ProbeTarget(SipTransport.WS, "pbx.example.com", 80, websocket_url=url),
        timeout_seconds=2,
        egress=LOOPBACK_ALLOWED,
    )
    assert (result.reachable, result.status_code, result.error) == (True, 200, None)
    assert result.target == f"{LOOPBACK}:{server.port}"
    _, headers = request_headers(received[0].encode())
    assert headers["via"].startswith("SIP/2.0/WS ") and ".invalid;branch=z9hG4bK" in headers["via"]


async def test_websocket_without_sip_subprotocol(aiohttp_server: ServerFactory) -> None:
    server, _ = await _ws_server(aiohttp_server, ())
    url = f"ws://{LOOPBACK}:{server.port}/ws"
    result = await probe(
        ProbeTarget(SipTransport.WS, LOOPBACK, 80, websocket_url=url), timeout_seconds=2, egress=LOOPBACK_ALLOWED
    )
    assert result.reachable is False
    assert result.error == "the server did not answer in SIP: the WebSocket server did not accept the 'sip' subprotocol"


async def test_websocket_wrong_path_and_closed_port(aiohttp_server: ServerFactory) -> None:
    server, _ = await _ws_server(aiohttp_server, ("sip",))
    result = await probe(
        ProbeTarget(SipTransport.WS, LOOPBACK, 80, websocket_url=f"ws://{LOOPBACK}:{server.port}/nope"),
        timeout_seconds=2,
        egress=LOOPBACK_ALLOWED,
    )
    assert result.reachable is False
    assert result.error is not None and result.error.startswith("WebSocket upgrade refused: HTTP 404")
    port = free_port(socket.SOCK_STREAM)
    result = await probe(
        ProbeTarget(SipTransport.WSS, LOOPBACK, 443, websocket_url=f"wss://{LOOPBACK}:{port}/ws"),
        timeout_seconds=2,
        egress=LOOPBACK_ALLOWED,
    )
    assert result.reachable is False
    assert result.target == f"{LOOPBACK}:{port}"
    assert result.error == f"connection refused by {LOOPBACK}:{port} (nothing listening)"


# --- parsing --------------------------------------------------------------------------------------


def test_parse_response_reads_compact_headers() -> None:
    response = parse_response(b"SIP/2.0 401 Unauthorized\r\ni: abc@host\r\nl: 0\r\n\r\n")
    assert (response.status_code, response.reason, response.call_id) == (401, "Unauthorized", "abc@host")
    with pytest.raises(sip_probe.NotSip):
        parse_response(b"HTTP/1.1 200 OK\r\n\r\n")

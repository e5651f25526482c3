"""SIP configurations: where the PBX is and how browsers and calld reach it.

``/api/sip-configurations/`` (list, create), ``/{id}/`` (read, change, delete), ``/{id}/webrtc_config/``
(what a browser SIP client needs), ``/{id}/set_default/`` and ``/{id}/test_connection/`` (a real
SIP OPTIONS probe). The SIP ``secret`` is write-only: no response carries it, only ``has_secret``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from calld.domain.vocabulary import SipTransport
from calld.http.auth import caller
from calld.http.context import services
from calld.http.errors import read_json_object
from calld.http.pagination import page_json, page_window
from calld.http.routing import SIP, Op, Routes
from calld.http.schema import ACTIVE, PAGING
from calld.http.validation import Fields, path_uuid, unstorable_text
from calld.service.sip_configurations import StoredTransport

WHAT = "SIP configuration"
DEFAULT_PORTS: Mapping[SipTransport, int] = {
    SipTransport.UDP: 5060,
    SipTransport.TCP: 5060,
    SipTransport.TLS: 5061,
    SipTransport.WS: 80,
    SipTransport.WSS: 443,
}
WRITABLE = (
    "name",
    "server",
    "port",
    "transport",
    "username",
    "secret",
    "websocket_url",
    "stun_servers",
    "turn_servers",
    "active",
)
READ_ONLY: Mapping[str, str] = {
    "id": "read-only",
    "is_default": "read-only; use POST /api/sip-configurations/{id}/set_default/",
    "has_secret": "read-only; send secret to set or clear it",
    "created_at": "read-only",
    "updated_at": "read-only",
}
MAX_ICE_SERVERS = 20
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_USERNAME_FORBIDDEN = re.compile(r"[\s@:<>\"]")
_TURN_KEYS = {"urls"}
_STATIC_TURN = {"username", "credential"}


# --- value checks ---------------------------------------------------------------------------------


BASE = "/api/sip-configurations/"
routes = Routes()


def host_problem(text: str) -> str | None:
    """Why ``text`` is not a host name or IP address, or None if it is one."""
    try:
        ipaddress.ip_address(text)
        return None
    except ValueError:
        pass
    name = text[:-1] if text.endswith(".") else text
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        return "must be a host name (such as pbx.example.com) or an IP address, without scheme or port"
    if labels[-1].isdigit():
        return "is neither a valid IP address nor a host name"
    return None


def _host_port_problem(rest: str) -> str | None:
    """Check ``host[:port]`` (IPv6 literal in brackets)."""
    if rest.startswith("["):
        host, sep, tail = rest[1:].partition("]")
        if not sep:
            return "has an unclosed [ in its host"
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return "has an invalid IPv6 address"
        port = tail[1:] if tail.startswith(":") else None
        if tail and port is None:
            return "has text after its host"
    else:
        host, sep, port_text = rest.partition(":")
        port = port_text if sep else None
        problem = host_problem(host)
        if problem:
            return f"has a host that {problem}"
    if port is not None and not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        return "has a port that is not 1..65535"
    return None


def stun_problem(uri: str) -> str | None:
    """RFC 7064: ``stun:host[:port]`` or ``stuns:host[:port]``."""
    scheme, sep, rest = uri.partition(":")
    if not sep or scheme.lower() not in ("stun", "stuns"):
        return "must be a stun: URI such as stun:stun.example.com:3478"
    return _host_port_problem(rest)


def turn_problem(uri: str) -> str | None:
    """RFC 7065: ``turn:host[:port][?transport=udp|tcp]`` or ``turns:...``."""
    scheme, sep, rest = uri.partition(":")
    if not sep or scheme.lower() not in ("turn", "turns"):
        return "must be a turn: or turns: URI such as turn:turn.example.com:3478?transport=udp"
    address, qmark, query = rest.partition("?")
    if qmark and query.lower() not in ("transport=udp", "transport=tcp"):
        return "may only carry ?transport=udp or ?transport=tcp"
    return _host_port_problem(address)


def websocket_problem(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme not in ("ws", "wss"):
        return "must be a ws:// or wss:// URL"
    if not parts.hostname:
        return "must name a host"
    if port == 0:
        return "has a port that is not 1..65535"
    if parts.username or parts.password:
        return "must not carry credentials"
    if parts.hostname.startswith("[") or ":" in parts.hostname:
        return None if _host_port_problem(f"[{parts.hostname}]") is None else "has an invalid IPv6 address"
    problem = host_problem(parts.hostname)
    return f"has a host that {problem}" if problem else None


# --- body reading ---------------------------------------------------------------------------------


def _list_of(fields: Fields, name: str) -> list[Any] | None:
    raw = fields.data.get(name)
    if raw is None:
        return []
    if not isinstance(raw, list):
        fields.fail(name, "must be a list")
        return None
    if len(raw) > MAX_ICE_SERVERS:
        fields.fail(name, f"must have at most {MAX_ICE_SERVERS} items")
        return None
    return raw


def _stun_servers(fields: Fields) -> list[str]:
    raw = _list_of(fields, "stun_servers")
    problems: list[str] = []
    uris: list[str] = []
    for index, item in enumerate(raw or []):
        problem = stun_problem(item.strip()) if isinstance(item, str) else "must be a string"
        if problem:
            problems.append(f"item {index}: {problem}")
        elif item.strip() not in uris:
            uris.append(item.strip())
    if problems:
        fields.fail("stun_servers", "; ".join(problems))
    return uris


def _turn_item_problem(item: Any) -> str | None:
    if not isinstance(item, dict):
        return "must be an object {urls}"
    if set(item) & _STATIC_TURN:
        return (
            "takes no username or credential: calld mints time-limited TURN credentials per request "
            "from [turn] secret (the TURN server's use-auth-secret) and stores none"
        )
    unknown = set(item) - _TURN_KEYS
    if unknown:
        return f"unknown keys {', '.join(sorted(unknown))}; allowed: urls"
    urls = item.get("urls")
    if not isinstance(urls, str):
        return "urls must be a turn: URI string"
    problem = turn_problem(urls.strip())
    if problem:
        return f"urls {problem}"
    return None


def _turn_servers(fields: Fields) -> list[dict[str, str]]:
    raw = _list_of(fields, "turn_servers")
    problems: list[str] = []
    servers: list[dict[str, str]] = []
    for index, item in enumerate(raw or []):
        problem = _turn_item_problem(item)
        if problem:
            problems.append(f"item {index}: {problem}")
        else:
            servers.append({"urls": item["urls"].strip()})
    if problems:
        fields.fail("turn_servers", "; ".join(problems))
    return servers


def _secret(fields: Fields) -> str | None:
    """The secret exactly as sent (not stripped: spaces may be part of it); null or "" clears it.
    Error messages never repeat it."""
    raw = fields.data.get("secret")
    if raw is None:
        return ""
    if not isinstance(raw, str):
        fields.fail("secret", "must be a string")
        return None
    if len(raw) > 255:
        fields.fail("secret", "must be at most 255 characters")
        return None
    problem = unstorable_text(raw)
    if problem is not None:  # a lone surrogate or NUL cannot be stored (as for every other text field)
        fields.fail("secret", problem)
        return None
    return raw


def _server(fields: Fields, required: bool) -> str | None:
    server: str | None = fields.string("server", required=required, max_length=255)
    if server is not None:
        problem = host_problem(server)
        if problem:
            fields.fail("server", problem)
    return server


def _username(fields: Fields, required: bool) -> str | None:
    username: str | None = fields.string("username", required=required, max_length=100)
    if username is not None and _USERNAME_FORBIDDEN.search(username):
        fields.fail("username", 'must not contain spaces or any of @ : < > "')
    return username


def _websocket_url(fields: Fields) -> str | None:
    if fields.data.get("websocket_url") in (None, ""):
        return None
    url: str | None = fields.string("websocket_url", max_length=500)
    if url is not None:
        problem = websocket_problem(url)
        if problem:
            fields.fail("websocket_url", problem)
    return url


def _port(fields: Fields, transport: SipTransport, current: StoredTransport | None) -> int | None:
    """The port given, else the default of ``transport`` — on a patch only when the transport changes
    and the stored port was the old transport's default (a deliberately chosen port is kept)."""
    if fields.present("port") and fields.data["port"] is not None:
        if isinstance(fields.data["port"], str):  # Fields.integer also reads query strings; JSON wants a number
            fields.fail("port", "must be a whole number")
            return None
        port: int | None = fields.integer("port", minimum=1, maximum=65535)
        return port
    if current is None or fields.present("port"):
        return DEFAULT_PORTS[transport]
    if transport is not current.transport and current.port == DEFAULT_PORTS[current.transport]:
        return DEFAULT_PORTS[transport]
    return None


def read_sip_body(body: Mapping[str, Any], current: StoredTransport | None) -> dict[str, Any]:
    """Validated values of a create body (``current`` None) or of a patch of ``current``; one 422 if bad."""
    fields = Fields(body, allowed=(*WRITABLE, *READ_ONLY))
    for name, message in READ_ONLY.items():
        if fields.present(name):
            fields.fail(name, message)
    creating = current is None
    values: dict[str, Any] = {}

    def wanted(name: str) -> bool:
        return creating or fields.present(name)

    if wanted("name"):
        values["name"] = fields.string("name", required=True, max_length=100)
    if wanted("server"):
        values["server"] = _server(fields, required=True)
    if wanted("username"):
        values["username"] = _username(fields, required=True)
    if wanted("transport"):
        values["transport"] = fields.choice("transport", SipTransport, required=not creating, default=SipTransport.UDP)
    transport = values.get("transport") or (current.transport if current else SipTransport.UDP)
    port = _port(fields, transport, current)
    if port is not None:
        values["port"] = port
    if wanted("secret"):
        values["secret"] = _secret(fields)
    if wanted("websocket_url"):
        values["websocket_url"] = _websocket_url(fields)
    if wanted("stun_servers"):
        values["stun_servers"] = _stun_servers(fields)
    if wanted("turn_servers"):
        values["turn_servers"] = _turn_servers(fields)
    if wanted("active"):
        if isinstance(fields.data.get("active"), str):  # as for port: JSON wants true or false
            fields.fail("active", "must be true or false")
        values["active"] = fields.boolean("active", required=not creating, default=True)
    fields.done()
    return values


# --- JSON shapes ----------------------------------------------------------------------------------


# --- handlers -------------------------------------------------------------------------------------


@routes.get(BASE, Op(SIP, "List SIP configurations", {200: "SipConfigurationPage"}, params=(ACTIVE, *PAGING)))
async def list_configurations(request: web.Request) -> web.Response:
    """``GET /api/sip-configurations/?active=&limit=&offset=``, oldest first."""
    svc = services(request)
    fields = Fields(request.query, query=True, allowed=("limit", "offset", "active"))
    limit, offset = page_window(fields)
    active = fields.boolean("active")
    fields.done()
    count, results = await svc.sip_configurations.page(active, limit=limit, offset=offset)
    return web.json_response(page_json(request, count, results, limit, offset))


@routes.post(
    BASE,
    Op(
        SIP,
        "Create a SIP configuration",
        {201: "SipConfiguration"},
        "SipConfigurationCreate",
        errors={409: "the name is taken"},
        description="The first one becomes the default.",
    ),
)
async def create_configuration(request: web.Request) -> web.Response:
    """``POST /api/sip-configurations/`` → 201; the first configuration becomes the default."""
    values = read_sip_body(await read_json_object(request), None)
    body = await services(request).sip_configurations.create(values)
    return web.json_response(body, status=201, headers={"Location": f"{BASE}{body['id']}/"})


@routes.get(BASE + "{id}/", Op(SIP, "A SIP configuration", {200: "SipConfiguration"}))
async def get_configuration(request: web.Request) -> web.Response:
    config_id = path_uuid(request.match_info["id"], WHAT)
    return web.json_response(await services(request).sip_configurations.get(config_id))


@routes.patch(
    BASE + "{id}/",
    Op(
        SIP,
        "Change a SIP configuration",
        {200: "SipConfiguration"},
        "SipConfigurationPatch",
        errors={409: "the name is taken, or the default cannot be deactivated"},
    ),
)
async def patch_configuration(request: web.Request) -> web.Response:
    """``PATCH /api/sip-configurations/{id}/``: change the fields given (``is_default`` only by set_default)."""
    config_id = path_uuid(request.match_info["id"], WHAT)
    body = await read_json_object(request)
    changed = await services(request).sip_configurations.change(config_id, lambda stored: read_sip_body(body, stored))
    return web.json_response(changed)


@routes.delete(
    BASE + "{id}/",
    Op(SIP, "Delete a SIP configuration", {204: None}, description="Deleting the default promotes another."),
)
async def delete_configuration(request: web.Request) -> web.Response:
    """``DELETE /api/sip-configurations/{id}/`` → 204; deleting the default promotes another."""
    await services(request).sip_configurations.delete(path_uuid(request.match_info["id"], WHAT))
    return web.Response(status=204)


@routes.post(
    BASE + "{id}/set_default/",
    Op(SIP, "Make it the only default", {200: "SipConfiguration"}, errors={409: "an inactive one cannot be default"}),
)
async def set_default(request: web.Request) -> web.Response:
    """``POST /api/sip-configurations/{id}/set_default/`` → the configuration, now the only default."""
    config_id = path_uuid(request.match_info["id"], WHAT)
    return web.json_response(await services(request).sip_configurations.set_default(config_id))


@routes.get(
    BASE + "{id}/webrtc_config/",
    Op(
        SIP,
        "What a browser SIP client needs",
        {200: "WebRtcConfig"},
        description="Any token may read it. password is the line's SIP secret for the softphone token bound "
        "to this line only (null for every other token; a softphone token is answered 404 for other lines). "
        "TURN servers carry credentials minted for this request from [turn] secret (the TURN REST "
        "convention), valid until turn_expires_at; without a secret they are left out.",
        errors={409: "no websocket_url is set"},
    ),
)
async def webrtc_config(request: web.Request) -> web.Response:
    """``GET /api/sip-configurations/{id}/webrtc_config/`` (409 without a websocket_url)."""
    config_id = path_uuid(request.match_info["id"], WHAT)
    token = caller(request)
    assert token is not None, "the route needs a token (calld.http.auth)"
    return web.json_response(await services(request).sip_configurations.webrtc_config(config_id, token))


@routes.post(
    BASE + "{id}/test_connection/",
    Op(
        SIP,
        "Probe the SIP server now",
        {200: "ProbeResult"},
        description="SIP OPTIONS over UDP, TCP or TLS, or a WebSocket upgrade; 200 whatever the outcome.",
    ),
)
async def test_connection(request: web.Request) -> web.Response:
    """``POST /api/sip-configurations/{id}/test_connection/``: probe the server now (200 whatever the outcome)."""
    config_id = path_uuid(request.match_info["id"], WHAT)
    return web.json_response(await services(request).sip_configurations.test_connection(config_id))

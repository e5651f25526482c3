"""FreeSWITCH's ``mod_json_cdr`` posting each leg's CDR to calld, as it does to any web server.

calld keeps each document as a file (``<uuid>.cdr.json``, what mod_json_cdr itself writes to its
``err-log-dir``) in ``[freeswitch] cdr_receiver_directory``; the adapter reads that directory with
the switch's other records after every start and reconnect, so a leg that ended while the Event
Socket link was down is recovered from it. While calld is down, mod_json_cdr retries and then
writes to its err-log-dir, which calld reads too. mod_json_cdr authenticates with HTTP Basic
(``cred``): the credentials are ``[freeswitch] cdr_receiver_credentials``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from pathlib import Path
from urllib.parse import unquote_to_bytes

from aiohttp import web

from calld.http.context import services
from calld.http.errors import ApiError
from calld.http.routing import INBOUND, Op, Routes
from calld.service.cdr_receiver import keep_cdr

PATH = "/api/webhooks/freeswitch/cdr/"


routes = Routes()


@routes.post(
    PATH,
    Op(
        INBOUND,
        "A leg's CDR from FreeSWITCH's mod_json_cdr",
        {200: "FreeswitchCdrStored"},
        "FreeswitchCdr",
        description="Point mod_json_cdr's url here with cred = freeswitch.cdr_receiver_credentials (HTTP "
        "Basic). calld keeps each leg's document and reads them, with the switch's other records, after every "
        "start and reconnect to recover calls it did not see.",
    ),
)
async def receive_cdr(request: web.Request) -> web.Response:
    """POST /api/webhooks/freeswitch/cdr/ — one leg's CDR from mod_json_cdr."""
    settings = services(request).config.freeswitch
    if settings is None or not settings.cdr_receiver_directory:
        # Off: no credentials can be right (and a stranger learns nothing more).
        raise _unauthorized("the FreeSWITCH CDR receiver is off (freeswitch.cdr_receiver_credentials unset)")
    _check_credentials(request, settings.cdr_receiver_credentials)
    body = await request.read()
    if body.startswith(b"cdr="):  # mod_json_cdr with encode=true posts a form field
        body = unquote_to_bytes(body[4:].replace(b"+", b" "))
    uuid = await keep_cdr(Path(settings.cdr_receiver_directory), body)
    return web.json_response({"stored": uuid})


def _check_credentials(request: web.Request, expected: str) -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    given = b""
    if scheme.lower() == "basic":
        try:
            given = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            given = b""
    if not given or not hmac.compare_digest(given, expected.encode()):
        raise _unauthorized("Basic credentials of freeswitch.cdr_receiver_credentials required")


def _unauthorized(why: str) -> ApiError:
    return ApiError(401, "unauthorized", {"authorization": why}, headers={"WWW-Authenticate": 'Basic realm="calld"'})

"""Clients: the people and companies behind phone numbers, and their call history.

``/api/clients/`` (list, create), ``/api/clients/{id}/`` (read, change, delete),
``/api/clients/{id}/call_history/`` (their calls, newest first) and ``/api/clients/{id}/link_calls/``
(assign past unowned calls from or to their numbers).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from calld.domain.errors import InvalidValue
from calld.domain.phone import normalise_number
from calld.http.context import services
from calld.http.errors import read_json_object
from calld.http.pagination import page_json, page_window
from calld.http.routing import CLIENTS, Op, Routes
from calld.http.schema import PAGING, PHONE, query, string
from calld.http.validation import Fields, path_uuid

MAX_NUMBERS = 50
CLIENT_FIELDS = ("name", "phone_numbers", "email", "company", "notes")
# Deliberately loose: one @, no spaces, a dot in the domain. Deliverability is not ours to judge.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


# --- JSON shapes and body reading ---------------------------------------------------------------


BASE = "/api/clients/"
routes = Routes()


def _numbers(fields: Fields, region: str | None) -> list[str]:
    """Normalised numbers, duplicates collapsed in first-seen order."""
    raw = fields.data.get("phone_numbers")
    if not isinstance(raw, list):
        fields.fail("phone_numbers", "must be a list of phone number strings")
        return []
    if len(raw) > MAX_NUMBERS:
        fields.fail("phone_numbers", f"must have at most {MAX_NUMBERS} numbers")
        return []
    numbers: list[str] = []
    problems: list[str] = []
    for index, item in enumerate(raw):
        try:
            number = normalise_number(item, "phone_numbers", region)
        except InvalidValue as exc:
            problems.append(f"item {index}: {exc.message}")
            continue
        if number not in numbers:
            numbers.append(number)
    if problems:
        fields.fail("phone_numbers", "; ".join(problems))
    return numbers


def _optional_text(fields: Fields, name: str, max_length: int) -> str | None:
    """A string that may be cleared with null or an empty string."""
    if fields.data.get(name) is None:
        return None
    value: str | None = fields.string(name, max_length=max_length, blank=True)
    return value or None


def read_client_body(body: Mapping[str, Any], *, partial: bool, region: str | None) -> dict[str, Any]:
    """The validated values of a create (all fields) or patch (fields present) body; one 422 if any is bad."""
    fields = Fields(body, allowed=CLIENT_FIELDS)
    values: dict[str, Any] = {}
    if not partial or fields.present("name"):
        values["name"] = fields.string("name", required=True, max_length=200)
    if fields.present("phone_numbers"):
        values["numbers"] = _numbers(fields, region)
    elif not partial:
        values["numbers"] = []
    if not partial or fields.present("email"):
        email = _optional_text(fields, "email", 254)
        if email is not None and not _EMAIL.match(email):
            fields.fail("email", "must be an email address such as name@example.com")
        values["email"] = email
    if not partial or fields.present("company"):
        values["company"] = _optional_text(fields, "company", 200)
    if not partial or fields.present("notes"):
        values["notes"] = fields.string("notes", default="", max_length=10_000, blank=True)
    fields.done()
    return values


# --- handlers -------------------------------------------------------------------------------------


@routes.get(
    BASE,
    Op(
        CLIENTS,
        "List clients",
        {200: "ClientPage"},
        params=(
            query("search", string(200), "Part of the name, company or email."),
            query("number", PHONE, "The client with this number."),
            *PAGING,
        ),
    ),
)
async def list_clients(request: web.Request) -> web.Response:
    """``GET /api/clients/?search=&number=&limit=&offset=``"""
    svc = services(request)
    fields = Fields(request.query, query=True, allowed=("limit", "offset", "search", "number"))
    limit, offset = page_window(fields)
    search = fields.string("search", max_length=200, blank=True)
    number = fields.phone("number", svc.config.calls.default_region)
    fields.done()
    count, results = await svc.clients.page(search, number, limit=limit, offset=offset)
    return web.json_response(page_json(request, count, results, limit, offset))


@routes.post(
    BASE,
    Op(CLIENTS, "Create a client", {201: "Client"}, "ClientCreate", errors={409: "a number belongs to another client"}),
)
async def create_client(request: web.Request) -> web.Response:
    """``POST /api/clients/`` → 201 with the client; 409 if a number belongs to another client."""
    svc = services(request)
    values = read_client_body(await read_json_object(request), partial=False, region=svc.config.calls.default_region)
    body = await svc.clients.create(values)
    return web.json_response(body, status=201, headers={"Location": f"{BASE}{body['id']}/"})


@routes.get(BASE + "{id}/", Op(CLIENTS, "A client", {200: "Client"}))
async def get_client(request: web.Request) -> web.Response:
    client_id = path_uuid(request.match_info["id"], "client")
    return web.json_response(await services(request).clients.get(client_id))


@routes.patch(
    BASE + "{id}/",
    Op(CLIENTS, "Change a client", {200: "Client"}, "ClientPatch", errors={409: "a number belongs to another client"}),
)
async def patch_client(request: web.Request) -> web.Response:
    """``PATCH /api/clients/{id}/``: change the fields given; ``phone_numbers`` replaces the list."""
    svc = services(request)
    client_id = path_uuid(request.match_info["id"], "client")
    values = read_client_body(await read_json_object(request), partial=True, region=svc.config.calls.default_region)
    return web.json_response(await svc.clients.change(client_id, values))


@routes.delete(BASE + "{id}/", Op(CLIENTS, "Delete a client (its calls are kept)", {204: None}))
async def delete_client(request: web.Request) -> web.Response:
    """``DELETE /api/clients/{id}/`` → 204; the client's calls are kept, without a client."""
    await services(request).clients.delete(path_uuid(request.match_info["id"], "client"))
    return web.Response(status=204)


@routes.get(
    BASE + "{id}/call_history/", Op(CLIENTS, "A client's calls, newest first", {200: "CallLogPage"}, params=PAGING)
)
async def call_history(request: web.Request) -> web.Response:
    """``GET /api/clients/{id}/call_history/?limit=&offset=``: the client's calls, newest first."""
    client_id = path_uuid(request.match_info["id"], "client")
    fields = Fields(request.query, query=True, allowed=("limit", "offset"))
    limit, offset = page_window(fields)
    fields.done()
    count, results = await services(request).clients.call_history(client_id, limit=limit, offset=offset)
    return web.json_response(page_json(request, count, results, limit, offset))


@routes.post(
    BASE + "{id}/link_calls/",
    Op(CLIENTS, "Assign earlier unowned calls from or to the client's numbers", {200: "Linked"}),
)
async def link_calls(request: web.Request) -> web.Response:
    """``POST /api/clients/{id}/link_calls/`` → ``{"linked": n}``: unowned past calls whose far
    party is one of the client's numbers become the client's. History is only rewritten on request."""
    client_id = path_uuid(request.match_info["id"], "client")
    return web.json_response({"linked": await services(request).clients.link_calls(client_id)})

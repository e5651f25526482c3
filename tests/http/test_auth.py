"""Bearer tokens and scopes over real HTTP on both databases, on every route the app has."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web

from calld.domain.scopes import Scope
from calld.http.app import create_app
from calld.service.wiring import Services
from calld.storage.database import Database
from calld.storage.tokens import TokenStore
from tests.support import AppClient, LogCapture, bearer, mint_token

R, W, A = Scope.READ, Scope.WRITE, Scope.ADMIN
SIGNED = None  # authenticated by the source's signature, not by a bearer token
PUBLIC = "public"  # no credentials at all
BASIC = "basic"  # HTTP Basic credentials of its own (FreeSWITCH's mod_json_cdr), never a bearer token

# Every route and the scope it needs, written out by hand: the app's route table must match it
# exactly, so a new route fails here until someone decides what it needs.
EXPECTED: dict[tuple[str, str], Scope | str | None] = {
    ("GET", "/api/call-logs/"): R,
    ("POST", "/api/call-logs/"): W,
    ("GET", "/api/call-logs/statistics/"): R,
    ("GET", "/api/call-logs/export/"): R,
    ("POST", "/api/call-logs/initiate_call/"): W,
    ("POST", "/api/call-logs/log_incoming_call/"): W,
    ("GET", "/api/call-logs/{id}/"): R,
    ("PATCH", "/api/call-logs/{id}/"): W,
    ("DELETE", "/api/call-logs/{id}/"): W,
    ("DELETE", "/api/call-logs/recordings/"): A,
    ("GET", "/api/call-logs/{id}/recordings/{recording_id}/media/"): R,
    ("DELETE", "/api/call-logs/{id}/recordings/{recording_id}/"): W,
    ("PATCH", "/api/call-logs/{id}/update_status/"): W,
    ("POST", "/api/call-logs/{id}/end_call/"): W,
    ("POST", "/api/call-logs/{id}/add_event/"): W,
    ("POST", "/api/call-logs/{id}/start_recording/"): W,
    ("POST", "/api/call-logs/{id}/stop_recording/"): W,
    ("POST", "/api/call-logs/{id}/transfer_call/"): W,
    ("POST", "/api/call-logs/{id}/toggle_hold/"): W,
    ("POST", "/api/call-logs/{id}/mute/"): W,
    ("POST", "/api/call-logs/{id}/unmute/"): W,
    ("POST", "/api/call-logs/{id}/send_dtmf/"): W,
    ("POST", "/api/call-logs/{id}/park/"): W,
    ("POST", "/api/call-logs/{id}/pickup/"): W,
    ("POST", "/api/call-logs/{id}/pause_recording/"): W,
    ("POST", "/api/call-logs/{id}/answer/"): W,
    ("POST", "/api/call-logs/{id}/transfer_call/complete/"): W,
    ("POST", "/api/call-logs/{id}/transfer_call/cancel/"): W,
    ("POST", "/api/call-logs/{id}/reject/"): W,
    ("POST", "/api/call-logs/{id}/resume_recording/"): W,
    ("GET", "/api/clients/"): R,
    ("POST", "/api/clients/"): W,
    ("GET", "/api/clients/{id}/"): R,
    ("PATCH", "/api/clients/{id}/"): W,
    ("DELETE", "/api/clients/{id}/"): W,
    ("GET", "/api/clients/{id}/call_history/"): R,
    ("POST", "/api/clients/{id}/link_calls/"): W,
    ("GET", "/api/sip-configurations/"): A,
    ("POST", "/api/sip-configurations/"): A,
    ("GET", "/api/sip-configurations/{id}/"): A,
    ("PATCH", "/api/sip-configurations/{id}/"): A,
    ("DELETE", "/api/sip-configurations/{id}/"): A,
    ("GET", "/api/sip-configurations/{id}/webrtc_config/"): R,
    ("POST", "/api/sip-configurations/{id}/set_default/"): A,
    ("POST", "/api/sip-configurations/{id}/test_connection/"): A,
    ("GET", "/api/webhook-subscriptions/"): A,
    ("POST", "/api/webhook-subscriptions/"): A,
    ("GET", "/api/webhook-subscriptions/{id}/"): A,
    ("PATCH", "/api/webhook-subscriptions/{id}/"): A,
    ("DELETE", "/api/webhook-subscriptions/{id}/"): A,
    ("GET", "/api/webhook-subscriptions/{id}/deliveries/"): A,
    ("POST", "/api/webhook-subscriptions/{id}/deliveries/{delivery_id}/redeliver/"): A,
    ("GET", "/api/ws"): R,
    ("POST", "/api/webhooks/sip/"): SIGNED,
    ("POST", "/api/webhooks/recording/"): SIGNED,
    ("POST", "/api/webhooks/freeswitch/cdr/"): BASIC,
    ("POST", "/api/webhooks/providers/twilio/"): SIGNED,
    ("POST", "/api/webhooks/providers/telnyx/"): SIGNED,
    ("POST", "/api/webhooks/providers/vonage/"): SIGNED,
    ("POST", "/api/webhooks/providers/plivo/"): SIGNED,
    ("GET", "/api/auth/whoami/"): R,
    ("GET", "/"): PUBLIC,
    ("GET", "/console/{file}"): PUBLIC,
    ("GET", "/api/openapi.json"): PUBLIC,
    ("GET", "/api/docs"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
}


def app_routes(app: web.Application) -> set[tuple[str, str]]:
    """(method, path template) of every route; HEAD is aiohttp's automatic twin of GET."""
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }


def concrete(path: str) -> str:
    path = path.replace("{file}", "app.js")  # a file the console ships
    for name in ("{id}", "{delivery_id}", "{recording_id}"):
        path = path.replace(name, str(uuid.uuid4()))
    return path


async def test_every_route_is_in_the_table(services: Services) -> None:
    assert app_routes(create_app(services)) == set(EXPECTED)


async def test_every_route_refuses_no_token_and_too_small_scopes(
    services: Services, db: Database, aiohttp_client: Callable[..., Awaitable[AppClient]]
) -> None:
    client = await aiohttp_client(create_app(services))
    tokens = {scope: bearer(await mint_token(db, scope)) for scope in Scope}
    wrong: list[str] = []
    for (method, template), needed in EXPECTED.items():
        path = concrete(template)
        if needed == PUBLIC:
            resp = await client.request(method, path)
            if resp.status != 200:
                wrong.append(f"{method} {template} (public) without a token: {resp.status}")
            continue
        if needed == BASIC:
            for headers in [{}, *tokens.values()]:  # a bearer token of any scope is no Basic credential
                resp = await client.request(method, path, json={}, headers=headers)
                if resp.status != 401 or (await resp.json())["error"] != "unauthorized":
                    wrong.append(f"{method} {template} (basic) with {headers or 'nothing'}: {resp.status}")
            continue
        resp = await client.request(method, path, json={})
        body = await resp.json()
        error = "webhook rejected" if needed is SIGNED else "authentication required"
        if resp.status != 401 or body["error"] != error:
            wrong.append(f"{method} {template} without a token: {resp.status} {body}")
        for scope, headers in tokens.items():
            resp = await client.request(method, path, json={}, headers=headers)
            # An allowed export answers its file (text/csv), not JSON.
            body = await resp.json() if resp.content_type == "application/json" else {}
            if needed is SIGNED:
                if resp.status != 401 or body["error"] != "webhook rejected":
                    wrong.append(f"{method} {template} with {scope} but unsigned: {resp.status} {body}")
            elif scope.allows(needed):
                if resp.status in (401, 403):
                    wrong.append(f"{method} {template} with {scope}: {resp.status} {body}")
            elif resp.status != 403 or body["error"] != "insufficient scope" or needed not in body["detail"]["scope"]:
                wrong.append(f"{method} {template} with {scope} (needs {needed}): {resp.status} {body}")
    assert wrong == []


async def test_401_says_how_to_authenticate(api: AppClient) -> None:
    resp = await api.get("/api/call-logs/", headers={"Authorization": ""})
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert await resp.json() == {
        "error": "authentication required",
        "code": "unauthenticated",
        "detail": {"authorization": "send the header 'Authorization: Bearer <token>' (see `calld token create`)"},
    }


@pytest.mark.parametrize(
    "header",
    [
        "Bearer nonsense",
        "Basic dXNlcjpwYXNz",
        "Bearer calld_0123456789ab_" + "A" * 43,  # well formed, no such key
    ],
)
async def test_unknown_tokens_are_401(api: AppClient, header: str) -> None:
    resp = await api.get("/api/call-logs/", headers={"Authorization": header})
    assert resp.status == 401
    body = await resp.json()
    assert body["detail"]["authorization"]


async def test_right_key_with_the_wrong_secret_is_401(api: AppClient, db: Database) -> None:
    token = await mint_token(db, Scope.READ)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert (await api.get("/api/call-logs/", headers=bearer(forged))).status == 401
    assert (await api.get("/api/call-logs/", headers=bearer(token))).status == 200


async def test_a_revoked_token_stops_working_at_once(api: AppClient, db: Database) -> None:
    token = await mint_token(db, Scope.READ, name="crm")
    assert (await api.get("/api/call-logs/", headers=bearer(token))).status == 200
    async with db.write() as session:
        await TokenStore().revoke(session, "crm")
    resp = await api.get("/api/call-logs/", headers=bearer(token))
    assert resp.status == 401
    assert (await resp.json())["error"] == "invalid token"


@pytest.mark.parametrize(
    "path",
    ["/api/call-logs/?limit=0", "/api/call-logs/not-a-uuid/", "/api/call-logs/statistics/?period=decade"],
)
async def test_the_token_is_refused_before_the_input_on_pages_that_check_it_with_their_read(
    api: AppClient, db: Database, path: str
) -> None:
    """These pages check the token in their own database read; a request they refuse before reading
    (bad input) still gets the token's 401, and a valid token gets the input's 4xx."""
    good = await mint_token(db, Scope.READ, name="reader")
    bad = good[:-4] + ("aaaa" if not good.endswith("aaaa") else "bbbb")
    resp = await api.get(path, headers=bearer(bad))
    assert resp.status == 401
    assert (await resp.json())["error"] == "invalid token"
    resp = await api.get(path, headers=bearer(good))
    assert resp.status in (404, 422)


async def test_pages_that_check_the_token_with_their_read_answer_only_a_valid_token(
    api: AppClient, db: Database
) -> None:
    token = await mint_token(db, Scope.READ, name="reader")
    created = await api.post(
        "/api/call-logs/", json={"direction": "inbound", "caller_number": "+14155550100", "recipient_number": "1001"}
    )
    call_id = (await created.json())["id"]
    for path in (f"/api/call-logs/{call_id}/", "/api/call-logs/", "/api/call-logs/statistics/"):
        assert (await api.get(path, headers=bearer(token))).status == 200
        resp = await api.get(path, headers=bearer(token + "x"))
        assert resp.status == 401, path
        assert set(await resp.json()) == {"error", "code", "detail"}, path
    async with db.write() as session:
        await TokenStore().revoke(session, "reader")
    for path in (f"/api/call-logs/{call_id}/", "/api/call-logs/", "/api/call-logs/statistics/"):
        assert (await api.get(path, headers=bearer(token))).status == 401, path


async def test_only_a_digest_is_stored(db: Database) -> None:
    token = await mint_token(db, Scope.WRITE, name="stored")
    async with db.read() as session:
        [row] = await TokenStore().all(session)
    assert token not in (row.token_hash, row.key, row.name)
    assert token.split("_", 2)[2] not in row.token_hash  # the secret may itself contain "_"
    assert len(row.token_hash) == 64


async def test_tokens_never_reach_the_log(api: AppClient, db: Database, log_capture: LogCapture) -> None:
    token = await mint_token(db, Scope.READ, name="reader")
    assert (await api.get("/api/call-logs/?limit=5", headers=bearer(token))).status == 200
    assert (await api.get("/api/call-logs/", headers=bearer(token + "x"))).status == 401
    requests = [line for line in log_capture.lines() if line["event"] == "request"]
    assert [(line["status"], line.get("auth")) for line in requests[-2:]] == [(200, "reader"), (401, None)]
    assert token[6:] not in log_capture.text()

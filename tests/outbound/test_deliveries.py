"""Outbound webhooks end to end on both databases: a real daemon, real receivers on loopback."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestServer

from calld import signing
from calld.config import OutboundWebhooksConfig, ServerConfig
from calld.daemon import Daemon
from calld.storage.database import Database
from calld.storage.models import CallEvent, WebhookDelivery
from tests.support import LOOPBACK_EGRESS, RECEIVER_SECRET, api_session, call_json, running_daemon, subscribe

FAST = OutboundWebhooksConfig(
    timeout_seconds=0.5,
    max_attempts=4,
    backoff_base_seconds=0.05,
    backoff_max_seconds=0.2,
    poll_interval_seconds=0.2,
)
INCOMING = {"caller_number": "+14155550100", "recipient_number": "1001"}
# For tests that stop calld with sends to a hanging receiver under way: stopping waits this grace
# period for them, rather than the default 10 s.
QUICK_STOP = ServerConfig(host="127.0.0.1", port=0, shutdown_timeout_seconds=0.5)


@dataclass
class Received:
    at: float
    delivery_id: str
    event_type: str
    body: dict[str, Any]
    status: int


@dataclass
class Receiver:
    """An operator's endpoint: answers ``plan`` statuses in turn (then 200), or never answers."""

    plan: list[int] = field(default_factory=list)
    hang: bool = False
    delay: float = 0.0  # seconds before answering
    requests: list[Received] = field(default_factory=list)
    bad_signatures: int = 0
    waiting: int = 0  # requests received and not answered yet

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            signing.verify(
                [RECEIVER_SECRET],
                request.headers.get(signing.SIGNATURE_HEADER),
                raw,
                datetime.now(UTC),
                timedelta(minutes=5),
            )
        except signing.SignatureError:
            self.bad_signatures += 1
            return web.Response(status=401)
        self.waiting += 1
        try:
            if self.hang:
                await asyncio.sleep(60)
            await asyncio.sleep(self.delay)
        finally:
            self.waiting -= 1
        status = self.plan.pop(0) if self.plan else 200
        self.requests.append(
            Received(
                time.monotonic(),
                request.headers["Calld-Delivery"],
                request.headers["Calld-Event"],
                json.loads(raw),
                status,
            )
        )
        return web.Response(status=status)

    def delivered(self) -> list[str]:
        return [r.event_type for r in self.requests if r.status == 200]


@pytest.fixture
async def receiver_server() -> AsyncIterator[tuple[TestServer, dict[str, Receiver]]]:
    """One loopback HTTP server; each path is its own receiver."""
    receivers: dict[str, Receiver] = {}

    async def route(request: web.Request) -> web.Response:
        return await receivers[request.match_info["name"]].handle(request)

    app = web.Application()
    app.router.add_post("/{name}", route)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield server, receivers
    finally:
        await server.close()


@pytest.fixture
def endpoint(receiver_server: tuple[TestServer, dict[str, Receiver]]) -> Callable[[str, Receiver], str]:
    server, receivers = receiver_server

    def add(name: str, receiver: Receiver) -> str:
        receivers[name] = receiver
        return str(server.make_url(f"/{name}"))

    return add


def running(db: Database, outbound: OutboundWebhooksConfig = FAST) -> AbstractAsyncContextManager[Daemon]:
    return running_daemon(db, outbound_webhooks=outbound, egress=LOOPBACK_EGRESS)


async def eventually(check: Callable[[], bool | Awaitable[bool]], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def deliveries(http: aiohttp.ClientSession, sub: dict[str, Any], query: str = "") -> list[dict[str, Any]]:
    page = await call_json(http, "GET", f"/api/webhook-subscriptions/{sub['id']}/deliveries/{query}", 200)
    results: list[dict[str, Any]] = page["results"]
    return results


async def until_delivered(http: aiohttp.ClientSession, sub: dict[str, Any], count: int, within: float = 10.0) -> None:
    """Wait until the deliveries API says ``count`` deliveries of ``sub`` are delivered. A receiver
    records a request before its answer reaches calld, so what it saw says nothing yet of what
    calld stored."""

    async def done() -> bool:
        return [d["status"] for d in await deliveries(http, sub)] == ["delivered"] * count

    await eventually(done, within)


async def test_a_failing_receiver_gets_retries_then_the_rest_in_order(
    db: Database, endpoint: Callable[[str, Receiver], str]
) -> None:
    flaky = Receiver(plan=[503, 500])
    async with running(db) as daemon, api_session(daemon) as http:
        sub = await subscribe(http, endpoint("flaky", flaky))
        call = await call_json(
            http, "POST", "/api/call-logs/log_incoming_call/", 201, json={**INCOMING, "sip_call_id": "o-1@pbx"}
        )
        for status in ("ringing", "answered"):
            await call_json(http, "PATCH", f"/api/call-logs/{call['id']}/update_status/", 200, json={"status": status})
        await until_delivered(http, sub, 3)

        # The first event was tried three times (same delivery id); the others waited their turn.
        assert [(r.event_type, r.status) for r in flaky.requests] == [
            ("initiated", 503),
            ("initiated", 500),
            ("initiated", 200),
            ("ringing", 200),
            ("answered", 200),
        ]
        assert len({r.delivery_id for r in flaky.requests[:3]}) == 1
        assert flaky.bad_signatures == 0
        first = flaky.requests[0].body
        assert first["delivery_id"] == flaky.requests[0].delivery_id
        assert first["call"]["id"] == call["id"] and first["event"]["event_type"] == "initiated"
        assert flaky.requests[4].body["call"]["status"] == "answered"
        gaps = [b.at - a.at for a, b in zip(flaky.requests, flaky.requests[1:3], strict=False)]
        assert all(gap >= FAST.backoff_base_seconds / 2 for gap in gaps), gaps

        rows = await deliveries(http, sub)
        assert [(d["event_type"], d["status"], d["attempts"]) for d in rows] == [
            ("answered", "delivered", 1),
            ("ringing", "delivered", 1),
            ("initiated", "delivered", 3),
        ]
        assert rows[2]["last_status_code"] == 200 and rows[2]["last_error"] is None
        assert "secret" not in json.dumps(rows)


async def test_a_hanging_receiver_blocks_neither_ingestion_nor_other_receivers(
    db: Database, endpoint: Callable[[str, Receiver], str]
) -> None:
    stuck, healthy = Receiver(hang=True), Receiver()
    # The stuck receiver's sends would take 30 s each: if they held anything up, nothing below
    # could finish while they are still in flight (no timing threshold needed to tell).
    outbound = replace(FAST, timeout_seconds=30.0)
    async with (
        running_daemon(db, outbound_webhooks=outbound, server=QUICK_STOP, egress=LOOPBACK_EGRESS) as daemon,
        api_session(daemon) as http,
    ):
        hanging = await subscribe(http, endpoint("stuck", stuck), event_types=["initiated"])
        healthy_sub = await subscribe(http, endpoint("healthy", healthy))

        async def five_calls() -> None:
            for n in range(5):
                body = {**INCOMING, "sip_call_id": f"h-{n}@pbx"}
                await call_json(http, "POST", "/api/call-logs/log_incoming_call/", 201, json=body)

        await asyncio.wait_for(five_calls(), 15)  # blocked by the stuck sends, each would take 30 s
        await until_delivered(http, healthy_sub, 5)
        rows = await deliveries(http, hanging)
        assert [row["status"] for row in rows] == ["pending"] * 5  # still waiting on the stuck receiver
        assert stuck.requests == []


async def test_a_receiver_that_never_answers_is_dead_after_its_tries(
    db: Database, endpoint: Callable[[str, Receiver], str]
) -> None:
    stuck = Receiver(hang=True)
    outbound = replace(FAST, timeout_seconds=0.3, max_attempts=2)
    async with running(db, outbound) as daemon, api_session(daemon) as http:
        hanging = await subscribe(http, endpoint("stuck", stuck), event_types=["initiated"])
        for n in range(5):
            await call_json(
                http, "POST", "/api/call-logs/log_incoming_call/", 201, json={**INCOMING, "sip_call_id": f"d-{n}@pbx"}
            )

        async def all_dead() -> bool:
            return [d["status"] for d in await deliveries(http, hanging)] == ["dead"] * 5

        await eventually(all_dead)
        [row, *_] = await deliveries(http, hanging)
        assert row["attempts"] == 2
        assert row["last_error"] == "no answer within 0.3 s" and row["last_status_code"] is None
        assert stuck.requests == []  # it never answered


async def test_undelivered_rows_survive_a_restart(db: Database, endpoint: Callable[[str, Receiver], str]) -> None:
    receiver = Receiver(hang=True)
    url = endpoint("later", receiver)
    slow = replace(FAST, timeout_seconds=30.0)
    async with (
        running_daemon(db, outbound_webhooks=slow, server=QUICK_STOP, egress=LOOPBACK_EGRESS) as daemon,
        api_session(daemon) as http,
    ):
        sub = await subscribe(http, url)
        call = await call_json(
            http, "POST", "/api/call-logs/log_incoming_call/", 201, json={**INCOMING, "sip_call_id": "r-1@pbx"}
        )
        await call_json(http, "POST", f"/api/call-logs/{call['id']}/end_call/", 200)
        await eventually(lambda: receiver.waiting > 0)  # a send is under way when we stop
        stopping = time.monotonic()
    # Stopping waited the grace period, not the hanging receiver's 30 s timeout.
    assert time.monotonic() - stopping < 5
    async with db.read() as session:
        pending = (await session.execute(sa.select(WebhookDelivery.status))).scalars().all()
    assert [s.value for s in pending] == ["pending", "pending"]

    receiver.hang = False
    async with running(db, slow) as daemon, api_session(daemon) as http:
        started = time.monotonic()
        await until_delivered(http, sub, 2, within=5)
        # Handed back at stop: sent at once, not after the 30 s claim lease.
        assert time.monotonic() - started < 3
    assert receiver.delivered() == ["initiated", "ended"]


async def test_a_send_under_way_at_stop_is_finished(db: Database, endpoint: Callable[[str, Receiver], str]) -> None:
    receiver = Receiver(delay=0.3)  # answers, slowly (within the 0.5 s timeout)
    async with running(db) as daemon, api_session(daemon) as http:
        await subscribe(http, endpoint("slow", receiver), event_types=["initiated"])
        await call_json(
            http, "POST", "/api/call-logs/log_incoming_call/", 201, json={**INCOMING, "sip_call_id": "s-1@pbx"}
        )
        await eventually(lambda: receiver.waiting > 0)
    # The default grace (server.shutdown_timeout_seconds) let the answer arrive before calld exited.
    assert receiver.delivered() == ["initiated"]
    async with db.read() as session:
        statuses = (await session.execute(sa.select(WebhookDelivery.status))).scalars().all()
    assert [status.value for status in statuses] == ["delivered"]


async def test_a_dead_delivery_can_be_redelivered(db: Database, endpoint: Callable[[str, Receiver], str]) -> None:
    receiver = Receiver(plan=[500, 500])
    async with running(db, replace(FAST, max_attempts=2)) as daemon, api_session(daemon) as http:
        sub = await subscribe(http, endpoint("down", receiver))
        await call_json(
            http, "POST", "/api/call-logs/log_incoming_call/", 201, json={**INCOMING, "sip_call_id": "d-1@pbx"}
        )

        async def dead() -> bool:
            return len(await deliveries(http, sub, "?status=dead")) == 1

        await eventually(dead)
        [row] = await deliveries(http, sub, "?status=dead")
        assert (row["attempts"], row["last_status_code"], row["last_error"]) == (2, 500, "HTTP 500")
        assert row["next_attempt_at"] is None

        again = await call_json(
            http, "POST", f"/api/webhook-subscriptions/{sub['id']}/deliveries/{row['id']}/redeliver/", 202
        )
        assert (again["status"], again["attempts"]) == ("pending", 0)
        await until_delivered(http, sub, 1, within=3)
        assert receiver.delivered() == ["initiated"]
        [done] = await deliveries(http, sub)
        assert (done["id"], done["status"], done["attempts"]) == (row["id"], "delivered", 1)

        missing = f"/api/webhook-subscriptions/{sub['id']}/deliveries/{sub['id']}/redeliver/"
        assert (await call_json(http, "POST", missing, 404))["detail"] == {
            "delivery_id": f"no delivery of this subscription with id {sub['id']}"
        }


async def test_outbox_rows_are_written_with_their_events_only(
    db: Database, endpoint: Callable[[str, Receiver], str]
) -> None:
    receiver = Receiver()
    async with running(db) as daemon, api_session(daemon) as http:
        await call_json(  # before any subscription: nothing to deliver
            http, "POST", "/api/call-logs/log_incoming_call/", 201, json={**INCOMING, "sip_call_id": "t-0@pbx"}
        )
        everything = await subscribe(http, endpoint("all", receiver))
        await subscribe(http, endpoint("ends", Receiver()), event_types=["ended", "hold"])
        call = await call_json(
            http, "POST", "/api/call-logs/log_incoming_call/", 201, json={**INCOMING, "sip_call_id": "t-1@pbx"}
        )
        await call_json(http, "POST", f"/api/call-logs/{call['id']}/toggle_hold/", 409)  # refused: not answered
        await call_json(http, "POST", f"/api/call-logs/{call['id']}/end_call/", 200)
        await until_delivered(http, everything, 2)
    async with db.read() as session:
        events = (await session.execute(sa.select(sa.func.count()).select_from(CallEvent))).scalar_one()
        rows = (await session.execute(sa.select(WebhookDelivery.event_type).order_by(WebhookDelivery.id))).all()
    assert events == 3
    assert [r[0] for r in rows] == ["initiated", "ended", "ended"]


async def test_a_name_resolving_to_a_refused_address_is_refused_when_connecting(
    db: Database, endpoint: Callable[[str, Receiver], str]
) -> None:
    """A name passes at creation (it may resolve elsewhere later); the address it resolves to when a
    delivery connects is what is checked, so DNS rebinding gains nothing."""
    receiver = Receiver()
    url = endpoint("hook", receiver).replace("127.0.0.1", "localhost")
    # The default egress policy: loopback is not allowed.
    async with running_daemon(db, outbound_webhooks=FAST) as daemon, api_session(daemon) as http:
        sub = await subscribe(http, url)
        await call_json(
            http,
            "POST",
            "/api/call-logs/log_incoming_call/",
            201,
            json={"caller_number": "+14155550100", "recipient_number": "1001", "sip_call_id": "eg-1@pbx"},
        )

        async def refused() -> bool:
            rows = await deliveries(http, sub)
            return bool(rows) and "egress policy" in (rows[0]["last_error"] or "")

        await eventually(refused)
    assert receiver.requests == []


async def test_a_call_that_is_over_sends_its_summary_to_those_who_ask(
    db: Database, endpoint: Callable[[str, Receiver], str]
) -> None:
    """call.completed: one delivery with the whole story, after the ending itself, only to a
    subscription that lists it (an every-event subscription keeps getting the call's events only)."""
    crm, everything = Receiver(), Receiver()
    async with running(db) as daemon, api_session(daemon) as http:
        wants = await subscribe(http, endpoint("crm", crm), event_types=["ended", "call.completed"])
        plain = await subscribe(http, endpoint("all", everything))
        call = await call_json(
            http, "POST", "/api/call-logs/log_incoming_call/", 201, json={**INCOMING, "sip_call_id": "done-1@pbx"}
        )
        for status in ("ringing", "answered"):
            await call_json(http, "PATCH", f"/api/call-logs/{call['id']}/update_status/", 200, json={"status": status})
        await call_json(http, "POST", f"/api/call-logs/{call['id']}/toggle_hold/", 200)
        await call_json(http, "POST", f"/api/call-logs/{call['id']}/toggle_hold/", 200)
        ended = await call_json(http, "POST", f"/api/call-logs/{call['id']}/end_call/", 200)
        await until_delivered(http, wants, 2)
        await until_delivered(http, plain, 6)
        assert crm.delivered() == ["ended", "call.completed"]
        assert "call.completed" not in everything.delivered()
        summary = crm.requests[1].body
        assert summary["event_type"] == "call.completed" and summary["delivery_id"] == crm.requests[1].delivery_id
        assert summary["call"]["id"] == call["id"] and summary["call"]["status"] == "ended"
        assert summary["occurred_at"] == ended["ended_at"]
        timings = summary["timings"]
        assert timings["connected_seconds"] == ended["duration_seconds"]
        assert timings["hold_seconds"] == ended["hold_seconds"]
        assert timings["talk_seconds"] == round(max(ended["duration_seconds"] - ended["hold_seconds"], 0), 3)
        assert timings["ring_seconds"] == ended["ring_seconds"]
        assert summary["ended"]["status"] == "ended" and summary["ended"]["hangup_by"] == ended["hangup_by"]
        assert [(p["role"], p["number"]) for p in summary["participants"]] == [
            ("caller", "+14155550100"),
            ("callee", "1001"),
        ]
        assert summary["recordings"] == []
        rows = await deliveries(http, wants)
        assert [d["event_type"] for d in rows] == ["call.completed", "ended"]


async def test_call_completed_is_a_kind_a_subscription_may_ask_for(db: Database) -> None:
    async with running(db) as daemon, api_session(daemon) as http:
        bad = await call_json(
            http,
            "POST",
            "/api/webhook-subscriptions/",
            422,
            json={"url": "http://127.0.0.1:9/x", "event_types": ["call.finished"]},
        )
        assert "call.completed" in bad["detail"]["event_types"]

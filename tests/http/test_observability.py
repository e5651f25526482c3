"""/healthz, /readyz and /metrics of a running daemon, over real HTTP, without a token."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from sqlalchemy.engine import make_url

from calld.adapters.freeswitch.adapter import FreeswitchAdapter
from calld.adapters.freeswitch.settings import FreeswitchConfig
from calld.config import Config, DatabaseConfig, ServerConfig
from calld.daemon import Daemon
from calld.storage.database import Database
from tests.fakes.esl_capture import load_capture
from tests.fakes.freeswitch_daemon import calld, fake_switch, only_call_in
from tests.fakes.tcp_proxy import TcpProxy
from tests.support import PG_URL, api_session, free_tcp_port, fresh_database, metric_sample, running_daemon


async def get(base: str, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(base + path) as response:
        return response.status, await response.text()


async def test_health_and_metrics_need_no_token(db: Database) -> None:
    async with running_daemon(db) as daemon:
        base = f"http://127.0.0.1:{daemon.port}"
        assert await get(base, "/healthz") == (200, '{"status": "ok"}')
        status, body = await get(base, "/readyz")
        assert status == 200 and '"switch": "not configured"' in body and '"database": "ok"' in body
        async with api_session(daemon) as http:
            new = {"direction": "inbound", "caller_number": "+14155550100", "recipient_number": "1001"}
            async with http.post("/api/call-logs/", json=new) as response:
                assert response.status == 201
                call_id = (await response.json())["id"]
            async with http.post(f"/api/call-logs/{call_id}/end_call/") as response:
                assert response.status == 200
            async with http.get("/api/call-logs/nonsense/") as response:
                assert response.status == 404
        status, text = await get(base, "/metrics")
    assert status == 200
    assert metric_sample(text, "calld_http_requests_total", method="POST", route="/api/call-logs/", status="201") == 1
    assert (
        metric_sample(text, "calld_http_requests_total", method="GET", route="/api/call-logs/{id}/", status="404") == 1
    )
    assert metric_sample(text, "calld_http_request_duration_seconds_count", method="POST", route="/api/call-logs/") == 1
    assert metric_sample(text, "calld_call_events_stored_total", source="api", event_type="initiated") == 1
    assert metric_sample(text, "calld_calls_ended_total", status="missed") == 1  # ended before it was answered
    assert metric_sample(text, "calld_calls_active") == 0
    assert metric_sample(text, "calld_log_write_failures_total") == 0
    # API-only: the switch and ingest figures exist, at 0.
    assert metric_sample(text, "calld_switch_connected") == 0
    assert metric_sample(text, "calld_switch_connections_total") == 0
    assert metric_sample(text, "calld_ingest_queue_depth") == 0
    assert metric_sample(text, "calld_ingest_batches_total") == 0
    assert metric_sample(text, "calld_ingest_failed_total") == 0
    assert metric_sample(text, "calld_ingest_bound_reached_total", bound="disk") == 0
    assert "# TYPE calld_switch_events_total counter" in text


async def test_switch_figures_from_a_real_session(db: Database) -> None:
    capture = load_capture("a2_bridged.json")
    async with fake_switch(capture) as server, calld(db, server) as (daemon, _adapter, http):
        await only_call_in(http, "ended")
        base = f"http://127.0.0.1:{daemon.port}"
        _, text = await get(base, "/metrics")
        ready, body = await get(base, "/readyz")
    assert (ready, '"switch": "freeswitch connected"' in body) == (200, True)
    assert metric_sample(text, "calld_switch_connected", switch="freeswitch") == 1
    assert metric_sample(text, "calld_switch_connections_total", switch="freeswitch") == 1
    for event_type in ("initiated", "ringing", "answered", "ended"):
        labels = {"switch": "freeswitch", "event_type": event_type, "outcome": "stored"}
        assert metric_sample(text, "calld_switch_events_total", **labels) == 1
    assert metric_sample(text, "calld_ingest_queue_depth") == 0
    assert metric_sample(text, "calld_ingest_batches_total") >= 1
    assert metric_sample(text, "calld_ingest_bound_reached_total", bound="memory") == 0


async def test_not_ready_without_the_switch(db: Database) -> None:
    fs = FreeswitchConfig(port=free_tcp_port(), password="ClueCon")  # nothing listens there
    config = Config(server=ServerConfig(port=0), database=DatabaseConfig(url=db.url), freeswitch=fs)
    daemon = Daemon(config, switch=FreeswitchAdapter(fs))
    await daemon.start()
    try:
        status, body = await get(f"http://127.0.0.1:{daemon.port}", "/readyz")
        _, text = await get(f"http://127.0.0.1:{daemon.port}", "/metrics")
    finally:
        await daemon.stop()
    assert status == 503 and '"switch": "freeswitch not connected"' in body and '"database": "ok"' in body
    assert metric_sample(text, "calld_switch_connected", switch="freeswitch") == 0


@pytest.mark.usefixtures("pg_database")
async def test_not_ready_while_the_database_is_unreachable(tmp_path: Path) -> None:
    await (await fresh_database("postgres", tmp_path)).close()
    target = make_url(PG_URL)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432)
    port = await proxy.start()
    proxied = Database(target.set(port=port).render_as_string(hide_password=False))
    try:
        async with running_daemon(proxied) as daemon:
            base = f"http://127.0.0.1:{daemon.port}"
            assert (await get(base, "/readyz"))[0] == 200
            proxy.cut()
            status, body = await get(base, "/readyz")
            assert status == 503 and '"database": "unreachable' in body
            assert (await get(base, "/healthz"))[0] == 200  # alive, just not ready
            proxy.restore()
            assert (await get(base, "/readyz"))[0] == 200
    finally:
        await proxied.close()
        await proxy.close()

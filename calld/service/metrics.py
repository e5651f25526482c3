"""calld's Prometheus metrics, in a registry each daemon owns (no process-wide state).

Counted as things happen: HTTP requests (by route template, method and status, with latency),
switch events by outcome once their transaction committed, call events stored, calls ended
(by outcome) and calls that sounded poor (MOS below calls.mos_threshold). Read when scraped:
whether the switch is connected and how often it (re)connected, the ingest queue, and from the
database the calls in progress and webhook deliveries by status.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session

from calld.adapters.port import SwitchPort
from calld.cluster.leadership import Elector
from calld.domain.events import SwitchEvent
from calld.domain.quality import BELOW_THRESHOLD
from calld.domain.vocabulary import TERMINAL_STATUSES, EventType
from calld.logging import LogFailures
from calld.storage.database import Database
from calld.storage.models import CallEvent, CallLog, WebhookDelivery

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# The events that end a call (the state machine takes exactly one of them per call).
_ENDING_EVENTS = frozenset({EventType.ENDED.value, EventType.FAILED.value})

# Request latencies a calld on loopback sees: sub-millisecond to a slow switch command.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class IngestState(Protocol):
    """What the metrics read from the ingest queue (``calld.ingest.BatchedIngest`` has these)."""

    @property
    def pending(self) -> int: ...

    batches: int
    failed: int
    fenced: int
    memory_full: int
    spill_full: int


@dataclass
class Snapshot:
    """Figures read from the database when scraped (set by the /metrics handler)."""

    active_calls: int = 0
    deliveries: dict[str, int] = field(default_factory=dict)


class Metrics:
    """The counters calld's parts update, and the text Prometheus scrapes."""

    def __init__(self, log_failures: LogFailures | None = None) -> None:
        """``log_failures``: the counter of failed log writes the running logging setup keeps."""
        self.registry = CollectorRegistry(auto_describe=True)
        self.log_failures = log_failures if log_failures is not None else LogFailures()
        self.http_requests = Counter(
            "calld_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=self.registry
        )
        self.http_latency = Histogram(
            "calld_http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.switch_events = Counter(
            "calld_switch_events",
            "Switch call events ingested, by outcome (stored, duplicate, refused)",
            ["switch", "event_type", "outcome"],
            registry=self.registry,
        )
        self.call_events = Counter(
            "calld_call_events_stored", "Call events stored", ["source", "event_type"], registry=self.registry
        )
        self.call_outcomes = Counter(
            "calld_calls_ended", "Calls that ended, by final status", ["status"], registry=self.registry
        )
        self.poor_quality_calls = Counter(
            "calld_poor_quality_calls",
            "Calls whose MOS (worst leg) was below calls.mos_threshold, by what measured it",
            ["source"],
            registry=self.registry,
        )
        self.log_lines_suppressed = Counter(
            "calld_log_lines_suppressed",
            "Repeated warning and error lines not written (calld.logging.RepeatLimiter)",
            ["logger"],
            registry=self.registry,
        )
        self.connections_refused = Counter(
            "calld_http_connections_refused",
            "Connections answered 503 and closed at once: server.max_connections were open",
            registry=self.registry,
        )
        self.retention_runs = Counter(
            "calld_retention_runs", "Retention runs, by outcome (ok, failed)", ["outcome"], registry=self.registry
        )
        self.retention_done = Counter(
            "calld_retention_rows",
            "What retention removed or changed, by kind (recordings, files_removed, calls, webhook_deliveries, "
            "pseudonymised)",
            ["kind"],
            registry=self.registry,
        )
        self.retention_last_run = Gauge(
            "calld_retention_last_run_timestamp_seconds",
            "When the last retention run ended (Unix time)",
            registry=self.registry,
        )
        self.snapshot = Snapshot()
        self._live = _LiveCollector(self)
        self.registry.register(self._live)

    def watch(self, switch: SwitchPort | None, ingest: IngestState | None, elector: Elector | None = None) -> None:
        """Report this switch adapter's connection, this ingest queue and whether this instance
        leads its PBX when scraped."""
        self._live.switch, self._live.ingest, self._live.elector = switch, ingest, elector

    def retention_run(self, done: Mapping[str, int] | None) -> None:
        """A retention run ended: what it did, by kind, or None when it failed."""
        self.retention_runs.labels("ok" if done is not None else "failed").inc()
        for kind, count in (done or {}).items():
            self.retention_done.labels(kind).inc(count)
        self.retention_last_run.set_to_current_time()

    def log_line_suppressed(self, logger: str) -> None:
        self.log_lines_suppressed.labels(logger).inc()

    def switch_batch(self, switch: str, events: Sequence[SwitchEvent], outcomes: Sequence[Enum]) -> None:
        """``SwitchIngest.on_committed``: count a committed batch of switch events by outcome."""
        for event, outcome in zip(events, outcomes, strict=True):
            self.switch_events.labels(switch, event.event_type.value, str(outcome.value)).inc()

    def count_event(self, session: Session, call: CallLog, event: CallEvent) -> None:
        """A ``CallStore`` hook: count each stored call event, and each call's end by its status."""
        event_type = str(getattr(event.event_type, "value", event.event_type))
        self.call_events.labels(str(getattr(event.source, "value", event.source)), event_type).inc()
        if event_type in _ENDING_EVENTS:
            self.call_outcomes.labels(str(getattr(call.status, "value", call.status))).inc()
        elif event_type == EventType.QUALITY_CHANGE.value and event.meta.get("reason") == BELOW_THRESHOLD:
            self.poor_quality_calls.labels(str(event.meta.get("source") or "unknown")).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _LiveCollector(Collector):
    """Values read at scrape time rather than counted."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.switch: SwitchPort | None = None
        self.ingest: IngestState | None = None
        self.elector: Elector | None = None

    def describe(self) -> Iterator[Metric]:
        return iter(())  # unchecked: the families depend on what is configured

    def collect(self) -> Iterator[Metric]:
        snapshot = self.metrics.snapshot
        yield GaugeMetricFamily("calld_calls_active", "Calls not yet ended", value=snapshot.active_calls)
        deliveries = GaugeMetricFamily(
            "calld_webhook_deliveries", "Outbound webhook deliveries by status", labels=["status"]
        )
        for status, count in sorted(snapshot.deliveries.items()):
            deliveries.add_metric([status], count)
        yield deliveries
        yield CounterMetricFamily(
            "calld_log_write_failures",
            "Log lines that could not be written (a closed terminal, a full disk); requests are answered anyway",
            value=self.metrics.log_failures.count,
        )
        yield from self._switch()
        yield from self._ingest()

    def _switch(self) -> Iterator[Metric]:
        # API-only, the families still exist at 0 (switch="" is no label to Prometheus), so
        # dashboards and alerts need not tell the two modes apart.
        switch = self.switch
        name = switch.name if switch is not None else ""
        connected = GaugeMetricFamily("calld_switch_connected", "1 while logged in to the switch", labels=["switch"])
        connected.add_metric([name], 1.0 if switch is not None and switch.connected.is_set() else 0.0)
        yield connected
        sessions = CounterMetricFamily(
            "calld_switch_connections", "Successful logins to the switch (reconnects: this - 1)", labels=["switch"]
        )
        sessions.add_metric([name], float(getattr(switch, "sessions", 0)))
        yield sessions
        leader = GaugeMetricFamily(
            "calld_leader",
            "1 while this instance leads its PBX (connects to the switch and stores its events); "
            "0 while it stands by. Without an election (SQLite) an instance with a switch always leads",
            labels=["pbx"],
        )
        elector = self.elector
        leads = switch is not None and (elector is None or elector.leading)
        leader.add_metric([name], 1.0 if leads else 0.0)
        yield leader

    def _ingest(self) -> Iterator[Metric]:
        ingest = self.ingest  # None when API-only: every figure 0
        yield GaugeMetricFamily(
            "calld_ingest_queue_depth", "Switch events waiting to be stored", value=ingest.pending if ingest else 0
        )
        yield CounterMetricFamily(
            "calld_ingest_batches", "Transactions the ingest queue committed", value=ingest.batches if ingest else 0
        )
        yield CounterMetricFamily(
            "calld_ingest_failed",
            "Switch events the database refused (logged, not stored)",
            value=ingest.failed if ingest else 0,
        )
        yield CounterMetricFamily(
            "calld_ingest_fenced",
            "Switch events not stored because this instance no longer led its PBX (the new leader resyncs)",
            value=ingest.fenced if ingest else 0,
        )
        bounds = CounterMetricFamily(
            "calld_ingest_bound_reached",
            "Times the ingest queue filled: memory (then spilled to disk) or disk (then the switch waited)",
            labels=["bound"],
        )
        bounds.add_metric(["memory"], ingest.memory_full if ingest else 0)
        bounds.add_metric(["disk"], ingest.spill_full if ingest else 0)
        yield bounds


async def take_snapshot(db: Database, metrics: Metrics) -> None:
    """Read the gauges that live in the database (calls in progress, deliveries by status) into
    ``metrics``; a database that does not answer leaves the last snapshot (the other figures say so)."""
    try:
        async with db.read() as session:
            active = await session.execute(
                sa.select(sa.func.count()).select_from(CallLog).where(CallLog.status.not_in(TERMINAL_STATUSES))
            )
            metrics.snapshot.active_calls = int(active.scalar_one())
            rows = await session.execute(
                sa.select(WebhookDelivery.status, sa.func.count()).group_by(WebhookDelivery.status)
            )
            metrics.snapshot.deliveries = {str(getattr(status, "value", status)): int(n) for status, n in rows}
    except Exception:  # the database is down: the other figures still say so much
        pass

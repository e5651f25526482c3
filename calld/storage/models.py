"""SQLAlchemy models of everything calld stores."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from calld.domain.delivery import DeliveryStatus
from calld.domain.scopes import Scope
from calld.domain.vocabulary import (
    CallDirection,
    CallStatus,
    CallType,
    EventSource,
    EventType,
    RecordingStatus,
    SipTransport,
)
from calld.storage.types import BigIntId, JSONType, UTCDateTime, enum_column


def utcnow() -> datetime:
    return datetime.now(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow, nullable=False)


class Client(Timestamped, Base):
    __tablename__ = "clients"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid(), primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    email: Mapped[str | None] = mapped_column(sa.String(254))
    company: Mapped[str | None] = mapped_column(sa.String(200))
    notes: Mapped[str] = mapped_column(sa.Text(), default="", nullable=False)
    seeded: Mapped[bool] = mapped_column(sa.Boolean(), default=False, nullable=False)

    phone_numbers: Mapped[list[ClientPhoneNumber]] = relationship(
        back_populates="client",
        cascade="all, delete-orphan",
        order_by="ClientPhoneNumber.position",
        lazy="selectin",
    )


class ClientPhoneNumber(Base):
    """A number that identifies a client: calls from or to it are the client's."""

    __tablename__ = "client_phone_numbers"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    client_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("clients.id", ondelete="CASCADE"), nullable=False, index=True
    )
    number: Mapped[str] = mapped_column(sa.String(32), nullable=False, unique=True)
    position: Mapped[int] = mapped_column(sa.Integer(), nullable=False, default=0)

    client: Mapped[Client] = relationship(back_populates="phone_numbers")


class SipConfiguration(Timestamped, Base):
    __tablename__ = "sip_configurations"
    __table_args__ = (
        sa.CheckConstraint("port >= 1 AND port <= 65535", name="port_range"),
        # At most one default at the database level; "exactly one" is kept by the repository.
        sa.Index(
            "uq_sip_configurations_single_default",
            "is_default",
            unique=True,
            sqlite_where=sa.text("is_default"),
            postgresql_where=sa.text("is_default"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid(), primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(sa.String(100), nullable=False, unique=True)
    server: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    port: Mapped[int] = mapped_column(sa.Integer(), nullable=False, default=5060)
    transport: Mapped[SipTransport] = mapped_column(
        enum_column(SipTransport, "sip_transport"), nullable=False, default=SipTransport.UDP
    )
    username: Mapped[str] = mapped_column(sa.String(100), nullable=False)
    secret: Mapped[str] = mapped_column(sa.String(255), nullable=False, default="")
    websocket_url: Mapped[str | None] = mapped_column(sa.String(500))
    stun_servers: Mapped[list[str]] = mapped_column(JSONType(), nullable=False, default=list)
    turn_servers: Mapped[list[dict[str, Any]]] = mapped_column(JSONType(), nullable=False, default=list)
    is_default: Mapped[bool] = mapped_column(sa.Boolean(), nullable=False, default=False)
    active: Mapped[bool] = mapped_column(sa.Boolean(), nullable=False, default=True)


class CallLog(Timestamped, Base):
    __tablename__ = "call_logs"
    __table_args__ = (
        sa.CheckConstraint(
            "call_quality_score IS NULL OR (call_quality_score >= 0 AND call_quality_score <= 5)",
            name="quality_score_range",
        ),
        sa.UniqueConstraint("switch_name", "switch_call_ref", name="uq_call_logs_switch_call"),
        sa.Index("ix_call_logs_started_at", "started_at"),
        sa.Index("ix_call_logs_client_started", "client_id", "started_at"),
        sa.Index("ix_call_logs_status_started", "status", "started_at"),
        sa.Index("ix_call_logs_caller_number", "caller_number"),
        sa.Index("ix_call_logs_recipient_number", "recipient_number"),
        sa.Index("ix_call_logs_answered_by", "answered_by", "started_at"),
        sa.Index("ix_call_logs_duration_seconds", "duration_seconds"),
        # The call story's filters (migration 0024); only measured calls have a MOS.
        sa.Index("ix_call_logs_hangup_cause", "hangup_cause", "started_at"),
        sa.Index("ix_call_logs_hangup_by", "hangup_by", "started_at"),
        sa.Index("ix_call_logs_missed_reason", "missed_reason", "started_at"),
        sa.Index(
            "ix_call_logs_mos",
            "mos",
            sqlite_where=sa.text("mos IS NOT NULL"),
            postgresql_where=sa.text("mos IS NOT NULL"),
        ),
        # The calls retention has still to pseudonymise, oldest first (migration 0016).
        sa.Index(
            "ix_call_logs_to_pseudonymise",
            "started_at",
            sqlite_where=sa.text("pseudonymised_at IS NULL"),
            postgresql_where=sa.text("pseudonymised_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid(), primary_key=True, default=uuid.uuid4)
    direction: Mapped[CallDirection] = mapped_column(enum_column(CallDirection, "call_direction"), nullable=False)
    call_type: Mapped[CallType] = mapped_column(enum_column(CallType, "call_type"), nullable=False)
    status: Mapped[CallStatus] = mapped_column(enum_column(CallStatus, "call_status"), nullable=False)
    caller_number: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    recipient_number: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    # The numbers as presented at the door (calld.domain.numbers); the columns above hold the
    # stored form (E.164 where derivable), which client matching and filters use.
    caller_number_raw: Mapped[str | None] = mapped_column(sa.String(255))
    recipient_number_raw: Mapped[str | None] = mapped_column(sa.String(255))
    caller_withheld: Mapped[bool] = mapped_column(
        sa.Boolean(), nullable=False, default=False, server_default=sa.false()
    )
    sip_call_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    client_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("clients.id", ondelete="SET NULL"))
    sip_configuration_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("sip_configurations.id", ondelete="SET NULL")
    )
    switch_name: Mapped[str | None] = mapped_column(sa.String(64))
    switch_call_ref: Mapped[str | None] = mapped_column(sa.String(128))

    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    ringing_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    held_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_event_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    duration_seconds: Mapped[float | None] = mapped_column(sa.Float())
    ring_seconds: Mapped[float | None] = mapped_column(sa.Float())
    hold_seconds: Mapped[float] = mapped_column(sa.Float(), nullable=False, default=0.0)
    recording: Mapped[bool] = mapped_column(sa.Boolean(), nullable=False, default=False)
    transfer_target: Mapped[str | None] = mapped_column(sa.String(255))
    call_quality_score: Mapped[float | None] = mapped_column(sa.Float())
    # Why it ended (calld.domain.hangup): set by its ended / failed event.
    hangup_cause: Mapped[str | None] = mapped_column(sa.String(32))
    hangup_cause_q850: Mapped[int | None] = mapped_column(sa.Integer())
    sip_status: Mapped[int | None] = mapped_column(sa.Integer())
    hangup_by: Mapped[str | None] = mapped_column(sa.String(16))
    missed_reason: Mapped[str | None] = mapped_column(sa.String(16))
    # Which party really answered (calld.domain.participants): its number, else its endpoint.
    answered_by: Mapped[str | None] = mapped_column(sa.String(255))
    # How it sounded (calld.domain.quality): the worst leg's figures, from the switch at hangup.
    mos: Mapped[float | None] = mapped_column(sa.Float())
    jitter_ms: Mapped[float | None] = mapped_column(sa.Float())
    packet_loss_pct: Mapped[float | None] = mapped_column(sa.Float())
    rtt_ms: Mapped[float | None] = mapped_column(sa.Float())
    quality_source: Mapped[str | None] = mapped_column(sa.String(16))
    # Who set call_quality_score: "person" (never replaced by a measurement) or "mos".
    quality_score_by: Mapped[str | None] = mapped_column(sa.String(8))
    notes: Mapped[str] = mapped_column(sa.Text(), nullable=False, default="")
    seeded: Mapped[bool] = mapped_column(sa.Boolean(), nullable=False, default=False)
    # When retention replaced the call's numbers by their pseudonyms (calld.domain.privacy).
    pseudonymised_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set by retention on the calls it deletes, in that transaction: the rollup's delete trigger then
    # keeps their counts, so statistics outlive the calls (migration 0016).
    purging: Mapped[bool] = mapped_column(sa.Boolean(), nullable=False, default=False, server_default=sa.false())

    client: Mapped[Client | None] = relationship(lazy="raise")
    sip_configuration: Mapped[SipConfiguration | None] = relationship(lazy="raise")


class CallTag(Base):
    """A label a person put on a call (``PATCH tags``); the list filters by it (``tag``)."""

    __tablename__ = "call_tags"
    __table_args__ = (sa.Index("ix_call_tags_tag", "tag", "call_id"),)

    call_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("call_logs.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(sa.String(64), primary_key=True)


class CallEvent(Base):
    __tablename__ = "call_events"
    __table_args__ = (sa.Index("ix_call_events_call_ts", "call_id", "timestamp", "id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    call_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("call_logs.id", ondelete="CASCADE"), nullable=False)
    event_type: Mapped[EventType] = mapped_column(enum_column(EventType, "event_type"), nullable=False)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    # "metadata" is reserved on declarative classes, hence the attribute name.
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType(), nullable=False, default=dict)
    source: Mapped[EventSource] = mapped_column(enum_column(EventSource, "event_source"), nullable=False)
    # Identity of the delivery that produced this event (webhook delivery id, switch event id):
    # a redelivery finds it and stores nothing twice.
    dedup_key: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class CallRecording(Timestamped, Base):
    __tablename__ = "call_recordings"
    __table_args__ = (
        sa.CheckConstraint(
            "transcript_confidence IS NULL OR (transcript_confidence >= 0 AND transcript_confidence <= 1)",
            name="confidence_range",
        ),
        sa.CheckConstraint("file_size IS NULL OR file_size >= 0", name="file_size_positive"),
        sa.Index("ix_call_recordings_call", "call_id", "created_at"),
        # The list's has_recording and has_transcript filters (migration 0015).
        sa.Index(
            "ix_call_recordings_kept",
            "call_id",
            sqlite_where=sa.text("status <> 'deleted'"),
            postgresql_where=sa.text("status <> 'deleted'"),
        ),
        sa.Index(
            "ix_call_recordings_transcribed",
            "call_id",
            sqlite_where=sa.text("transcript IS NOT NULL"),
            postgresql_where=sa.text("transcript IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid(), primary_key=True, default=uuid.uuid4)
    call_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("call_logs.id", ondelete="CASCADE"), nullable=False)
    status: Mapped[RecordingStatus] = mapped_column(enum_column(RecordingStatus, "recording_status"), nullable=False)
    local_path: Mapped[str | None] = mapped_column(sa.String(1024))
    external_url: Mapped[str | None] = mapped_column(sa.String(2048))
    file_size: Mapped[int | None] = mapped_column(sa.BigInteger())
    duration_seconds: Mapped[float | None] = mapped_column(sa.Float())
    format: Mapped[str | None] = mapped_column(sa.String(16))
    transcript: Mapped[str | None] = mapped_column(sa.Text())
    transcript_confidence: Mapped[float | None] = mapped_column(sa.Float())
    seeded: Mapped[bool] = mapped_column(sa.Boolean(), nullable=False, default=False)
    # The times of its recording_started / recording_stopped events (the switch's clock).
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CallParticipant(Base):
    """One party of a call as the switch reported its leg (calld.domain.participants)."""

    __tablename__ = "call_participants"
    __table_args__ = (sa.UniqueConstraint("call_id", "leg", name="uq_call_participants_call_leg"),)

    id: Mapped[int] = mapped_column(sa.Integer(), primary_key=True, autoincrement=True)
    call_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("call_logs.id", ondelete="CASCADE"), nullable=False)
    leg: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    role: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    number: Mapped[str] = mapped_column(sa.String(255), nullable=False, default="")
    name: Mapped[str] = mapped_column(sa.String(255), nullable=False, default="")
    endpoint: Mapped[str] = mapped_column(sa.String(255), nullable=False, default="")
    joined_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_cause: Mapped[str | None] = mapped_column(sa.String(64))


class ApiToken(Base):
    """A bearer token for the REST API. Only a SHA-256 digest of the token is stored; ``key`` is its
    public part, so a presented token is found by key and its secret compared in constant time."""

    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid(), primary_key=True, default=uuid.uuid4)
    key: Mapped[str] = mapped_column(sa.String(32), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(sa.String(100), nullable=False, index=True)
    scope: Mapped[Scope] = mapped_column(enum_column(Scope, "token_scope"), nullable=False)
    token_hash: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A softphone token's line. Deleting the line leaves the token bound to nothing: it then reads no secret.
    sip_configuration_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("sip_configurations.id", ondelete="SET NULL"), index=True
    )


class WebhookSubscription(Timestamped, Base):
    """An operator's endpoint that is sent the call events it subscribes to (all when ``event_types`` is empty)."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid(), primary_key=True, default=uuid.uuid4)
    url: Mapped[str] = mapped_column(sa.String(2048), nullable=False)
    # Kept as given: calld needs it to sign. Like SIP secrets it is never answered back.
    secret: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    event_types: Mapped[list[str]] = mapped_column(JSONType(), nullable=False, default=list)
    active: Mapped[bool] = mapped_column(sa.Boolean(), nullable=False, default=True)
    description: Mapped[str] = mapped_column(sa.String(200), nullable=False, default="")


class WebhookDelivery(Base):
    """The outbox: one row per call event per matching subscription, written in the event's
    transaction and sent by the delivery worker until it is delivered or dead."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        sa.Index("ix_webhook_deliveries_chain", "subscription_id", "call_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid(), nullable=False, unique=True, default=uuid.uuid4)
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"), nullable=False
    )
    # No foreign keys: what happened is still reported after the call is deleted.
    call_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid(), nullable=False)
    event_id: Mapped[int] = mapped_column(sa.BigInteger(), nullable=False)
    event_type: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType(), nullable=False)
    status: Mapped[DeliveryStatus] = mapped_column(enum_column(DeliveryStatus, "delivery_status"), nullable=False)
    attempts: Mapped[int] = mapped_column(sa.Integer(), nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status_code: Mapped[int | None] = mapped_column(sa.Integer())
    last_error: Mapped[str | None] = mapped_column(sa.Text())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class CallStatsBucket(Base):
    """The statistics rollup: calls started in one 15-minute bucket (``bucket``: its first second,
    epoch UTC). Kept by database triggers on ``call_logs`` (see ``calld.storage.rollup``)."""

    __tablename__ = "call_stats_buckets"

    bucket: Mapped[int] = mapped_column(sa.BigInteger(), primary_key=True, autoincrement=False)
    total_calls: Mapped[int] = mapped_column(sa.Integer(), nullable=False, default=0)
    answered_calls: Mapped[int] = mapped_column(sa.Integer(), nullable=False, default=0)
    missed_calls: Mapped[int] = mapped_column(sa.Integer(), nullable=False, default=0)
    inbound_calls: Mapped[int] = mapped_column(sa.Integer(), nullable=False, default=0)
    outbound_calls: Mapped[int] = mapped_column(sa.Integer(), nullable=False, default=0)
    # Over answered and ended calls with a duration: the average is duration_sum / duration_count.
    duration_sum: Mapped[float] = mapped_column(sa.Float(), nullable=False, default=0.0)
    duration_count: Mapped[int] = mapped_column(sa.Integer(), nullable=False, default=0)


class _StatsSums:
    """The columns of a report rollup level: per dimension (``all``, ``direction``, ``extension``,
    ``client``, ``sip_configuration``), ``bucket`` (epoch UTC) and ``key`` ('' for none), the sums every
    statistic is computed from."""

    dimension: Mapped[str] = mapped_column(sa.String(24), primary_key=True)
    bucket: Mapped[int] = mapped_column(sa.BigInteger(), primary_key=True, autoincrement=False)
    key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    total_calls: Mapped[int] = mapped_column(sa.Integer(), nullable=False)
    answered_calls: Mapped[int] = mapped_column(sa.Integer(), nullable=False)
    missed_calls: Mapped[int] = mapped_column(sa.Integer(), nullable=False)
    inbound_calls: Mapped[int] = mapped_column(sa.Integer(), nullable=False)
    outbound_calls: Mapped[int] = mapped_column(sa.Integer(), nullable=False)
    abandoned_calls: Mapped[int] = mapped_column(sa.Integer(), nullable=False)
    # Talk and hold over answered, ended calls (talk_count of them); ring over answered calls.
    talk_sum: Mapped[float] = mapped_column(sa.Float(), nullable=False)
    talk_count: Mapped[int] = mapped_column(sa.Integer(), nullable=False)
    ring_sum: Mapped[float] = mapped_column(sa.Float(), nullable=False)
    ring_count: Mapped[int] = mapped_column(sa.Integer(), nullable=False)
    hold_sum: Mapped[float] = mapped_column(sa.Float(), nullable=False)
    answered_within_10: Mapped[int] = mapped_column(sa.Integer(), nullable=False)
    answered_within_15: Mapped[int] = mapped_column(sa.Integer(), nullable=False)
    answered_within_20: Mapped[int] = mapped_column(sa.Integer(), nullable=False)
    answered_within_30: Mapped[int] = mapped_column(sa.Integer(), nullable=False)
    answered_within_45: Mapped[int] = mapped_column(sa.Integer(), nullable=False)
    answered_within_60: Mapped[int] = mapped_column(sa.Integer(), nullable=False)
    answered_within_90: Mapped[int] = mapped_column(sa.Integer(), nullable=False)
    answered_within_120: Mapped[int] = mapped_column(sa.Integer(), nullable=False)


class CallStatsGroup(_StatsSums, Base):
    """The report's rollup per 15-minute bucket. Kept by database triggers on ``call_logs`` (migration
    0013)."""

    __tablename__ = "call_stats_groups"


class CallStatsHour(_StatsSums, Base):
    """The report's rollup per UTC hour (``bucket`` a whole hour): what zones with whole-hour offsets
    read for their whole hours. Kept by database triggers on ``call_logs`` (migration 0023)."""

    __tablename__ = "call_stats_hours"


class CallTotal(Base):
    """The number of calls in ``call_logs``, in one row (``id`` 1): the unfiltered list's total.
    Kept by database triggers on ``call_logs`` (migration 0005, see ``calld.storage.rollup``)."""

    __tablename__ = "call_totals"

    id: Mapped[int] = mapped_column(sa.SmallInteger(), primary_key=True, autoincrement=False)
    calls: Mapped[int] = mapped_column(sa.BigInteger(), nullable=False, default=0)


class PbxLeader(Base):
    """Who leads each PBX's calld instances, and since which takeover (``epoch``, bumped by each new
    leader): an ingest transaction checks the epoch it was elected with, so a deposed leader writes nothing."""

    __tablename__ = "pbx_leaders"

    pbx: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    epoch: Mapped[int] = mapped_column(sa.BigInteger(), nullable=False)
    holder: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    elected_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class CalldCommand(Base):
    """A control action asked of the leader of ``pbx`` by an instance that is not connected to it:
    pending, claimed (running) by the leader, then done or failed with its ``result``."""

    __tablename__ = "calld_commands"
    __table_args__ = (sa.Index("ix_calld_commands_due", "pbx", "status", "id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    pbx: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    call_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid())
    action: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    args: Mapped[list[Any]] = mapped_column(JSONType(), nullable=False)
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType())
    requested_by: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    claimed_by: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deadline: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)

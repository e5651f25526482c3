"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 00:31:46.705138
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "clients",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("company", sa.String(length=200), nullable=True),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("seeded", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clients")),
    )
    op.create_table(
        "sip_configurations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("server", sa.String(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column(
            "transport",
            sa.Enum(
                "udp",
                "tcp",
                "tls",
                "ws",
                "wss",
                name="sip_transport",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("secret", sa.String(length=255), nullable=False),
        sa.Column("websocket_url", sa.String(length=500), nullable=True),
        sa.Column(
            "stun_servers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "turn_servers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("port >= 1 AND port <= 65535", name=op.f("ck_sip_configurations_port_range")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sip_configurations")),
        sa.UniqueConstraint("name", name=op.f("uq_sip_configurations_name")),
    )
    with op.batch_alter_table("sip_configurations", schema=None) as batch_op:
        batch_op.create_index(
            "uq_sip_configurations_single_default",
            ["is_default"],
            unique=True,
            sqlite_where=sa.text("is_default"),
            postgresql_where=sa.text("is_default"),
        )

    op.create_table(
        "call_logs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "direction",
            sa.Enum(
                "inbound",
                "outbound",
                name="call_direction",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column(
            "call_type",
            sa.Enum(
                "voice",
                "video",
                "conference",
                name="call_type",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "initiated",
                "ringing",
                "answered",
                "missed",
                "busy",
                "no_answer",
                "failed",
                "cancelled",
                "transferred",
                "ended",
                "recording",
                "on_hold",
                name="call_status",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("caller_number", sa.String(length=32), nullable=False),
        sa.Column("recipient_number", sa.String(length=32), nullable=False),
        sa.Column("sip_call_id", sa.String(length=255), nullable=True),
        sa.Column("client_id", sa.Uuid(), nullable=True),
        sa.Column("sip_configuration_id", sa.Uuid(), nullable=True),
        sa.Column("switch_name", sa.String(length=64), nullable=True),
        sa.Column("switch_call_ref", sa.String(length=128), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ringing_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("held_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("ring_seconds", sa.Float(), nullable=True),
        sa.Column("hold_seconds", sa.Float(), nullable=False),
        sa.Column("recording", sa.Boolean(), nullable=False),
        sa.Column("transfer_target", sa.String(length=255), nullable=True),
        sa.Column("call_quality_score", sa.Float(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("seeded", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "call_quality_score IS NULL OR (call_quality_score >= 0 AND call_quality_score <= 5)",
            name=op.f("ck_call_logs_quality_score_range"),
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_call_logs_client_id_clients"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["sip_configuration_id"],
            ["sip_configurations.id"],
            name=op.f("fk_call_logs_sip_configuration_id_sip_configurations"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_logs")),
        sa.UniqueConstraint("sip_call_id", name=op.f("uq_call_logs_sip_call_id")),
        sa.UniqueConstraint("switch_name", "switch_call_ref", name="uq_call_logs_switch_call"),
    )
    with op.batch_alter_table("call_logs", schema=None) as batch_op:
        batch_op.create_index("ix_call_logs_caller_number", ["caller_number"], unique=False)
        batch_op.create_index("ix_call_logs_client_started", ["client_id", "started_at"], unique=False)
        batch_op.create_index("ix_call_logs_recipient_number", ["recipient_number"], unique=False)
        batch_op.create_index("ix_call_logs_started_at", ["started_at"], unique=False)
        batch_op.create_index("ix_call_logs_status_started", ["status", "started_at"], unique=False)

    op.create_table(
        "client_phone_numbers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_client_phone_numbers_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_phone_numbers")),
        sa.UniqueConstraint("number", name=op.f("uq_client_phone_numbers_number")),
    )
    with op.batch_alter_table("client_phone_numbers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_client_phone_numbers_client_id"), ["client_id"], unique=False)

    op.create_table(
        "call_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("call_id", sa.Uuid(), nullable=False),
        sa.Column(
            "event_type",
            sa.Enum(
                "initiated",
                "ringing",
                "answered",
                "hold",
                "unhold",
                "transfer_initiated",
                "transfer_completed",
                "recording_started",
                "recording_stopped",
                "muted",
                "unmuted",
                "dtmf",
                "quality_change",
                "ended",
                "failed",
                "error",
                name="event_type",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "source",
            sa.Enum(
                "api",
                "switch",
                "webhook",
                name="event_source",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("dedup_key", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["call_logs.id"], name=op.f("fk_call_events_call_id_call_logs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_events")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_call_events_dedup_key")),
    )
    with op.batch_alter_table("call_events", schema=None) as batch_op:
        batch_op.create_index("ix_call_events_call_ts", ["call_id", "timestamp", "id"], unique=False)

    op.create_table(
        "call_recordings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("call_id", sa.Uuid(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "recording",
                "processing",
                "completed",
                "failed",
                "deleted",
                name="recording_status",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("local_path", sa.String(length=1024), nullable=True),
        sa.Column("external_url", sa.String(length=2048), nullable=True),
        sa.Column("file_size", sa.BigInteger(), nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("format", sa.String(length=16), nullable=True),
        sa.Column("transcript", sa.Text(), nullable=True),
        sa.Column("transcript_confidence", sa.Float(), nullable=True),
        sa.Column("seeded", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("file_size IS NULL OR file_size >= 0", name=op.f("ck_call_recordings_file_size_positive")),
        sa.CheckConstraint(
            "transcript_confidence IS NULL OR (transcript_confidence >= 0 AND transcript_confidence <= 1)",
            name=op.f("ck_call_recordings_confidence_range"),
        ),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["call_logs.id"],
            name=op.f("fk_call_recordings_call_id_call_logs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_recordings")),
    )
    with op.batch_alter_table("call_recordings", schema=None) as batch_op:
        batch_op.create_index("ix_call_recordings_call", ["call_id", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("call_recordings", schema=None) as batch_op:
        batch_op.drop_index("ix_call_recordings_call")

    op.drop_table("call_recordings")
    with op.batch_alter_table("call_events", schema=None) as batch_op:
        batch_op.drop_index("ix_call_events_call_ts")

    op.drop_table("call_events")
    with op.batch_alter_table("client_phone_numbers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_client_phone_numbers_client_id"))

    op.drop_table("client_phone_numbers")
    with op.batch_alter_table("call_logs", schema=None) as batch_op:
        batch_op.drop_index("ix_call_logs_status_started")
        batch_op.drop_index("ix_call_logs_started_at")
        batch_op.drop_index("ix_call_logs_recipient_number")
        batch_op.drop_index("ix_call_logs_client_started")
        batch_op.drop_index("ix_call_logs_caller_number")

    op.drop_table("call_logs")
    with op.batch_alter_table("sip_configurations", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_sip_configurations_single_default",
            sqlite_where=sa.text("is_default"),
            postgresql_where=sa.text("is_default"),
        )

    op.drop_table("sip_configurations")
    op.drop_table("clients")

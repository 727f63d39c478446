"""delivery reports

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 13:56:14.140478
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sms_pending_report",
        sa.Column("provider_no", sa.String(length=64), nullable=False),
        sa.Column("provider_message_id", sa.String(length=128), nullable=True),
        sa.Column("correlation_id", sa.String(length=64), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("delivered", sa.Boolean(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("message", sa.String(length=512), nullable=False),
        sa.Column("reported_at", sa.DateTime(), nullable=True),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "created_at", sa.DateTime(), server_default=sa.text("CURRENT_TIMESTAMP"), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(), server_default=sa.text("CURRENT_TIMESTAMP"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sms_pending_report", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sms_pending_report_message", ["provider_no", "provider_message_id"], unique=False
        )

    with op.batch_alter_table("sms_service_provider_config", schema=None) as batch_op:
        batch_op.add_column(sa.Column("callback_token", sa.String(length=64), nullable=True))

    # Existing channels get their delivery-report URL token now.
    bind = op.get_bind()
    channels = sa.table("sms_service_provider_config", sa.column("id"), sa.column("callback_token"))
    for (channel_id,) in bind.execute(sa.select(channels.c.id)).fetchall():
        bind.execute(
            channels.update()
            .where(channels.c.id == channel_id)
            .values(callback_token=secrets.token_urlsafe(24))
        )


def downgrade() -> None:
    with op.batch_alter_table("sms_service_provider_config", schema=None) as batch_op:
        batch_op.drop_column("callback_token")

    with op.batch_alter_table("sms_pending_report", schema=None) as batch_op:
        batch_op.drop_index("ix_sms_pending_report_message")

    op.drop_table("sms_pending_report")

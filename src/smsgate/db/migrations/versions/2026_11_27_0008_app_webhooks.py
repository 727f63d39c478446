"""app webhooks

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 14:14:42.032580
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sms_webhook_delivery",
        sa.Column("app_no", sa.String(length=64), nullable=False),
        sa.Column(
            "record_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("first_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=512), nullable=True),
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
        sa.UniqueConstraint("record_id", name=op.f("uq_sms_webhook_delivery_record_id")),
    )
    with op.batch_alter_table("sms_webhook_delivery", schema=None) as batch_op:
        batch_op.create_index("ix_sms_webhook_delivery_app", ["app_no", "status"], unique=False)
        batch_op.create_index(
            "ix_sms_webhook_delivery_due", ["status", "next_attempt_at"], unique=False
        )

    with op.batch_alter_table("sms_app_config", schema=None) as batch_op:
        batch_op.add_column(sa.Column("callback_url", sa.String(length=512), nullable=True))
        batch_op.add_column(sa.Column("webhook_secret", sa.Text(), nullable=True))

    with op.batch_alter_table("sms_send_log", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("webhook_pending", sa.Boolean(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.create_index(
            "ix_sms_send_log_webhook_pending", ["webhook_pending", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sms_send_log", schema=None) as batch_op:
        batch_op.drop_index("ix_sms_send_log_webhook_pending")
        batch_op.drop_column("webhook_pending")

    with op.batch_alter_table("sms_app_config", schema=None) as batch_op:
        batch_op.drop_column("webhook_secret")
        batch_op.drop_column("callback_url")

    with op.batch_alter_table("sms_webhook_delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_sms_webhook_delivery_due")
        batch_op.drop_index("ix_sms_webhook_delivery_app")

    op.drop_table("sms_webhook_delivery")

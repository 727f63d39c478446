"""send queue

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 14:14:07.965957
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sms_send_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(), nullable=True))
        batch_op.add_column(
            sa.Column("attempts", sa.SmallInteger(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("dispatched_at", sa.DateTime(), nullable=True))
        batch_op.create_index(
            "ix_sms_send_log_queue", ["status", "app_no", "next_attempt_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sms_send_log", schema=None) as batch_op:
        batch_op.drop_index("ix_sms_send_log_queue")
        batch_op.drop_column("dispatched_at")
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("claimed_by")
        batch_op.drop_column("attempts")
        batch_op.drop_column("next_attempt_at")

"""audit log

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 13:47:06.759321
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sms_audit_log",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("resource", sa.String(length=32), nullable=False),
        sa.Column("resource_key", sa.String(length=128), nullable=False),
        sa.Column("changes", sa.Text(), nullable=True),
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
    with op.batch_alter_table("sms_audit_log", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sms_audit_log_resource", ["resource", "resource_key"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sms_audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_sms_audit_log_resource")

    op.drop_table("sms_audit_log")

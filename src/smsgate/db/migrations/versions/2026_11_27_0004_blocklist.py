"""blocklist: phones and prefixes never sent to, global or per app

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 13:51:52.362156
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sms_blocklist",
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("is_prefix", sa.Boolean(), server_default=sa.text("0"), nullable=False),
        sa.Column("app_no", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sms_blocklist", schema=None) as batch_op:
        batch_op.create_index("ix_sms_blocklist_phone", ["phone", "app_no"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sms_blocklist", schema=None) as batch_op:
        batch_op.drop_index("ix_sms_blocklist_phone")

    op.drop_table("sms_blocklist")

"""business anti-abuse settings: per-phone limits and verification-code settings

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 13:48:14.517091
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sms_business_config", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("is_verification", sa.Boolean(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.add_column(sa.Column("phone_limit_minute", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("phone_limit_hour", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("phone_limit_day", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("code_length", sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column("code_alphabet", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("code_ttl_seconds", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sms_business_config", schema=None) as batch_op:
        batch_op.drop_column("code_ttl_seconds")
        batch_op.drop_column("code_alphabet")
        batch_op.drop_column("code_length")
        batch_op.drop_column("phone_limit_day")
        batch_op.drop_column("phone_limit_hour")
        batch_op.drop_column("phone_limit_minute")
        batch_op.drop_column("is_verification")

"""admin token generation (logout ends tokens and console sessions)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 17:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sms_admin_user") as batch:
        batch.add_column(
            sa.Column("token_generation", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("sms_admin_user") as batch:
        batch.drop_column("token_generation")

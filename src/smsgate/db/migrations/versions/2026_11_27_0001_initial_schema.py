"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-27 13:36:10.911448
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "sms_admin_user",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("status", sa.Boolean(), server_default=sa.text("1"), nullable=False),
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
        sa.UniqueConstraint("username", name=op.f("uq_sms_admin_user_username")),
    )
    op.create_table(
        "sms_app_config",
        sa.Column("app_no", sa.String(length=64), nullable=False),
        sa.Column("app_name", sa.String(length=128), nullable=False),
        sa.Column("available_number", sa.Integer(), nullable=False),
        sa.Column("current_limiting", sa.Integer(), nullable=False),
        sa.Column("use_number", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("app_key_hash", sa.String(length=64), nullable=True),
        sa.Column("remark", sa.String(length=255), nullable=True),
        sa.Column("ext_json", sa.Text(), nullable=True),
        sa.Column("status", sa.Boolean(), server_default=sa.text("1"), nullable=False),
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
        sa.UniqueConstraint("app_no", name=op.f("uq_sms_app_config_app_no")),
    )
    op.create_table(
        "sms_business_config",
        sa.Column("app_no", sa.String(length=64), nullable=False),
        sa.Column("business_name", sa.String(length=128), nullable=False),
        sa.Column("business_no", sa.String(length=64), nullable=False),
        sa.Column("template_no", sa.String(length=64), nullable=False),
        sa.Column("business_desc", sa.String(length=255), nullable=True),
        sa.Column("remark", sa.String(length=255), nullable=True),
        sa.Column("ext_json", sa.Text(), nullable=True),
        sa.Column("status", sa.Boolean(), server_default=sa.text("1"), nullable=False),
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
        sa.UniqueConstraint("business_no", name=op.f("uq_sms_business_config_business_no")),
    )
    with op.batch_alter_table("sms_business_config", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sms_business_config_app_no"), ["app_no"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_sms_business_config_template_no"), ["template_no"], unique=False
        )

    op.create_table(
        "sms_send_log",
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("app_no", sa.String(length=64), nullable=False),
        sa.Column("business_no", sa.String(length=64), nullable=False),
        sa.Column("template_no", sa.String(length=64), nullable=False),
        sa.Column("provider_no", sa.String(length=64), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("fee", sa.Integer(), nullable=False),
        sa.Column("phone_number", sa.String(length=32), nullable=False),
        sa.Column("message", sa.String(length=512), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("params", sa.Text(), nullable=True),
        sa.Column("provider_message_id", sa.String(length=128), nullable=True),
        sa.Column("provider_response", sa.Text(), nullable=True),
        sa.Column("report_code", sa.String(length=64), nullable=True),
        sa.Column("report_message", sa.String(length=512), nullable=True),
        sa.Column("reported_at", sa.DateTime(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("remark", sa.String(length=255), nullable=True),
        sa.Column("ext_json", sa.Text(), nullable=True),
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
    with op.batch_alter_table("sms_send_log", schema=None) as batch_op:
        batch_op.create_index("ix_sms_send_log_app_created", ["app_no", "created_at"], unique=False)
        batch_op.create_index(
            "ix_sms_send_log_phone_created", ["phone_number", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_sms_send_log_provider_message_id"), ["provider_message_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_sms_send_log_request_id"), ["request_id"], unique=False
        )

    op.create_table(
        "sms_service_provider_config",
        sa.Column("channel_no", sa.String(length=32), nullable=False),
        sa.Column("provider_name", sa.String(length=128), nullable=False),
        sa.Column("provider_no", sa.String(length=64), nullable=False),
        sa.Column("access_key_id", sa.String(length=255), nullable=False),
        sa.Column("access_key_secret", sa.Text(), nullable=False),
        sa.Column("endpoint", sa.String(length=255), nullable=False),
        sa.Column("sdk_app_id", sa.String(length=64), nullable=True),
        sa.Column("region", sa.String(length=64), nullable=True),
        sa.Column("remark", sa.String(length=255), nullable=True),
        sa.Column("ext_json", sa.Text(), nullable=True),
        sa.Column("status", sa.Boolean(), server_default=sa.text("1"), nullable=False),
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
        sa.UniqueConstraint("provider_no", name=op.f("uq_sms_service_provider_config_provider_no")),
    )
    op.create_table(
        "sms_sign_config",
        sa.Column("sign_name", sa.String(length=64), nullable=False),
        sa.Column("provider_no", sa.String(length=64), nullable=False),
        sa.Column("provider_name", sa.String(length=128), nullable=False),
        sa.Column("remark", sa.String(length=255), nullable=True),
        sa.Column("ext_json", sa.Text(), nullable=True),
        sa.Column("status", sa.Boolean(), server_default=sa.text("1"), nullable=False),
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
        sa.UniqueConstraint(
            "provider_no", "sign_name", name=op.f("uq_sms_sign_config_provider_no")
        ),
    )
    op.create_table(
        "sms_template_config",
        sa.Column("sign_name", sa.String(length=64), nullable=False),
        sa.Column("provider_no", sa.String(length=64), nullable=False),
        sa.Column("template_no", sa.String(length=64), nullable=False),
        sa.Column("template_content", sa.Text(), nullable=False),
        sa.Column("third_party_template_no", sa.String(length=128), nullable=False),
        sa.Column("remark", sa.String(length=255), nullable=True),
        sa.Column("ext_json", sa.Text(), nullable=True),
        sa.Column("status", sa.Boolean(), server_default=sa.text("1"), nullable=False),
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
        sa.UniqueConstraint("template_no", name=op.f("uq_sms_template_config_template_no")),
    )
    with op.batch_alter_table("sms_template_config", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sms_template_config_provider_no"), ["provider_no"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("sms_template_config", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sms_template_config_provider_no"))

    op.drop_table("sms_template_config")
    op.drop_table("sms_sign_config")
    op.drop_table("sms_service_provider_config")
    with op.batch_alter_table("sms_send_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sms_send_log_request_id"))
        batch_op.drop_index(batch_op.f("ix_sms_send_log_provider_message_id"))
        batch_op.drop_index("ix_sms_send_log_phone_created")
        batch_op.drop_index("ix_sms_send_log_app_created")

    op.drop_table("sms_send_log")
    with op.batch_alter_table("sms_business_config", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sms_business_config_template_no"))
        batch_op.drop_index(batch_op.f("ix_sms_business_config_app_no"))

    op.drop_table("sms_business_config")
    op.drop_table("sms_app_config")
    op.drop_table("sms_admin_user")

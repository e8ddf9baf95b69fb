"""Users, API tokens and workspace roles; the audit log; background jobs.

Adds tables only: data of revision 0001 is left as it is.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from leptonic.storage.metadata._tables import UTCDateTime, key_type

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def _key(name: str, *, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, key_type(), nullable=nullable)


def _text(name: str, *, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.Text(), nullable=nullable)


def _json(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.JSON(), nullable=False)


def _when(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, UTCDateTime(), nullable=nullable)


def _flag(name: str) -> sa.Column[bool]:
    return sa.Column(name, sa.Boolean(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "users",
        _key("name"),
        _text("display_name"),
        _flag("is_admin"),
        _when("created_at"),
        sa.PrimaryKeyConstraint("name", name="pk_users"),
    )
    op.create_table(
        "api_tokens",
        _key("id"),
        _key("user"),
        _text("name"),
        _key("token_hash"),
        _text("prefix"),
        _when("created_at"),
        _when("expires_at", nullable=True),
        _when("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.ForeignKeyConstraint(["user"], ["users.name"], name="fk_api_tokens_user_users"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
    )
    op.create_index("ix_api_tokens_user", "api_tokens", ["user"])
    op.create_table(
        "memberships",
        _key("workspace"),
        _key("user"),
        _text("role"),
        _flag("raw_pii"),
        _when("created_at"),
        sa.PrimaryKeyConstraint("workspace", "user", name="pk_memberships"),
        sa.ForeignKeyConstraint(
            ["workspace"], ["workspaces.name"], name="fk_memberships_workspace_workspaces"
        ),
        sa.ForeignKeyConstraint(["user"], ["users.name"], name="fk_memberships_user_users"),
    )
    op.create_index("ix_memberships_user", "memberships", ["user"])
    op.create_table(
        "audit_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
            autoincrement=True,
        ),
        _key("actor"),
        _key("action"),
        _key("workspace", nullable=True),
        _json("objects"),
        _json("details"),
        _when("at"),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_workspace_id", "audit_events", ["workspace", "id"])
    op.create_index("ix_audit_events_actor", "audit_events", ["actor"])
    op.create_table(
        "jobs",
        _key("id"),
        _key("workspace"),
        _text("kind"),
        _json("payload"),
        _text("status"),
        _text("created_by"),
        _text("run_id", nullable=True),
        _text("owner", nullable=True),
        _json("progress"),
        _json("result"),
        _text("error", nullable=True),
        _flag("cancel_requested"),
        _when("created_at"),
        _when("started_at", nullable=True),
        _when("finished_at", nullable=True),
        _when("heartbeat_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.ForeignKeyConstraint(
            ["workspace"], ["workspaces.name"], name="fk_jobs_workspace_workspaces"
        ),
    )
    op.create_index("ix_jobs_status_created_at", "jobs", ["status", "created_at"])
    op.create_index("ix_jobs_workspace_created_at", "jobs", ["workspace", "created_at"])


def downgrade() -> None:
    for table in ("jobs", "audit_events", "memberships", "api_tokens", "users"):
        op.drop_table(table)

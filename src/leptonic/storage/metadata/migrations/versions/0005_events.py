"""Events posted to recommendation endpoints.

Adds one table: data of earlier revisions is left as it is.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from leptonic.storage.metadata._tables import UTCDateTime, key_type

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def _key(name: str) -> sa.Column[str]:
    return sa.Column(name, key_type(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "events",
        _key("workspace"),
        _key("endpoint"),
        _key("id"),
        _key("user"),
        _key("item"),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("workspace", "endpoint", "id", name="pk_events"),
        sa.ForeignKeyConstraint(
            ["workspace", "endpoint"],
            ["endpoints.workspace", "endpoints.name"],
            name="fk_events_workspace_endpoint_endpoints",
        ),
        sa.UniqueConstraint(
            "workspace",
            "endpoint",
            "user",
            "item",
            "at",
            name="uq_events_workspace_endpoint_user_item_at",
        ),
    )
    op.create_index(
        "ix_events_workspace_endpoint_received_at",
        "events",
        ["workspace", "endpoint", "received_at"],
    )
    op.create_index("ix_events_workspace_endpoint_at", "events", ["workspace", "endpoint", "at"])


def downgrade() -> None:
    op.drop_table("events")

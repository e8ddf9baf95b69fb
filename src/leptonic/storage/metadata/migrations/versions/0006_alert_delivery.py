"""When a webhook took each alert, so that a check posts again what it could not deliver.

Adds one nullable column; alerts of earlier revisions read as delivered when raised.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from leptonic.storage.metadata._tables import UTCDateTime

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("alerts", sa.Column("delivered_at", UTCDateTime(), nullable=True))
    # earlier alerts count as delivered: the first check after the upgrade must not post
    # again what earlier releases already posted
    op.execute("UPDATE alerts SET delivered_at = at")


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("delivered_at")

"""Indexes for listing runs and jobs newest first, and for finding a run's job.

Runs and jobs are listed by ``created_at DESC, id DESC`` within a workspace;
an index on exactly those columns lets deep pages be read from the index
instead of sorting the workspace's rows.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index("ix_runs_workspace_created_at_id", "runs", ["workspace", "created_at", "id"])
    op.create_index("ix_jobs_workspace_created_at_id", "jobs", ["workspace", "created_at", "id"])
    op.create_index("ix_jobs_workspace_run_id", "jobs", ["workspace", "run_id"])


def downgrade() -> None:
    op.drop_index("ix_jobs_workspace_run_id", table_name="jobs")
    op.drop_index("ix_jobs_workspace_created_at_id", table_name="jobs")
    op.drop_index("ix_runs_workspace_created_at_id", table_name="runs")

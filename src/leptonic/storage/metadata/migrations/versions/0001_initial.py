"""Initial schema: workspaces, datasets, runs, models, stage history, lineage.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from leptonic.storage.metadata._tables import UTCDateTime, key_type

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _key(name: str, **kw: object) -> sa.Column[str]:
    return sa.Column(name, key_type(), nullable=False, **kw)  # type: ignore[arg-type]


def _text(name: str, *, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.Text(), nullable=nullable)


def _json(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.JSON(), nullable=False)


def _when(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, UTCDateTime(), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "workspaces",
        _key("name"),
        _text("description"),
        _text("pii_salt"),
        _when("created_at"),
        sa.PrimaryKeyConstraint("name", name="pk_workspaces"),
    )
    op.create_table(
        "datasets",
        _key("workspace"),
        _key("name"),
        _text("description"),
        _when("created_at"),
        sa.PrimaryKeyConstraint("workspace", "name", name="pk_datasets"),
        sa.ForeignKeyConstraint(
            ["workspace"], ["workspaces.name"], name="fk_datasets_workspace_workspaces"
        ),
    )
    op.create_table(
        "dataset_versions",
        _key("workspace"),
        _key("dataset"),
        sa.Column("version", sa.Integer(), nullable=False, autoincrement=False),
        _key("content_hash"),
        _text("artifact_key"),
        sa.Column("num_rows", sa.BigInteger(), nullable=False),
        sa.Column("num_columns", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        _json("columns"),
        _json("quality"),
        _json("source"),
        _text("created_by"),
        _when("created_at"),
        sa.PrimaryKeyConstraint("workspace", "dataset", "version", name="pk_dataset_versions"),
        sa.ForeignKeyConstraint(
            ["workspace", "dataset"],
            ["datasets.workspace", "datasets.name"],
            name="fk_dataset_versions_workspace_dataset_datasets",
        ),
        sa.UniqueConstraint(
            "workspace",
            "dataset",
            "content_hash",
            name="uq_dataset_versions_workspace_dataset_content_hash",
        ),
    )
    op.create_table(
        "runs",
        _key("id"),
        _key("workspace"),
        _text("status"),
        _json("spec"),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        _json("params"),
        _json("metrics"),
        _json("timings"),
        _json("artifacts"),
        _json("inputs"),
        _text("error", nullable=True),
        _text("created_by"),
        _when("created_at"),
        _when("started_at", nullable=True),
        _when("finished_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.ForeignKeyConstraint(
            ["workspace"], ["workspaces.name"], name="fk_runs_workspace_workspaces"
        ),
    )
    op.create_index("ix_runs_workspace_created_at", "runs", ["workspace", "created_at"])
    op.create_table(
        "models",
        _key("workspace"),
        _key("name"),
        _text("task"),
        _text("description"),
        _when("created_at"),
        sa.PrimaryKeyConstraint("workspace", "name", name="pk_models"),
        sa.ForeignKeyConstraint(
            ["workspace"], ["workspaces.name"], name="fk_models_workspace_workspaces"
        ),
    )
    op.create_table(
        "model_versions",
        _key("workspace"),
        _key("model"),
        sa.Column("version", sa.Integer(), nullable=False, autoincrement=False),
        _text("task"),
        _text("flavor"),
        _text("run_id"),
        _text("dataset"),
        _text("artifact_key"),
        _text("artifact_digest"),
        _json("signature"),
        _json("metrics"),
        _text("model_card"),
        _text("stage"),
        _text("created_by"),
        _when("created_at"),
        sa.PrimaryKeyConstraint("workspace", "model", "version", name="pk_model_versions"),
        sa.ForeignKeyConstraint(
            ["workspace", "model"],
            ["models.workspace", "models.name"],
            name="fk_model_versions_workspace_model_models",
        ),
    )
    op.create_index(
        "ix_model_versions_workspace_model_stage",
        "model_versions",
        ["workspace", "model", "stage"],
    )
    op.create_table(
        "stage_transitions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
            autoincrement=True,
        ),
        _key("workspace"),
        _key("model"),
        sa.Column("version", sa.Integer(), nullable=False),
        _text("from_stage", nullable=True),
        _text("to_stage"),
        _text("actor"),
        _text("reason"),
        _when("at"),
        sa.PrimaryKeyConstraint("id", name="pk_stage_transitions"),
        sa.ForeignKeyConstraint(
            ["workspace", "model", "version"],
            ["model_versions.workspace", "model_versions.model", "model_versions.version"],
            name="fk_stage_transitions_workspace_model_version_model_versions",
        ),
    )
    op.create_index(
        "ix_stage_transitions_workspace_model_version",
        "stage_transitions",
        ["workspace", "model", "version"],
    )
    op.create_table(
        "lineage_edges",
        _key("workspace"),
        _key("source_key"),
        _key("target_key"),
        _text("source_kind"),
        _text("source_name"),
        sa.Column("source_version", sa.Integer(), nullable=True),
        _text("target_kind"),
        _text("target_name"),
        sa.Column("target_version", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("workspace", "source_key", "target_key", name="pk_lineage_edges"),
    )
    op.create_index(
        "ix_lineage_edges_workspace_target_key", "lineage_edges", ["workspace", "target_key"]
    )


def downgrade() -> None:
    for table in (
        "lineage_edges",
        "stage_transitions",
        "model_versions",
        "models",
        "runs",
        "dataset_versions",
        "datasets",
        "workspaces",
    ):
        op.drop_table(table)

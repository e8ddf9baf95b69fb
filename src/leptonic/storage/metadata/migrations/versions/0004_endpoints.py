"""Endpoints, their policy versions, the prediction log, feedback and alerts.

Adds tables only: data of earlier revisions is left as it is.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from leptonic.storage.metadata._tables import UTCDateTime, key_type

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def _key(name: str, *, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, key_type(), nullable=nullable)


def _text(name: str, *, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.Text(), nullable=nullable)


def _json(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.JSON(), nullable=nullable)


def _when(name: str) -> sa.Column[object]:
    return sa.Column(name, UTCDateTime(), nullable=False)


def _int(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.Integer(), nullable=False)


def _number(name: str) -> sa.Column[float]:
    return sa.Column(name, sa.Float(), nullable=False)


def _of_endpoint(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["workspace", "endpoint"],
        ["endpoints.workspace", "endpoints.name"],
        name=f"fk_{table}_workspace_endpoint_endpoints",
    )


def upgrade() -> None:
    op.create_table(
        "endpoints",
        _key("workspace"),
        _key("name"),
        _json("routes"),
        _json("shadow", nullable=True),
        _int("policy_version"),
        _text("entity_key", nullable=True),
        _text("description"),
        _int("revision"),
        _text("created_by"),
        _when("created_at"),
        _when("updated_at"),
        sa.PrimaryKeyConstraint("workspace", "name", name="pk_endpoints"),
        sa.ForeignKeyConstraint(
            ["workspace"], ["workspaces.name"], name="fk_endpoints_workspace_workspaces"
        ),
    )
    op.create_table(
        "endpoint_policies",
        _key("workspace"),
        _key("endpoint"),
        sa.Column("version", sa.Integer(), nullable=False, autoincrement=False),
        _json("spec"),
        _text("reason"),
        _text("created_by"),
        _when("created_at"),
        sa.PrimaryKeyConstraint("workspace", "endpoint", "version", name="pk_endpoint_policies"),
        _of_endpoint("endpoint_policies"),
    )
    op.create_table(
        "predictions",
        _key("workspace"),
        _key("endpoint"),
        _key("request_id"),
        _key("route"),
        _text("model"),
        _int("version"),
        _number("score"),
        _text("decision"),
        _when("at"),
        _int("policy_version"),
        _key("entity", nullable=True),
        _json("inputs"),
        _json("reasons"),
        _number("latency_ms"),
        sa.PrimaryKeyConstraint(
            "workspace", "endpoint", "request_id", "route", name="pk_predictions"
        ),
        _of_endpoint("predictions"),
    )
    op.create_index(
        "ix_predictions_workspace_endpoint_route_at",
        "predictions",
        ["workspace", "endpoint", "route", "at"],
    )
    op.create_index(
        "ix_predictions_workspace_endpoint_entity_at",
        "predictions",
        ["workspace", "endpoint", "entity", "at"],
        sqlite_where=sa.text("entity IS NOT NULL"),
        postgresql_where=sa.text("entity IS NOT NULL"),
    )
    op.create_table(
        "feedback",
        _key("workspace"),
        _key("endpoint"),
        _key("request_id"),
        _number("label"),
        _when("at"),
        _key("entity", nullable=True),
        sa.PrimaryKeyConstraint("workspace", "endpoint", "request_id", name="pk_feedback"),
        _of_endpoint("feedback"),
    )
    op.create_table(
        "alerts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
            autoincrement=True,
        ),
        _key("workspace"),
        _key("endpoint"),
        _text("rule"),
        _text("subject"),
        _number("value"),
        _number("threshold"),
        _text("message"),
        _when("window_start"),
        _when("window_end"),
        _when("at"),
        _text("status"),
        _json("details"),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
        _of_endpoint("alerts"),
    )
    op.create_index("ix_alerts_workspace_id", "alerts", ["workspace", "id"])
    op.create_index("ix_alerts_workspace_endpoint_id", "alerts", ["workspace", "endpoint", "id"])


def downgrade() -> None:
    for table in ("alerts", "feedback", "predictions", "endpoint_policies", "endpoints"):
        op.drop_table(table)

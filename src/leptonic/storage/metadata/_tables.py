"""SQL tables of the metadata store (SQLAlchemy Core).

These definitions describe the schema at the head migration; the migrations
in ``migrations/versions`` create it and must be kept in step (a test compares
the two). Keys are natural: workspace and object names, as in the records.

Names and ids use the ``C`` collation on PostgreSQL so that ordering by name
matches Python's (and SQLite's) code-point order on every backend.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from leptonic.core._time import as_utc

__all__ = [
    "VERSION_TABLE",
    "UTCDateTime",
    "alerts",
    "api_tokens",
    "audit_events",
    "dataset_versions",
    "datasets",
    "endpoint_policies",
    "endpoints",
    "events",
    "feedback",
    "jobs",
    "key_type",
    "lineage_edges",
    "memberships",
    "metadata",
    "model_versions",
    "models",
    "predictions",
    "runs",
    "stage_transitions",
    "users",
    "workspaces",
]

#: Alembic's bookkeeping table; prefixed so it cannot clash with another
#: application's migrations in a shared PostgreSQL schema.
VERSION_TABLE = "leptonic_alembic_version"

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def key_type() -> sa.types.TypeEngine[str]:
    """Unbounded text, binary-collated on PostgreSQL (for names, ids, keys)."""
    return sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp stored in UTC and read back timezone-aware (UTC).

    SQLite has no time zone type: values are converted to UTC and stored naive,
    then marked UTC on read. A naive value written is taken to be UTC.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}: {value!r}")
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"the database returned {value!r} for a timestamp column")
        return as_utc(value)


def _key(name: str, **kw: Any) -> sa.Column[str]:
    return sa.Column(name, key_type(), nullable=False, **kw)


def _text(name: str, *, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.Text(), nullable=nullable)


def _json(name: str) -> sa.Column[Any]:
    return sa.Column(name, sa.JSON(), nullable=False)


def _when(name: str, *, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, UTCDateTime(), nullable=nullable)


def _flag(name: str) -> sa.Column[bool]:
    return sa.Column(name, sa.Boolean(), nullable=False)


def _number(name: str) -> sa.Column[float]:
    return sa.Column(name, sa.Float(), nullable=False)


def _int(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.Integer(), nullable=False)


metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

workspaces = sa.Table(
    "workspaces",
    metadata,
    _key("name", primary_key=True),
    _text("description"),
    _text("pii_salt"),
    _when("created_at"),
)

datasets = sa.Table(
    "datasets",
    metadata,
    _key("workspace", primary_key=True),
    _key("name", primary_key=True),
    _text("description"),
    _when("created_at"),
    sa.ForeignKeyConstraint(["workspace"], ["workspaces.name"]),
)

dataset_versions = sa.Table(
    "dataset_versions",
    metadata,
    _key("workspace", primary_key=True),
    _key("dataset", primary_key=True),
    sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
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
    sa.ForeignKeyConstraint(["workspace", "dataset"], ["datasets.workspace", "datasets.name"]),
    sa.UniqueConstraint("workspace", "dataset", "content_hash"),
)

runs = sa.Table(
    "runs",
    metadata,
    _key("id", primary_key=True),
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
    sa.ForeignKeyConstraint(["workspace"], ["workspaces.name"]),
    sa.Index("ix_runs_workspace_created_at", "workspace", "created_at"),
    sa.Index("ix_runs_workspace_created_at_id", "workspace", "created_at", "id"),
)

models = sa.Table(
    "models",
    metadata,
    _key("workspace", primary_key=True),
    _key("name", primary_key=True),
    _text("task"),
    _text("description"),
    _when("created_at"),
    sa.ForeignKeyConstraint(["workspace"], ["workspaces.name"]),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    _key("workspace", primary_key=True),
    _key("model", primary_key=True),
    sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
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
    sa.ForeignKeyConstraint(["workspace", "model"], ["models.workspace", "models.name"]),
    sa.Index("ix_model_versions_workspace_model_stage", "workspace", "model", "stage"),
)

stage_transitions = sa.Table(
    "stage_transitions",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
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
    sa.ForeignKeyConstraint(
        ["workspace", "model", "version"],
        ["model_versions.workspace", "model_versions.model", "model_versions.version"],
    ),
    sa.Index("ix_stage_transitions_workspace_model_version", "workspace", "model", "version"),
)

# An edge "target was made from source", both in ``workspace``. ``source_key``
# and ``target_key`` encode (kind, name, version) injectively for the primary
# key (a nullable version cannot be part of one); the parts are kept as columns
# so the refs are rebuilt exactly.
lineage_edges = sa.Table(
    "lineage_edges",
    metadata,
    _key("workspace", primary_key=True),
    _key("source_key", primary_key=True),
    _key("target_key", primary_key=True),
    _text("source_kind"),
    _text("source_name"),
    sa.Column("source_version", sa.Integer(), nullable=True),
    _text("target_kind"),
    _text("target_name"),
    sa.Column("target_version", sa.Integer(), nullable=True),
    sa.Index("ix_lineage_edges_workspace_target_key", "workspace", "target_key"),
)

# -- users, tokens and roles (revision 0002) -------------------------------------
users = sa.Table(
    "users",
    metadata,
    _key("name", primary_key=True),
    _text("display_name"),
    _flag("is_admin"),
    _when("created_at"),
)

# Only the SHA-256 of a token's secret is stored, never the secret.
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    _key("id", primary_key=True),
    _key("user"),
    _text("name"),
    _key("token_hash"),
    _text("prefix"),
    _when("created_at"),
    _when("expires_at", nullable=True),
    _when("revoked_at", nullable=True),
    sa.ForeignKeyConstraint(["user"], ["users.name"]),
    sa.UniqueConstraint("token_hash"),
    sa.Index("ix_api_tokens_user", "user"),
)

memberships = sa.Table(
    "memberships",
    metadata,
    _key("workspace", primary_key=True),
    _key("user", primary_key=True),
    _text("role"),
    _flag("raw_pii"),
    _when("created_at"),
    sa.ForeignKeyConstraint(["workspace"], ["workspaces.name"]),
    sa.ForeignKeyConstraint(["user"], ["users.name"]),
    sa.Index("ix_memberships_user", "user"),
)

# -- audit log (revision 0002) -----------------------------------------------------
# No foreign key to workspaces: an event may name a workspace that failed to be
# created, or none at all (platform-wide actions).
audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    _key("actor"),
    _key("action"),
    sa.Column("workspace", key_type(), nullable=True),
    _json("objects"),
    _json("details"),
    _when("at"),
    sa.Index("ix_audit_events_workspace_id", "workspace", "id"),
    sa.Index("ix_audit_events_actor", "actor"),
)

# -- background jobs (revision 0002) ----------------------------------------------
jobs = sa.Table(
    "jobs",
    metadata,
    _key("id", primary_key=True),
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
    sa.ForeignKeyConstraint(["workspace"], ["workspaces.name"]),
    sa.Index("ix_jobs_status_created_at", "status", "created_at"),
    sa.Index("ix_jobs_workspace_created_at", "workspace", "created_at"),
    sa.Index("ix_jobs_workspace_created_at_id", "workspace", "created_at", "id"),
    sa.Index("ix_jobs_workspace_run_id", "workspace", "run_id"),
)

# -- endpoints, the prediction log, feedback and alerts (revision 0004) -----------
# Routes and the shadow are JSON: [{"model", "version", "percent"}] and one such
# object (or null). The active policy version is a plain number, checked by the store.
endpoints = sa.Table(
    "endpoints",
    metadata,
    _key("workspace", primary_key=True),
    _key("name", primary_key=True),
    _json("routes"),
    sa.Column("shadow", sa.JSON(), nullable=True),
    _int("policy_version"),
    _text("entity_key", nullable=True),
    _text("description"),
    _int("revision"),
    _text("created_by"),
    _when("created_at"),
    _when("updated_at"),
    sa.ForeignKeyConstraint(["workspace"], ["workspaces.name"]),
)

endpoint_policies = sa.Table(
    "endpoint_policies",
    metadata,
    _key("workspace", primary_key=True),
    _key("endpoint", primary_key=True),
    sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
    _json("spec"),
    _text("reason"),
    _text("created_by"),
    _when("created_at"),
    sa.ForeignKeyConstraint(["workspace", "endpoint"], ["endpoints.workspace", "endpoints.name"]),
)

# Written in batches of thousands by the serving processes: two secondary
# indexes only, for time windows of one route and for an entity's latest.
predictions = sa.Table(
    "predictions",
    metadata,
    _key("workspace", primary_key=True),
    _key("endpoint", primary_key=True),
    _key("request_id", primary_key=True),
    _key("route", primary_key=True),
    _text("model"),
    _int("version"),
    _number("score"),
    _text("decision"),
    _when("at"),
    _int("policy_version"),
    sa.Column("entity", key_type(), nullable=True),
    _json("inputs"),
    _json("reasons"),
    _number("latency_ms"),
    sa.ForeignKeyConstraint(["workspace", "endpoint"], ["endpoints.workspace", "endpoints.name"]),
    sa.Index("ix_predictions_workspace_endpoint_route_at", "workspace", "endpoint", "route", "at"),
    # partial: endpoints without an entity key pay nothing for it
    sa.Index(
        "ix_predictions_workspace_endpoint_entity_at",
        "workspace",
        "endpoint",
        "entity",
        "at",
        sqlite_where=sa.text("entity IS NOT NULL"),
        postgresql_where=sa.text("entity IS NOT NULL"),
    ),
)

# One outcome per request (a later one replaces it); it names a live prediction,
# which the store checks (a foreign key would need the route as a column).
feedback = sa.Table(
    "feedback",
    metadata,
    _key("workspace", primary_key=True),
    _key("endpoint", primary_key=True),
    _key("request_id", primary_key=True),
    _number("label"),
    _when("at"),
    sa.Column("entity", key_type(), nullable=True),
    sa.ForeignKeyConstraint(["workspace", "endpoint"], ["endpoints.workspace", "endpoints.name"]),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
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
    sa.Column("delivered_at", UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(["workspace", "endpoint"], ["endpoints.workspace", "endpoints.name"]),
    sa.Index("ix_alerts_workspace_id", "workspace", "id"),
    sa.Index("ix_alerts_workspace_endpoint_id", "workspace", "endpoint", "id"),
)

# -- events posted to recommendation endpoints (revision 0005) ----------------------
# One row per interaction; (user, item, at) is unique per endpoint so that a repeated
# event is refused. Listed by arrival (replay, retraining) or by event time (monitoring).
events = sa.Table(
    "events",
    metadata,
    _key("workspace", primary_key=True),
    _key("endpoint", primary_key=True),
    _key("id", primary_key=True),
    _key("user"),
    _key("item"),
    _number("weight"),
    _text("kind"),
    _when("at"),
    _when("received_at"),
    sa.ForeignKeyConstraint(["workspace", "endpoint"], ["endpoints.workspace", "endpoints.name"]),
    sa.UniqueConstraint("workspace", "endpoint", "user", "item", "at"),
    sa.Index("ix_events_workspace_endpoint_received_at", "workspace", "endpoint", "received_at"),
    sa.Index("ix_events_workspace_endpoint_at", "workspace", "endpoint", "at"),
)

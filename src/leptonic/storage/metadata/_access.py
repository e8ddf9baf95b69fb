"""Users, API tokens, workspace roles and the audit log of the SQL metadata store.

A part of :class:`~leptonic.storage.metadata.sql.SQLMetadataStore`; the
semantics are those of :class:`~leptonic.storage.metadata.base.MetadataStore`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row

from leptonic.core.access import ApiToken, Membership, User
from leptonic.core.audit import AuditEvent
from leptonic.core.names import validate_name
from leptonic.errors import StoreError
from leptonic.storage.metadata import _tables as t
from leptonic.storage.metadata._errors import (
    token_exists,
    token_hash_taken,
    token_not_found,
    user_exists,
    user_not_found,
)
from leptonic.storage.metadata._records import (
    json_value,
    to_audit_event,
    to_membership,
    to_token,
    to_user,
)
from leptonic.storage.metadata._sqlbase import (
    SQLStoreBase,
    insert_row,
    require_workspace,
    row_exists,
)
from leptonic.storage.metadata.base import check_page, check_role, check_time, checked_record

__all__ = ["AccessMixin"]


class AccessMixin(SQLStoreBase):
    """Users, tokens, memberships and audit events kept in SQL tables."""

    # -- users --------------------------------------------------------------
    def create_user(self, user: User) -> User:
        validate_name(user.name, "user")
        user = checked_record(user)
        with self._write() as conn:
            if row_exists(conn, t.users, name=user.name):
                raise user_exists(user.name)
            insert_row(
                conn,
                t.users,
                user_exists(user.name),
                name=user.name,
                display_name=user.display_name,
                is_admin=user.is_admin,
                created_at=user.created_at,
            )
        return user

    def get_user(self, name: str) -> User:
        with self._read() as conn:
            return to_user(_require_user(conn, name))

    def list_users(self) -> list[User]:
        with self._read() as conn:
            rows = conn.execute(sa.select(t.users).order_by(t.users.c.name))
            return [to_user(r) for r in rows]

    # -- tokens -------------------------------------------------------------
    def create_token(self, token: ApiToken) -> ApiToken:
        token = checked_record(token)
        with self._write() as conn:
            _require_user(conn, token.user)
            if row_exists(conn, t.api_tokens, id=token.id):
                raise token_exists(token.id)
            if row_exists(conn, t.api_tokens, token_hash=token.token_hash):
                raise token_hash_taken()
            insert_row(
                conn,
                t.api_tokens,
                token_hash_taken(),
                id=token.id,
                user=token.user,
                name=token.name,
                token_hash=token.token_hash,
                prefix=token.prefix,
                created_at=token.created_at,
                expires_at=token.expires_at,
                revoked_at=token.revoked_at,
            )
        return token

    def get_token_by_hash(self, token_hash: str) -> ApiToken:
        tk = t.api_tokens
        with self._read() as conn:
            row = conn.execute(sa.select(tk).where(tk.c.token_hash == token_hash)).first()
        if row is None:
            raise token_not_found()
        return to_token(row)

    def list_tokens(self, user: str) -> list[ApiToken]:
        tk = t.api_tokens
        query = sa.select(tk).where(tk.c.user == user).order_by(tk.c.created_at, tk.c.id)
        with self._read() as conn:
            _require_user(conn, user)
            return [to_token(r) for r in conn.execute(query)]

    def revoke_token(self, token_id: str, at: datetime) -> ApiToken:
        at = check_time(at, "at")
        tk = t.api_tokens
        with self._write() as conn:
            row = conn.execute(sa.select(tk).where(tk.c.id == token_id).with_for_update()).first()
            if row is None:
                raise token_not_found(token_id)
            token = to_token(row)
            if token.revoked_at is not None:
                return token
            conn.execute(sa.update(tk).where(tk.c.id == token_id).values(revoked_at=at))
            return replace(token, revoked_at=at)

    # -- memberships --------------------------------------------------------
    def set_membership(self, membership: Membership) -> Membership:
        membership = checked_record(replace(membership, role=check_role(membership.role)))
        values = {
            "role": membership.role.value,
            "raw_pii": membership.raw_pii,
            "created_at": membership.created_at,
        }
        with self._write() as conn:
            require_workspace(conn, membership.workspace)
            _require_user(conn, membership.user)
            keys = {"workspace": membership.workspace, "user": membership.user}
            _upsert(conn, t.memberships, keys, values)
        return membership

    def get_membership(self, workspace: str, user: str) -> Membership | None:
        ms = t.memberships
        query = sa.select(ms).where(ms.c.workspace == workspace, ms.c.user == user)
        with self._read() as conn:
            row = conn.execute(query).first()
        return None if row is None else to_membership(row)

    def list_memberships(
        self, *, workspace: str | None = None, user: str | None = None
    ) -> list[Membership]:
        ms = t.memberships
        query = sa.select(ms)
        if workspace is not None:
            query = query.where(ms.c.workspace == workspace)
        if user is not None:
            query = query.where(ms.c.user == user)
        with self._read() as conn:
            rows = conn.execute(query.order_by(ms.c.workspace, ms.c.user))
            return [to_membership(r) for r in rows]

    def remove_membership(self, workspace: str, user: str) -> None:
        ms = t.memberships
        with self._write() as conn:
            conn.execute(sa.delete(ms).where(ms.c.workspace == workspace, ms.c.user == user))

    # -- audit log ----------------------------------------------------------
    def append_audit(self, event: AuditEvent) -> AuditEvent:
        event = checked_record(event, ignore=("id",))
        values = {
            "actor": event.actor,
            "action": event.action,
            "workspace": event.workspace,
            "objects": json_value(list(event.objects), "objects"),
            "details": json_value(event.details, "details"),
            "at": event.at,
        }
        with self._write() as conn:
            result = conn.execute(sa.insert(t.audit_events).values(**values))
            (new_id,) = result.inserted_primary_key or (None,)
        if new_id is None:  # pragma: no cover - SQLite and PostgreSQL report the id
            raise StoreError("the database did not report the id of the new audit event")
        return replace(event, id=int(new_id))

    def list_audit(
        self,
        *,
        workspace: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[AuditEvent]:
        check_page(limit, offset)
        ae = t.audit_events
        query = sa.select(ae)
        for column, value in (("workspace", workspace), ("actor", actor), ("action", action)):
            if value is not None:
                query = query.where(ae.c[column] == value)
        query = query.order_by(ae.c.id.desc()).limit(limit).offset(offset)
        with self._read() as conn:
            return [to_audit_event(r) for r in conn.execute(query)]


def _require_user(conn: sa.Connection, name: str) -> Row[Any]:
    row = conn.execute(sa.select(t.users).where(t.users.c.name == name)).first()
    if row is None:
        raise user_not_found(name)
    return row


def _upsert(
    conn: sa.Connection, table: sa.Table, keys: dict[str, Any], values: dict[str, Any]
) -> None:
    """Insert a row, or update ``values`` of the row with these primary ``keys``."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        conn.execute(
            pg_insert(table)
            .values(**keys, **values)
            .on_conflict_do_update(index_elements=list(keys), set_=values)
        )
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        conn.execute(
            sqlite_insert(table)
            .values(**keys, **values)
            .on_conflict_do_update(index_elements=list(keys), set_=values)
        )
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        where = [table.c[k] == v for k, v in keys.items()]
        if conn.execute(sa.update(table).where(*where).values(**values)).rowcount == 0:
            conn.execute(sa.insert(table).values(**keys, **values))

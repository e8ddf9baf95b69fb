"""Datasets and their immutable versions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from leptonic.core._time import utcnow

__all__ = ["Column", "ColumnRole", "Dataset", "DatasetVersion"]


class ColumnRole(StrEnum):
    """What a column is for in training and governance."""

    ID = "id"
    TARGET = "target"
    TIMESTAMP = "timestamp"
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    TEXT = "text"
    PII = "pii"
    IGNORE = "ignore"


@dataclass(frozen=True)
class Column:
    """One column of a dataset version's schema.

    Parameters
    ----------
    name
        Column name as in the file.
    dtype
        Arrow type name of the stored column (``int64``, ``double``, ``string``...).
    role
        Inferred or declared role.
    pii
        Kind of personal data found (``email``, ``phone``, ``national_id``,
        ``card_number``, ``person_name``) or ``None``.
    nullable
        Whether missing values occur.
    """

    name: str
    dtype: str
    role: ColumnRole
    pii: str | None = None
    nullable: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "role": str(self.role),
            "pii": self.pii,
            "nullable": self.nullable,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Column:
        return cls(
            name=data["name"],
            dtype=data["dtype"],
            role=ColumnRole(data["role"]),
            pii=data.get("pii"),
            nullable=bool(data.get("nullable", True)),
        )


@dataclass(frozen=True)
class Dataset:
    """A named, versioned table in a workspace."""

    workspace: str
    name: str
    description: str = ""
    created_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class DatasetVersion:
    """An immutable Parquet snapshot with its schema, quality report and PII map.

    ``content_hash`` (SHA-256 of the stored Parquet bytes) identifies the
    content: adding the same content again returns the existing version.
    """

    workspace: str
    dataset: str
    version: int
    content_hash: str
    artifact_key: str
    num_rows: int
    num_columns: int
    size_bytes: int
    columns: tuple[Column, ...]
    quality: dict[str, Any]
    source: dict[str, Any]
    created_by: str = "local"
    created_at: datetime = field(default_factory=utcnow)

    @property
    def pii(self) -> dict[str, str]:
        """Column name → kind of personal data, for the columns that hold some."""
        return {c.name: c.pii for c in self.columns if c.pii}

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        from leptonic.errors import NotFound

        raise NotFound(
            f"dataset {self.dataset!r} v{self.version} has no column {name!r}; "
            f"columns are: {', '.join(c.name for c in self.columns)}",
            field="column",
        )

    def columns_with_role(self, role: ColumnRole) -> list[str]:
        return [c.name for c in self.columns if c.role == role]

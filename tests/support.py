"""Tables and hand-built dataset versions shared by the task tests."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from leptonic.core.dataset import Column, ColumnRole, DatasetVersion
from leptonic.storage.artifacts.memory import MemoryArtifactStore

ROLES = {
    "applicant_id": ColumnRole.ID,
    "default": ColumnRole.TARGET,
    "employment_type": ColumnRole.CATEGORICAL,
    "home_ownership": ColumnRole.CATEGORICAL,
    "loan_purpose": ColumnRole.CATEGORICAL,
    "region": ColumnRole.CATEGORICAL,
}
PII = {"full_name": "person_name", "email": "email", "phone": "phone", "national_id": "national_id"}


def make_version(
    table: pa.Table, artifacts: MemoryArtifactStore, name: str = "t"
) -> DatasetVersion:
    """A dataset version built by hand (roles fixed), so task tests do not depend on inference."""
    buf = io.BytesIO()
    pq.write_table(table, buf)
    key = artifacts.put_bytes(buf.getvalue())
    columns = []
    for field in table.schema:
        pii = PII.get(field.name)
        if pii:
            role = ColumnRole.PII
        elif field.name in ROLES:
            role = ROLES[field.name]
        elif pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            role = ColumnRole.CATEGORICAL
        else:
            role = ColumnRole.NUMERIC
        columns.append(Column(field.name, str(field.type), role, pii))
    return DatasetVersion(
        workspace="ws",
        dataset=name,
        version=1,
        content_hash=key.rsplit("/", 1)[1],
        artifact_key=key,
        num_rows=table.num_rows,
        num_columns=table.num_columns,
        size_bytes=len(buf.getvalue()),
        columns=tuple(columns),
        quality={},
        source={"path": "generated"},
    )


def multiclass_table(n: int = 1500, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n)
    cat = rng.choice(["a", "b", "c"], n)
    z = np.stack([x1, x2, -x1 - x2 + (cat == "a")], axis=1) + rng.normal(0, 0.5, (n, 3))
    label = np.array(["red", "green", "blue"])[z.argmax(axis=1)]
    return pa.table({"x1": x1, "x2": x2, "cat": cat, "colour": label})


def regression_table(n: int = 1500, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.uniform(-2, 2, size=n)
    cat = rng.choice(["a", "b"], n)
    y = 3 * x1 + x2**2 + 2 * (cat == "a") + rng.normal(0, 0.3, n)
    return pa.table({"x1": x1, "x2": x2, "cat": cat, "amount": y})

"""Ingestion: a data file becomes an immutable, governed dataset version.

:func:`ingest` streams the file into a Parquet snapshot in a private temp
folder (nested struct columns flattened, so ``customer.email`` is a column
like any other), identifies it by the SHA-256 of its bytes, detects personal
data, infers the schema, profiles quality and refuses hard errors (every
``error`` issue of the quality report: a column with no values, a target with
a single value); only then does it store the snapshot and record the
version. Any error leaves nothing behind: no artifact, no dataset, no temp
file.

:func:`preview` and :func:`read_version` read a stored version back,
:func:`preview` masking personal data unless asked for raw values.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from leptonic.core.dataset import ColumnRole, Dataset, DatasetVersion
from leptonic.core.names import validate_name
from leptonic.core.workspace import Workspace
from leptonic.errors import DataError, InvalidInput, NotFound, TargetError
from leptonic.governance.pii import MaskingPolicy, detect_pii, mask_table
from leptonic.governance.quality import quality_report
from leptonic.governance.readers import (
    DEFAULT_BLOCK_SIZE,
    BatchStream,
    ColumnTypeConflict,
    detect_format,
    open_batches,
)
from leptonic.governance.schema import Contract, infer_schema
from leptonic.storage.artifacts.base import ArtifactStore, digest_file, key_for_digest
from leptonic.storage.metadata.base import MetadataStore

__all__ = ["ROW_GROUP_SIZE", "ingest", "preview", "read_version", "write_parquet"]

#: Rows per Parquet row group of a snapshot (fixed, so output bytes depend on the data only).
ROW_GROUP_SIZE = 131_072

#: Parquet writer settings of every snapshot: the same rows give the same bytes.
_WRITER_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 3,
    "use_dictionary": True,
    "write_statistics": True,
    "version": "2.6",
    "data_page_version": "1.0",
}

Progress = Callable[[int, int], None]


def _flatten(table: pa.Table) -> pa.Table:
    """``table`` with every struct column replaced by its fields (``customer.email``)."""
    while any(pa.types.is_struct(t) for t in table.schema.types):
        table = table.flatten()
    return table


def _flat_schema(path: str | os.PathLike[str], schema: pa.Schema) -> pa.Schema:
    """The schema of the snapshot: ``schema`` flattened, refusing names that collide.

    Names collide when equal without regard to case: DuckDB, which reads the
    snapshot, does not tell ``customer.Email`` from ``customer.email``.
    """
    flat = _flatten(schema.remove_metadata().empty_table()).schema
    if not flat.names:
        raise DataError(
            f"{path}: the file has no columns (its records have no fields, or only empty "
            "nested objects); each record must hold at least one field",
            field="path",
        )
    seen: dict[str, str] = {}
    for name in flat.names:
        other = seen.get(name.casefold())
        if other == name:
            raise DataError(
                f"{path}: column {name!r} appears twice once nested fields are flattened "
                f"(a column named {name!r} and a nested field at that path); rename one of them",
                field=name,
            )
        if other is not None:
            raise DataError(
                f"{path}: columns {other!r} and {name!r} (nested fields are flattened to "
                f"paths) differ only in case, which SQL does not tell apart; rename one of them",
                field=name,
            )
        seen[name.casefold()] = name
    return flat


def _write_stream(
    stream: BatchStream,
    schema: pa.Schema,
    out: Path,
    progress: Progress | None,
    row_group_size: int,
) -> int:
    """Write the stream's batches to ``out`` in fixed-size row groups; return the row count.

    ``schema`` is the stream's, flattened (see :func:`_flat_schema`): struct columns
    are flattened to match it.
    """
    rows = 0
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    with pq.ParquetWriter(out, schema, **_WRITER_OPTIONS) as writer:
        for batch in stream:
            batch = batch.replace_schema_metadata(None)
            if batch.schema != schema:
                batch = _flatten(pa.Table.from_batches([batch])).combine_chunks().to_batches()[0]
            pending.append(batch)
            pending_rows += batch.num_rows
            rows += batch.num_rows
            while pending_rows >= row_group_size:
                table = pa.Table.from_batches(pending, schema=schema)
                writer.write_table(table.slice(0, row_group_size), row_group_size=row_group_size)
                rest = table.slice(row_group_size)
                pending = rest.to_batches()
                pending_rows = rest.num_rows
            if progress is not None:
                progress(rows, stream.bytes_read)
        if progress is not None:
            progress(rows, stream.bytes_read)
        if pending_rows:
            table = pa.Table.from_batches(pending, schema=schema)
            writer.write_table(table, row_group_size=row_group_size)
    return rows


def write_parquet(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    fmt: str | None = None,
    delimiter: str | None = None,
    encoding: str | None = None,
    progress: Progress | None = None,
    check_header: Callable[[list[str]], None] | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    row_group_size: int = ROW_GROUP_SIZE,
) -> int:
    """Stream a data file into a deterministic Parquet file; return the row count.

    A CSV or JSON-lines column whose later values do not fit the type
    inferred from the first block is read again with a wider type (the
    stream restarts, and so does ``progress``). Struct columns (nested JSON
    objects, Parquet structs) become one column per field, named by their
    path (``customer.email``).

    Parameters
    ----------
    path
        The source file (see :func:`~leptonic.governance.readers.open_batches`).
    out
        The Parquet file to write (replaced if present).
    fmt, delimiter, encoding
        Reading options.
    progress
        Called after each batch with ``(rows so far, bytes read so far)``.
    check_header
        Called with the (flattened) column names before any row is read; raise
        to stop.
    block_size
        Bytes parsed at a time for text formats.
    row_group_size
        Rows per Parquet row group (every group but the last has exactly this many).
    """
    if row_group_size < 1:
        raise InvalidInput(
            f"row_group_size must be positive, got {row_group_size}", field="row_group_size"
        )
    column_types: dict[str, pa.DataType] = {}
    target = Path(out)
    while True:
        stream = open_batches(
            path,
            fmt=fmt,
            delimiter=delimiter,
            encoding=encoding,
            column_types=column_types,
            block_size=block_size,
        )
        with stream:
            schema = _flat_schema(path, stream.schema)
            if check_header is not None:
                check_header(schema.names)
            try:
                return _write_stream(stream, schema, target, progress, row_group_size)
            except ColumnTypeConflict as conflict:
                target.unlink(missing_ok=True)
                if column_types.get(conflict.column) == conflict.widened:
                    raise
                column_types[conflict.column] = conflict.widened
            except BaseException:
                target.unlink(missing_ok=True)
                raise


def _resolve_target(contract: Contract | None, target: str | None) -> str | None:
    if contract is not None and contract.target is not None:
        if target is not None and target != contract.target:
            raise TargetError(
                f"target {target!r} disagrees with the contract's target {contract.target!r}; "
                f"pass one of them",
                field="target",
            )
        return contract.target
    return target


def _header_checker(target: str | None, contract: Contract | None) -> Callable[[list[str]], None]:
    def check(names: list[str]) -> None:
        if target is not None and target not in names:
            raise TargetError(
                f"target column {target!r} is not in the data; columns are: {', '.join(names)}",
                field="target",
            )
        if contract is not None:
            contract.check_columns(names)

    return check


def _check_hard_errors(quality: Mapping[str, Any], contract: Contract | None) -> None:
    """Refuse every ``error`` issue of the quality report, with its fix."""
    ignored = {c for c, r in (contract.roles.items() if contract else ()) if r is ColumnRole.IGNORE}
    empty = [c for c in quality["all_null_columns"] if c not in ignored]
    if empty:
        raise DataError(
            f"column(s) {', '.join(map(repr, empty))} have no values; drop them from the file "
            f"or mark them role 'ignore' in the contract ([roles] {empty[0]} = \"ignore\")",
            field=empty[0],
        )
    for issue in quality["issues"]:
        if issue["severity"] != "error" or issue["check"] == "all_null":
            continue
        error = TargetError if issue["check"].startswith("target") else DataError
        raise error(issue["message"], field=issue["column"])


def _existing_version(
    metadata: MetadataStore, workspace: str, dataset: str, content_hash: str
) -> DatasetVersion | None:
    try:
        versions = metadata.list_dataset_versions(workspace, dataset)
    except NotFound:
        return None
    return next((v for v in versions if v.content_hash == content_hash), None)


def _declarations(contract: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A contract's declarations besides its target (compared apart), or None for none."""
    rest = {k: v for k, v in (contract or {}).items() if k != "target"}
    return rest if any(rest.values()) else None


def _check_same_declarations(
    existing: DatasetVersion, source: Path, contract: Contract | None, target: str | None
) -> None:
    """Refuse to return ``existing`` for a call that declares another contract or target.

    A call that declares neither gets the existing version as it is.
    """
    recorded = _declarations(existing.source.get("contract"))
    targets = existing.columns_with_role(ColumnRole.TARGET)
    before = targets[0] if targets else None
    if contract is not None and _declarations(contract.to_dict()) != recorded:
        field, what = "contract", f"contract {json.dumps(recorded)}" if recorded else "no contract"
    elif target is not None and target != before:
        field, what = "target", f"target {before!r}" if before else "no target"
    else:
        return
    raise InvalidInput(
        f"{source}: this content is already version {existing.version} of dataset "
        f"{existing.dataset!r}, ingested with {what}; versions never change, so the new "
        f"{field} would be ignored: ingest the file as another dataset to apply it, or "
        f"leave the {field} out to get version {existing.version} back",
        field=field,
    )


def _referenced(metadata: MetadataStore, key: str) -> bool:
    """Whether a recorded dataset version uses the artifact ``key`` (True when unknown)."""
    try:
        for ws in metadata.list_workspaces():
            for ds in metadata.list_datasets(ws.name):
                versions = metadata.list_dataset_versions(ws.name, ds.name)
                if any(v.artifact_key == key for v in versions):
                    return True
    except Exception:  # a store that cannot tell: keep the blob, an orphan is harmless
        return True
    return False


def ingest(
    path: str | os.PathLike[str],
    *,
    metadata: MetadataStore,
    artifacts: ArtifactStore,
    workspace: str,
    dataset: str,
    actor: str,
    contract: Contract | None = None,
    target: str | None = None,
    description: str = "",
    fmt: str | None = None,
    delimiter: str | None = None,
    encoding: str | None = None,
    progress: Progress | None = None,
    origin: Mapping[str, Any] | None = None,
) -> tuple[DatasetVersion, bool]:
    """Add a data file to a dataset as a new version (or find the same content).

    Parameters
    ----------
    path
        A CSV, Parquet or JSON-lines file.
    metadata, artifacts
        Where the version's record and its Parquet snapshot go.
    workspace, dataset
        Names; the workspace must exist, the dataset is created if absent.
    actor
        Who ingests (recorded as ``created_by``).
    contract
        Declared target, roles and PII (see :class:`~leptonic.governance.schema.Contract`).
    target
        The label column; must agree with the contract's.
    description
        Description of a new dataset.
    fmt, delimiter, encoding
        Reading options (see :func:`~leptonic.governance.readers.open_batches`).
    progress
        Called with ``(rows so far, bytes read so far)`` while streaming.
    origin
        Where the data really comes from, when ``path`` is only a temporary
        copy (an upload's file name, the model that scored it...): recorded in
        the version's ``source`` over the temporary path.

    Returns
    -------
    tuple
        ``(version, created)``: ``created`` is False when the dataset already
        had a version with the same content (which is returned unchanged,
        unless this call declares another contract or target).

    Raises
    ------
    InvalidName
        For a bad workspace or dataset name.
    NotFound
        If the workspace does not exist.
    InvalidInput
        If the dataset already has this content as a version ingested under
        another contract or target (versions never change).
    DataError
        For an unreadable or malformed file, or a column with no values.
    TargetError
        If the target is not a column of the file, or has a single value.
    SchemaError
        If the contract names columns the file lacks.
    """
    validate_name(workspace, "workspace")
    validate_name(dataset, "dataset")
    metadata.get_workspace(workspace)
    source = Path(path).expanduser().resolve()
    kind = detect_format(source, fmt)
    target = _resolve_target(contract, target)
    tmp = Path(tempfile.mkdtemp(prefix="leptonic-ingest-"))
    try:
        snapshot = tmp / "snapshot.parquet"
        rows = write_parquet(
            source,
            snapshot,
            fmt=fmt,
            delimiter=delimiter,
            encoding=encoding,
            progress=progress,
            check_header=_header_checker(target, contract),
        )
        content_hash = digest_file(snapshot)
        existing = _existing_version(metadata, workspace, dataset, content_hash)
        if existing is not None:
            _check_same_declarations(existing, source, contract, target)
            if not artifacts.exists(existing.artifact_key):  # lost to a failed concurrent ingest
                artifacts.put_file(snapshot)
            return existing, False
        detected = detect_pii(snapshot, temp_directory=tmp)
        pii = contract.apply_pii(detected) if contract is not None else detected
        columns = infer_schema(
            snapshot, pii=pii, contract=contract, target=target, temp_directory=tmp
        )
        quality = quality_report(snapshot, columns, target=target, temp_directory=tmp)
        _check_hard_errors(quality, contract)
        version = DatasetVersion(
            workspace=workspace,
            dataset=dataset,
            version=0,
            content_hash=content_hash,
            artifact_key=key_for_digest(content_hash),
            num_rows=rows,
            num_columns=len(columns),
            size_bytes=snapshot.stat().st_size,
            columns=columns,
            quality=quality,
            source={
                "path": str(source),
                "format": kind,
                "sha256": digest_file(source),
                "size_bytes": source.stat().st_size,
                "contract": contract.to_dict() if contract is not None else None,
                **dict(origin or {}),
            },
            created_by=actor,
        )
        stored, created = _record(metadata, artifacts, version, snapshot, description)
        if not created:  # a concurrent ingest of the same content recorded it first
            _check_same_declarations(stored, source, contract, target)
        return stored, created
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _record(
    metadata: MetadataStore,
    artifacts: ArtifactStore,
    version: DatasetVersion,
    snapshot: Path,
    description: str,
) -> tuple[DatasetVersion, bool]:
    """Store the snapshot, then the dataset (if new) with the version in one transaction."""
    had_blob = artifacts.exists(version.artifact_key)
    key = artifacts.put_file(snapshot)
    if key != version.artifact_key:  # pragma: no cover - content addressing guarantees it
        raise InvalidInput(f"artifact store returned key {key}, expected {version.artifact_key}")
    try:
        return metadata.add_dataset_version(
            version, create=Dataset(version.workspace, version.dataset, description=description)
        )
    except BaseException:
        # a concurrent ingest of the same content may have recorded this blob meanwhile
        if not had_blob and not _referenced(metadata, key):
            artifacts.delete(key)
        raise


def read_version(
    version: DatasetVersion,
    artifacts: ArtifactStore,
    columns: Sequence[str] | None = None,
) -> pa.Table:
    """The rows of a stored version (all columns, or the ones named).

    Raises
    ------
    NotFound
        For a column the version does not have, or a missing snapshot.
    """
    if columns is not None:
        for name in columns:
            version.column(name)
    path = artifacts.local_path(version.artifact_key)
    return pq.read_table(path, columns=list(columns) if columns is not None else None)


def preview(
    version: DatasetVersion,
    artifacts: ArtifactStore,
    *,
    workspace: Workspace,
    limit: int = 20,
    raw: bool = False,
    policy: MaskingPolicy | str = MaskingPolicy.HASH,
) -> pa.Table:
    """The first ``limit`` rows of a version, with PII masked unless ``raw``.

    Parameters
    ----------
    version
        The dataset version.
    artifacts
        The store holding its snapshot.
    workspace
        The version's workspace (its ``pii_salt`` keys the hashes).
    limit
        Rows to return (at most).
    raw
        Return personal data unmasked; the caller must check the right to.
    policy
        How to mask (``"hash"``, ``"redact"`` or ``"drop"``).
    """
    if workspace.name != version.workspace:
        raise InvalidInput(
            f"dataset {version.dataset!r} belongs to workspace {version.workspace!r}, "
            f"not {workspace.name!r}; pass its own workspace",
            field="workspace",
        )
    if limit < 0:
        raise InvalidInput(f"limit must be 0 or more, got {limit}", field="limit")
    with artifacts.open(version.artifact_key) as f:
        pf = pq.ParquetFile(f)
        batches = []
        taken = 0
        for batch in pf.iter_batches(batch_size=max(limit, 1)):
            if taken >= limit:
                break
            batch = batch.slice(0, limit - taken)
            batches.append(batch)
            taken += batch.num_rows
        table = pa.Table.from_batches(batches, schema=pf.schema_arrow)
    if raw or not version.pii:
        return table
    return mask_table(table, version.pii, policy, workspace.pii_salt)

"""Datasets: upload a file as a new version, list, inspect, profile and preview."""

from __future__ import annotations

import json
import math
import re
import shutil
import tempfile
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi import Path as PathParam
from starlette.concurrency import run_in_threadpool

from leptonic.api.auth import Developer, Viewer
from leptonic.api.errors import PayloadTooLarge, UnsupportedMediaType
from leptonic.api.schemas import (
    DatasetOut,
    DatasetVersionOut,
    Limit,
    Offset,
    Page,
    PreviewOut,
    UploadOut,
    page_of,
)
from leptonic.core.names import validate_name
from leptonic.errors import InvalidInput, LeptonicError, PermissionDenied, SchemaError
from leptonic.governance.readers import check_encoding
from leptonic.governance.schema import Contract

__all__ = ["receive_upload", "router"]

router = APIRouter(tags=["datasets"])

VersionNumber = Annotated[int, Query(ge=1, le=2**31 - 1, description="Latest if omitted.")]
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


async def receive_upload(request: Request, folder: Path, filename: str, max_bytes: int) -> Path:
    """Stream the request body into ``folder / filename``, chunk by chunk.

    Raises :class:`PayloadTooLarge` past ``max_bytes`` (checked on the
    declared length first, then while reading), and :class:`UnsupportedMediaType`
    for a multipart form: its boundaries and headers would be stored as the
    file's rows.
    """
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind.startswith("multipart/"):  # (curl --data-binary says url-encoded: the bytes)
        raise UnsupportedMediaType(
            f"the upload is sent as a form ({kind}); send the file's bytes as the request "
            "body, e.g. curl --data-binary @file.csv -H 'Content-Type: application/octet-stream'",
            field="body",
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(
            f"the upload is {int(declared)} bytes; this server accepts at most {max_bytes}",
            field="body",
        )
    path = folder / filename
    size = 0
    with path.open("wb") as out:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise PayloadTooLarge(
                    f"the upload is larger than this server's limit of {max_bytes} bytes",
                    field="body",
                )
            out.write(chunk)
    if size == 0:
        raise InvalidInput("the request body is empty: send the file's bytes", field="body")
    return path


def _upload_name(dataset: str, filename: str | None, fmt: str | None) -> str:
    name = _SAFE_NAME.sub("_", Path(filename or "").name).strip("._")[:100]
    if not name:
        name = dataset
    if "." not in name and fmt is None:
        raise InvalidInput(
            "cannot tell the file format: pass ?format=csv|parquet|json or a ?filename= "
            "with a suffix (.csv, .parquet, .jsonl...)",
            field="format",
        )
    return name


def _parse_contract(text: str | None) -> Contract | None:
    """The ``contract`` query parameter: a JSON object checked like a contract file."""
    if text is None:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(
            f"the contract parameter is not JSON ({exc.msg} at position {exc.pos}); send the "
            "contract file's content as a JSON object",
            field="contract",
        ) from None
    if not isinstance(data, dict):
        raise SchemaError("the contract parameter must be a JSON object", field="contract")
    return Contract.from_dict(data, origin="the contract parameter")


@router.post(
    "/workspaces/{ws}/datasets/{name}/versions",
    response_model=UploadOut,
    status_code=status.HTTP_201_CREATED,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def upload_version(
    request: Request,
    response: Response,
    scope: Developer,
    name: str,
    target: str | None = None,
    delimiter: Annotated[str | None, Query(max_length=1)] = None,
    encoding: Annotated[str | None, Query(max_length=40)] = None,
    format: Annotated[str | None, Query(max_length=20)] = None,
    filename: Annotated[str | None, Query(max_length=255)] = None,
    description: Annotated[
        str | None, Query(max_length=2000, description="The dataset's description, if new.")
    ] = None,
    contract: Annotated[
        str | None,
        Query(max_length=8192, description="The data contract as JSON (the TOML file's content)."),
    ] = None,
) -> object:
    """Add the file in the request body as a new version of dataset ``name``.

    The body is the raw file (CSV, Parquet or JSON lines), streamed to disk;
    the same content twice gives the existing version (``created`` false, status 200).
    """
    validate_name(name, "dataset")
    check_encoding(encoding, InvalidInput)
    declared = _parse_contract(contract)
    upload_name = _upload_name(name, filename, format)
    folder = Path(tempfile.mkdtemp(prefix="leptonic-upload-"))
    try:
        path = await receive_upload(
            request, folder, upload_name, request.app.state.max_upload_bytes
        )
        try:
            version, created = await run_in_threadpool(
                scope.platform.add_data,
                scope.workspace,
                path,
                name=name,
                target=target,
                delimiter=delimiter,
                encoding=encoding,
                fmt=format,
                contract=declared,
                description=description or "",
                origin={
                    "path": f"upload:{filename or upload_name}",
                    "uploaded_by": scope.caller.user.name,
                },
            )
        except LeptonicError as exc:
            # Name the file the caller sent, not the server's temporary copy of it.
            shown = filename or upload_name
            exc.message = exc.message.replace(str(path), shown).replace(str(folder), shown)
            raise
    finally:
        await run_in_threadpool(shutil.rmtree, folder, True)
    if not created:  # the same content again: the existing version, nothing created
        response.status_code = status.HTTP_200_OK
    return {"version": DatasetVersionOut.model_validate(version), "created": created}


@router.get("/workspaces/{ws}/datasets", response_model=Page[DatasetOut])
def list_datasets(scope: Viewer, limit: Limit = 50, offset: Offset = 0) -> object:
    datasets = scope.platform.list_datasets(scope.workspace)
    return page_of(datasets, limit, offset, DatasetOut.model_validate)


@router.get("/workspaces/{ws}/datasets/{name}/versions", response_model=Page[DatasetVersionOut])
def list_versions(scope: Viewer, name: str, limit: Limit = 50, offset: Offset = 0) -> object:
    """The dataset's versions, oldest first."""
    versions = scope.platform.dataset_versions(scope.workspace, name)
    return page_of(versions, limit, offset, DatasetVersionOut.model_validate)


@router.get("/workspaces/{ws}/datasets/{name}/versions/{version}", response_model=DatasetVersionOut)
def get_version(
    scope: Viewer, name: str, version: Annotated[int, PathParam(ge=1, le=2**31 - 1)]
) -> object:
    """One version: schema, quality report, PII map and source."""
    return DatasetVersionOut.model_validate(
        scope.platform.dataset_version(scope.workspace, name, version)
    )


@router.get("/workspaces/{ws}/datasets/{name}/profile", response_model=dict[str, Any])
def profile(scope: Viewer, name: str, version: VersionNumber | None = None) -> object:
    """The quality report of a version (the latest by default)."""
    return scope.platform.dataset_version(scope.workspace, name, version).quality


@router.get("/workspaces/{ws}/datasets/{name}/preview", response_model=PreviewOut)
def preview(
    scope: Viewer,
    name: str,
    version: VersionNumber | None = None,
    limit: Annotated[int, Query(ge=0, le=1000)] = 20,
    raw: bool = False,
) -> object:
    """The first rows; personal data is masked unless ``raw`` (which needs the raw_pii grant)."""
    if raw and not scope.raw_pii:
        raise PermissionDenied(
            f"raw personal data in {scope.workspace!r} needs the raw_pii grant; "
            "ask a workspace admin, or drop raw=true to see masked values",
            field="raw",
        )
    dv = scope.platform.dataset_version(scope.workspace, name, version)
    table = scope.platform.preview(scope.workspace, name, dv.version, limit=limit, raw=raw)
    rows = [{k: _json_value(v) for k, v in row.items()} for row in table.to_pylist()]
    return {"columns": table.column_names, "rows": rows, "masked": bool(dv.pii) and not raw}


def _json_value(value: Any) -> Any:
    """A preview cell as a JSON value."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    return str(value)

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
from starlette.datastructures import UploadFile as StarletteUploadFile
from starlette.formparsers import MultiPartException
from starlette.types import Message

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

__all__ = ["MAX_CONTRACT_BYTES", "receive_form_upload", "receive_upload", "router"]

router = APIRouter(tags=["datasets"])

VersionNumber = Annotated[int, Query(ge=1, le=2**31 - 1, description="Latest if omitted.")]
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")

#: The largest data contract an upload carries (its JSON, in bytes): a form field.
MAX_CONTRACT_BYTES = 1024 * 1024
#: The longest contract the ``contract`` query parameter carries (longer: the form field).
MAX_CONTRACT_PARAM = 8192
#: Bytes an upload form may hold beyond its file and contract (boundaries, part headers).
_FORM_OVERHEAD = 64 * 1024


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


async def receive_form_upload(
    request: Request, folder: Path, max_bytes: int
) -> tuple[Path, str | None, str | None]:
    """Read a ``multipart/form-data`` upload: ``(file, its name, contract)``.

    The ``file`` part (at most ``max_bytes``) is copied into ``folder``; the
    ``contract`` field, the data contract as JSON, is at most
    :data:`MAX_CONTRACT_BYTES`. A form without a contract is refused: a file alone
    is sent as the request body. The whole body is counted as it arrives, so a
    form larger than both limits is cut off (413) without being stored.
    """
    limit = max_bytes + MAX_CONTRACT_BYTES + _FORM_OVERHEAD
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"the upload is {int(declared)} bytes; this server accepts files of at most "
            f"{max_bytes} bytes and contracts of at most {MAX_CONTRACT_BYTES}",
            field="body",
        )
    received = 0

    async def counted() -> Message:
        nonlocal received
        message = await request.receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise PayloadTooLarge(
                f"the upload is larger than this server's limit of {max_bytes} bytes",
                field="body",
            )
        return message

    # (without "app" in its scope the parser raises its own error, not a bare 400)
    scope = {k: v for k, v in request.scope.items() if k != "app"}
    try:
        form = await Request(scope, counted).form(
            max_files=1, max_fields=1, max_part_size=MAX_CONTRACT_BYTES
        )
    except MultiPartException as exc:
        if "maximum size" in exc.message:  # the one field a form may hold: the contract
            raise PayloadTooLarge(
                f"the contract is larger than {MAX_CONTRACT_BYTES} bytes (1 MiB); declare "
                "the columns that need it and let the rest be inferred",
                field="contract",
            ) from None
        raise InvalidInput(
            f"the upload form cannot be read ({exc.message}); send one `file` part and one "
            "`contract` field",
            field="body",
        ) from None
    try:
        unknown = sorted(set(form) - {"file", "contract"})
        if unknown:
            raise InvalidInput(
                f"the upload form has the part(s) {', '.join(map(repr, unknown))}; it takes "
                "one `file` (the data) and one `contract` (the data contract as JSON)",
                field="body",
            )
        file, contract = form.get("file"), form.get("contract")
        if not isinstance(file, StarletteUploadFile):
            raise InvalidInput(
                "the upload form has no `file` part holding a file; send the data as the "
                "file part `file`",
                field="body",
            )
        if not isinstance(contract, str):
            raise UnsupportedMediaType(
                "the upload is sent as a form without a `contract` field; send the file's "
                "bytes as the request body, e.g. curl --data-binary @file.csv -H "
                "'Content-Type: application/octet-stream' (a form carries a `contract` "
                "field with its `file`)",
                field="body",
            )
        if file.size is not None and file.size > max_bytes:
            raise PayloadTooLarge(
                f"the upload is larger than this server's limit of {max_bytes} bytes",
                field="body",
            )
        if not file.size:
            raise InvalidInput("the upload form's file is empty", field="body")
        path = folder / "upload.part"
        with path.open("wb") as out:
            await run_in_threadpool(shutil.copyfileobj, file.file, out, 1024 * 1024)
        return path, file.filename, contract
    finally:
        await form.close()  # its spooled file


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
    """The ``contract`` (query parameter or form field): a JSON object checked like a
    contract file."""
    if text is None:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(
            f"the contract is not JSON ({exc.msg} at position {exc.pos}); send the "
            "contract file's content as a JSON object",
            field="contract",
        ) from None
    if not isinstance(data, dict):
        raise SchemaError("the contract must be a JSON object", field="contract")
    return Contract.from_dict(data, origin="the contract sent with the upload")


@router.post(
    "/workspaces/{ws}/datasets/{name}/versions",
    response_model=UploadOut,
    status_code=status.HTTP_201_CREATED,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "contract": {
                                "type": "string",
                                "description": "The data contract as JSON (at most 1 MiB).",
                            },
                        },
                        "required": ["file", "contract"],
                    }
                },
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
        Query(
            description="The data contract as JSON, up to 8192 characters; a longer one "
            "(up to 1 MiB) goes in the `contract` field of a multipart/form-data upload."
        ),
    ] = None,
) -> object:
    """Add the uploaded file as a new version of dataset ``name``.

    The body is the raw file (CSV, Parquet or JSON lines), streamed to disk; or, to
    send a data contract with it, a ``multipart/form-data`` form of the fields
    ``contract`` (the contract as JSON) and ``file``. The same content twice gives
    the existing version (``created`` false, status 200).
    """
    validate_name(name, "dataset")
    check_encoding(encoding, InvalidInput)
    if contract is not None and len(contract) > MAX_CONTRACT_PARAM:
        raise InvalidInput(
            f"the contract parameter has {len(contract)} characters, more than the "
            f"{MAX_CONTRACT_PARAM} a query carries; send the contract as the `contract` "
            "field of a multipart/form-data upload (leptonic.Client does)",
            field="contract",
        )
    declared = _parse_contract(contract)
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    folder = Path(tempfile.mkdtemp(prefix="leptonic-upload-"))
    try:
        if kind == "multipart/form-data":
            received, part_filename, form_contract = await receive_form_upload(
                request, folder, request.app.state.max_upload_bytes
            )
            if declared is not None:
                raise InvalidInput(
                    "the contract is sent twice (query parameter and form field); send it once",
                    field="contract",
                )
            declared = _parse_contract(form_contract)
            filename = filename or part_filename
            upload_name = _upload_name(name, filename, format)
            path = received.rename(folder / upload_name)
        else:
            upload_name = _upload_name(name, filename, format)
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

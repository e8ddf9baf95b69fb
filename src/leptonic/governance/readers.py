"""Stream CSV, Parquet and JSON-lines files as Arrow record batches.

Files are never loaded whole: CSV and JSON lines are parsed block by block
(``pyarrow.csv.open_csv`` / ``pyarrow.json.open_json``) and Parquet row group
by row group (``ParquetFile.iter_batches``). Every problem a person can fix
in the file, or with an option, becomes a :class:`~leptonic.errors.DataError`
that names the file and the fix.

Column names are kept as written and must differ by more than case: SQL
(DuckDB, which reads the snapshots) matches names without regard to case.

The CSV reader lives in :mod:`leptonic.governance._csv`; the helpers that read
a stored Parquet snapshot through DuckDB are in :mod:`leptonic.governance.sql`.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from leptonic.errors import DataError, InvalidInput, LeptonicError
from leptonic.governance._csv import ColumnTypeConflict, open_csv

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "FORMATS",
    "BatchStream",
    "ColumnTypeConflict",
    "check_encoding",
    "detect_format",
    "encoding_error",
    "open_batches",
]

#: File suffix → format read by :func:`open_batches`.
FORMATS: dict[str, str] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "json",
    ".ndjson": "json",
    ".json": "json",
}

#: Bytes of text parsed at a time (CSV and JSON lines). Types are inferred
#: from the first block, so a larger block sees more rows before deciding.
DEFAULT_BLOCK_SIZE = 4 << 20

_PARQUET_BATCH_ROWS = 65_536
_JSON_TYPE_CHANGE = re.compile(r"Column\((/[^)]*)\) changed from (\w+) to (\w+)")
_JSON_TWICE = re.compile(r"Column\((/[^)]*)\) was specified twice")
#: Errors of a JSON-lines stream whose types were fixed by its first block.
_JSON_LATER_TYPE = re.compile(r"changed from \w+ to \w+|Failed to convert JSON to|unexpected field")
_JSON_UNPARSED = re.compile(r"couldn't parse:(.*)$", re.DOTALL)
#: JSON integers beyond int64 become float64 in Arrow's JSON reader.
_INT64_LIMIT = 2**63
_TIME_UNITS = ("s", "ms", "us", "ns")


def check_encoding(encoding: str | None, error: type[LeptonicError] = DataError) -> None:
    """Refuse (``error``, field ``encoding``) a name that is not a text encoding Python
    knows: an unknown one, or a codec such as ``hex`` or ``base64`` that maps bytes to
    bytes."""
    if encoding is None:
        return
    try:
        text = getattr(codecs.lookup(encoding), "_is_text_encoding", True)
    except LookupError:
        text = None
    if not text:
        known = "unknown text encoding" if text is None else "not a text encoding:"
        raise error(
            f"{known} {encoding!r}; use a Python codec name such as 'utf-8', 'latin-1' or 'cp1252'",
            field="encoding",
        )


def encoding_error(path: Path | str, detail: str, encoding: str | None) -> DataError:
    """The error for bytes that do not decode: names the encoding tried and the fix."""
    if encoding is None:
        fix = "pass --encoding latin-1 (or the file's encoding)"
    else:
        fix = "pass the file's real encoding with --encoding (e.g. latin-1, cp1252, utf-16)"
    tried = "UTF-8" if encoding is None else f"{encoding!r} text"
    return DataError(f"{path}: the file is not valid {tried} ({detail}); {fix}", field="encoding")


def detect_format(path: str | os.PathLike[str], fmt: str | None = None) -> str:
    """The format of ``path``: ``"csv"``, ``"parquet"`` or ``"json"``.

    ``fmt`` wins over the suffix and may be a format or a suffix (``"tsv"``).

    Examples
    --------
    >>> detect_format("applicants.tsv")
    'csv'
    >>> detect_format("data.bin", "parquet")
    'parquet'
    """
    supported = ", ".join(FORMATS)
    if fmt is not None:
        key = fmt.lower().lstrip(".")
        if key in ("csv", "parquet", "json"):
            return key
        if f".{key}" in FORMATS:
            return FORMATS[f".{key}"]
        raise InvalidInput(
            f"unknown format {fmt!r}: use csv, parquet or json (or one of the suffixes {supported})",
            field="fmt",
        )
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise DataError(
            f"{path}: unsupported file suffix {suffix or '(none)'!r}; supported suffixes are "
            f"{supported}; rename the file or pass --format csv|parquet|json",
            field="path",
        )
    return FORMATS[suffix]


class BatchStream:
    """An open, single-pass stream of record batches from one file.

    Use :func:`open_batches` to make one. Iterate it once; ``rows_read`` and
    ``bytes_read`` grow as batches come out (``bytes_read`` is approximate
    while parsing is ahead of the consumer). When the file holds no data row,
    iteration ends with a :class:`DataError`.

    Attributes
    ----------
    path
        The file read.
    format
        ``"csv"``, ``"parquet"`` or ``"json"``.
    schema
        The Arrow schema of the batches.
    total_bytes
        The file's size.
    """

    def __init__(
        self,
        path: Path,
        fmt: str,
        schema: pa.Schema,
        batches: Iterator[pa.RecordBatch],
        *,
        describe_error: Callable[[Exception], DataError],
        position: Callable[[], int] | None = None,
        total_bytes: int = 0,
        closers: tuple[Any, ...] = (),
    ) -> None:
        self.path = path
        self.format = fmt
        self.schema = schema
        self.total_bytes = total_bytes
        self.rows_read = 0
        self._batches = batches
        self._position = position
        self._closers = closers
        self._describe_error = describe_error
        self._bytes_done = 0

    @property
    def bytes_read(self) -> int:
        """Bytes of the file consumed so far (the whole size once exhausted)."""
        if self._bytes_done:
            return self._bytes_done
        if self._position is not None:
            try:
                return min(int(self._position()), self.total_bytes)
            except (OSError, ValueError):
                return 0
        return 0

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        try:
            while True:
                try:
                    batch = next(self._batches)
                except StopIteration:
                    break
                except (pa.ArrowException, UnicodeError) as exc:
                    raise self._describe_error(exc) from None
                if batch.num_rows == 0:
                    continue
                self.rows_read += batch.num_rows
                yield batch
        finally:
            self.close()
        self._bytes_done = self.total_bytes
        if self.rows_read == 0:
            what = "a header but no data rows" if self.format == "csv" else "no data rows"
            raise DataError(
                f"{self.path}: the file has {what}; add rows or pick another file",
                field="path",
            )

    def close(self) -> None:
        """Release the open file(s). Safe to call twice."""
        for closer in self._closers:
            with contextlib.suppress(Exception):  # closing is best effort
                closer.close()
        self._closers = ()

    def __enter__(self) -> BatchStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_batches(
    path: str | os.PathLike[str],
    *,
    fmt: str | None = None,
    delimiter: str | None = None,
    encoding: str | None = None,
    column_types: Mapping[str, pa.DataType] | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> BatchStream:
    """Open ``path`` for streaming as Arrow record batches.

    Parameters
    ----------
    path
        A CSV (``.csv``, ``.tsv``, ``.txt``), Parquet (``.parquet``, ``.pq``)
        or JSON-lines (``.jsonl``, ``.ndjson``, ``.json``) file.
    fmt
        ``"csv"``, ``"parquet"`` or ``"json"``, overriding the suffix.
    delimiter
        CSV field separator; ``","`` by default (``"\\t"`` for ``.tsv``).
    encoding
        Text encoding of a CSV or JSON-lines file; UTF-8 by default.
    column_types
        CSV and JSON lines: column name (as written in the file) → Arrow type,
        for columns whose type must not be inferred from the first block (see
        :class:`ColumnTypeConflict`). A JSON-lines file is then first scanned
        block by block, so that every column's type holds all its values.
    block_size
        Bytes parsed at a time for text formats.

    Returns
    -------
    BatchStream
        The open stream; its ``schema`` is known before the first batch.

    Raises
    ------
    DataError
        For a missing, empty, unreadable or malformed file, with the fix
        (naming lines and columns, never quoting a row), and for column
        names that are empty or that differ only in case.

    Notes
    -----
    CSV cells are values as written, with two rules for what is missing and
    one for what is a number:

    * an empty cell is missing, and so is ``NA``, ``N/A``, ``NULL``, ``NaN``
      (and Arrow's other default null markers), quoted or not, as pandas
      reads them: many exports (R's among them) write missing values that
      way, and some quote every cell (a quoted ``""`` in a numeric column is
      a missing number). A text column that holds such a word as a value
      (``NA``, Namibia's country code) must be renamed or re-coded upstream;
    * a column is read as numbers only while no value would change: a digit
      string with a leading zero (``007``, not ``0``), a hexadecimal literal
      or an integer beyond 2**53 (whose digits a float64 loses) makes the
      stream raise :class:`ColumnTypeConflict` with ``widened`` a string, in
      whichever block it comes (:func:`~leptonic.governance.ingest.write_parquet`
      then reads the column as text).

    JSON values keep their JSON types. A column whose type changes after the
    first block in a way one type still holds (integers then decimals, nulls
    then values, a new field) makes the stream raise
    :class:`ColumnTypeConflict` with the type that holds them all; a column
    holding an integer beyond the 64-bit range (which a JSON reader can only
    keep as an approximate float) is refused: such ids must be quoted.
    """
    p = Path(path)
    kind = detect_format(p, fmt)
    check_encoding(encoding)
    if not p.exists():
        raise DataError(f"{p}: no such file; check the path", field="path")
    if not p.is_file():
        raise DataError(f"{p}: not a regular file; pass the path of a data file", field="path")
    size = p.stat().st_size
    if size == 0:
        raise DataError(
            f"{p}: the file is empty (0 bytes); export the data again or pick another file",
            field="path",
        )
    if kind == "parquet":
        stream = _open_parquet(p, size)
    elif kind == "json":
        stream = _open_json(p, size, encoding, block_size, column_types or {})
    else:
        tab = (fmt or p.suffix).lower().lstrip(".") == "tsv"
        source = open_csv(
            p, delimiter, encoding, column_types or {}, block_size, default="\t" if tab else ","
        )
        stream = BatchStream(
            p,
            "csv",
            source.schema,
            source.batches,
            position=source.position,
            total_bytes=size,
            closers=source.closers,
            describe_error=source.describe_error,
        )
    try:
        try:
            names = stream.schema.names
        except UnicodeError as exc:
            raise encoding_error(p, f"in the column names: {exc}", encoding) from None
        _check_names(p, names)
    except BaseException:
        stream.close()
        raise
    return stream


def _check_names(path: Path, names: list[str]) -> None:
    """Refuse empty, repeated or clashing column names (kept as written: a dataset's
    next version must name its columns as the earlier ones did).

    Names clash when they are equal once case-folded: SQL does not tell
    ``Email`` from ``email``.
    """
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name.strip():
            hint = " (an unnamed first column is often a saved row index: name or drop it)"
            raise DataError(
                f"{path}: column #{i + 1} has an empty name; give every column a header"
                f"{hint if i == 0 else ''}",
                field="columns",
            )
        if "\ufffd" in name:
            raise DataError(
                f"{path}: column name {name!r} is not valid UTF-8; pass --encoding latin-1 "
                f"(or the file's encoding)",
                field="encoding",
            )
    dupes = sorted(n for n, k in Counter(names).items() if k > 1)
    if dupes:
        raise DataError(
            f"{path}: duplicate column name(s) {', '.join(map(repr, dupes))}; "
            f"rename them so that every column name is unique",
            field="columns",
        )
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(name.casefold(), []).append(name)
    for group in groups.values():
        if len(group) > 1:
            a, b = group[:2]
            raise DataError(
                f"{path}: column names {a!r} and {b!r} differ only in case, which SQL does "
                "not tell apart; rename one of them",
                field="columns",
            )


# -- Parquet -------------------------------------------------------------------


def _open_parquet(path: Path, size: int) -> BatchStream:
    try:
        pf = pq.ParquetFile(path)
        schema = pf.schema_arrow
    except (pa.ArrowException, OSError) as exc:
        raise DataError(
            f"{path}: not a readable Parquet file ({exc}); it may be truncated or corrupt: "
            f"export it again",
            field="path",
        ) from None
    num_rows = max(pf.metadata.num_rows, 1)
    stream: BatchStream

    def position() -> int:
        return size * stream.rows_read // num_rows

    def describe(exc: Exception) -> DataError:
        return DataError(
            f"{path}: the Parquet file is corrupt ({exc}); export it again", field="path"
        )

    stream = BatchStream(
        path,
        "parquet",
        schema,
        iter(pf.iter_batches(batch_size=_PARQUET_BATCH_ROWS)),
        position=position,
        total_bytes=size,
        closers=(pf,),
        describe_error=describe,
    )
    return stream


# -- JSON lines ----------------------------------------------------------------


class _IntText(str):
    """A JSON integer as written (``json.loads(..., parse_int=_IntText)``)."""


def _json_input(path: Path, encoding: str | None) -> tuple[Any, Any]:
    """The open file and a UTF-8 stream of it."""
    source = pa.OSFile(str(path), "rb")
    raw: Any = source
    if encoding is not None and codecs.lookup(encoding).name != "utf-8":
        raw = pa.transcoding_input_stream(source, encoding, "utf-8")
    return source, raw


def _json_error(path: Path, exc: Exception, encoding: str | None) -> DataError:
    """The error for an Arrow JSON reader's ``exc`` that no type widening gets past."""
    text = str(exc)
    if isinstance(exc, UnicodeError) or "utf-8" in text.lower() or "utf8" in text.lower():
        return encoding_error(path, text, encoding)
    if "Empty JSON" in text:
        return DataError(
            f"{path}: the file holds no JSON objects; export the data again",
            field="path",
        )
    m = _JSON_TWICE.search(text)
    if m:
        return DataError(
            f"{path}: duplicate column name {_json_path(m.group(1))!r} in an object; "
            f"rename it so that every key is unique",
            field="columns",
        )
    m = _JSON_TYPE_CHANGE.search(text)
    if m:
        return _json_type_change(path, _json_path(m.group(1)), m.group(2), m.group(3))
    return DataError(
        f"{path}: malformed JSON lines ({text}); each line must be one JSON object",
        field="path",
    )


def _json_path(pointer: str) -> str:
    """A field's path in Arrow's JSON errors (``/customer/[]/age``) as a column name."""
    return ".".join(part for part in pointer.split("/") if part and part != "[]")


def _json_type_change(path: Path, column: str, before: str, after: str) -> DataError:
    return DataError(
        f"{path}: column {column!r} changes from {before} to {after} values part-way through "
        f"the file; give the column one JSON type (e.g. quote every value) or convert the "
        f"file to CSV",
        field=column,
    )


def _json_kind(t: pa.DataType) -> str:
    """The kind of JSON values Arrow reads as ``t``."""
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return "number"
    if pa.types.is_string(t) or pa.types.is_timestamp(t):
        return "string"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_struct(t):
        return "object"
    if pa.types.is_list(t):
        return "array"
    return str(t)


def _merge_types(path: Path, column: str, a: pa.DataType, b: pa.DataType) -> pa.DataType:
    """The type that holds the values Arrow inferred as ``a`` (earlier) and ``b`` (later).

    Integers and decimals make float64, dates and other strings make strings,
    null makes the other type, objects merge field by field.

    Raises
    ------
    DataError
        When the JSON kinds differ (numbers and strings...), naming the column.
    """
    if a == b or pa.types.is_null(b):
        return a
    if pa.types.is_null(a):
        return b
    kinds = (_json_kind(a), _json_kind(b))
    if kinds == ("number", "number"):
        return pa.float64()
    if kinds == ("string", "string"):
        if pa.types.is_timestamp(a) and pa.types.is_timestamp(b):
            return max(a, b, key=lambda t: _TIME_UNITS.index(t.unit))
        return pa.string()
    if kinds == ("object", "object"):
        fields = {f.name: f.type for f in a}
        for f in b:
            before = fields.get(f.name)
            name = f"{column}.{f.name}"
            fields[f.name] = f.type if before is None else _merge_types(path, name, before, f.type)
        return pa.struct(list(fields.items()))
    if kinds == ("array", "array"):
        return pa.list_(_merge_types(path, column, a.value_type, b.value_type))
    raise _json_type_change(path, column, *kinds)


def _json_schema(path: Path, encoding: str | None, block_size: int) -> pa.Schema:
    """The schema that holds every line of a JSON-lines file.

    Each block of whole lines is read on its own and the inferred types
    merged (see :func:`_merge_types`); new fields are added in the order
    they first appear. The file is parsed once more, a block at a time.
    """
    merged: dict[str, pa.DataType] = {}
    exact_limit = 2**53  # the largest integers a float64 keeps exactly
    large: set[str] = set()  # integer columns holding values a float would round
    source, raw = _json_input(path, encoding)
    rest = b""
    try:
        while True:
            data = raw.read(block_size)
            buffer = rest + data
            cut = buffer.rfind(b"\n") + 1 if data else len(buffer)
            block, rest = buffer[:cut], buffer[cut:]
            if block.strip():
                options = pa_json.ReadOptions(block_size=len(block) + 1, use_threads=False)
                table = pa_json.read_json(pa.BufferReader(block), read_options=options)
                schema = table.schema
                for f, column in zip(schema, table.columns, strict=True):
                    if pa.types.is_integer(f.type) and column.null_count < len(column):
                        low, high = pc.min_max(column).values()
                        if max(abs(low.as_py()), abs(high.as_py())) > exact_limit:
                            large.add(f.name)
                for f in schema:
                    before = merged.get(f.name)
                    merged[f.name] = (
                        f.type if before is None else _merge_types(path, f.name, before, f.type)
                    )
            if not data:
                break
    except (pa.ArrowException, UnicodeError) as exc:
        raise _json_error(path, exc, encoding) from None
    finally:
        source.close()
    for name in sorted(large):
        if pa.types.is_floating(merged[name]):
            raise DataError(
                f"{path}: column {name!r} holds integers beyond 2**53 and, further down, "
                "decimals; as one number type they would be rounded (ids would change): "
                "quote the integers as strings, or keep the column to whole numbers",
                field=name,
            )
    return pa.schema(list(merged.items()))


def _json_conflict(
    path: Path, encoding: str | None, block_size: int, current: pa.Schema | None, text: str
) -> DataError | None:
    """A :class:`ColumnTypeConflict` for the first column whose type ``current`` lacks.

    ``current`` is the schema the stream inferred from its first block, and
    ``text`` the reader's error; a column no type holds is a plain DataError.
    None when the whole file fits ``current`` after all.
    """
    try:
        merged = _json_schema(path, encoding, block_size)
    except DataError as exc:
        return exc
    if current is None:
        return None
    m = _JSON_UNPARSED.search(text)
    value = m.group(1).strip() if m else ""
    for f in merged:
        index = current.get_field_index(f.name)
        before = current.field(index).type if index >= 0 else None
        if before != f.type:
            seen = "was absent from" if before is None else f"looked like {before} in"
            return ColumnTypeConflict(
                f"{path}: column {f.name!r} {seen} the first rows but holds other values "
                f"further down; read it as {f.type}",
                column=f.name,
                value=value,
                widened=f.type,
            )
    return None


def _open_json(
    path: Path,
    size: int,
    encoding: str | None,
    block_size: int,
    column_types: Mapping[str, pa.DataType],
) -> BatchStream:
    with open(path, "rb") as f:
        head = f.read(4096).lstrip()
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:].lstrip()
    if head.startswith(b"["):
        raise DataError(
            f"{path}: the file holds a JSON array; JSON files must hold one object per line "
            f"(JSON lines): convert it, e.g. with `jq -c '.[]' {path.name} > data.jsonl`",
            field="path",
        )
    parse = pa_json.ParseOptions()
    if column_types:  # a type changed after the first block: use the types of all blocks
        merged = _json_schema(path, encoding, block_size)
        explicit = pa.schema([(f.name, column_types.get(f.name, f.type)) for f in merged])
        parse = pa_json.ParseOptions(explicit_schema=explicit, unexpected_field_behavior="infer")
    source, raw = _json_input(path, encoding)
    current: pa.Schema | None = None

    def describe(exc: Exception) -> DataError:
        if not isinstance(exc, UnicodeError) and _JSON_LATER_TYPE.search(str(exc)):
            conflict = _json_conflict(path, encoding, block_size, current, str(exc))
            if conflict is not None:
                return conflict
        return _json_error(path, exc, encoding)

    try:
        reader = pa_json.open_json(
            raw,
            read_options=pa_json.ReadOptions(block_size=block_size),
            parse_options=parse,
        )
    except (pa.ArrowException, UnicodeError) as exc:
        source.close()
        raise describe(exc) from None
    current = reader.schema
    return BatchStream(
        path,
        "json",
        reader.schema,
        _checked(path, encoding, reader),
        position=source.tell,
        total_bytes=size,
        closers=(reader, source),
        describe_error=describe,
    )


def _float_leaves(
    names: tuple[str, ...], values: pa.Array
) -> Iterator[tuple[tuple[str, ...], pa.Array]]:
    """``(field path, values)`` of the floating-point parts of ``values``."""
    if pa.types.is_floating(values.type):
        yield names, values
    elif pa.types.is_struct(values.type):
        for f, child in zip(list(values.type), values.flatten(), strict=True):
            yield from _float_leaves((*names, f.name), child)
    elif pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
        yield from _float_leaves(names, pc.list_flatten(values))


def _json_values(value: Any, names: tuple[str, ...]) -> Iterator[Any]:
    """The values at field path ``names`` of a parsed JSON ``value`` (through arrays)."""
    if isinstance(value, list):
        for item in value:
            yield from _json_values(item, names)
    elif not names:
        yield value
    elif isinstance(value, dict) and names[0] in value:
        yield from _json_values(value[names[0]], names[1:])


def _big_json_integer(path: Path, encoding: str | None, names: tuple[str, ...]) -> str | None:
    """The first integer beyond the 64-bit range written at field path ``names``, if any."""
    utf8 = encoding is None or codecs.lookup(encoding).name == "utf-8"
    with open(path, encoding="utf-8-sig" if utf8 else encoding, errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                record = json.loads(line, parse_int=_IntText)
            except ValueError:
                continue
            for value in _json_values(record, names):
                if isinstance(value, _IntText) and (
                    len(value.lstrip("-")) > 19 or not -_INT64_LIMIT <= int(value) < _INT64_LIMIT
                ):
                    return str(value)
    return None


#: An integer literal of 19 digits or more (2**63 has 19): what may lie beyond int64.
_LONG_INTEGER = re.compile(rb"(?<![\d.eE])-?\d{19,}(?![\d.eE])")


def _has_long_integer(path: Path) -> bool:
    """Whether the file holds a 19+ digit integer literal anywhere (in a string too):
    one pass over its bytes, before any line is parsed again for one."""
    overlap = 64  # a literal cut by a chunk's end is found in the next one
    tail = b""
    with open(path, "rb") as f:
        while chunk := f.read(4 << 20):
            if _LONG_INTEGER.search(tail + chunk):
                return True
            tail = chunk[-overlap:]
    return False


def _checked(
    path: Path, encoding: str | None, batches: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """Pass batches through, refusing invalid UTF-8 and integers beyond the 64-bit range.

    The JSON reader does not check string bytes; a full validation does. It
    reads an integer beyond int64 as an approximate float (``1e+20``): a
    float field holding a value that large is looked up in the file's text.

    Raises
    ------
    DataError
        For a field holding such an integer, naming it and the fix.
    """
    exact: set[tuple[str, ...]] = set()
    long_literals: bool | None = None  # looked for once, on the first large float
    for batch in batches:
        for field, column in zip(batch.schema, batch.columns, strict=True):
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                column.validate(full=True)
            for names, values in _float_leaves((field.name,), column):
                if names in exact:
                    continue
                if not pc.any(pc.greater_equal(pc.abs(values), float(_INT64_LIMIT))).as_py():
                    continue
                if long_literals is None:
                    long_literals = _has_long_integer(path)
                literal = _big_json_integer(path, encoding, names) if long_literals else None
                if literal is None:
                    exact.add(names)
                    continue
                name = ".".join(names)
                shown = literal if len(literal) <= 30 else literal[:27] + "..."
                raise DataError(
                    f"{path}: column {name!r} holds the integer {shown}, beyond the 64-bit "
                    f"range, which JSON readers keep only as an approximate float (ids would "
                    f'change); quote such values as strings ({json.dumps(names[-1])}: "{shown}"), '
                    f"or convert the file to CSV, which keeps them as text",
                    field=name,
                )
        yield batch

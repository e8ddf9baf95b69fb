"""Stream CSV, Parquet and JSON-lines files as Arrow record batches.

Files are never loaded whole: CSV and JSON lines are parsed block by block
(``pyarrow.csv.open_csv`` / ``pyarrow.json.open_json``) and Parquet row group
by row group (``ParquetFile.iter_batches``). Every problem a person can fix
in the file, or with an option, becomes a :class:`~leptonic.errors.DataError`
that names the file and the fix.

The module also holds the small helpers that read a stored Parquet snapshot
through DuckDB (:func:`connect_duckdb`, :func:`parquet_sql`, :func:`quote_ident`),
shared by schema inference, quality checks and PII detection.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from leptonic.errors import DataError, InvalidInput

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "FORMATS",
    "BatchStream",
    "ColumnTypeConflict",
    "connect_duckdb",
    "detect_format",
    "open_batches",
    "parquet_sql",
    "quote_ident",
    "sample_sql",
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
_OTHER_DELIMITERS = (";", "\t", "|", ",")
_CONVERSION = re.compile(
    r"In CSV column #(\d+): CSV conversion error to ([^:]+): invalid value '(.*)'"
)
_JSON_TYPE_CHANGE = re.compile(r"Column\((/[^)]*)\) changed from (\w+) to (\w+)")
_JSON_TWICE = re.compile(r"Column\((/[^)]*)\) was specified twice")
_RAGGED = re.compile(r"(Expected \d+ columns?, got \d+)(?::.*)?", re.DOTALL)
_CAST_FAILED = re.compile(r"Failed to parse string: '(.*)' as a scalar of type", re.DOTALL)
#: Integers beyond this magnitude lose digits as float64 (and in JSON readers).
_MAX_EXACT_INT = 2**53
#: Values a number would change: a leading zero ("007", "0x1F"), or ...
_LEADING_ZERO = r"[+-]?0(?:[0-9]+|[xX][0-9A-Fa-f]+)"
#: ... an integer (digits only) beyond :data:`_MAX_EXACT_INT`.
_INTEGER = r"[+-]?[0-9]+"
#: CSV cells are trimmed of these before they are read as numbers (as Arrow does).
_BLANKS = " \t"


class ColumnTypeConflict(DataError):
    """A CSV column's values stop fitting the type inferred from the first rows.

    Also raised for a numeric column holding a value that a number would
    change (``007``, an integer beyond 2**53), with ``widened`` a string.

    Raised while iterating a :class:`BatchStream`. Reading the file again with
    ``column_types={column: widened}`` gets past the value; ingestion does so
    automatically.

    Attributes
    ----------
    column
        The column's name.
    value
        The first value that did not fit.
    widened
        A type that holds both the earlier values and ``value``'s kind.
    """

    def __init__(self, message: str, *, column: str, value: str, widened: pa.DataType) -> None:
        super().__init__(message, field=column)
        self.column = column
        self.value = value
        self.widened = widened


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


def _keeps_text(value: str) -> bool:
    """Whether reading ``value`` as a number would change it (see :func:`_first_textual`)."""
    text = value.strip(_BLANKS)
    if re.fullmatch(_LEADING_ZERO, text):
        return True
    if not re.fullmatch(_INTEGER, text):
        return False
    digits = text.lstrip("+-")
    limit = str(_MAX_EXACT_INT)
    return len(digits) > len(limit) or (len(digits) == len(limit) and digits > limit)


def _widen(current: pa.DataType, value: str) -> pa.DataType:
    """The narrowest type that holds ``current``'s values and ``value`` unchanged.

    A value with a leading zero or an integer beyond 2**53 only fits a string.
    Integers widen to float64 only because the CSV reader never lets an
    integer column hold one beyond 2**53 (see :func:`_numbers`), so every
    earlier value stays exact.
    """
    numeric = pa.types.is_null(current) or pa.types.is_integer(current)
    if numeric and not _keeps_text(value):
        for kind, parse in ((pa.int64(), int), (pa.float64(), float)):
            try:
                parse(value)
            except ValueError:
                continue
            if not (kind == pa.int64() and pa.types.is_integer(current)):
                return kind
    return pa.string()


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
                except (pa.ArrowException, UnicodeDecodeError) as exc:
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
        CSV only: column name → Arrow type, for columns whose type must not be
        inferred from the first block (see :class:`ColumnTypeConflict`).
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
        (naming lines and columns, never quoting a row).

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
    """
    p = Path(path)
    kind = detect_format(p, fmt)
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise DataError(
                f"unknown text encoding {encoding!r}; use a Python codec name such as "
                f"'utf-8', 'latin-1' or 'cp1252'",
                field="encoding",
            ) from None
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
        stream = _open_json(p, size, encoding, block_size)
    else:
        tab = (fmt or p.suffix).lower().lstrip(".") == "tsv"
        if delimiter is None and tab:
            delimiter = "\t"
        stream = _open_csv(p, size, delimiter, encoding, column_types or {}, block_size)
    try:
        try:
            names = stream.schema.names
        except UnicodeDecodeError as exc:
            raise DataError(
                f"{p}: the column names are not valid UTF-8 ({exc}); pass --encoding latin-1 "
                f"(or the file's encoding)",
                field="encoding",
            ) from None
        _check_names(p, names)
    except BaseException:
        stream.close()
        raise
    return stream


def _check_names(path: Path, names: list[str]) -> None:
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


def _open_json(path: Path, size: int, encoding: str | None, block_size: int) -> BatchStream:
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
    source = pa.OSFile(str(path), "rb")
    raw: Any = source
    if encoding is not None and codecs.lookup(encoding).name != "utf-8":
        raw = pa.transcoding_input_stream(source, encoding, "utf-8")

    def describe(exc: Exception) -> DataError:
        text = str(exc)
        if isinstance(exc, UnicodeDecodeError) or "utf-8" in text.lower() or "utf8" in text.lower():
            return DataError(
                f"{path}: the file is not valid UTF-8 ({text}); pass --encoding latin-1 "
                f"(or the file's encoding)",
                field="encoding",
            )
        if "Empty JSON" in text:
            return DataError(
                f"{path}: the file holds no JSON objects; export the data again",
                field="path",
            )
        m = _JSON_TWICE.search(text)
        if m:
            return DataError(
                f"{path}: duplicate column name {m.group(1).lstrip('/')!r} in an object; "
                f"rename it so that every key is unique",
                field="columns",
            )
        m = _JSON_TYPE_CHANGE.search(text)
        if m:
            return DataError(
                f"{path}: column {m.group(1).lstrip('/')!r} changes from {m.group(2)} to "
                f"{m.group(3)} values part-way through the file; give the column one JSON type "
                f"(e.g. quote every value) or convert the file to CSV",
                field=m.group(1).lstrip("/"),
            )
        return DataError(
            f"{path}: malformed JSON lines ({text}); each line must be one JSON object",
            field="path",
        )

    try:
        reader = pa_json.open_json(raw, read_options=pa_json.ReadOptions(block_size=block_size))
    except (pa.ArrowException, UnicodeDecodeError) as exc:
        source.close()
        raise describe(exc) from None
    return BatchStream(
        path,
        "json",
        reader.schema,
        _checked_utf8(reader),
        position=source.tell,
        total_bytes=size,
        closers=(reader, source),
        describe_error=describe,
    )


def _checked_utf8(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Pass batches through, refusing string columns that hold invalid UTF-8.

    The JSON reader does not check string bytes; a full validation does.
    """
    for batch in batches:
        for column in batch.columns:
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                column.validate(full=True)
        yield batch


# -- CSV -----------------------------------------------------------------------


def _first_line(path: Path, encoding: str | None) -> str:
    with open(path, "rb") as f:
        head = f.read(65_536)
    line = head.split(b"\n", 1)[0].rstrip(b"\r")
    return line.decode(encoding or "utf-8", errors="replace").lstrip("\ufeff")


def _sniff_delimiter(path: Path, header: str, delimiter: str) -> None:
    """Refuse a header that only splits on another common separator."""
    if delimiter in header:
        return
    for other in _OTHER_DELIMITERS:
        if other != delimiter and other in header:
            shown = "\\t" if other == "\t" else other
            raise DataError(
                f"{path}: the header {header[:80]!r} has no {delimiter!r} but looks "
                f"'{shown}'-separated: pass --delimiter '{shown}' (delimiter={other!r} in Python)",
                field="delimiter",
            )


def _ragged_row(path: Path, delimiter: str, encoding: str | None) -> tuple[int, int, int] | None:
    """(line number, expected fields, fields found) of the first ragged CSV row.

    Raises
    ------
    DataError
        When Python's CSV reader cannot parse the file either (its message
        names the line, never the row's content).
    """
    with open(path, newline="", encoding=encoding or "utf-8", errors="replace") as f:
        reader = csv.reader(f, delimiter=delimiter)
        expected: int | None = None
        try:
            for row in reader:
                if not row:
                    continue
                if expected is None:
                    expected = len(row)
                elif len(row) != expected:
                    return reader.line_num, expected, len(row)
        except csv.Error as exc:
            raise DataError(
                f"{path}: malformed CSV near line {reader.line_num} ({exc}); fix that row "
                f"(quote values that contain {delimiter!r} or line breaks) or pass the right "
                f"--delimiter",
                field="path",
            ) from None
    return None


def _without_rows(text: str) -> str:
    """An Arrow CSV error message without the offending row's content."""
    return _RAGGED.sub(r"\1", text)


def _is_number_type(t: pa.DataType) -> bool:
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t))


def _first_textual(values: pa.Array, *, integers: bool) -> int | None:
    """Index of the first value that reading as a number would change, if any.

    Those are digit strings with a leading zero (``"007"``, but not ``"0"``),
    integers beyond 2**53, whose digits a float64 (or a JSON reader) would not
    keep, and, when ``values`` parsed as ``integers``, any that is not decimal
    digits (Arrow reads ``"0x1F"`` as 31). ``values`` are trimmed.
    """
    digits = pc.ascii_ltrim(values, "+-")
    decimal = pc.ascii_is_decimal(digits)
    length = pc.binary_length(digits)
    textual = pc.and_(decimal, pc.and_(pc.starts_with(digits, "0"), pc.greater(length, 1)))
    if integers:
        textual = pc.or_(textual, pc.invert(decimal))
    limit = str(_MAX_EXACT_INT)
    long = pc.and_(decimal, pc.greater_equal(length, len(limit)))
    if pc.any(long).as_py():
        beyond = pc.or_(
            pc.greater(length, len(limit)),
            pc.and_(pc.equal(length, len(limit)), pc.greater(digits, limit)),
        )
        textual = pc.or_(textual, pc.and_(long, beyond))
    index = int(pc.index(textual, True).as_py())
    return None if index < 0 else index


def _type_conflict(
    path: Path, name: str, current: pa.DataType, value: str, widened: pa.DataType
) -> ColumnTypeConflict:
    return ColumnTypeConflict(
        f"{path}: column {name!r} looked like {current} in the first rows but holds "
        f"{value!r} further down; read it as {widened}",
        column=name,
        value=value,
        widened=widened,
    )


def _numbers(path: Path, name: str, raw: pa.Array, kind: pa.DataType) -> pa.Array:
    """CSV text of a numeric column as ``kind``, refusing a value that would change.

    Raises
    ------
    ColumnTypeConflict
        For a value that does not parse as ``kind``, or that a number would
        change (a leading zero, an integer beyond 2**53): the column must be
        read with the wider type it names.
    """
    values = pc.ascii_trim(raw, _BLANKS)
    try:
        numbers = pc.cast(values, kind)
    except pa.ArrowInvalid as exc:
        m = _CAST_FAILED.search(str(exc))
        value = m.group(1) if m else ""
        raise _type_conflict(
            path, name, kind, value, _widen(kind, value) if m else pa.string()
        ) from None
    index = _first_textual(values, integers=pa.types.is_integer(kind))
    if index is not None:
        value = str(raw[index].as_py())
        raise ColumnTypeConflict(
            f"{path}: column {name!r} holds {value!r}, which a number would change (a leading "
            f"zero, or an integer beyond 2**53); read it as {pa.string()}",
            column=name,
            value=value,
            widened=pa.string(),
        )
    return numbers


def _converted(
    path: Path, reader: Any, schema: pa.Schema, numeric: Mapping[int, pa.DataType]
) -> Iterator[pa.RecordBatch]:
    """The reader's batches, with the ``numeric`` columns (read as text) converted."""
    for batch in reader:
        if numeric:
            arrays = list(batch.columns)
            for i, kind in numeric.items():
                arrays[i] = _numbers(path, schema.names[i], arrays[i], kind)
            batch = pa.RecordBatch.from_arrays(arrays, schema=schema)
        yield batch


def _open_csv(
    path: Path,
    size: int,
    delimiter: str | None,
    encoding: str | None,
    column_types: Mapping[str, pa.DataType],
    block_size: int,
) -> BatchStream:
    explicit = delimiter is not None
    sep = delimiter or ","
    if len(sep) != 1:
        raise InvalidInput(
            f"delimiter {sep!r} must be a single character (e.g. ',' ';' '|' or '\\t')",
            field="delimiter",
        )
    utf8 = encoding is None or codecs.lookup(encoding).name == "utf-8"
    header = _first_line(path, encoding)
    if not header.strip():
        raise DataError(
            f"{path}: the first line is blank; it must hold the column names", field="path"
        )
    _sniff_delimiter(path, header, sep)
    schema = pa.schema([])

    def encoding_error(detail: str) -> DataError:
        return DataError(
            f"{path}: the file is not valid UTF-8 ({detail}); pass --encoding latin-1 "
            f"(or the file's encoding)",
            field="encoding",
        )

    def describe(exc: Exception) -> DataError:
        text = _without_rows(str(exc))
        if isinstance(exc, UnicodeDecodeError) or "invalid UTF8" in text:
            return encoding_error(text)
        m = _CONVERSION.search(text)
        if m and int(m.group(1)) < len(schema):
            index = int(m.group(1))
            current = schema.field(index).type
            value = m.group(3)
            return _type_conflict(path, schema.names[index], current, value, _widen(current, value))
        if "Expected" in text and "columns" in text:
            found = _ragged_row(path, sep, encoding)
            if found is not None:
                line, expected, got = found
                return DataError(
                    f"{path}: row at line {line} has {got} field(s) where the header has "
                    f"{expected}; fix that row (quote values that contain {sep!r}) or pass "
                    f"the right --delimiter",
                    field="path",
                )
            return DataError(f"{path}: malformed CSV ({text})", field="path")
        return DataError(f"{path}: unreadable CSV ({text})", field="path")

    def open_reader(types: Mapping[str, pa.DataType]) -> tuple[Any, Any]:
        source = pa.OSFile(str(path), "rb")
        try:
            reader = pa_csv.open_csv(
                source,
                read_options=pa_csv.ReadOptions(
                    block_size=block_size, encoding=encoding or "utf8", use_threads=True
                ),
                parse_options=pa_csv.ParseOptions(delimiter=sep, newlines_in_values=True),
                convert_options=pa_csv.ConvertOptions(
                    column_types=dict(types),
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=True,
                ),
            )
        except (pa.ArrowException, UnicodeDecodeError) as exc:
            source.close()
            if "Empty CSV" in str(exc):
                raise DataError(
                    f"{path}: the file holds no CSV header or rows; export the data again",
                    field="path",
                ) from None
            raise describe(exc) from None
        return reader, source

    # Numeric columns are read as text and converted batch by batch, so that a
    # value a number would change (see _first_textual) is caught in every block.
    forced = {n: t for n, t in column_types.items() if _is_number_type(t)}
    as_text = {**column_types, **{n: pa.string() for n in forced}}
    reader, source = open_reader(as_text)
    try:
        names = reader.schema.names
    except UnicodeDecodeError as exc:
        reader.close()
        source.close()
        raise encoding_error(f"in the column names: {exc}") from None
    inferred = {n: t for n, t in zip(names, reader.schema.types, strict=True) if _is_number_type(t)}
    if inferred:
        reader.close()
        source.close()
        reader, source = open_reader({**as_text, **{n: pa.string() for n in inferred}})
    numeric = {**forced, **inferred}
    fields = zip(names, reader.schema, strict=True)
    schema = pa.schema([f.with_type(numeric[n]) if n in numeric else f for n, f in fields])
    if utf8:
        binary = [f.name for f in schema if pa.types.is_binary(f.type)]
        if binary:
            reader.close()
            source.close()
            raise encoding_error(f"column(s) {', '.join(map(repr, binary))} hold other bytes")
    if len(schema) == 1 and not explicit:
        _sniff_delimiter(path, schema.names[0], sep)
    positions = {i: numeric[n] for i, n in enumerate(names) if n in numeric}
    return BatchStream(
        path,
        "csv",
        schema,
        _converted(path, reader, schema, positions),
        position=source.tell,
        total_bytes=size,
        closers=(reader, source),
        describe_error=describe,
    )


# -- DuckDB over stored Parquet ----------------------------------------------------


def quote_ident(name: str) -> str:
    """``name`` as a double-quoted SQL identifier.

    Examples
    --------
    >>> print(quote_ident("net income"))
    "net income"
    """
    return '"' + name.replace('"', '""') + '"'


def parquet_sql(path: str | os.PathLike[str], **options: bool) -> str:
    """A ``read_parquet('<path>')`` table expression with the path safely quoted."""
    literal = "'" + os.fspath(path).replace("'", "''") + "'"
    extra = "".join(f", {k}={'true' if v else 'false'}" for k, v in options.items())
    return f"read_parquet({literal}{extra})"


def sample_sql(path: str | os.PathLike[str], num_rows: int, sample_size: int) -> str:
    """A subquery over about ``sample_size`` evenly spaced rows of a Parquet file.

    Every k-th row is taken, so the sample spans the file and is the same on
    every run; ``num_rows`` is the file's row count.
    """
    step = max(1, -(-num_rows // max(sample_size, 1)))
    if step == 1:
        return parquet_sql(path)
    source = parquet_sql(path, file_row_number=True)
    return f"(SELECT * EXCLUDE (file_row_number) FROM {source} WHERE file_row_number % {step} = 0)"


@contextlib.contextmanager
def connect_duckdb(
    *, memory_limit: str = "512MB", temp_directory: str | os.PathLike[str] | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open a fresh in-memory DuckDB connection with bounded memory, as a context manager.

    Parameters
    ----------
    memory_limit
        DuckDB's own memory cap; larger work spills to disk.
    temp_directory
        The folder in which a private spill folder is made; the system temp
        folder when ``None``. The spill folder is removed on exit.

    Examples
    --------
    >>> with connect_duckdb() as con:
    ...     con.execute("SELECT 1 + 1").fetchone()
    (2,)
    """
    import duckdb

    spill = tempfile.mkdtemp(prefix="leptonic-duckdb-", dir=temp_directory)
    try:
        con = duckdb.connect(
            config={
                "memory_limit": memory_limit,
                "temp_directory": spill,
                "preserve_insertion_order": False,
            }
        )
        try:
            yield con
        finally:
            con.close()
    finally:
        shutil.rmtree(spill, ignore_errors=True)

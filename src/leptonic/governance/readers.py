"""Stream CSV, Parquet and JSON-lines files as Arrow record batches.

Files are never loaded whole: CSV and JSON lines are parsed block by block
(``pyarrow.csv.open_csv`` / ``pyarrow.json.open_json``) and Parquet row group
by row group (``ParquetFile.iter_batches``). Every problem a person can fix
in the file, or with an option, becomes a :class:`~leptonic.errors.DataError`
that names the file and the fix.

The CSV reader lives in :mod:`leptonic.governance._csv`; the helpers that read
a stored Parquet snapshot through DuckDB are in :mod:`leptonic.governance.sql`.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa
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
        stream = _open_json(p, size, encoding, block_size)
    else:
        tab = (fmt or p.suffix).lower().lstrip(".") == "tsv"
        if delimiter is None and tab:
            delimiter = "\t"
        source = open_csv(p, delimiter, encoding, column_types or {}, block_size)
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
    except (pa.ArrowException, UnicodeError) as exc:
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

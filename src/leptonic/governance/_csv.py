"""Reading CSV files for :func:`~leptonic.governance.readers.open_batches`.

When no delimiter is given, the header is checked for another common
separator than the default one (an explicit delimiter is trusted), and Arrow's
errors become a :class:`~leptonic.errors.DataError` that names the line of a
ragged row (found again with Python's CSV reader) and never quotes it.
Numeric columns are read as text and converted batch by batch, so that a
value a number would change (``007``, an integer beyond 2**53) or one that
does not fit the type inferred from the first block raises
:class:`ColumnTypeConflict` with a wider type to read the column as.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from leptonic.errors import DataError, InvalidInput

__all__ = ["ColumnTypeConflict", "CsvSource", "open_csv"]

_OTHER_DELIMITERS = (";", "\t", "|", ",")
_CONVERSION = re.compile(
    r"In CSV column #(\d+): CSV conversion error to ([^:]+): invalid value '(.*)'"
)
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

    Raised while iterating a :class:`~leptonic.governance.readers.BatchStream`.
    Reading the file again with ``column_types={column: widened}`` gets past
    the value; ingestion does so automatically.

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


class CsvSource(NamedTuple):
    """An open CSV file: what :class:`~leptonic.governance.readers.BatchStream` streams.

    :func:`open_csv` returns the parts and ``open_batches`` wraps them, so
    that this module does not import :mod:`leptonic.governance.readers`.
    """

    schema: pa.Schema
    batches: Iterator[pa.RecordBatch]
    position: Callable[[], int]
    closers: tuple[Any, ...]
    describe_error: Callable[[Exception], DataError]


def open_csv(
    path: Path,
    delimiter: str | None,
    encoding: str | None,
    column_types: Mapping[str, pa.DataType],
    block_size: int,
    *,
    default: str = ",",
) -> CsvSource:
    """Open a CSV file; ``delimiter`` ``None`` means ``default``, checked against the header."""
    explicit = delimiter is not None
    sep = delimiter if delimiter is not None else default
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
    if not explicit:
        _sniff_delimiter(path, header, sep)
    schema = pa.schema([])

    def encoding_problem(detail: str) -> DataError:
        from leptonic.governance.readers import encoding_error

        return encoding_error(path, detail, encoding)

    def describe(exc: Exception) -> DataError:
        text = _without_rows(str(exc))
        if isinstance(exc, UnicodeError) or "invalid UTF8" in text:
            return encoding_problem(text)
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
        except (pa.ArrowException, UnicodeError) as exc:
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
    except UnicodeError as exc:
        reader.close()
        source.close()
        raise encoding_problem(f"in the column names: {exc}") from None
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
            raise encoding_problem(f"column(s) {', '.join(map(repr, binary))} hold other bytes")
    if len(schema) == 1 and not explicit:
        _sniff_delimiter(path, schema.names[0], sep)
    positions = {i: numeric[n] for i, n in enumerate(names) if n in numeric}
    return CsvSource(
        schema,
        _converted(path, reader, schema, positions),
        position=source.tell,
        closers=(reader, source),
        describe_error=describe,
    )

"""Streaming readers: formats, batches, and a clear error for every bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from leptonic.errors import DataError, InvalidInput
from leptonic.governance import _csv, readers
from leptonic.governance.readers import (
    FORMATS,
    ColumnTypeConflict,
    detect_format,
    open_batches,
)


def _write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


def _read_all(path: Path, **kwargs: object) -> pa.Table:
    stream = open_batches(path, **kwargs)  # type: ignore[arg-type]
    return pa.Table.from_batches(list(stream), schema=stream.schema)


# -- formats -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.csv", "csv"),
        ("a.TSV", "csv"),
        ("a.txt", "csv"),
        ("a.parquet", "parquet"),
        ("a.pq", "parquet"),
        ("a.jsonl", "json"),
        ("a.ndjson", "json"),
        ("a.json", "json"),
    ],
)
def test_format_from_suffix(name: str, fmt: str) -> None:
    assert detect_format(name) == fmt


def test_explicit_format_wins_and_accepts_suffix_names() -> None:
    assert detect_format("data.bin", "parquet") == "parquet"
    assert detect_format("data.bin", "tsv") == "csv"
    with pytest.raises(InvalidInput, match="unknown format 'xls'"):
        detect_format("data.bin", "xls")


def test_unsupported_suffix_lists_the_supported_ones(tmp_path: Path) -> None:
    path = _write(tmp_path / "book.xlsx", "a,b\n1,2\n")
    with pytest.raises(DataError, match=r"unsupported file suffix '\.xlsx'.*\.csv, \.tsv") as err:
        open_batches(path)
    assert all(suffix in str(err.value) for suffix in FORMATS)
    assert str(path) in str(err.value)


# -- CSV -----------------------------------------------------------------------


def test_csv_streams_in_several_batches(tmp_path: Path) -> None:
    lines = "".join(f"{i},{i * 0.5},name{i % 7}\n" for i in range(20_000))
    path = _write(tmp_path / "big.csv", "id,value,cat\n" + lines)
    stream = open_batches(path, block_size=32_768)
    sizes = [b.num_rows for b in stream]
    assert len(sizes) > 5
    assert sum(sizes) == stream.rows_read == 20_000
    assert stream.bytes_read == path.stat().st_size
    assert stream.schema.names == ["id", "value", "cat"]
    assert [str(t) for t in stream.schema.types] == ["int64", "double", "string"]


def test_csv_missing_values_and_empty_strings_are_null(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.csv", "a,b\n1,x\n,\nNA,y\n")
    table = _read_all(path)
    assert table.column("a").to_pylist() == [1, None, None]
    assert table.column("b").to_pylist() == ["x", None, "y"]


def test_quoted_missing_values_are_missing(tmp_path: Path) -> None:
    # an export that quotes every cell: "" is a missing number, not a text column
    path = _write(tmp_path / "c.csv", 'n,s\n"1","a"\n"","NA"\n"3",""\n')
    table = _read_all(path)
    assert str(table.schema.field("n").type) == "int64"
    assert table.column("n").to_pylist() == [1, None, 3]
    assert table.column("s").to_pylist() == ["a", None, None]


def test_ordinary_numbers_are_inferred(tmp_path: Path) -> None:
    path = _write(tmp_path / "n.csv", "i,x,s\n1,2.5,a\n-30,0,b\n0,1e3,c\n,NaN,d\n 7 ,-0.25,e\n")
    table = _read_all(path)
    assert [str(t) for t in table.schema.types] == ["int64", "double", "string"]
    assert table.column("i").to_pylist() == [1, -30, 0, None, 7]
    assert table.column("x").to_pylist() == [2.5, 0.0, 1000.0, None, -0.25]


@pytest.mark.parametrize(
    ("values", "first"),
    [
        (["007", "012", "3"], "007"),  # codes with leading zeros
        (["1", "-012"], "-012"),
        (["0x1F", "12"], "0x1F"),  # hexadecimal
        (["1", "12345678901234567890"], "12345678901234567890"),  # beyond int64
        (["1", "9007199254740993"], "9007199254740993"),  # beyond 2**53
        (["1.5", "9007199254740993"], "9007199254740993"),  # in a float column too
        (["0.5", "00012"], "00012"),
    ],
)
def test_values_a_number_would_change_are_not_read_as_numbers(
    tmp_path: Path, values: list[str], first: str
) -> None:
    path = _write(tmp_path / "z.csv", "code,n\n" + "".join(f"{v},1\n" for v in values))
    with pytest.raises(ColumnTypeConflict) as err:
        _read_all(path)
    assert (err.value.column, err.value.value, err.value.widened) == ("code", first, pa.string())
    table = _read_all(path, column_types={"code": pa.string()})
    assert table.column("code").to_pylist() == values


def test_numbers_up_to_2_53_stay_numbers(tmp_path: Path) -> None:
    path = _write(tmp_path / "b.csv", "a,b\n9007199254740992,0\n-9007199254740992,1.5\n")
    table = _read_all(path)
    assert table.column("a").to_pylist() == [2**53, -(2**53)]
    assert table.column("b").to_pylist() == [0.0, 1.5]


def test_a_leading_zero_after_the_first_block_is_caught(tmp_path: Path) -> None:
    rows = "".join(f"{i + 1},{i}\n" for i in range(30_000))
    path = _write(tmp_path / "z.csv", "zip,n\n" + rows + "02134,1\n")
    with pytest.raises(ColumnTypeConflict) as err:
        list(open_batches(path, block_size=16_384))
    assert (err.value.column, err.value.value, err.value.widened) == ("zip", "02134", pa.string())


def test_tsv_uses_tab_and_explicit_delimiter_is_honoured(tmp_path: Path) -> None:
    assert _read_all(_write(tmp_path / "a.tsv", "a\tb\n1\t2\n")).num_columns == 2
    table = _read_all(_write(tmp_path / "s.csv", "a;b\n1;2\n"), delimiter=";")
    assert table.column_names == ["a", "b"]
    table = _read_all(_write(tmp_path / "t.txt", "a\tb\n1\t2\n"), fmt="tsv")
    assert table.column_names == ["a", "b"]


def test_quoted_newlines_and_delimiters_stay_in_one_value(tmp_path: Path) -> None:
    path = _write(tmp_path / "q.csv", 'id,note\n1,"one, two"\n2,"line\nbreak"\n')
    assert _read_all(path).column("note").to_pylist() == ["one, two", "line\nbreak"]


def test_byte_order_mark_and_windows_line_ends(tmp_path: Path) -> None:
    table = _read_all(_write(tmp_path / "w.csv", b"\xef\xbb\xbfa,b\r\n1,2\r\n"))
    assert table.to_pylist() == [{"a": 1, "b": 2}]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file; check the path"):
        open_batches(tmp_path / "absent.csv")


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(DataError, match="not a regular file"):
        open_batches(tmp_path / "d.csv")


def test_zero_byte_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "empty.csv", "")
    with pytest.raises(DataError, match=r"empty \(0 bytes\); export the data again"):
        open_batches(path)


def test_header_only_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "header.csv", "a,b,c\n")
    stream = open_batches(path)
    with pytest.raises(DataError, match="has a header but no data rows") as err:
        list(stream)
    assert str(path) in str(err.value)


def test_blank_first_line(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="first line is blank"):
        open_batches(_write(tmp_path / "b.csv", "\n1,2\n"))


@pytest.mark.parametrize(("sep", "shown"), [(";", ";"), ("\t", "\\t"), ("|", "|")])
def test_wrong_delimiter_is_named(tmp_path: Path, sep: str, shown: str) -> None:
    path = _write(tmp_path / "w.csv", f"a{sep}b{sep}c\n1{sep}2{sep}3\n4{sep}5{sep}6\n")
    expected = f"looks '{shown}'-separated: pass --delimiter '{shown}'"
    with pytest.raises(DataError, match=re.escape(expected)):
        open_batches(path)


def test_wrong_delimiter_with_commas_inside_rows(tmp_path: Path) -> None:
    path = _write(tmp_path / "eu.csv", "name;amount\nx;1,5\ny;2,25\n")
    with pytest.raises(DataError, match="looks ';'-separated: pass --delimiter ';'"):
        open_batches(path)


def test_invalid_utf8_values(tmp_path: Path) -> None:
    path = _write(tmp_path / "latin.csv", "city,n\nM\xfcnchen,1\nK\xf6ln,2\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"not valid UTF-8.*pass --encoding latin-1"):
        open_batches(path)
    table = _read_all(path, encoding="latin-1")
    assert table.column("city").to_pylist() == ["München", "Köln"]


def test_invalid_utf8_header(tmp_path: Path) -> None:
    path = _write(tmp_path / "h.csv", "St\xe4dte,n\nx,1\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"not valid UTF-8.*pass --encoding latin-1"):
        open_batches(path)


def test_invalid_utf8_after_the_first_block(tmp_path: Path) -> None:
    head = b"a,s\n" + b"".join(b"%d,ok\n" % i for i in range(20_000))
    path = _write(tmp_path / "late.csv", head + b"1,caf\xe9\n")
    stream = open_batches(path, block_size=16_384)
    with pytest.raises(DataError, match=r"not valid UTF-8.*pass --encoding latin-1"):
        list(stream)


def test_duplicate_column_names_are_named(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.csv", "id,amount,id,amount,x\n1,2,3,4,5\n")
    with pytest.raises(DataError, match=r"duplicate column name\(s\) 'amount', 'id'"):
        open_batches(path)


def test_empty_column_name(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="column #2 has an empty name"):
        open_batches(_write(tmp_path / "e.csv", "a,,c\n1,2,3\n"))


def test_ragged_row_reports_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.csv", "a,b,c\n1,2,3\n4,5,6\n7,8\n9,10,11\n")
    with pytest.raises(DataError, match="row at line 4 has 2 field"):
        list(open_batches(path))


def test_ragged_row_far_down_the_file(tmp_path: Path) -> None:
    rows = "".join(f"{i},{i},{i}\n" for i in range(30_000))
    path = _write(tmp_path / "r.csv", "a,b,c\n" + rows + "1,2,3,4\n")
    with pytest.raises(DataError, match="row at line 30002 has 4 field"):
        list(open_batches(path, block_size=16_384))


def test_ragged_row_error_never_quotes_the_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path / "r.csv", "a,b\n1,2\nada@example.com,Ada Lovelace,1815\n")
    with pytest.raises(DataError, match="line 3 has 3 field") as err:
        list(open_batches(path))
    assert "ada@example.com" not in str(err.value)
    # when Python's csv module does not find the row, Arrow's message is shown without it
    monkeypatch.setattr(_csv, "_ragged_row", lambda *_: None)
    with pytest.raises(DataError, match="Expected 2 columns, got 3") as err:
        list(open_batches(path))
    assert "ada@example.com" not in str(err.value) and "Lovelace" not in str(err.value)


def test_ragged_row_that_python_cannot_parse_is_a_data_error(tmp_path: Path) -> None:
    # a field beyond the csv module's size limit, then a ragged row
    big = "x" * 200_000
    path = _write(tmp_path / "r.csv", f'a,b\n1,"{big}"\nada@example.com,Ada,1815\n')
    with pytest.raises(DataError, match=r"malformed CSV near line \d+ \(field larger") as err:
        list(open_batches(path))
    assert "ada@example.com" not in str(err.value)


def test_type_conflict_after_first_block_names_column_and_wider_type(tmp_path: Path) -> None:
    rows = "".join(f"{i},{i}\n" for i in range(30_000))
    path = _write(tmp_path / "t.csv", "code,n\n" + rows + "A17,1\n")
    stream = open_batches(path, block_size=16_384)
    with pytest.raises(ColumnTypeConflict, match="column 'code' looked like int64") as err:
        list(stream)
    assert err.value.column == "code"
    assert err.value.value == "A17"
    assert err.value.widened == pa.string()
    table = _read_all(path, block_size=16_384, column_types={"code": err.value.widened})
    assert table.column("code").to_pylist()[-1] == "A17"


def test_integer_column_widens_to_float_for_a_decimal(tmp_path: Path) -> None:
    rows = "".join(f"{i}\n" for i in range(30_000))
    path = _write(tmp_path / "f.csv", "x\n" + rows + "2.5\n")
    with pytest.raises(ColumnTypeConflict) as err:
        list(open_batches(path, block_size=16_384))
    assert err.value.widened == pa.float64()


def test_integer_column_widens_to_text_for_an_integer_a_float_would_round(tmp_path: Path) -> None:
    rows = "".join(f"{i}\n" for i in range(30_000))
    path = _write(tmp_path / "f.csv", "x\n" + rows + "12345678901234567890\n")
    with pytest.raises(ColumnTypeConflict) as err:
        list(open_batches(path, block_size=16_384))
    assert err.value.widened == pa.string()
    # read as float64 (e.g. after a decimal further up), such an integer still goes to text
    with pytest.raises(ColumnTypeConflict) as err:
        list(open_batches(path, block_size=16_384, column_types={"x": pa.float64()}))
    assert (err.value.value, err.value.widened) == ("12345678901234567890", pa.string())


def test_bad_delimiter_argument(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="single character"):
        open_batches(_write(tmp_path / "a.csv", "a,b\n1,2\n"), delimiter=";;")


# -- Parquet -------------------------------------------------------------------


def test_parquet_streams_row_groups(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"x": list(range(200_000))}), path, row_group_size=50_000)
    stream = open_batches(path)
    assert sum(b.num_rows for b in stream) == 200_000
    assert stream.bytes_read == path.stat().st_size


def test_zero_byte_parquet(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"empty \(0 bytes\)"):
        open_batches(_write(tmp_path / "z.parquet", b""))


def test_corrupt_parquet(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.parquet", b"PAR1 this is not really parquet PAR0")
    with pytest.raises(DataError, match=r"not a readable Parquet file.*export it again"):
        open_batches(path)


def test_truncated_parquet(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"x": list(range(1000))}), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="not a readable Parquet file"):
        open_batches(path)


def test_parquet_without_rows(tmp_path: Path) -> None:
    path = tmp_path / "e.parquet"
    pq.write_table(pa.table({"x": pa.array([], pa.int64())}), path)
    with pytest.raises(DataError, match="no data rows"):
        list(open_batches(path))


# -- JSON lines ----------------------------------------------------------------


def test_json_lines(tmp_path: Path) -> None:
    lines = "".join(json.dumps({"id": i, "name": f"n{i}"}) + "\n" for i in range(500))
    table = _read_all(_write(tmp_path / "a.jsonl", lines))
    assert table.num_rows == 500
    assert table.column_names == ["id", "name"]


def test_json_array_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.json", '[{"x": 1}, {"x": 2}]')
    with pytest.raises(DataError, match=r"JSON array.*one object per line.*jq -c"):
        open_batches(path)


def test_json_type_change_names_the_column(tmp_path: Path) -> None:
    lines = "".join(f'{{"x": {i}}}\n' for i in range(5000)) + '{"x": "abc"}\n'
    path = _write(tmp_path / "m.jsonl", lines)
    with pytest.raises(DataError, match="column 'x' changes from number to string"):
        list(open_batches(path, block_size=8192))


def test_json_duplicate_key(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="duplicate column name 'x'"):
        list(open_batches(_write(tmp_path / "d.jsonl", '{"x": 1, "x": 2}\n')))


def test_json_malformed(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="malformed JSON lines"):
        list(open_batches(_write(tmp_path / "b.jsonl", '{"x": 1}\n{"x": \n')))


def test_json_invalid_utf8(tmp_path: Path) -> None:
    path = _write(tmp_path / "u.jsonl", b'{"x": "caf\xe9"}\n')
    with pytest.raises(DataError, match="pass --encoding latin-1"):
        list(open_batches(path))
    assert _read_all(path, encoding="latin-1").column("x").to_pylist() == ["café"]


def test_unknown_encoding_is_named(tmp_path: Path) -> None:
    from leptonic.governance.readers import open_batches

    path = tmp_path / "a.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(DataError, match="unknown text encoding 'nope-codec'") as info:
        open_batches(path, encoding="nope-codec")
    assert info.value.field == "encoding"


def test_public_names_resolve() -> None:
    for name in readers.__all__:
        assert getattr(readers, name) is not None, name
    assert readers.ColumnTypeConflict is _csv.ColumnTypeConflict
    assert not {"connect_duckdb", "parquet_sql", "quote_ident", "sample_sql"} & set(readers.__all__)


@pytest.mark.parametrize("encoding", ["hex", "base64", "rot13"])
def test_a_codec_that_is_not_a_text_encoding_is_refused(tmp_path: Path, encoding: str) -> None:
    path = _write(tmp_path / "a.csv", "a,b\n1,2\n")
    with pytest.raises(DataError, match=f"not a text encoding: '{encoding}'") as info:
        open_batches(path, encoding=encoding)
    assert info.value.field == "encoding"


@pytest.mark.parametrize("name", ["a.csv", "a.jsonl"])
def test_bytes_of_another_encoding_are_named(tmp_path: Path, name: str) -> None:
    text = "a,b\n1,2\n" if name.endswith("csv") else '{"a": 1}\n{"a": 2}\n'
    path = _write(tmp_path / name, text)
    with pytest.raises(DataError, match=r"not valid 'utf-16' text.*pass the file's real") as info:
        _read_all(path, encoding="utf-16")
    assert info.value.field == "encoding"


@pytest.mark.parametrize("lines", ["{}\n{}\n", '{"a": {}}\n{"a": {}}\n'])
def test_records_without_fields_are_refused(tmp_path: Path, lines: str) -> None:
    from leptonic.governance.ingest import write_parquet

    with pytest.raises(DataError, match="the file has no columns"):
        write_parquet(_write(tmp_path / "e.jsonl", lines), tmp_path / "out.parquet")


# -- column names ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["c.csv", "c.jsonl", "c.parquet"])
def test_names_that_differ_only_in_case_are_refused(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name.endswith("csv"):
        _write(path, "id,Email,email,y\n1,yes,a@x.org,0\n")
    elif name.endswith("jsonl"):
        _write(path, '{"id": 1, "Email": "yes", "email": "a@x.org"}\n')
    else:
        pq.write_table(pa.table({"id": [1], "Email": ["yes"], "email": ["a@x.org"]}), path)
    with pytest.raises(DataError, match="'Email' and 'email' differ only in case") as err:
        open_batches(path)
    assert err.value.field == "columns" and "rename one of them" in str(err.value)


def test_names_are_kept_as_written(tmp_path: Path) -> None:
    # a dataset's next version must name its columns as the earlier ones did
    path = _write(tmp_path / "s.csv", "id, email, y \n1, a@x.org, 0\n2, b@x.org, 1\n")
    assert _read_all(path).column_names == ["id", " email", " y "]


# -- explicit delimiters -------------------------------------------------------------


def test_an_explicit_delimiter_is_not_second_guessed(tmp_path: Path) -> None:
    path = _write(tmp_path / "n.csv", "Name | Title\nAda Lovelace | Countess\n")
    assert _read_all(path, delimiter=",").column_names == ["Name | Title"]
    path = _write(tmp_path / "r.csv", "rate (a,b)\n1\n")
    assert _read_all(path, delimiter=";").column_names == ["rate (a,b)"]
    with pytest.raises(DataError, match=re.escape("looks '|'-separated")):
        open_batches(_write(tmp_path / "p.csv", "a|b\n1|2\n"))  # not given: still checked


# -- JSON lines: integers beyond 64 bits, types that change ------------------------


@pytest.mark.parametrize(
    ("lines", "column", "literal"),
    [
        ('{"a": 1}\n{"a": 99999999999999999999}\n', "a", "99999999999999999999"),
        ('{"a": -9223372036854775809}\n', "a", "-9223372036854775809"),
        ('{"c": {"n": 1}}\n{"c": {"n": 12345678901234567890123}}\n', "c.n", None),
        ('{"c": [1, 99999999999999999999]}\n', "c", None),
    ],
)
def test_json_integers_beyond_64_bits_are_refused(
    tmp_path: Path, lines: str, column: str, literal: str | None
) -> None:
    path = _write(tmp_path / "big.jsonl", lines)
    with pytest.raises(DataError, match="beyond the 64-bit range") as err:
        list(open_batches(path))
    assert err.value.field == column
    message = str(err.value)
    assert f"column {column!r}" in message and "quote such values as strings" in message
    if literal is not None:
        assert literal in message


def test_json_integers_within_64_bits_and_large_floats_are_kept(tmp_path: Path) -> None:
    lines = '{"i": -9223372036854775808, "f": 1.5}\n{"i": 9223372036854775807, "f": 1e20}\n'
    table = _read_all(_write(tmp_path / "ok.jsonl", lines))
    assert table.column("i").to_pylist() == [-(2**63), 2**63 - 1]
    assert table.column("f").to_pylist() == [1.5, 1e20]


@pytest.mark.parametrize(
    ("last", "column", "widened"),
    [
        ('{"a": 1.5, "b": null}', "a", pa.float64()),
        ('{"a": 1, "b": "x"}', "b", pa.string()),
        ('{"a": 1, "b": null, "z": true}', "z", pa.bool_()),
    ],
)
def test_json_types_that_change_after_the_first_block_are_widened(
    tmp_path: Path, last: str, column: str, widened: pa.DataType
) -> None:
    rows = "".join(f'{{"a": {i}, "b": null}}\n' for i in range(3000))
    path = _write(tmp_path / "w.jsonl", rows + last + "\n")
    with pytest.raises(ColumnTypeConflict) as err:
        list(open_batches(path, block_size=4096))
    assert (err.value.column, err.value.widened) == (column, widened)
    assert f"column {column!r}" in str(err.value) and f"read it as {widened}" in str(err.value)
    table = _read_all(path, block_size=4096, column_types={column: widened})
    assert table.num_rows == 3001
    assert table.to_pylist()[-1] == json.loads(last)


def test_json_nested_types_are_widened_and_conflicts_named(tmp_path: Path) -> None:
    rows = "".join(f'{{"c": {{"n": {i}}}}}\n' for i in range(3000))
    path = _write(tmp_path / "n.jsonl", rows + '{"c": {"n": 0.5, "m": "x"}}\n')
    with pytest.raises(ColumnTypeConflict) as err:
        list(open_batches(path, block_size=4096))
    widened = pa.struct([("n", pa.float64()), ("m", pa.string())])
    assert (err.value.column, err.value.widened) == ("c", widened)
    path = _write(tmp_path / "x.jsonl", rows + '{"c": {"n": "x"}}\n')
    with pytest.raises(DataError, match=r"column 'c\.n' changes from number to string") as err2:
        list(open_batches(path, block_size=4096))
    assert err2.value.field == "c.n"

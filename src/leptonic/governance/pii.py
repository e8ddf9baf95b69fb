"""Personal data: detection on a bounded sample, and masking.

Detection reads at most ``sample_size`` evenly spaced rows of a Parquet
snapshot (through DuckDB) and tests each candidate column's non-null values
against patterns, vectorised with Arrow's RE2 regular expressions:

=============== ==============================================================
kind            a value matches when
=============== ==============================================================
``email``       it looks like ``local@domain.tld``
``card_number`` it has 13-19 digits (spaces or dashes allowed) and passes the
                Luhn check (:func:`luhn_valid`)
``national_id`` it has the US SSN shape ``ddd-dd-dddd``, or the column is named
                like a national id (``ssn``, ``national_id``, ``passport_no``...)
                and the value looks like an identifier
``phone``       it has 7-15 digits in a phone layout (``+``, spaces, dashes, dots,
                parentheses), is not a date or a decimal number, and has a
                ``+``/separator unless the column is named like a phone column
``person_name`` the column is named like a person's name (``name``,
                ``first_name``, ``customer_name``...) and the value is 1-4
                capitalised alphabetic words
=============== ==============================================================

A column holds PII of a kind when at least ``threshold`` (60 %) of its sampled
non-null values match (a list column: of the values in its lists); when several kinds do, the best rate wins, ties going
to the order above. Masking (:func:`mask_table`) hashes, redacts or drops the
PII columns of an Arrow table (a list column element by element).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import re
from collections.abc import Mapping, Sequence
from enum import StrEnum

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from leptonic.errors import InvalidInput
from leptonic.governance.sql import connect_duckdb, quote_ident, sample_sql

__all__ = [
    "DEFAULT_SAMPLE_SIZE",
    "DEFAULT_THRESHOLD",
    "PII_KINDS",
    "MaskingPolicy",
    "detect_pii",
    "detect_pii_in_table",
    "hash_value",
    "luhn_valid",
    "mask_table",
]

#: The kinds of personal data Leptonic detects, in tie-break order.
PII_KINDS: tuple[str, ...] = ("email", "card_number", "national_id", "phone", "person_name")

DEFAULT_SAMPLE_SIZE = 20_000
DEFAULT_THRESHOLD = 0.6

_EMAIL = r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$"
_CARD = r"^\d(?:[ -]?\d){12,18}$"
_SSN = r"^\d{3}-\d{2}-\d{4}$"
_PHONE = r"^(\+\d{1,3}[ .-]?)?(\(\d{1,5}\)[ .-]?)?\d{1,5}([ .-]?\d{1,5}){0,5}$"
_PHONE_MARKS = r"[+() .-]"
_NOT_PHONE = (
    r"^(\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d+\.\d+|\d{1,3}(\.\d{1,3}){3})$"
)
_ID_LIKE = r"^[A-Za-z0-9][A-Za-z0-9 ./-]{3,24}$"
_PERSON = r"^\p{Lu}[\p{L}'’.-]*(?:\s+\p{Lu}[\p{L}'’.-]*){0,3}$"

_NAME_COLUMN = re.compile(
    r"^(?:(?:first|last|full|middle|given|family|maiden|customer|client|person|contact|"
    r"applicant|employee|patient|holder|cardholder|card_holder|account_holder|owner|user)_?)?"
    r"name$|^(?:sur|fore)name$"
)
_PHONE_COLUMN = re.compile(
    r"(?:^|_)(?:phone|mobile|tel|telephone|cell|msisdn|fax)(?:_|$|no|number)"
)
_NATIONAL_ID_COLUMN = re.compile(
    r"^(?:ssn|social_security(?:_no|_number)?|national_(?:id|identity|insurance)(?:_no|_number)?|"
    r"nationalid|nin|nino|passport(?:_no|_number|_id)?|tax_?id|tin|personal_id|id_number|"
    r"identity_number|dni|nie|cpf|aadhaar|pesel|bsn|nric|sin_number|driver_licen[cs]e(?:_no)?)$"
)


class MaskingPolicy(StrEnum):
    """How :func:`mask_table` hides a PII column.

    ``hash``
        Salted SHA-256 (HMAC with the workspace's ``pii_salt``), as truncated
        hex: stable, so equal values stay equal and joins still work.
    ``redact``
        ``***``; card numbers and phones keep their last digits (``***4242``).
    ``drop``
        Remove the column.
    """

    HASH = "hash"
    REDACT = "redact"
    DROP = "drop"


def luhn_valid(s: str) -> bool:
    """Whether ``s`` (digits, optionally with spaces or dashes) passes the Luhn check.

    Examples
    --------
    >>> luhn_valid("4111 1111 1111 1111")
    True
    >>> luhn_valid("4111-1111-1111-1112")
    False
    """
    digits = s.replace(" ", "").replace("-", "")
    if not digits.isascii() or not digits.isdigit() or len(digits) < 2:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _rate(mask: pa.Array, n: int) -> float:
    return float(pc.sum(pc.cast(mask, pa.int64())).as_py() or 0) / n if n else 0.0


def _match_rates(name: str, values: pa.Array) -> dict[str, float]:
    """Kind → share of ``values`` (non-null strings) that match it."""
    n = len(values)
    key = _normalise(name)
    rates: dict[str, float] = {}
    rates["email"] = _rate(pc.match_substring_regex(values, _EMAIL), n)
    card_shape = pc.match_substring_regex(values, _CARD)
    candidates = values.filter(card_shape)
    rates["card_number"] = sum(luhn_valid(v) for v in candidates.to_pylist()) / n
    ssn = _rate(pc.match_substring_regex(values, _SSN), n)
    if _NATIONAL_ID_COLUMN.match(key):
        ssn = max(ssn, _rate(pc.match_substring_regex(values, _ID_LIKE), n))
    rates["national_id"] = ssn
    digits = pc.utf8_length(pc.replace_substring_regex(values, r"\D", ""))
    phone = pc.and_(
        pc.match_substring_regex(values, _PHONE),
        pc.and_(pc.greater_equal(digits, 7), pc.less_equal(digits, 15)),
    )
    phone = pc.and_(phone, pc.invert(pc.match_substring_regex(values, _NOT_PHONE)))
    if not _PHONE_COLUMN.search(key):
        phone = pc.and_(phone, pc.match_substring_regex(values, _PHONE_MARKS))
    rates["phone"] = _rate(phone, n)
    if _NAME_COLUMN.match(key):
        rates["person_name"] = _rate(pc.match_substring_regex(values, _PERSON), n)
    return rates


def _is_list(t: pa.DataType) -> bool:
    return bool(pa.types.is_list(t) or pa.types.is_large_list(t))


def _classify(name: str, values: pa.Array, threshold: float) -> str | None:
    if _is_list(values.type):  # a list column: its elements are tested
        values = pc.list_flatten(values)
    values = values.drop_null()
    if len(values) == 0:
        return None
    if (
        pa.types.is_integer(values.type)
        or pa.types.is_large_string(values.type)
        or pa.types.is_dictionary(values.type)
    ):
        values = pc.cast(values, pa.string())
    if not pa.types.is_string(values.type):
        return None
    rates = _match_rates(name, values)
    best = max(rates[k] for k in rates)
    if best < threshold:
        return None
    return next(k for k in PII_KINDS if rates.get(k, -1.0) == best)


def _candidate(field: pa.Field) -> bool:
    t = field.type
    if _is_list(t):
        t = t.value_type
    if pa.types.is_dictionary(t):
        t = t.value_type
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t))


def detect_pii_in_table(table: pa.Table, *, threshold: float = DEFAULT_THRESHOLD) -> dict[str, str]:
    """Column → PII kind for the columns of an in-memory table (all rows are tested).

    Examples
    --------
    >>> t = pa.table({"email": ["a@x.org", "b@y.com"], "n": [1, 2]})
    >>> detect_pii_in_table(t)
    {'email': 'email'}
    """
    found: dict[str, str] = {}
    for field, column in zip(table.schema, table.columns, strict=True):
        if _candidate(field):
            kind = _classify(field.name, column.combine_chunks(), threshold)
            if kind is not None:
                found[field.name] = kind
    return found


def detect_pii(
    parquet_path: str | os.PathLike[str],
    *,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    threshold: float = DEFAULT_THRESHOLD,
    columns: Sequence[str] | None = None,
    temp_directory: str | os.PathLike[str] | None = None,
) -> dict[str, str]:
    """Column → PII kind, from a bounded, evenly spaced sample of a Parquet file.

    Parameters
    ----------
    parquet_path
        The Parquet file (a dataset snapshot).
    sample_size
        At most this many rows are read (every k-th row, so the sample spans
        the file and is the same on every run).
    threshold
        Share of sampled non-null values that must match a kind.
    columns
        Only these columns; all string and integer columns by default.
    temp_directory
        Where DuckDB may spill.

    Returns
    -------
    dict
        ``{column: kind}`` for the columns found to hold personal data, kinds
        from :data:`PII_KINDS`.
    """
    if not 0.0 < threshold <= 1.0:
        raise InvalidInput(
            f"threshold {threshold!r} must be in (0, 1], e.g. 0.6", field="threshold"
        )
    if sample_size < 1:
        raise InvalidInput(f"sample_size {sample_size!r} must be positive", field="sample_size")
    schema = pq.read_schema(parquet_path)
    rows = pq.read_metadata(parquet_path).num_rows
    wanted = set(columns) if columns is not None else None
    fields = [f for f in schema if _candidate(f) and (wanted is None or f.name in wanted)]
    if not fields or rows == 0:
        return {}
    select = ", ".join(quote_ident(f.name) for f in fields)
    source = sample_sql(parquet_path, rows, sample_size)
    with connect_duckdb(temp_directory=temp_directory) as con:
        sample = con.sql(f"SELECT {select} FROM {source}").to_arrow_table()
    return detect_pii_in_table(sample, threshold=threshold)


def hash_value(value: str, salt: str, length: int = 16) -> str:
    """The masked form of ``value``: HMAC-SHA-256 keyed by ``salt``, as ``length`` hex digits.

    Examples
    --------
    >>> hash_value("ada@example.com", "s1") == hash_value("ada@example.com", "s1")
    True
    >>> hash_value("ada@example.com", "s1") == hash_value("ada@example.com", "s2")
    False
    """
    digest = hmac.new(salt.encode(), value.encode(), hashlib.sha256).hexdigest()
    return digest[:length]


def _as_strings(column: pa.ChunkedArray) -> pa.Array:
    array = column.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_string(array.type):
        return array
    try:
        return pc.cast(array, pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return pa.array([None if v is None else str(v) for v in array.to_pylist()], pa.string())


def _hash_column(values: pa.Array, salt: str, length: int) -> pa.Array:
    encoded = values.dictionary_encode()
    uniques = encoded.dictionary.to_pylist()
    hashed = pa.array([hash_value(v, salt, length) for v in uniques], pa.string())
    return pc.take(hashed, encoded.indices)


def _redact_column(values: pa.Array, kind: str, keep_last: int) -> pa.Array:
    stars = pa.scalar("***", pa.string())
    if kind in ("card_number", "phone") and keep_last > 0:
        digits = pc.replace_substring_regex(values, r"\D", "")
        tail = pc.utf8_slice_codeunits(digits, -keep_last)
        return pc.binary_join_element_wise(stars, tail, "")
    return pc.if_else(pc.is_null(values), pa.scalar(None, pa.string()), stars)


def mask_table(
    table: pa.Table,
    pii: Mapping[str, str],
    policy: MaskingPolicy | str = MaskingPolicy.HASH,
    salt: str = "",
    *,
    keep_last: int = 4,
    hash_length: int = 16,
) -> pa.Table:
    """Mask the PII columns of ``table``; nulls stay null.

    Parameters
    ----------
    table
        The rows to mask.
    pii
        Column → PII kind (a :attr:`DatasetVersion.pii` map); columns absent
        from ``table`` are ignored.
    policy
        ``"hash"``, ``"redact"`` or ``"drop"`` (see :class:`MaskingPolicy`).
    salt
        The workspace's ``pii_salt``; required for ``"hash"``.
    keep_last
        Digits of card numbers and phones that ``"redact"`` keeps (0 for none).
    hash_length
        Hex digits kept of each hash.

    Returns
    -------
    pyarrow.Table
        A new table; masked columns are strings.

    Examples
    --------
    >>> t = pa.table({"card": ["4111 1111 1111 1111", None], "n": [1, 2]})
    >>> mask_table(t, {"card": "card_number"}, "redact").column("card").to_pylist()
    ['***1111', None]
    """
    try:
        chosen = MaskingPolicy(policy)
    except ValueError:
        raise InvalidInput(
            f"unknown masking policy {policy!r}; use one of "
            f"{', '.join(p.value for p in MaskingPolicy)}",
            field="policy",
        ) from None
    if chosen is MaskingPolicy.HASH and not salt:
        raise InvalidInput("hash masking needs a salt: pass the workspace's pii_salt", field="salt")
    targets = [name for name in table.column_names if name in pii]
    if chosen is MaskingPolicy.DROP:
        return table.drop_columns(targets)
    for name in targets:
        index = table.schema.get_field_index(name)
        column = table.column(index)
        lists = _is_list(column.type)
        if lists:  # masked element by element; the lists keep their shape
            nested = column.combine_chunks()
            values = _as_strings(pa.chunked_array([pc.list_flatten(nested)]))
        else:
            values = _as_strings(column)
        if chosen is MaskingPolicy.HASH:
            masked = _hash_column(values, salt, hash_length)
        else:
            masked = _redact_column(values, pii[name], keep_last)
        if lists:
            offsets = pc.list_value_length(nested).fill_null(0)
            starts = pa.array([0, *itertools.accumulate(offsets.to_pylist())], pa.int32())
            masked = pa.ListArray.from_arrays(starts, masked, mask=nested.is_null())
        table = table.set_column(index, pa.field(name, masked.type), masked)
    return table

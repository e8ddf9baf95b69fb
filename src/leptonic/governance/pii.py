"""Personal data: detection on a bounded sample, and masking.

Detection reads at most ``sample_size`` evenly spaced rows of a Parquet
snapshot (through DuckDB) and tests each candidate column's non-null values,
trimmed of surrounding whitespace (blank ones are not counted), against
patterns, vectorised with Arrow's RE2 regular expressions. Column names are
compared in snake case (``socialSecurityNumber`` is ``social_security_number``):

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
                parentheses) and is not a date, a decimal number, an IP address
                or a ZIP+4 code (``12345-6789``); unless the column is named like
                a phone column, it must also have a ``+`` or an area code in
                parentheses, or be spaced (but not grouped in thousands, as
                ``1 234 567``): digits with only dashes or dots are not enough
``person_name`` the column is named like a person's name (``name``,
                ``first_name``, ``customer_name``...) and the value is 1-4
                capitalised alphabetic words, the first optionally followed by a
                comma (``Lovelace, Ada``)
=============== ==============================================================

A column holds PII of a kind when at least ``threshold`` (60 %) of its sampled
non-null values match. A list column is tested on the values in its lists,
and a struct (or a list of structs, as a JSON array of objects) field by
field, each field by its own name: the column takes the best kind of its
fields. When several kinds match, the best rate wins, ties going to the order
above. Masking (:func:`mask_table`) hashes, redacts or drops the PII columns
of an Arrow table (a list column element by element, a struct field by field).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import re
from collections.abc import Iterator, Mapping, Sequence
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
#: Marks only phones carry: a country code or an area code in parentheses.
_PHONE_SIGNS = r"[+(]"
#: The North American layout, 555-123-4567 or 555.123.4567: a phone wherever it is.
_NANP = r"^\d{3}[-.]\d{3}[-.]\d{4}$"
#: Dates (ISO with dashes or dots, day-month-year), decimals, IPv4 addresses, ZIP+4 codes.
_NOT_PHONE = (
    r"^(\d{4}[.-]\d{1,2}[.-]\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d+\.\d+|"
    r"\d{1,3}(\.\d{1,3}){3}|\d{5}-\d{4})$"
)
#: A number grouped in thousands: ``1 234 567``, ``1.234.567``.
_GROUPED_NUMBER = r"^\d{1,3}([ .]\d{3})+$"
_ID_LIKE = r"^[A-Za-z0-9][A-Za-z0-9 ./-]{3,24}$"
_NAME_WORD = r"\p{Lu}[\p{L}'’.-]*"
#: 1-4 capitalised words; the first may end with a comma ("Lovelace, Ada").
_PERSON = rf"^{_NAME_WORD}(?:(?:,\s*|\s+){_NAME_WORD}(?:\s+{_NAME_WORD}){{0,2}})?$"

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


def _snake(name: str) -> str:
    """``customerId`` and ``Customer ID`` → ``customer_id``."""
    name = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name)
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _rate(mask: pa.Array, n: int) -> float:
    return float(pc.sum(pc.cast(mask, pa.int64())).as_py() or 0) / n if n else 0.0


def _match_rates(name: str, values: pa.Array) -> dict[str, float]:
    """Kind → share of ``values`` (non-null, trimmed, non-blank strings) that match it."""
    n = len(values)
    key = _snake(name)
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
        # digits with only dashes or dots are as often codes, dates or ranges
        spaced = pc.and_(
            pc.match_substring(values, " "),
            pc.invert(pc.match_substring_regex(values, _GROUPED_NUMBER)),
        )
        signs = pc.or_(
            pc.match_substring_regex(values, _PHONE_SIGNS),
            pc.match_substring_regex(values, _NANP),
        )
        phone = pc.and_(phone, pc.or_(signs, spaced))
    rates["phone"] = _rate(phone, n)
    if _NAME_COLUMN.match(key):
        rates["person_name"] = _rate(pc.match_substring_regex(values, _PERSON), n)
    return rates


def _is_list(t: pa.DataType) -> bool:
    return bool(pa.types.is_list(t) or pa.types.is_large_list(t))


def _leaves(name: str, values: pa.Array) -> Iterator[tuple[str, pa.Array]]:
    """``(name, values)`` of each scalar part of ``values``.

    A list gives its elements; a struct each of its fields, under the field's
    own name (``email`` of ``contacts: list<struct<email, phone>>``).
    """
    if _is_list(values.type):
        yield from _leaves(name, pc.list_flatten(values))
    elif pa.types.is_struct(values.type):
        fields = list(values.type)
        for f, child in zip(fields, values.flatten(), strict=True):
            yield from _leaves(f.name, child)
    else:
        yield name, values


def _leaf_rates(name: str, values: pa.Array) -> dict[str, float]:
    """Kind → match rate of one scalar array; empty when it holds no testable strings."""
    values = values.drop_null()
    if (
        pa.types.is_integer(values.type)
        or pa.types.is_large_string(values.type)
        or pa.types.is_dictionary(values.type)
    ):
        values = pc.cast(values, pa.string())
    if not pa.types.is_string(values.type):
        return {}
    values = pc.utf8_trim_whitespace(values)
    values = values.filter(pc.greater(pc.utf8_length(values), 0))
    if len(values) == 0:
        return {}
    return _match_rates(name, values)


def _classify(name: str, values: pa.Array, threshold: float) -> str | None:
    best: tuple[float, int] | None = None
    for leaf_name, leaf in _leaves(name, values):
        for kind, rate in _leaf_rates(leaf_name, leaf).items():
            key = (rate, -PII_KINDS.index(kind))
            if rate >= threshold and (best is None or key > best):
                best = key
    return None if best is None else PII_KINDS[-best[1]]


def _candidate_type(t: pa.DataType) -> bool:
    if _is_list(t):
        return _candidate_type(t.value_type)
    if pa.types.is_struct(t):
        return any(_candidate_type(f.type) for f in t)
    if pa.types.is_dictionary(t):
        t = t.value_type
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t))


def _candidate(field: pa.Field) -> bool:
    return _candidate_type(field.type)


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
        Only these columns; by default all string and integer columns, and
        list and struct columns holding such values.
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


def _as_strings(array: pa.Array) -> pa.Array:
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


def _redact_column(values: pa.Array, kind: str | None, keep_last: int) -> pa.Array:
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
        A new table; masked columns are strings (list and struct columns keep
        their shape, with strings inside; ``"redact"`` hides every field of a
        struct as ``***``).

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

    def mask(values: pa.Array, kind: str | None) -> pa.Array:
        if _is_list(values.type):  # masked element by element; the lists keep their shape
            masked = mask(pc.list_flatten(values), kind)
            offsets = pc.list_value_length(values).fill_null(0)
            starts = pa.array([0, *itertools.accumulate(offsets.to_pylist())], pa.int32())
            return pa.ListArray.from_arrays(starts, masked, mask=values.is_null())
        if pa.types.is_struct(values.type):  # field by field, each fully redacted
            names = [f.name for f in list(values.type)]
            children = [mask(child, None) for child in values.flatten()]
            return pa.StructArray.from_arrays(children, names=names, mask=values.is_null())
        strings = _as_strings(values)
        if chosen is MaskingPolicy.HASH:
            return _hash_column(strings, salt, hash_length)
        return _redact_column(strings, kind, keep_last)

    for name in targets:
        index = table.schema.get_field_index(name)
        masked = mask(table.column(index).combine_chunks(), pii[name])
        table = table.set_column(index, pa.field(name, masked.type), masked)
    return table

"""Governed data: reading files, contracts and schemas, quality, personal data, lineage.

A data file becomes an immutable dataset version through :func:`ingest`: it
is streamed into a Parquet snapshot, profiled (:func:`quality_report`),
scanned for personal data (:func:`detect_pii`), described column by column
(:func:`infer_schema`, guided by a :class:`Contract`) and stored only if it
passes the hard checks. :func:`preview` masks personal data
(:func:`mask_table`) unless raw access is allowed; :func:`walk` follows
lineage from a dataset version to the runs, models and endpoints made from it.
"""

from __future__ import annotations

from leptonic.governance.ingest import ingest, preview, read_version, write_parquet
from leptonic.governance.lineage import walk
from leptonic.governance.pii import (
    PII_KINDS,
    MaskingPolicy,
    detect_pii,
    detect_pii_in_table,
    hash_value,
    luhn_valid,
    mask_table,
)
from leptonic.governance.quality import quality_report
from leptonic.governance.readers import (
    FORMATS,
    BatchStream,
    ColumnTypeConflict,
    detect_format,
    open_batches,
)
from leptonic.governance.schema import Contract, infer_schema, load_contract

__all__ = [
    "FORMATS",
    "PII_KINDS",
    "BatchStream",
    "ColumnTypeConflict",
    "Contract",
    "MaskingPolicy",
    "detect_format",
    "detect_pii",
    "detect_pii_in_table",
    "hash_value",
    "infer_schema",
    "ingest",
    "load_contract",
    "luhn_valid",
    "mask_table",
    "open_batches",
    "preview",
    "quality_report",
    "read_version",
    "walk",
    "write_parquet",
]

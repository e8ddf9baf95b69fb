"""Ingestion end to end: versions, idempotence, lineage, previews, and nothing half-written."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from leptonic.core.dataset import ColumnRole, DatasetVersion
from leptonic.core.workspace import Workspace
from leptonic.errors import (
    DataError,
    InvalidInput,
    InvalidName,
    NotFound,
    SchemaError,
    StoreError,
    TargetError,
)
from leptonic.governance.ingest import ingest, preview, read_version, write_parquet
from leptonic.governance.pii import hash_value
from leptonic.governance.schema import Contract
from leptonic.storage.artifacts.base import ArtifactStore
from leptonic.storage.artifacts.local import LocalArtifactStore
from leptonic.storage.artifacts.memory import MemoryArtifactStore
from leptonic.storage.metadata.memory import MemoryMetadataStore

DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CARDS = ["4111 1111 1111 1111", "5555 5555 5555 4444", "4012 8888 8888 1881", "3530 1113 3330 0000"]
FIRST = ["Ada", "Grace", "Alan", "Katherine", "Edsger", "Barbara", "Donald", "Frances"]
LAST = ["Lovelace", "Hopper", "Turing", "Johnson", "Dijkstra", "Liskov", "Knuth", "Allen"]


def applicants_csv(path: Path, n: int = 300, *, extra: str = "") -> Path:
    lines = ["applicant_id,full_name,email,phone,card,age,income,region,default" + extra]
    for i in range(n):
        name = f"{FIRST[i % 8]} {LAST[(i * 3) % 8]}"
        income = "" if i % 25 == 0 else f"{20000 + (i * 7919) % 60000}.50"
        row = (
            f"{1000 + i},{name},{name.split()[0].lower()}{i}@example.com,"
            f"+44 20 7946 {i:04d},{CARDS[i % 4]},{18 + i % 60},{income},"
            f"{['north', 'south', 'east'][i % 3]},{int(i % 5 == 0)}"
        )
        lines.append(row + ("," if extra else ""))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def tmp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private system temp folder, so tests can check that ingestion leaves nothing."""
    root = tmp_path / "systmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    yield root


@pytest.fixture
def metadata() -> MemoryMetadataStore:
    store = MemoryMetadataStore()
    store.create_workspace(Workspace("credit", pii_salt="pepper"))
    return store


@pytest.fixture
def artifacts() -> MemoryArtifactStore:
    return MemoryArtifactStore()


def _ingest(
    path: Path, metadata: MemoryMetadataStore, artifacts: ArtifactStore, **kwargs: object
) -> tuple[DatasetVersion, bool]:
    options: dict[str, object] = {"workspace": "credit", "dataset": "applicants", "actor": "ana"}
    options.update(kwargs)
    return ingest(path, metadata=metadata, artifacts=artifacts, **options)  # type: ignore[arg-type]


def test_ingest_csv_creates_a_governed_version(
    tmp_path: Path, tmp_root: Path, metadata: MemoryMetadataStore, artifacts: MemoryArtifactStore
) -> None:
    src = applicants_csv(tmp_path / "applicants.csv")
    version, created = _ingest(src, metadata, artifacts, target="default", description="loans")
    assert created
    assert (version.workspace, version.dataset, version.version) == ("credit", "applicants", 1)
    assert (version.num_rows, version.num_columns) == (300, 9)
    assert version.created_by == "ana"
    assert metadata.get_dataset("credit", "applicants").description == "loans"
    stored = artifacts.get_bytes(version.artifact_key)
    assert hashlib.sha256(stored).hexdigest() == version.content_hash
    assert version.size_bytes == len(stored)
    assert version.source == {
        "path": str(src.resolve()),
        "format": "csv",
        "sha256": hashlib.sha256(src.read_bytes()).hexdigest(),
        "size_bytes": src.stat().st_size,
        "contract": None,
    }
    assert version.pii == {
        "full_name": "person_name",
        "email": "email",
        "phone": "phone",
        "card": "card_number",
    }
    roles = {c.name: c.role for c in version.columns}
    assert roles["applicant_id"] is ColumnRole.ID
    assert roles["default"] is ColumnRole.TARGET
    assert roles["region"] is ColumnRole.CATEGORICAL
    assert roles["income"] is ColumnRole.NUMERIC
    assert version.quality["rows"] == 300
    assert version.quality["columns"]["income"]["missing"] == 12
    assert version.quality["target"]["counts"] == {"0": 240, "1": 60}
    json.dumps(version.quality, allow_nan=False)
    assert list(tmp_root.iterdir()) == []


def test_same_content_twice_returns_the_existing_version(
    tmp_path: Path, tmp_root: Path, metadata: MemoryMetadataStore, artifacts: MemoryArtifactStore
) -> None:
    src = applicants_csv(tmp_path / "a.csv")
    first, created = _ingest(src, metadata, artifacts)
    copy = tmp_path / "copy.csv"
    copy.write_bytes(src.read_bytes())
    again, created_again = _ingest(copy, metadata, artifacts)
    assert created and not created_again
    assert again == first
    assert len(metadata.list_dataset_versions("credit", "applicants")) == 1
    assert list(artifacts.keys()) == [first.artifact_key]


def test_same_content_under_another_contract_or_target_is_refused(
    tmp_path: Path, tmp_root: Path, metadata: MemoryMetadataStore, artifacts: MemoryArtifactStore
) -> None:
    src = applicants_csv(tmp_path / "a.csv")
    first, _ = _ingest(src, metadata, artifacts, target="default")
    assert first.column("region").pii is None
    annotated = Contract(target="default", pii={"region": "other"})
    with pytest.raises(InvalidInput, match="already version 1 of dataset 'applicants'") as err:
        _ingest(src, metadata, artifacts, contract=annotated)
    assert err.value.field == "contract"
    assert "ingest the file as another dataset" in str(err.value)
    with pytest.raises(InvalidInput, match="ingested with target 'default'") as err:
        _ingest(src, metadata, artifacts, target="age")
    assert err.value.field == "target"
    # the same declarations, or none, give the existing version back
    assert _ingest(src, metadata, artifacts, target="default") == (first, False)
    assert _ingest(src, metadata, artifacts) == (first, False)
    assert _ingest(src, metadata, artifacts, contract=Contract(target="default")) == (first, False)
    # the new contract applies under another dataset name
    other, created = _ingest(src, metadata, artifacts, dataset="applicants-pii", contract=annotated)
    assert created and other.column("region").pii == "other"
    again, created = _ingest(src, metadata, artifacts, dataset="applicants-pii", contract=annotated)
    assert (again, created) == (other, False)
    with pytest.raises(InvalidInput, match="ingested with contract"):
        _ingest(src, metadata, artifacts, dataset="applicants-pii", contract=Contract())


def test_changed_content_is_a_new_version(
    tmp_path: Path, tmp_root: Path, metadata: MemoryMetadataStore, artifacts: MemoryArtifactStore
) -> None:
    v1, _ = _ingest(applicants_csv(tmp_path / "a.csv", 300), metadata, artifacts)
    v2, created = _ingest(applicants_csv(tmp_path / "b.csv", 301), metadata, artifacts)
    assert created and (v1.version, v2.version) == (1, 2)
    assert v1.content_hash != v2.content_hash


def test_snapshot_bytes_are_deterministic(tmp_path: Path) -> None:
    src = applicants_csv(tmp_path / "a.csv", 2000)
    write_parquet(src, tmp_path / "one.parquet", block_size=8192)
    write_parquet(src, tmp_path / "two.parquet", block_size=8192)
    assert (tmp_path / "one.parquet").read_bytes() == (tmp_path / "two.parquet").read_bytes()


def test_progress_reports_rows_and_bytes(
    tmp_path: Path, tmp_root: Path, metadata: MemoryMetadataStore, artifacts: MemoryArtifactStore
) -> None:
    src = applicants_csv(tmp_path / "a.csv", 300)
    calls: list[tuple[int, int]] = []
    _ingest(src, metadata, artifacts, progress=lambda rows, nbytes: calls.append((rows, nbytes)))
    assert calls and calls[-1] == (300, src.stat().st_size)
    assert [r for r, _ in calls] == sorted(r for r, _ in calls)
    assert all(0 < b <= src.stat().st_size for _, b in calls)


def test_column_type_widening_restarts_the_stream(tmp_path: Path, tmp_root: Path) -> None:
    rows = "".join(f"{i},{i}\n" for i in range(20_000))
    src = tmp_path / "codes.csv"
    src.write_text("code,n\n" + rows + "X9,1\n", encoding="utf-8")
    out = tmp_path / "codes.parquet"
    assert write_parquet(src, out, block_size=16_384) == 20_001
    table = pq.read_table(out)
    assert table.schema.field("code").type == pa.string()
    assert table.column("code").to_pylist()[-1] == "X9"
    assert table.column("n").type == pa.int64()


def test_codes_and_long_ids_keep_their_digits(tmp_path: Path) -> None:
    src = tmp_path / "ids.csv"
    src.write_text(
        "agent,account,n,x\n007,12345678901234567890,1,0.5\n012,98765432109876543210,2,2\n",
        encoding="utf-8",
    )
    out = tmp_path / "ids.parquet"
    assert write_parquet(src, out) == 2
    table = pq.read_table(out)
    assert table.column("agent").to_pylist() == ["007", "012"]
    assert table.column("account").to_pylist() == ["12345678901234567890", "98765432109876543210"]
    assert (table.column("n").type, table.column("x").type) == (pa.int64(), pa.float64())
    assert table.column("x").to_pylist() == [0.5, 2.0]


def test_integers_widened_to_float_keep_their_digits(tmp_path: Path) -> None:
    rows = "".join(f"{i}\n" for i in range(20_000))
    src = tmp_path / "ids.csv"
    src.write_text("id\n" + rows + "2.5\n9007199254740993\n", encoding="utf-8")
    out = tmp_path / "ids.parquet"
    write_parquet(src, out, block_size=16_384)
    column = pq.read_table(out).column("id")
    assert column.type == pa.string()
    assert column.to_pylist()[-2:] == ["2.5", "9007199254740993"]


def test_row_groups_have_a_fixed_size(tmp_path: Path) -> None:
    src = applicants_csv(tmp_path / "a.csv", 2500)
    write_parquet(src, tmp_path / "o.parquet", block_size=4096, row_group_size=1000)
    meta = pq.ParquetFile(tmp_path / "o.parquet").metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [1000, 1000, 500]


def test_contract_is_applied_and_recorded(
    tmp_path: Path, tmp_root: Path, metadata: MemoryMetadataStore, artifacts: MemoryArtifactStore
) -> None:
    contract = Contract(
        target="default",
        roles={"region": ColumnRole.IGNORE},
        pii={"phone": None, "age": "other"},
        allow_in_training=("age",),
    )
    version, _ = _ingest(applicants_csv(tmp_path / "a.csv"), metadata, artifacts, contract=contract)
    by_name = {c.name: c for c in version.columns}
    assert by_name["region"].role is ColumnRole.IGNORE
    assert by_name["phone"].pii is None and by_name["phone"].role is not ColumnRole.PII
    assert (by_name["age"].role, by_name["age"].pii) == (ColumnRole.NUMERIC, "other")
    assert by_name["default"].role is ColumnRole.TARGET
    assert version.source["contract"] == contract.to_dict()


def test_parquet_and_json_lines_sources(
    tmp_path: Path, tmp_root: Path, metadata: MemoryMetadataStore, artifacts: MemoryArtifactStore
) -> None:
    table = pa.table({"id": [1, 2, 3], "email": ["a@x.org", "b@x.org", "c@x.org"]})
    pq.write_table(table, tmp_path / "p.parquet")
    v, _ = _ingest(tmp_path / "p.parquet", metadata, artifacts, dataset="from-parquet")
    assert v.source["format"] == "parquet" and v.pii == {"email": "email"}
    (tmp_path / "t.tsv").write_text("id\temail\n1\ta@x.org\n", encoding="utf-8")
    t, _ = _ingest(tmp_path / "t.tsv", metadata, artifacts, dataset="from-tsv")
    assert t.source["format"] == "csv" and t.num_columns == 2
    lines = "".join(json.dumps(r) + "\n" for r in table.to_pylist())
    (tmp_path / "j.jsonl").write_text(lines, encoding="utf-8")
    j, _ = _ingest(tmp_path / "j.jsonl", metadata, artifacts, dataset="from-json")
    assert j.source["format"] == "json" and j.num_rows == 3
    assert read_version(j, artifacts).to_pylist() == table.to_pylist()


def test_nested_json_fields_are_flattened_scanned_and_masked(
    tmp_path: Path, tmp_root: Path, metadata: MemoryMetadataStore, artifacts: MemoryArtifactStore
) -> None:
    rows = [
        {"id": i, "customer": {"email": f"user{i}@example.com", "address": {"city": "Oslo"}}}
        for i in range(20)
    ]
    src = tmp_path / "orders.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    version, _ = _ingest(src, metadata, artifacts, dataset="orders")
    assert [c.name for c in version.columns] == ["id", "customer.email", "customer.address.city"]
    assert version.pii == {"customer.email": "email"}
    assert version.column("customer.email").role is ColumnRole.PII
    masked = preview(version, artifacts, workspace=metadata.get_workspace("credit"), limit=3)
    assert "user0@example.com" not in str(masked.to_pylist())
    assert len(masked.column("customer.email")[0].as_py()) == 16
    assert masked.column("customer.address.city").to_pylist() == ["Oslo"] * 3


def test_flattened_names_that_collide_are_refused(
    tmp_path: Path, tmp_root: Path, metadata: MemoryMetadataStore, artifacts: MemoryArtifactStore
) -> None:
    src = tmp_path / "c.jsonl"
    src.write_text('{"a": {"b": 1}, "a.b": 2}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"column 'a\.b' appears twice"):
        _ingest(src, metadata, artifacts)
    _assert_nothing_written(metadata, artifacts, tmp_root)


# -- previews and reads ----------------------------------------------------------


def test_preview_masks_pii_unless_raw(
    tmp_path: Path, tmp_root: Path, metadata: MemoryMetadataStore, artifacts: MemoryArtifactStore
) -> None:
    version, _ = _ingest(applicants_csv(tmp_path / "a.csv"), metadata, artifacts)
    ws = metadata.get_workspace("credit")
    masked = preview(version, artifacts, workspace=ws, limit=5)
    raw = preview(version, artifacts, workspace=ws, limit=5, raw=True)
    assert masked.num_rows == raw.num_rows == 5
    assert raw.column("email")[0].as_py() == "ada0@example.com"
    assert masked.column("email")[0].as_py() != "ada0@example.com"
    assert len(masked.column("email")[0].as_py()) == 16
    assert masked.column("age").to_pylist() == raw.column("age").to_pylist()
    redacted = preview(version, artifacts, workspace=ws, limit=2, policy="redact")
    assert redacted.column("card").to_pylist() == ["***1111", "***4444"]
    dropped = preview(version, artifacts, workspace=ws, policy="drop")
    assert "email" not in dropped.column_names and dropped.num_rows == 20
    assert preview(version, artifacts, workspace=ws, limit=0).num_rows == 0
    assert preview(version, artifacts, workspace=ws, limit=10_000).num_rows == 300


def test_preview_hashes_with_the_workspace_salt(
    tmp_path: Path, tmp_root: Path, metadata: MemoryMetadataStore, artifacts: MemoryArtifactStore
) -> None:
    version, _ = _ingest(applicants_csv(tmp_path / "a.csv"), metadata, artifacts)
    salted = Workspace("credit", pii_salt="other-salt")
    a = preview(version, artifacts, workspace=metadata.get_workspace("credit"), limit=1)
    b = preview(version, artifacts, workspace=salted, limit=1)
    assert a.column("email")[0] != b.column("email")[0]
    with pytest.raises(InvalidInput, match="belongs to workspace 'credit', not 'fraud'"):
        preview(version, artifacts, workspace=Workspace("fraud"))
    with pytest.raises(InvalidInput, match="limit"):
        preview(version, artifacts, workspace=salted, limit=-1)


def test_read_version_columns(
    tmp_path: Path, tmp_root: Path, metadata: MemoryMetadataStore, artifacts: MemoryArtifactStore
) -> None:
    version, _ = _ingest(applicants_csv(tmp_path / "a.csv"), metadata, artifacts)
    assert read_version(version, artifacts).num_rows == 300
    assert read_version(version, artifacts, ["age", "default"]).column_names == ["age", "default"]
    with pytest.raises(NotFound, match="has no column 'nope'"):
        read_version(version, artifacts, ["nope"])


# -- errors: clear messages, nothing half-written --------------------------------------


def _assert_nothing_written(
    metadata: MemoryMetadataStore, artifacts: ArtifactStore, tmp_root: Path
) -> None:
    assert metadata.list_datasets("credit") == []
    assert list(artifacts.keys()) == []
    assert list(tmp_root.iterdir()) == []


@pytest.mark.parametrize(
    ("content", "kwargs", "error", "match"),
    [
        (b"", {}, DataError, r"empty \(0 bytes\)"),
        (b"a,b,c\n", {}, DataError, "header but no data rows"),
        (b"a;b\n1;2\n", {}, DataError, "looks ';'-separated: pass --delimiter ';'"),
        (b"a,b\n\xe9,1\n", {}, DataError, "pass --encoding latin-1"),
        (b"a,a\n1,2\n", {}, DataError, r"duplicate column name\(s\) 'a'"),
        (b"a,b\n1,2\n3\n", {}, DataError, "row at line 3 has 1 field"),
        (b"a,b\n1,2\n", {"target": "label"}, TargetError, "'label' is not in the data; columns"),
        (b"a,b\n1,\n2,\n", {}, DataError, r"'b' have no values; drop them .* role 'ignore'"),
        (b"a,y\n1,1\n2,1\n", {"target": "y"}, TargetError, "'y' has a single value"),
        (b"a,b\n1,2\n", {"dataset": "Bad Name"}, InvalidName, "invalid dataset name"),
        (b"a,b\n1,2\n", {"workspace": "nowhere"}, NotFound, "workspace 'nowhere' not found"),
        (
            b"a,b\n1,2\n",
            {"contract": Contract(roles={"c": ColumnRole.ID})},
            SchemaError,
            r"names column\(s\) 'c' that the data does not have",
        ),
        (
            b"a,b\n1,2\n",
            {"contract": Contract(target="a"), "target": "b"},
            TargetError,
            "disagrees with the contract's target 'a'",
        ),
    ],
)
def test_bad_input_writes_nothing(
    tmp_path: Path,
    tmp_root: Path,
    metadata: MemoryMetadataStore,
    artifacts: MemoryArtifactStore,
    content: bytes,
    kwargs: dict[str, object],
    error: type[Exception],
    match: str,
) -> None:
    src = tmp_path / "bad.csv"
    src.write_bytes(content)
    with pytest.raises(error, match=match):
        _ingest(src, metadata, artifacts, **kwargs)
    _assert_nothing_written(metadata, artifacts, tmp_root)


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("data.xlsx", b"a,b\n", r"unsupported file suffix '\.xlsx'"),
        ("data.parquet", b"", r"empty \(0 bytes\)"),
        ("data.parquet", b"PAR1garbagePAR1", "not a readable Parquet file"),
        ("data.json", b'[{"a": 1}]', "JSON array"),
        ("absent.csv", None, "no such file"),
    ],
)
def test_bad_files_write_nothing(
    tmp_path: Path,
    tmp_root: Path,
    metadata: MemoryMetadataStore,
    artifacts: MemoryArtifactStore,
    name: str,
    content: bytes | None,
    match: str,
) -> None:
    src = tmp_path / name
    if content is not None:
        src.write_bytes(content)
    with pytest.raises(DataError, match=match):
        _ingest(src, metadata, artifacts)
    _assert_nothing_written(metadata, artifacts, tmp_root)


def test_all_null_column_is_fine_when_the_contract_ignores_it(
    tmp_path: Path, tmp_root: Path, metadata: MemoryMetadataStore, artifacts: MemoryArtifactStore
) -> None:
    src = tmp_path / "n.csv"
    src.write_text("a,b\n1,\n2,\n", encoding="utf-8")
    contract = Contract(roles={"b": ColumnRole.IGNORE})
    version, created = _ingest(src, metadata, artifacts, contract=contract)
    assert created and version.column("b").role is ColumnRole.IGNORE


def test_store_failure_removes_the_new_artifact(
    tmp_path: Path,
    tmp_root: Path,
    metadata: MemoryMetadataStore,
    artifacts: MemoryArtifactStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(version: DatasetVersion, **_: object) -> tuple[DatasetVersion, bool]:
        raise StoreError("database is locked")

    monkeypatch.setattr(metadata, "add_dataset_version", broken)
    with pytest.raises(StoreError, match="database is locked"):
        _ingest(applicants_csv(tmp_path / "a.csv"), metadata, artifacts)
    assert list(artifacts.keys()) == []
    assert list(tmp_root.iterdir()) == []
    assert metadata.list_datasets("credit") == []  # the dataset row comes with its version


def test_a_failed_write_keeps_a_blob_that_another_version_uses(
    tmp_path: Path,
    tmp_root: Path,
    metadata: MemoryMetadataStore,
    artifacts: MemoryArtifactStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    src = applicants_csv(tmp_path / "a.csv")
    first, _ = _ingest(src, metadata, artifacts)

    # a second ingest of the same content (elsewhere) that checked for the blob
    # before the first stored it, and whose metadata write then fails
    def broken(version: DatasetVersion, **_: object) -> tuple[DatasetVersion, bool]:
        raise StoreError("database is locked")

    with monkeypatch.context() as patch:
        patch.setattr(metadata, "add_dataset_version", broken)
        patch.setattr(artifacts, "exists", lambda key: False)
        with pytest.raises(StoreError):
            _ingest(src, metadata, artifacts, dataset="copy")
    assert artifacts.exists(first.artifact_key)
    assert read_version(first, artifacts).num_rows == 300

    # a blob lost anyway comes back with the next ingest of the same content
    artifacts.delete(first.artifact_key)
    assert _ingest(src, metadata, artifacts) == (first, False)
    assert read_version(first, artifacts).num_rows == 300


def test_local_artifact_store(
    tmp_path: Path, tmp_root: Path, metadata: MemoryMetadataStore
) -> None:
    store = LocalArtifactStore(tmp_path / "artifacts")
    version, _ = _ingest(applicants_csv(tmp_path / "a.csv"), metadata, store)
    blob = store.local_path(version.artifact_key)
    assert blob.is_file() and blob.stat().st_size == version.size_bytes
    assert read_version(version, store, ["email"]).num_rows == 300
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,\n", encoding="utf-8")
    with pytest.raises(DataError, match="have no values"):
        _ingest(bad, metadata, store, dataset="broken")
    assert list(store.keys()) == [version.artifact_key]
    assert list((tmp_path / "artifacts" / "tmp").iterdir()) == []
    assert list(tmp_root.iterdir()) == []


def test_german_credit(
    tmp_root: Path, metadata: MemoryMetadataStore, artifacts: MemoryArtifactStore
) -> None:
    path = DATA_DIR / "german_credit" / "german_credit.csv"
    if not path.is_file():
        pytest.skip(f"{path} is absent: check out the shared data folder next to the repository")
    version, _ = _ingest(path, metadata, artifacts, dataset="german-credit", target="default")
    assert (version.num_rows, version.num_columns) == (1000, 22)
    assert version.pii == {}  # 'telephone' holds codes A191/A192, not phone numbers
    roles = {c.name: c.role for c in version.columns}
    assert roles["default"] is ColumnRole.TARGET
    assert roles["checking_status"] is ColumnRole.CATEGORICAL
    assert roles["credit_amount"] is ColumnRole.NUMERIC
    assert roles["telephone"] is ColumnRole.CATEGORICAL
    assert version.quality["target"]["counts"] == {"0": 700, "1": 300}
    assert version.quality["all_null_columns"] == []
    assert version.quality["duplicate_rows"] == 0


# -- names, nested records and JSON types ------------------------------------------


def test_names_that_differ_only_in_case_are_refused(
    tmp_path: Path, tmp_root: Path, metadata: MemoryMetadataStore, artifacts: MemoryArtifactStore
) -> None:
    rows = "".join(
        f"{i},{'yes' if i % 2 else 'no'},user{i}@example.com,{i % 2}\n" for i in range(50)
    )
    src = tmp_path / "case.csv"
    src.write_text("id,Email,email,y\n" + rows, encoding="utf-8")
    with pytest.raises(DataError, match="'Email' and 'email' differ only in case"):
        _ingest(src, metadata, artifacts, target="y")
    _assert_nothing_written(metadata, artifacts, tmp_root)
    nested = tmp_path / "nested.jsonl"
    nested.write_text('{"a": {"B": 1}, "a.b": 2}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"'a\.B' and 'a\.b'.* differ only in case") as err:
        _ingest(nested, metadata, artifacts)
    assert err.value.field == "a.b"
    _assert_nothing_written(metadata, artifacts, tmp_root)


def test_comma_space_csv_keeps_its_names_and_gets_its_pii(
    tmp_path: Path, tmp_root: Path, metadata: MemoryMetadataStore, artifacts: MemoryArtifactStore
) -> None:
    rows = "".join(
        f"{i}, user{i}@example.com, +1 555 123 {1000 + i}, {i % 2}\n" for i in range(100)
    )
    src = tmp_path / "spaced.csv"
    src.write_text("id, email, phone, y\n" + rows, encoding="utf-8")
    version, _ = _ingest(src, metadata, artifacts, target=" y")
    # names as written (a next version must match them); the values' spaces do not hide PII
    assert [c.name for c in version.columns] == ["id", " email", " phone", " y"]
    assert version.pii == {" email": "email", " phone": "phone"}
    assert version.column(" y").role is ColumnRole.TARGET


def test_lists_of_nested_records_are_scanned_and_masked(
    tmp_path: Path, tmp_root: Path, metadata: MemoryMetadataStore, artifacts: MemoryArtifactStore
) -> None:
    rows = [
        {"id": i, "y": i % 2, "contacts": [{"email": f"user{i}@example.com", "phone": None}]}
        for i in range(50)
    ]
    src = tmp_path / "contacts.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    version, _ = _ingest(src, metadata, artifacts, target="y")
    assert version.pii == {"contacts": "email"}
    assert version.column("contacts").role is ColumnRole.PII
    ws = metadata.get_workspace("credit")
    masked = preview(version, artifacts, workspace=ws, limit=2)
    assert "@example.com" not in str(masked.to_pylist())
    first = [{"email": hash_value("user0@example.com", "pepper"), "phone": None}]
    assert masked.column("contacts")[0].as_py() == first
    raw = preview(version, artifacts, workspace=ws, limit=1, raw=True)
    assert raw.column("contacts").to_pylist() == [[{"email": "user0@example.com", "phone": None}]]


def test_a_type_conflict_in_a_spaced_column_is_read_again(tmp_path: Path) -> None:
    rows = "".join(f"{i}, {i}\n" for i in range(3000))
    src = tmp_path / "w.csv"
    src.write_text("a, b\n" + rows + "1, 1.5\n", encoding="utf-8")
    assert write_parquet(src, tmp_path / "out.parquet", block_size=4096) == 3001
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.schema.names == ["a", " b"] and table.schema.field(" b").type == pa.float64()


@pytest.mark.parametrize(
    ("last", "expected"),
    [
        ('{"i": 1.5, "a": null}', {"i": pa.float64(), "a": pa.null()}),  # ints, then a decimal
        ('{"i": 1, "a": "x"}', {"i": pa.int64(), "a": pa.string()}),  # all null, then text
        ('{"i": 1, "a": null, "z": 3}', {"i": pa.int64(), "a": pa.null(), "z": pa.int64()}),
        (
            '{"i": 1, "a": null, "c": {"n": 2}}',
            {"i": pa.int64(), "a": pa.null(), "c.n": pa.int64()},
        ),
    ],
)
def test_json_types_that_change_after_the_first_block_are_read_again(
    tmp_path: Path, last: str, expected: dict[str, pa.DataType]
) -> None:
    rows = "".join(f'{{"i": {i}, "a": null}}\n' for i in range(3000))
    src = tmp_path / "late.jsonl"
    src.write_text(rows + last + "\n", encoding="utf-8")
    assert write_parquet(src, tmp_path / "out.parquet", block_size=4096) == 3001
    table = pq.read_table(tmp_path / "out.parquet")
    assert dict(zip(table.schema.names, table.schema.types, strict=True)) == expected
    flat = {k: v for k, v in json.loads(last).items() if k != "c"}
    assert {k: table.column(k)[-1].as_py() for k in flat} == flat
    assert table.column("i")[:3].to_pylist() == [0, 1, 2]


def test_json_ids_beyond_2_53_then_decimals_are_refused_not_rounded(tmp_path: Path) -> None:
    src = tmp_path / "ids.jsonl"
    src.write_text('{"a": 9007199254740993}\n' * 200 + '{"a": 0.5}\n', encoding="utf-8")
    with pytest.raises(DataError, match="beyond 2\\*\\*53") as info:
        write_parquet(src, tmp_path / "out.parquet", block_size=256)
    assert info.value.field == "a"


def test_json_integer_beyond_64_bits_after_the_first_block_is_refused(
    tmp_path: Path, tmp_root: Path, metadata: MemoryMetadataStore, artifacts: MemoryArtifactStore
) -> None:
    rows = "".join(f'{{"id": {i}}}\n' for i in range(3000))
    src = tmp_path / "ids.jsonl"
    src.write_text(rows + '{"id": 99999999999999999999}\n', encoding="utf-8")
    with pytest.raises(DataError, match="'id' holds the integer 99999999999999999999") as err:
        write_parquet(src, tmp_path / "out.parquet", block_size=4096)
    assert err.value.field == "id" and not (tmp_path / "out.parquet").exists()
    small = tmp_path / "small.jsonl"
    small.write_text('{"id": 1, "y": 0}\n{"id": 99999999999999999999, "y": 1}\n', encoding="utf-8")
    with pytest.raises(DataError, match='quote such values as strings \\("id": "9999'):
        _ingest(small, metadata, artifacts)
    _assert_nothing_written(metadata, artifacts, tmp_root)


def test_a_file_row_number_column_is_sampled(
    tmp_path: Path, tmp_root: Path, metadata: MemoryMetadataStore, artifacts: MemoryArtifactStore
) -> None:
    rows = "".join(f"{i},{i % 7},user{i}@example.com\n" for i in range(25_000))
    src = tmp_path / "frn.csv"
    src.write_text("file_row_number,x,email\n" + rows, encoding="utf-8")
    version, _ = _ingest(src, metadata, artifacts)
    assert version.num_rows == 25_000 and version.pii == {"email": "email"}

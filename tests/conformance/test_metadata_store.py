"""One conformance suite for every metadata store: memory, SQLite and PostgreSQL.

Each test gets an empty store. PostgreSQL tests need the server described in
``tests/conftest.py`` and skip, saying how to get it, when it is absent.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from leptonic.core import (
    ApiToken,
    AuditEvent,
    Column,
    ColumnRole,
    Dataset,
    DatasetVersion,
    Job,
    JobStatus,
    Membership,
    Model,
    ModelVersion,
    ObjectRef,
    Role,
    Run,
    RunStatus,
    Stage,
    StageTransition,
    User,
    Workspace,
)
from leptonic.errors import AlreadyExists, Conflict, InvalidInput, InvalidName, NotFound
from leptonic.storage.metadata.base import ORPHANED_JOB_ERROR, MetadataStore, safe_text
from leptonic.storage.metadata.memory import MemoryMetadataStore

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
PLUS_0530 = timezone(timedelta(hours=5, minutes=30))
UNICODE = "Zoë · 信用 · 🚀 · \u00e9\u0301 · tab\tnewline\n"

BACKENDS = ["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


# -- fixtures -------------------------------------------------------------------
@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def open_store(
    backend: str, tmp_path: Any, request: pytest.FixtureRequest
) -> Iterator[Callable[[], MetadataStore]]:
    """Open a handle on this test's (initially empty) store; all handles share it."""
    opened: list[MetadataStore] = []
    memory = MemoryMetadataStore()
    if backend == "sqlite":
        uri = f"sqlite:///{tmp_path / 'meta' / 'leptonic.db'}"
    elif backend == "postgresql":
        uri = request.getfixturevalue("postgres_db")

    def _open() -> MetadataStore:
        if backend == "memory":
            return memory
        from leptonic.storage.metadata.sql import SQLMetadataStore

        store = SQLMetadataStore.from_uri(uri)
        opened.append(store)
        return store

    yield _open
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Callable[[], MetadataStore]) -> MetadataStore:
    return open_store()


@pytest.fixture
def ws(store: MetadataStore) -> str:
    store.create_workspace(Workspace("credit", created_at=T0))
    return "credit"


# -- record factories -------------------------------------------------------------
def dataset_version(
    ws: str, dataset: str = "applicants", content_hash: str = "h1", **kw: Any
) -> DatasetVersion:
    fields: dict[str, Any] = {
        "workspace": ws,
        "dataset": dataset,
        "version": 0,
        "content_hash": content_hash,
        "artifact_key": f"sha256/{content_hash[:2]}/{content_hash}",
        "num_rows": 10,
        "num_columns": 2,
        "size_bytes": 1234,
        "columns": (
            Column("id", "int64", ColumnRole.ID, nullable=False),
            Column("email", "string", ColumnRole.PII, pii="email"),
        ),
        "quality": {"missing": {"email": 0.1}},
        "source": {"path": "applicants.csv"},
        "created_by": "ana",
        "created_at": T0,
    }
    fields.update(kw)
    return DatasetVersion(**fields)


def run(ws: str, run_id: str, *, created_at: datetime = T0, **kw: Any) -> Run:
    fields: dict[str, Any] = {
        "id": run_id,
        "workspace": ws,
        "status": RunStatus.QUEUED,
        "spec": {"task": "binary", "target": "default"},
        "seed": 7,
        "created_at": created_at,
    }
    fields.update(kw)
    return Run(**fields)


def model_version(ws: str, model: str = "scorecard", **kw: Any) -> ModelVersion:
    fields: dict[str, Any] = {
        "workspace": ws,
        "model": model,
        "version": 0,
        "task": "binary",
        "flavor": "sklearn",
        "run_id": "r1",
        "dataset": f"leptonic://{ws}/dataset/applicants/1",
        "artifact_key": "sha256/ab/" + "ab" * 32,
        "artifact_digest": "ab" * 32,
        "signature": {"inputs": [{"name": "age", "type": "double"}]},
        "metrics": {"auc": 0.81},
        "model_card": "# Scorecard",
        "created_by": "ana",
        "created_at": T0,
    }
    fields.update(kw)
    return ModelVersion(**fields)


def with_dataset(store: MetadataStore, ws: str, name: str = "applicants") -> str:
    store.create_dataset(Dataset(ws, name, created_at=T0))
    return name


def with_model(store: MetadataStore, ws: str, name: str = "scorecard") -> str:
    store.create_model(Model(ws, name, task="binary", created_at=T0))
    return name


def stages(store: MetadataStore, ws: str, model: str) -> dict[int, Stage]:
    return {v.version: v.stage for v in store.list_model_versions(ws, model)}


# -- workspaces ---------------------------------------------------------------------
def test_workspace_round_trip(store: MetadataStore) -> None:
    workspace = Workspace("fraud", description=UNICODE, created_at=T0)
    assert store.create_workspace(workspace) == workspace
    got = store.get_workspace("fraud")
    assert got == workspace
    assert got.pii_salt == workspace.pii_salt


def test_workspace_already_exists(store: MetadataStore, ws: str) -> None:
    with pytest.raises(AlreadyExists, match="'credit'") as info:
        store.create_workspace(Workspace(ws))
    assert info.value.field == "name"
    assert store.get_workspace(ws).created_at == T0  # the first one is kept


def test_workspace_not_found(store: MetadataStore) -> None:
    with pytest.raises(NotFound, match=r"'nope'.*leptonic workspace create") as info:
        store.get_workspace("nope")
    assert isinstance(info.value, KeyError)
    assert info.value.field == "workspace"


def test_list_workspaces_by_name(store: MetadataStore) -> None:
    assert store.list_workspaces() == []
    names = ["b", "ab", "a-c", "a_b", "a0", "z9"]
    for name in names:
        store.create_workspace(Workspace(name, created_at=T0))
    assert [w.name for w in store.list_workspaces()] == sorted(names)


# -- datasets -------------------------------------------------------------------------
def test_dataset_create_get_list(store: MetadataStore, ws: str) -> None:
    for name in ["b", "a-c", "ab"]:
        created = store.create_dataset(Dataset(ws, name, description=UNICODE, created_at=T0))
        assert store.get_dataset(ws, name) == created
    assert [d.name for d in store.list_datasets(ws)] == ["a-c", "ab", "b"]


def test_dataset_already_exists(store: MetadataStore, ws: str) -> None:
    with_dataset(store, ws)
    with pytest.raises(AlreadyExists, match=r"'applicants'.*'credit'"):
        store.create_dataset(Dataset(ws, "applicants"))


def test_dataset_not_found(store: MetadataStore, ws: str) -> None:
    with pytest.raises(NotFound, match=r"'missing'.*leptonic data add") as info:
        store.get_dataset(ws, "missing")
    assert info.value.field == "dataset"


def test_dataset_in_missing_workspace(store: MetadataStore) -> None:
    with pytest.raises(NotFound) as info:
        store.create_dataset(Dataset("ghost", "applicants"))
    assert info.value.field == "workspace"
    with pytest.raises(NotFound):
        store.list_datasets("ghost")
    with pytest.raises(NotFound):
        store.get_dataset("ghost", "applicants")


# -- dataset versions -----------------------------------------------------------------------
def test_dataset_versions_are_numbered_by_the_store(store: MetadataStore, ws: str) -> None:
    ds = with_dataset(store, ws)
    for i, h in enumerate(["h1", "h2", "h3"], start=1):
        stored, created = store.add_dataset_version(dataset_version(ws, ds, h, version=99))
        assert created is True
        assert stored.version == i
        assert stored == replace(dataset_version(ws, ds, h), version=i)
    assert [v.version for v in store.list_dataset_versions(ws, ds)] == [1, 2, 3]
    assert [v.content_hash for v in store.list_dataset_versions(ws, ds)] == ["h1", "h2", "h3"]


def test_same_content_returns_the_existing_version(store: MetadataStore, ws: str) -> None:
    ds = with_dataset(store, ws)
    first, _ = store.add_dataset_version(dataset_version(ws, ds, "h1"))
    store.add_dataset_version(dataset_version(ws, ds, "h2"))
    again, created = store.add_dataset_version(
        dataset_version(ws, ds, "h1", created_by="bob", num_rows=999)
    )
    assert created is False
    assert again == first
    assert len(store.list_dataset_versions(ws, ds)) == 2


def test_first_version_creates_the_dataset_atomically(store: MetadataStore, ws: str) -> None:
    with pytest.raises(NotFound):
        store.add_dataset_version(dataset_version(ws, "fresh", "h1"))
    assert store.list_datasets(ws) == []
    create = Dataset(ws, "fresh", description="made with its first version")
    stored, created = store.add_dataset_version(dataset_version(ws, "fresh", "h1"), create=create)
    assert created and stored.version == 1
    assert store.get_dataset(ws, "fresh").description == "made with its first version"
    again, created = store.add_dataset_version(dataset_version(ws, "fresh", "h2"), create=create)
    assert created and again.version == 2  # an existing dataset is kept as it is
    with pytest.raises(InvalidInput, match="create names dataset"):
        store.add_dataset_version(dataset_version(ws, "fresh", "h3"), create=Dataset(ws, "other"))
    with pytest.raises(NotFound):
        store.add_dataset_version(dataset_version("ghost", "d", "h1"), create=Dataset("ghost", "d"))
    assert [d.name for d in store.list_datasets(ws)] == ["fresh"]


def test_version_numbers_are_per_dataset(store: MetadataStore, ws: str) -> None:
    a = with_dataset(store, ws, "a")
    b = with_dataset(store, ws, "b")
    store.add_dataset_version(dataset_version(ws, a, "h1"))
    store.add_dataset_version(dataset_version(ws, a, "h2"))
    stored, created = store.add_dataset_version(dataset_version(ws, b, "h1"))
    assert (stored.version, created) == (1, True)


def test_latest_and_specific_version(store: MetadataStore, ws: str) -> None:
    ds = with_dataset(store, ws)
    with pytest.raises(NotFound):
        store.get_dataset_version(ws, ds)
    v1, _ = store.add_dataset_version(dataset_version(ws, ds, "h1"))
    v2, _ = store.add_dataset_version(dataset_version(ws, ds, "h2"))
    assert store.get_dataset_version(ws, ds) == v2
    assert store.get_dataset_version(ws, ds, None) == v2
    assert store.get_dataset_version(ws, ds, 1) == v1


def test_missing_dataset_version(store: MetadataStore, ws: str) -> None:
    ds = with_dataset(store, ws)
    store.add_dataset_version(dataset_version(ws, ds, "h1"))
    with pytest.raises(NotFound, match="no version 5") as info:
        store.get_dataset_version(ws, ds, 5)
    assert info.value.field == "version"
    with pytest.raises(NotFound, match="'other'"):
        store.get_dataset_version(ws, "other", 1)
    with pytest.raises(NotFound, match="'other'"):
        store.list_dataset_versions(ws, "other")
    with pytest.raises(NotFound, match="'other'"):
        store.add_dataset_version(dataset_version(ws, "other"))


def test_workspace_isolation(store: MetadataStore, ws: str) -> None:
    """An object of workspace A is not found through workspace B."""
    store.create_workspace(Workspace("fraud"))
    ds = with_dataset(store, ws)
    store.add_dataset_version(dataset_version(ws, ds, "h1"))
    store.create_run(run(ws, "r1"))
    model = with_model(store, ws)
    store.add_model_version(model_version(ws, model))

    for call in (
        lambda: store.get_dataset("fraud", ds),
        lambda: store.get_dataset_version("fraud", ds, 1),
        lambda: store.get_dataset_version("fraud", ds),
        lambda: store.list_dataset_versions("fraud", ds),
        lambda: store.add_dataset_version(dataset_version("fraud", ds, "h9")),
        lambda: store.get_run("fraud", "r1"),
        lambda: store.update_run("fraud", "r1", status=RunStatus.RUNNING),
        lambda: store.get_model("fraud", model),
        lambda: store.get_model_version("fraud", model, 1),
        lambda: store.list_model_versions("fraud", model),
        lambda: store.add_model_version(model_version("fraud", model)),
        lambda: store.set_stage("fraud", model, 1, Stage.STAGING, actor="eve", reason="x"),
        lambda: store.list_stage_transitions("fraud", model),
    ):
        with pytest.raises(NotFound):
            call()
    assert store.list_datasets("fraud") == []
    assert store.list_runs("fraud") == []
    assert store.list_models("fraud") == []
    assert store.get_run(ws, "r1").status == RunStatus.QUEUED
    assert stages(store, ws, model) == {1: Stage.CANDIDATE}


# -- runs -------------------------------------------------------------------------------
def test_run_create_and_get(store: MetadataStore, ws: str) -> None:
    r = run(ws, "r1")
    assert store.create_run(r) == r
    assert store.get_run(ws, "r1") == r


def test_find_run_ids_by_prefix(store: MetadataStore, ws: str) -> None:
    store.create_workspace(Workspace("fraud"))
    for rid in ("ab12", "ab34", "cd56", "a_b%"):
        store.create_run(run(ws, rid))
    store.create_run(run("fraud", "ab99"))
    assert store.find_run_ids(ws, "ab") == ["ab12", "ab34"]
    assert store.find_run_ids(ws, "ab", limit=1) == ["ab12"]
    assert store.find_run_ids(ws, "cd") == ["cd56"]
    assert store.find_run_ids(ws, "AB") == []  # ids are case-sensitive
    assert store.find_run_ids(ws, "a_") == ["a_b%"]  # no wildcard meaning
    assert store.find_run_ids(ws, "ab9") == []  # other workspaces stay out
    with pytest.raises(NotFound):
        store.find_run_ids("ghost", "ab")


#: Run ids around the edges of a prefix range: the greatest code point (U+10FFFF), the
#: last one before the surrogates (U+D7FF) and the first after them, case, accents.
EDGE_IDS = [
    "a",
    "a\U0010ffff",
    "a\U0010ffffb",
    "ab",
    "aB",
    "a\ud7ffz",
    "a\ue000",
    "a b",
    "é1",
    "e\u03011",
    "b",
    "\U0010ffff",
]


@pytest.mark.parametrize(
    "prefix", ["", "a", "a\U0010ffff", "a\ud7ff", "ab", "A", "é", "e", "a ", "z", "\U0010ffff"]
)
def test_find_run_ids_finds_exactly_the_ids_with_the_prefix(
    store: MetadataStore, ws: str, prefix: str
) -> None:
    for rid in EDGE_IDS:
        store.create_run(run(ws, rid))
    expected = sorted(rid for rid in EDGE_IDS if rid.startswith(prefix))  # code point order
    assert store.find_run_ids(ws, prefix, limit=100) == expected
    assert store.find_run_ids(ws, prefix, limit=1) == expected[:1]


def test_find_run_ids_checks_the_prefix(store: MetadataStore, ws: str) -> None:
    store.create_run(run(ws, "ab"))
    for prefix in ("a\x00", 7):
        with pytest.raises(InvalidInput) as info:
            store.find_run_ids(ws, prefix)  # type: ignore[arg-type]
        assert info.value.field == "prefix"


def test_run_ids_are_unique(store: MetadataStore, ws: str) -> None:
    store.create_workspace(Workspace("fraud"))
    store.create_run(run(ws, "r1"))
    with pytest.raises(AlreadyExists, match="'r1'"):
        store.create_run(run(ws, "r1", seed=8))
    with pytest.raises(AlreadyExists, match="'r1'"):
        store.create_run(run("fraud", "r1"))
    assert store.get_run(ws, "r1").seed == 7


def test_run_not_found(store: MetadataStore, ws: str) -> None:
    with pytest.raises(NotFound, match=r"'r9'.*leptonic runs list") as info:
        store.get_run(ws, "r9")
    assert info.value.field == "run"
    with pytest.raises(NotFound):
        store.create_run(run("ghost", "r1"))
    with pytest.raises(NotFound):
        store.update_run(ws, "r9", status=RunStatus.RUNNING)


def test_update_run_changes_only_what_is_named(store: MetadataStore, ws: str) -> None:
    original = store.create_run(run(ws, "r1", params={"C": 1.0}))
    finished = T0 + timedelta(minutes=5)
    updated = store.update_run(
        ws,
        "r1",
        status=RunStatus.SUCCEEDED,
        metrics={"auc": 0.8, "per_class": {"0": [1, 2]}},
        timings={"fit": 1.5},
        artifacts={"report.html": "sha256/ab/" + "ab" * 32},
        started_at=T0 + timedelta(seconds=1),
        finished_at=finished,
    )
    expected = replace(
        original,
        status=RunStatus.SUCCEEDED,
        metrics={"auc": 0.8, "per_class": {"0": [1, 2]}},
        timings={"fit": 1.5},
        artifacts={"report.html": "sha256/ab/" + "ab" * 32},
        started_at=T0 + timedelta(seconds=1),
        finished_at=finished,
    )
    assert updated == expected
    assert store.get_run(ws, "r1") == expected
    failed = store.update_run(ws, "r1", status="failed", error=UNICODE)
    assert failed.status is RunStatus.FAILED
    assert store.get_run(ws, "r1").error == UNICODE
    assert store.update_run(ws, "r1") == failed


def test_update_run_if_changes_only_in_the_named_state(store: MetadataStore, ws: str) -> None:
    store.create_run(run(ws, "r1", status=RunStatus.RUNNING))
    swept = store.update_run_if(
        ws, "r1", when_status=RunStatus.RUNNING, status=RunStatus.FAILED, error="orphaned"
    )
    assert swept is not None and swept.status is RunStatus.FAILED
    late = store.update_run_if(
        ws, "r1", when_status=[RunStatus.RUNNING], status="succeeded", metrics={"auc": 0.9}
    )
    assert late is None  # the sweep won: the run stays failed, without the late metrics
    assert store.get_run(ws, "r1") == swept
    either = (RunStatus.RUNNING, RunStatus.FAILED)
    assert store.update_run_if(ws, "r1", when_status=either, error=UNICODE) == replace(
        swept, error=UNICODE
    )


def test_update_run_if_checks_its_arguments(store: MetadataStore, ws: str) -> None:
    original = store.create_run(run(ws, "r1"))
    with pytest.raises(NotFound, match="'r9'"):
        store.update_run_if(ws, "r9", when_status=RunStatus.RUNNING, error="x")
    with pytest.raises(InvalidInput, match="at least one run status") as info:
        store.update_run_if(ws, "r1", when_status=(), error="x")
    assert info.value.field == "when_status"
    with pytest.raises(InvalidInput, match=r"'done'.*succeeded") as info:
        store.update_run_if(ws, "r1", when_status="done", error="x")
    assert info.value.field == "when_status"
    with pytest.raises(InvalidInput, match="seed"):
        store.update_run_if(ws, "r1", when_status=RunStatus.RUNNING, seed=3)
    assert store.get_run(ws, "r1") == original


def test_update_run_checks_field_types(store: MetadataStore, ws: str) -> None:
    original = store.create_run(run(ws, "r1"))
    with pytest.raises(InvalidInput, match="started_at must be a datetime") as info:
        store.update_run(ws, "r1", started_at="yesterday")
    assert info.value.field == "started_at"
    with pytest.raises(InvalidInput, match="error must be a str") as info:
        store.update_run(ws, "r1", error=42)
    assert info.value.field == "error"
    assert store.get_run(ws, "r1") == original


def test_create_run_refuses_an_unknown_status(store: MetadataStore, ws: str) -> None:
    with pytest.raises(InvalidInput, match=r"'bogus'.*succeeded"):
        store.create_run(run(ws, "r1", status="bogus"))
    assert store.list_runs(ws) == []


def test_times_are_kept_in_utc_and_naive_ones_read_as_utc(store: MetadataStore, ws: str) -> None:
    naive = datetime(2024, 5, 1, 12, 0)
    store.create_run(run(ws, "r1", created_at=naive))
    store.create_run(run(ws, "r2", created_at=datetime(2024, 5, 1, 18, 0, tzinfo=PLUS_0530)))
    got = store.get_run(ws, "r1")
    assert got.created_at == naive.replace(tzinfo=UTC) and got.created_at.utcoffset() == timedelta(
        0
    )
    assert store.get_run(ws, "r2").created_at.utcoffset() == timedelta(0)
    # naive and aware times sort together (12:00 UTC vs 12:30 UTC)
    assert [r.id for r in store.list_runs(ws)] == ["r2", "r1"]


def test_a_model_is_created_with_its_first_version(store: MetadataStore, ws: str) -> None:
    model = Model(ws, "scorecard", task="binary", created_at=T0)
    first = store.add_model_version(model_version(ws), create=model)
    assert first.version == 1 and store.get_model(ws, "scorecard") == model
    second = store.add_model_version(model_version(ws), create=model)  # exists: just added
    assert second.version == 2 and store.list_models(ws) == [model]


def test_a_refused_first_version_creates_no_model(store: MetadataStore, ws: str) -> None:
    model = Model(ws, "scorecard", task="binary", created_at=T0)
    with pytest.raises(InvalidInput, match="metrics"):
        store.add_model_version(model_version(ws, metrics={"auc": float("nan")}), create=model)
    with pytest.raises(InvalidInput, match="create names model") as info:
        store.add_model_version(model_version(ws), create=Model(ws, "other", task="binary"))
    assert info.value.field == "create"
    assert store.list_models(ws) == []


def test_a_first_version_of_another_task_creates_no_model(store: MetadataStore, ws: str) -> None:
    binary = Model(ws, "scorecard", task="binary", created_at=T0)
    with pytest.raises(Conflict, match="holds binary models") as info:
        store.add_model_version(model_version(ws, task="regression"), create=binary)
    assert info.value.field == "model"
    assert store.list_models(ws) == []  # no empty model left behind
    with pytest.raises(NotFound):
        store.get_model(ws, "scorecard")
    regression = replace(binary, task="regression")
    assert (
        store.add_model_version(model_version(ws, task="regression"), create=regression).version
        == 1
    )
    assert store.list_models(ws) == [regression]


def test_a_version_of_another_task_is_refused(store: MetadataStore, ws: str) -> None:
    store.create_model(Model(ws, "scorecard", task="binary", created_at=T0))
    with pytest.raises(Conflict, match="holds binary models") as info:
        store.add_model_version(model_version(ws, task="regression"))
    assert info.value.field == "model"
    assert store.list_model_versions(ws, "scorecard") == []


def test_returned_records_are_copies(store: MetadataStore, ws: str) -> None:
    store.create_model(Model(ws, "scorecard", task="binary", created_at=T0))
    added = store.add_model_version(model_version(ws, metrics={"auc": 0.9}))
    added.metrics["auc"] = 0.1
    got = store.get_model_version(ws, "scorecard", 1)
    got.metrics["auc"] = 0.2
    staged = store.set_stage(ws, "scorecard", 1, Stage.STAGING, actor="ana", reason="test")
    staged.metrics["auc"] = 0.3
    assert store.get_model_version(ws, "scorecard", 1).metrics == {"auc": 0.9}


def test_a_refused_first_version_creates_no_dataset(store: MetadataStore, ws: str) -> None:
    bad = dataset_version(ws, "fresh", "h9", quality={"x": float("nan")})
    with pytest.raises(InvalidInput, match="quality"):
        store.add_dataset_version(bad, create=Dataset(ws, "fresh"))
    with pytest.raises(NotFound):
        store.get_dataset(ws, "fresh")


@pytest.mark.parametrize("field", ["id", "created_by", "seed", "spec", "inputs", "created_at"])
def test_update_run_refuses_immutable_fields(store: MetadataStore, ws: str, field: str) -> None:
    original = store.create_run(run(ws, "r1"))
    with pytest.raises(InvalidInput, match=field) as info:
        store.update_run(ws, "r1", status=RunStatus.RUNNING, **{field: "x"})
    assert info.value.field == field
    assert store.get_run(ws, "r1") == original


def test_update_run_refuses_unknown_status(store: MetadataStore, ws: str) -> None:
    original = store.create_run(run(ws, "r1"))
    with pytest.raises(InvalidInput, match=r"'done'.*succeeded") as info:
        store.update_run(ws, "r1", status="done")
    assert info.value.field == "status"
    assert store.get_run(ws, "r1") == original


def test_list_runs_newest_first_with_filter_and_pages(store: MetadataStore, ws: str) -> None:
    assert store.list_runs(ws) == []
    for i in range(7):
        status = RunStatus.SUCCEEDED if i % 2 else RunStatus.FAILED
        store.create_run(run(ws, f"r{i}", created_at=T0 + timedelta(seconds=i), status=status))
    newest_first = [f"r{i}" for i in reversed(range(7))]
    assert [r.id for r in store.list_runs(ws)] == newest_first
    assert [r.id for r in store.list_runs(ws, limit=3)] == newest_first[:3]
    assert [r.id for r in store.list_runs(ws, limit=3, offset=3)] == newest_first[3:6]
    assert [r.id for r in store.list_runs(ws, limit=3, offset=6)] == newest_first[6:]
    assert store.list_runs(ws, offset=7) == []
    assert store.list_runs(ws, limit=0) == []
    assert [r.id for r in store.list_runs(ws, status=RunStatus.SUCCEEDED)] == ["r5", "r3", "r1"]
    assert [r.id for r in store.list_runs(ws, status=RunStatus.FAILED, limit=2, offset=1)] == [
        "r4",
        "r2",
    ]
    assert store.list_runs(ws, status=RunStatus.RUNNING) == []


def test_list_runs_ties_break_by_id(store: MetadataStore, ws: str) -> None:
    for run_id in ["b", "a", "c-1", "c"]:
        store.create_run(run(ws, run_id))
    assert [r.id for r in store.list_runs(ws)] == ["c-1", "c", "b", "a"]


def test_list_runs_orders_by_instant_across_time_zones(store: MetadataStore, ws: str) -> None:
    store.create_run(run(ws, "early", created_at=T0.astimezone(PLUS_0530)))
    store.create_run(run(ws, "late", created_at=T0 + timedelta(microseconds=1)))
    assert [r.id for r in store.list_runs(ws)] == ["late", "early"]


def test_list_runs_checks_arguments(store: MetadataStore, ws: str) -> None:
    with pytest.raises(InvalidInput, match="limit"):
        store.list_runs(ws, limit=-1)
    with pytest.raises(InvalidInput, match="offset"):
        store.list_runs(ws, offset=-5)
    with pytest.raises(NotFound):
        store.list_runs("ghost")


# -- models and versions -----------------------------------------------------------------
def test_model_create_get_list(store: MetadataStore, ws: str) -> None:
    for name in ["b", "a-c", "ab"]:
        created = store.create_model(Model(ws, name, task="binary", description=UNICODE))
        assert store.get_model(ws, name) == created
    assert [m.name for m in store.list_models(ws)] == ["a-c", "ab", "b"]
    with pytest.raises(AlreadyExists, match="'ab'"):
        store.create_model(Model(ws, "ab", task="regression"))
    with pytest.raises(NotFound, match=r"'zz'.*leptonic models list") as info:
        store.get_model(ws, "zz")
    assert info.value.field == "model"
    with pytest.raises(NotFound):
        store.create_model(Model("ghost", "m", task="binary"))


def test_model_version_lineage_in_the_same_transaction(store: MetadataStore, ws: str) -> None:
    model = with_model(store, ws)
    run_ref = ObjectRef(ws, "run", "r1")
    data_ref = ObjectRef(ws, "dataset", "applicants", 1)
    mv = store.add_model_version(model_version(ws, model), lineage_from=[run_ref, data_ref])
    target = ObjectRef(ws, "model", model, mv.version)
    assert store.lineage(target, "upstream") == sorted([data_ref, run_ref])
    assert store.lineage(run_ref) == [target]
    store.create_workspace(Workspace("fraud"))
    with pytest.raises(InvalidInput, match="one workspace"):
        store.add_model_version(
            model_version(ws, model), lineage_from=[ObjectRef("fraud", "run", "r9")]
        )
    assert [v.version for v in store.list_model_versions(ws, model)] == [1]  # nothing written


def test_model_versions_start_as_candidates(store: MetadataStore, ws: str) -> None:
    model = with_model(store, ws)
    v1 = store.add_model_version(model_version(ws, model, version=42, stage=Stage.PRODUCTION))
    v2 = store.add_model_version(model_version(ws, model, created_by="bob"))
    assert (v1.version, v1.stage) == (1, Stage.CANDIDATE)
    assert v1 == replace(model_version(ws, model), version=1)
    assert v2.version == 2
    assert store.get_model_version(ws, model, 1) == v1
    assert store.list_model_versions(ws, model) == [v1, v2]
    assert store.list_stage_transitions(ws, model) == [
        StageTransition(ws, model, 1, None, Stage.CANDIDATE, "ana", "registered", T0),
        StageTransition(ws, model, 2, None, Stage.CANDIDATE, "bob", "registered", T0),
    ]


def test_model_version_not_found(store: MetadataStore, ws: str) -> None:
    model = with_model(store, ws)
    store.add_model_version(model_version(ws, model))
    with pytest.raises(NotFound, match="no version 3") as info:
        store.get_model_version(ws, model, 3)
    assert info.value.field == "version"
    with pytest.raises(NotFound):
        store.add_model_version(model_version(ws, "other"))
    with pytest.raises(NotFound):
        store.set_stage(ws, model, 3, Stage.STAGING, actor="ana", reason="x")
    with pytest.raises(NotFound):
        store.list_stage_transitions(ws, "other")


def test_allowed_transitions(store: MetadataStore, ws: str) -> None:
    model = with_model(store, ws)
    store.add_model_version(model_version(ws, model))
    at = T0 + timedelta(hours=1)
    staged = store.set_stage(ws, model, 1, Stage.STAGING, actor="ana", reason="ready", at=at)
    assert staged.stage == Stage.STAGING
    assert staged == replace(store.get_model_version(ws, model, 1), stage=Stage.STAGING)
    assert store.get_model_version(ws, model, 1).stage == Stage.STAGING
    back = store.set_stage(ws, model, 1, "candidate", actor="bob", reason="more work", at=at)  # type: ignore[arg-type]
    assert back.stage == Stage.CANDIDATE
    archived = store.set_stage(ws, model, 1, Stage.ARCHIVED, actor="bob", reason="old")
    assert archived.stage == Stage.ARCHIVED
    assert [
        (t.from_stage, t.to_stage, t.actor, t.reason)
        for t in store.list_stage_transitions(ws, model, 1)
    ] == [
        (None, Stage.CANDIDATE, "ana", "registered"),
        (Stage.CANDIDATE, Stage.STAGING, "ana", "ready"),
        (Stage.STAGING, Stage.CANDIDATE, "bob", "more work"),
        (Stage.CANDIDATE, Stage.ARCHIVED, "bob", "old"),
    ]
    last = store.list_stage_transitions(ws, model, 1)[-1].at
    assert last.utcoffset() is not None
    assert abs(datetime.now(UTC) - last) < timedelta(minutes=5)


def test_forbidden_transition_changes_nothing(store: MetadataStore, ws: str) -> None:
    model = with_model(store, ws)
    store.add_model_version(model_version(ws, model))
    before = store.list_stage_transitions(ws, model)
    with pytest.raises(Conflict, match=r"'candidate'.*'production'.*archived, staging") as info:
        store.set_stage(ws, model, 1, Stage.PRODUCTION, actor="eve", reason="yolo")
    assert info.value.field == "stage"
    assert stages(store, ws, model) == {1: Stage.CANDIDATE}
    assert store.list_stage_transitions(ws, model) == before


def test_unknown_stage(store: MetadataStore, ws: str) -> None:
    model = with_model(store, ws)
    store.add_model_version(model_version(ws, model))
    with pytest.raises(InvalidInput, match="'live'") as info:
        store.set_stage(ws, model, 1, "live", actor="eve", reason="x")  # type: ignore[arg-type]
    assert info.value.field == "stage"


def test_production_archives_the_previous_production(store: MetadataStore, ws: str) -> None:
    model = with_model(store, ws)
    for _ in range(3):
        store.add_model_version(model_version(ws, model))
    t1, t2 = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    for v in (1, 2):
        store.set_stage(ws, model, v, Stage.STAGING, actor="ana", reason="review", at=t1)
    store.set_stage(ws, model, 1, Stage.PRODUCTION, actor="ana", reason="launch", at=t1)
    assert stages(store, ws, model) == {1: Stage.PRODUCTION, 2: Stage.STAGING, 3: Stage.CANDIDATE}

    promoted = store.set_stage(ws, model, 2, Stage.PRODUCTION, actor="bob", reason="better", at=t2)
    assert promoted.stage == Stage.PRODUCTION
    assert stages(store, ws, model) == {1: Stage.ARCHIVED, 2: Stage.PRODUCTION, 3: Stage.CANDIDATE}
    assert [v.version for v in store.list_model_versions(ws, model, stage=Stage.PRODUCTION)] == [2]
    assert [v.version for v in store.list_model_versions(ws, model, stage=Stage.ARCHIVED)] == [1]
    assert store.list_stage_transitions(ws, model)[-2:] == [
        StageTransition(
            ws,
            model,
            1,
            Stage.PRODUCTION,
            Stage.ARCHIVED,
            "bob",
            "replaced by v2 in production",
            t2,
        ),
        StageTransition(ws, model, 2, Stage.STAGING, Stage.PRODUCTION, "bob", "better", t2),
    ]
    assert len(store.list_stage_transitions(ws, model)) == 3 + 2 + 1 + 2
    assert [t.to_stage for t in store.list_stage_transitions(ws, model, 1)] == [
        Stage.CANDIDATE,
        Stage.STAGING,
        Stage.PRODUCTION,
        Stage.ARCHIVED,
    ]


def test_model_versions_page(store: MetadataStore, ws: str) -> None:
    model = with_model(store, ws)
    for _ in range(5):
        store.add_model_version(model_version(ws, model))
    page = store.list_model_versions(ws, model, limit=2, offset=1)
    assert [v.version for v in page] == [2, 3]
    assert [v.version for v in store.list_model_versions(ws, model, offset=3)] == [4, 5]
    assert store.list_model_versions(ws, model, limit=2, offset=9) == []
    with pytest.raises(InvalidInput, match="limit"):
        store.list_model_versions(ws, model, limit=-1)


def test_model_versions_of_two_models_are_independent(store: MetadataStore, ws: str) -> None:
    a, b = with_model(store, ws, "a"), with_model(store, ws, "b")
    store.add_model_version(model_version(ws, a))
    store.add_model_version(model_version(ws, a))
    assert store.add_model_version(model_version(ws, b)).version == 1
    assert store.list_stage_transitions(ws, b) == [
        StageTransition(ws, b, 1, None, Stage.CANDIDATE, "ana", "registered", T0)
    ]


# -- lineage -----------------------------------------------------------------------------
def test_lineage_both_ways(store: MetadataStore) -> None:
    data = ObjectRef("credit", "dataset", "applicants", 1)
    data2 = ObjectRef("credit", "dataset", "applicants", 2)
    run_ref = ObjectRef("credit", "run", "r1")
    model = ObjectRef("credit", "model", "scorecard", 1)
    store.add_lineage(data, run_ref)
    store.add_lineage(data2, run_ref)
    store.add_lineage(run_ref, model)
    store.add_lineage(run_ref, model)  # idempotent
    assert store.lineage(data) == [run_ref]
    assert store.lineage(data, "downstream") == [run_ref]
    assert store.lineage(run_ref, "upstream") == [data, data2]
    assert store.lineage(run_ref) == [model]
    assert store.lineage(model, "upstream") == [run_ref]
    assert store.lineage(model) == []
    assert store.lineage(ObjectRef("credit", "run", "nothing")) == []


def test_lineage_mixes_versioned_and_unversioned_refs(store: MetadataStore) -> None:
    target = ObjectRef("credit", "run", "r1")
    refs = [
        ObjectRef("credit", "dataset", "applicants", 3),
        ObjectRef("credit", "dataset", "applicants"),
        ObjectRef("credit", "dataset", "applicants", 1),
    ]
    for ref in refs:
        store.add_lineage(ref, target)
    assert store.lineage(target, "upstream") == [refs[1], refs[2], refs[0]]
    # A versioned and an unversioned ref are different nodes.
    assert store.lineage(refs[1]) == [target]
    assert store.lineage(ObjectRef("credit", "dataset", "applicants", 2)) == []


def test_lineage_stays_in_its_workspace(store: MetadataStore) -> None:
    a = ObjectRef("credit", "dataset", "applicants", 1)
    b = ObjectRef("fraud", "run", "r1")
    with pytest.raises(InvalidInput, match="one workspace"):
        store.add_lineage(a, b)
    store.add_lineage(a, ObjectRef("credit", "run", "r1"))
    assert store.lineage(ObjectRef("fraud", "dataset", "applicants", 1)) == []
    assert store.lineage(b, "upstream") == []


# -- records come back as they were written ------------------------------------------------
NESTED: dict[str, Any] = {
    "unicode": UNICODE,
    "ints": [0, -1, 2**40, 2**62],
    "floats": [0.1, -2.5e-300, 1e300, 1.0],
    "flags": {"yes": True, "no": False, "none": None},
    "nested": {"a": {"b": {"c": [1, {"d": "é"}]}}},
    "empty": {"list": [], "dict": {}, "str": ""},
    "😀": "emoji key",
}


def test_records_round_trip(store: MetadataStore, ws: str) -> None:
    ws_record = Workspace("retail", description=UNICODE, created_at=T0.astimezone(PLUS_0530))
    store.create_workspace(ws_record)
    assert store.get_workspace("retail") == ws_record
    assert store.list_workspaces()[1] == ws_record

    ds = Dataset(ws, "events", description=UNICODE, created_at=T0 + timedelta(microseconds=1))
    store.create_dataset(ds)
    assert store.get_dataset(ws, "events") == ds

    columns = tuple(
        Column(name, dtype, role, pii=pii, nullable=nullable)
        for name, dtype, role, pii, nullable in [
            ("id", "int64", ColumnRole.ID, None, False),
            ("naïve name", "string", ColumnRole.PII, "person_name", True),
            ("amount", "double", ColumnRole.NUMERIC, None, True),
            ("label", "int8", ColumnRole.TARGET, None, False),
        ]
    )
    dv = dataset_version(
        ws,
        "events",
        "e" * 64,
        columns=columns,
        quality=NESTED,
        source={"path": "/data/événements.csv", "sha": "e" * 64},
        created_at=datetime(2031, 12, 31, 23, 59, 59, 999999, tzinfo=PLUS_0530),
    )
    stored, _ = store.add_dataset_version(dv)
    got = store.get_dataset_version(ws, "events", stored.version)
    assert got == stored == replace(dv, version=1)
    assert got.pii == {"naïve name": "person_name"}
    assert store.list_dataset_versions(ws, "events") == [stored]

    full = Run(
        id="run-ü-1",
        workspace=ws,
        status=RunStatus.RUNNING,
        spec={"task": "binary", "options": NESTED},
        seed=2**31 - 1,
        params={"C": 0.5, "penalty": "l2", "grid": [0.1, 1, 10]},
        metrics={"auc": 0.8123456789012345, "confusion": [[5, 1], [2, 9]]},
        timings={"fit": 0.25, "total": 3},
        artifacts={"report.html": "sha256/ab/" + "ab" * 32},
        inputs=("leptonic://credit/dataset/events/1", "leptonic://credit/dataset/applicants/2"),
        error=None,
        created_by="ana",
        created_at=T0.astimezone(PLUS_0530),
        started_at=T0 + timedelta(seconds=1),
        finished_at=None,
    )
    store.create_run(full)
    assert store.get_run(ws, full.id) == full
    assert store.list_runs(ws) == [full]

    model = Model(ws, "ranker", task="recommendation", description=UNICODE, created_at=T0)
    store.create_model(model)
    assert store.get_model(ws, "ranker") == model
    mv = model_version(
        ws,
        "ranker",
        task="recommendation",
        signature=NESTED,
        metrics={"ndcg@10": 0.3},
        model_card=UNICODE,
    )
    added = store.add_model_version(mv)
    assert store.get_model_version(ws, "ranker", 1) == added == replace(mv, version=1)

    for record in (
        store.get_workspace("retail"),
        got,
        store.get_run(ws, full.id),
        store.get_model_version(ws, "ranker", 1),
    ):
        assert record.created_at.utcoffset() is not None


def test_stored_records_do_not_change_with_the_callers_objects(
    store: MetadataStore, ws: str
) -> None:
    params: dict[str, Any] = {"C": 1.0}
    store.create_run(run(ws, "r1", params=params))
    params["C"] = 99.0
    got = store.get_run(ws, "r1")
    assert got.params == {"C": 1.0}
    got.params["C"] = 5.0
    assert store.get_run(ws, "r1").params == {"C": 1.0}


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ({"auc": float("nan")}, "nan"),
        ({"auc": float("inf")}, "inf"),
        ({1: 0.5}, "key 1"),
        ({"auc": object()}, "object"),
        ({"nested": [{"x": {1, 2}}]}, "set"),
    ],
)
def test_sql_stores_refuse_values_json_cannot_hold(
    backend: str, store: MetadataStore, ws: str, value: dict[str, Any], match: str
) -> None:
    store.create_run(run(ws, "r1"))
    with pytest.raises(InvalidInput, match=match) as info:
        store.update_run(ws, "r1", metrics=value)
    assert info.value.field == "metrics"
    with pytest.raises(InvalidInput):
        store.create_run(run(ws, "r2", spec=value))
    with pytest.raises(NotFound):
        store.get_run(ws, "r2")
    model = with_model(store, ws)
    with pytest.raises(InvalidInput):
        store.add_model_version(model_version(ws, model, metrics=value))
    ds = with_dataset(store, ws)
    with pytest.raises(InvalidInput):
        store.add_dataset_version(dataset_version(ws, ds, quality=value))
    assert store.list_model_versions(ws, model) == []
    assert store.list_dataset_versions(ws, ds) == []


def test_store_is_a_context_manager(open_store: Callable[[], MetadataStore]) -> None:
    with open_store() as store:
        store.create_workspace(Workspace("ctx"))
    with open_store() as store:
        assert store.get_workspace("ctx").name == "ctx"


# -- concurrency --------------------------------------------------------------------------
WRITERS = 8


def _in_threads(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` for i in range(n) in n threads released together."""
    barrier = threading.Barrier(n, timeout=60)

    def start(i: int) -> Any:
        barrier.wait()
        return work(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(start, range(n)))


def test_concurrent_dataset_versions(
    open_store: Callable[[], MetadataStore], store: MetadataStore, ws: str
) -> None:
    ds = with_dataset(store, ws)
    handles = [store, open_store()]  # two connections pools, as two processes would have
    hashes = [f"h{i % 5}" for i in range(WRITERS)]  # some writers add the same content

    results = _in_threads(
        WRITERS,
        lambda i: handles[i % 2].add_dataset_version(dataset_version(ws, ds, hashes[i])),
    )

    versions = store.list_dataset_versions(ws, ds)
    assert [v.version for v in versions] == [1, 2, 3, 4, 5]
    assert sorted(v.content_hash for v in versions) == sorted(set(hashes))
    assert sum(created for _, created in results) == 5
    by_hash = {v.content_hash: v for v in versions}
    for (stored, _), h in zip(results, hashes, strict=True):
        assert stored == by_hash[h]


def test_concurrent_model_versions(
    open_store: Callable[[], MetadataStore], store: MetadataStore, ws: str
) -> None:
    model = with_model(store, ws)
    handles = [store, open_store()]
    results = _in_threads(
        WRITERS,
        lambda i: handles[i % 2].add_model_version(model_version(ws, model, run_id=f"r{i}")),
    )
    assert sorted(v.version for v in results) == list(range(1, WRITERS + 1))
    stored = store.list_model_versions(ws, model)
    assert {v.version: v.run_id for v in stored} == {v.version: v.run_id for v in results}
    assert len(store.list_stage_transitions(ws, model)) == WRITERS


def test_concurrent_promotions_leave_one_production(
    open_store: Callable[[], MetadataStore], store: MetadataStore, ws: str
) -> None:
    model = with_model(store, ws)
    handles = [store, open_store()]
    for v in range(1, WRITERS + 1):
        store.add_model_version(model_version(ws, model))
        store.set_stage(ws, model, v, Stage.STAGING, actor="ana", reason="review")
    _in_threads(
        WRITERS,
        lambda i: handles[i % 2].set_stage(
            ws, model, i + 1, Stage.PRODUCTION, actor="ana", reason="race"
        ),
    )
    final = stages(store, ws, model)
    assert list(final.values()).count(Stage.PRODUCTION) == 1
    assert list(final.values()).count(Stage.ARCHIVED) == WRITERS - 1


# -- users ---------------------------------------------------------------------------------
def user(name: str = "ana", **kw: Any) -> User:
    fields: dict[str, Any] = {"name": name, "display_name": "Ana", "created_at": T0}
    fields.update(kw)
    return User(**fields)


def token(token_id: str, user: str = "ana", secret: str = "s1", **kw: Any) -> ApiToken:
    fields: dict[str, Any] = {
        "id": token_id,
        "user": user,
        "name": f"laptop {token_id}",
        "token_hash": hashlib.sha256(secret.encode()).hexdigest(),
        "prefix": f"lep_{secret[:4]}",
        "created_at": T0,
    }
    fields.update(kw)
    return ApiToken(**fields)


def test_user_create_get_list(store: MetadataStore) -> None:
    assert store.list_users() == []
    ana = user("ana", display_name=UNICODE, is_admin=True, created_at=T0.astimezone(PLUS_0530))
    assert store.create_user(ana) == ana
    got = store.get_user("ana")
    assert got == ana
    assert got.is_admin is True
    assert got.created_at.utcoffset() is not None
    for name in ["b", "a-c", "ab", "a_b"]:
        store.create_user(user(name))
    assert [u.name for u in store.list_users()] == ["a-c", "a_b", "ab", "ana", "b"]
    assert store.get_user("b") == user("b")


@pytest.mark.parametrize("name", ["Ana", "ana smith", "../etc", "", "a" * 64, "ana@example.com"])
def test_user_names_are_validated(store: MetadataStore, name: str) -> None:
    with pytest.raises(InvalidName, match="invalid user name") as info:
        store.create_user(user(name))
    assert info.value.field == "user"
    assert store.list_users() == []


def test_user_already_exists(store: MetadataStore) -> None:
    store.create_user(user("ana"))
    with pytest.raises(AlreadyExists, match="'ana'") as info:
        store.create_user(user("ana", display_name="Other", is_admin=True))
    assert info.value.field == "name"
    assert store.get_user("ana") == user("ana")


def test_user_not_found(store: MetadataStore) -> None:
    with pytest.raises(NotFound, match=r"'bob'.*leptonic users create bob") as info:
        store.get_user("bob")
    assert isinstance(info.value, KeyError)
    assert info.value.field == "user"


# -- API tokens ------------------------------------------------------------------------------
def test_token_create_get_list(store: MetadataStore) -> None:
    store.create_user(user("ana"))
    store.create_user(user("bob"))
    t2 = token("t2", secret="s2", created_at=T0 + timedelta(seconds=1))
    t1 = token("t1", secret="s1", expires_at=T0 + timedelta(days=30))
    t0 = token("t0", secret="s0")  # same time as t1: ties break by id
    other = token("t9", user="bob", secret="s9")
    for tk in (t2, t1, t0, other):
        assert store.create_token(tk) == tk
    assert store.get_token_by_hash(t1.token_hash) == t1
    assert store.get_token_by_hash(t1.token_hash).expires_at == T0 + timedelta(days=30)
    assert store.list_tokens("ana") == [t0, t1, t2]
    assert store.list_tokens("bob") == [other]
    store.create_user(user("carl"))
    assert store.list_tokens("carl") == []


def test_token_needs_an_existing_user(store: MetadataStore) -> None:
    with pytest.raises(NotFound, match="'ghost'") as info:
        store.create_token(token("t1", user="ghost"))
    assert info.value.field == "user"
    with pytest.raises(NotFound, match="'ghost'"):
        store.list_tokens("ghost")
    store.create_user(user("ana"))
    assert store.list_tokens("ana") == []


def test_token_ids_and_hashes_are_unique(store: MetadataStore) -> None:
    store.create_user(user("ana"))
    first = store.create_token(token("t1", secret="s1"))
    with pytest.raises(AlreadyExists, match="'t1'") as info:
        store.create_token(token("t1", secret="s2"))
    assert info.value.field == "id"
    with pytest.raises(AlreadyExists, match="same secret") as info:
        store.create_token(token("t2", secret="s1"))
    assert info.value.field == "token_hash"
    assert first.token_hash not in str(info.value)
    assert store.list_tokens("ana") == [first]


def test_unknown_token_hash_is_not_echoed(store: MetadataStore) -> None:
    store.create_user(user("ana"))
    store.create_token(token("t1", secret="s1"))
    wanted = hashlib.sha256(b"mistyped").hexdigest()
    with pytest.raises(NotFound) as info:
        store.get_token_by_hash(wanted)
    assert info.value.field == "token"
    assert wanted not in str(info.value)
    assert wanted[:8] not in str(info.value)


def test_revoke_token_is_idempotent(store: MetadataStore) -> None:
    store.create_user(user("ana"))
    tk = store.create_token(token("t1"))
    assert tk.is_active(T0)
    t1, t2 = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    revoked = store.revoke_token("t1", t1)
    assert revoked == replace(tk, revoked_at=t1)
    assert store.get_token_by_hash(tk.token_hash) == revoked
    assert not store.get_token_by_hash(tk.token_hash).is_active(T0)
    assert store.revoke_token("t1", t2).revoked_at == t1
    assert store.list_tokens("ana") == [revoked]
    with pytest.raises(NotFound, match="'t9'") as info:
        store.revoke_token("t9", t1)
    assert info.value.field == "token"


# -- memberships --------------------------------------------------------------------------------
def test_membership_set_get_replace(store: MetadataStore, ws: str) -> None:
    store.create_user(user("ana"))
    assert store.get_membership(ws, "ana") is None
    viewer = Membership(ws, "ana", Role.VIEWER, created_at=T0)
    assert store.set_membership(viewer) == viewer
    assert store.get_membership(ws, "ana") == viewer
    admin = Membership(ws, "ana", Role.ADMIN, raw_pii=True, created_at=T0 + timedelta(days=1))
    assert store.set_membership(admin) == admin
    got = store.get_membership(ws, "ana")
    assert got == admin
    assert got is not None and got.role is Role.ADMIN and got.raw_pii is True
    assert store.list_memberships() == [admin]


def test_membership_roles_are_checked(store: MetadataStore, ws: str) -> None:
    store.create_user(user("ana"))
    stored = store.set_membership(Membership(ws, "ana", "developer", created_at=T0))  # type: ignore[arg-type]
    assert stored.role is Role.DEVELOPER
    got = store.get_membership(ws, "ana")
    assert got is not None and got.role is Role.DEVELOPER
    with pytest.raises(InvalidInput, match=r"'owner'.*viewer, developer, admin") as info:
        store.set_membership(Membership(ws, "ana", "owner"))  # type: ignore[arg-type]
    assert info.value.field == "role"
    assert store.get_membership(ws, "ana") == stored


def test_membership_needs_workspace_and_user(store: MetadataStore, ws: str) -> None:
    store.create_user(user("ana"))
    with pytest.raises(NotFound) as info:
        store.set_membership(Membership("ghost", "ana", Role.VIEWER))
    assert info.value.field == "workspace"
    with pytest.raises(NotFound, match="leptonic users create bob") as info:
        store.set_membership(Membership(ws, "bob", Role.VIEWER))
    assert info.value.field == "user"
    assert store.list_memberships() == []
    assert store.get_membership("ghost", "ana") is None
    assert store.get_membership(ws, "bob") is None


def test_list_and_remove_memberships(store: MetadataStore, ws: str) -> None:
    store.create_workspace(Workspace("fraud", created_at=T0))
    for name in ("carl", "ana", "bob"):
        store.create_user(user(name))
    given = [
        Membership("fraud", "ana", Role.ADMIN, created_at=T0),
        Membership(ws, "carl", Role.VIEWER, created_at=T0),
        Membership(ws, "ana", Role.DEVELOPER, raw_pii=True, created_at=T0),
        Membership("fraud", "bob", Role.VIEWER, created_at=T0),
    ]
    for m in given:
        store.set_membership(m)
    pairs = [(m.workspace, m.user) for m in store.list_memberships()]
    assert pairs == [("credit", "ana"), ("credit", "carl"), ("fraud", "ana"), ("fraud", "bob")]
    assert [m.user for m in store.list_memberships(workspace=ws)] == ["ana", "carl"]
    assert [m.workspace for m in store.list_memberships(user="ana")] == ["credit", "fraud"]
    assert store.list_memberships(workspace="fraud", user="ana") == [given[0]]
    assert store.list_memberships(workspace="fraud", user="carl") == []
    assert store.list_memberships(workspace="ghost") == []

    store.remove_membership(ws, "ana")
    assert store.get_membership(ws, "ana") is None
    assert store.get_membership("fraud", "ana") == given[0]
    store.remove_membership(ws, "ana")  # absent: nothing happens
    store.remove_membership("ghost", "nobody")
    assert len(store.list_memberships()) == 3


# -- audit log ------------------------------------------------------------------------------------
def event(
    action: str = "dataset.add", actor: str = "ana", ws: str | None = "credit", **kw: Any
) -> AuditEvent:
    fields: dict[str, Any] = {
        "actor": actor,
        "action": action,
        "workspace": ws,
        "objects": ("leptonic://credit/dataset/applicants/1",),
        "details": {"rows": 10},
        "at": T0,
    }
    fields.update(kw)
    return AuditEvent(**fields)


def test_audit_ids_are_assigned_and_increasing(store: MetadataStore) -> None:
    appended = [store.append_audit(event(id=99)) for _ in range(3)]
    ids = [e.id for e in appended]
    assert all(isinstance(i, int) for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert appended[0] == replace(event(), id=ids[0])
    assert store.list_audit() == appended[::-1]


def test_audit_round_trip(store: MetadataStore) -> None:
    full = event(
        "model.promote",
        actor="ana",
        ws="credit",
        objects=("leptonic://credit/model/scorecard/2", "leptonic://credit/model/scorecard/1"),
        details=NESTED,
        at=datetime(2031, 12, 31, 23, 59, 59, 999999, tzinfo=PLUS_0530),
    )
    stored = store.append_audit(full)
    assert stored == replace(full, id=stored.id)
    (got,) = store.list_audit()
    assert got == stored
    assert isinstance(got.objects, tuple)
    assert got.at.utcoffset() is not None
    bare = store.append_audit(event("user.create", ws=None, objects=(), details={}))
    assert store.list_audit(limit=1) == [bare]
    assert bare.workspace is None and bare.objects == () and bare.details == {}


def test_audit_is_newest_first_with_filters_and_pages(store: MetadataStore) -> None:
    assert store.list_audit() == []
    specs = [
        ("dataset.add", "ana", "credit"),
        ("run.create", "bob", "credit"),
        ("dataset.add", "bob", "fraud"),
        ("user.create", "admin", None),
        ("dataset.add", "ana", "credit"),
        ("model.promote", "ana", "fraud"),
    ]
    # later events may carry earlier times: the order is the order of appending
    ids = [
        store.append_audit(event(a, actor, w, at=T0 - timedelta(seconds=i))).id
        for i, (a, actor, w) in enumerate(specs)
    ]
    newest_first = ids[::-1]
    assert [e.id for e in store.list_audit()] == newest_first
    assert [e.id for e in store.list_audit(limit=2)] == newest_first[:2]
    assert [e.id for e in store.list_audit(limit=2, offset=4)] == newest_first[4:]
    assert store.list_audit(offset=6) == []
    assert store.list_audit(limit=0) == []
    assert [e.id for e in store.list_audit(workspace="credit")] == [ids[4], ids[1], ids[0]]
    assert [e.id for e in store.list_audit(actor="bob")] == [ids[2], ids[1]]
    assert [e.id for e in store.list_audit(action="dataset.add")] == [ids[4], ids[2], ids[0]]
    assert [
        e.id for e in store.list_audit(workspace="credit", actor="ana", action="dataset.add")
    ] == [ids[4], ids[0]]
    assert [e.id for e in store.list_audit(action="dataset.add", limit=1, offset=1)] == [ids[2]]
    assert store.list_audit(workspace="retail") == []
    with pytest.raises(InvalidInput, match="limit"):
        store.list_audit(limit=-1)
    with pytest.raises(InvalidInput, match="offset") as info:
        store.list_audit(offset=1.5)  # type: ignore[arg-type]
    assert info.value.field == "offset"


def test_audit_events_do_not_change_with_the_callers_objects(store: MetadataStore) -> None:
    details: dict[str, Any] = {"rows": 10, "columns": ["a"]}
    store.append_audit(event(details=details))
    details["rows"] = 99
    details["columns"].append("b")
    (got,) = store.list_audit()
    assert got.details == {"rows": 10, "columns": ["a"]}
    got.details["rows"] = 5
    assert store.list_audit()[0].details == {"rows": 10, "columns": ["a"]}


# -- background jobs ---------------------------------------------------------------------------
def job(ws: str, job_id: str, *, created_at: datetime = T0, **kw: Any) -> Job:
    fields: dict[str, Any] = {
        "id": job_id,
        "workspace": ws,
        "kind": "train",
        "payload": {"spec": {"task": "binary"}, "dataset": "applicants"},
        "created_by": "ana",
        "created_at": created_at,
    }
    fields.update(kw)
    return Job(**fields)


def test_job_round_trip(store: MetadataStore, ws: str) -> None:
    simple = job(ws, "j1")
    assert store.create_job(simple) == simple
    assert store.get_job(ws, "j1") == simple
    full = Job(
        id="job-ü-2",
        workspace=ws,
        kind="score",
        payload=NESTED,
        status=JobStatus.RUNNING,
        created_by="bob",
        run_id="r1",
        owner="server-1",
        progress={"done": 3, "total": 10, "message": UNICODE},
        result={"rows": 2**40, "score": 0.5},
        error=UNICODE,
        cancel_requested=True,
        created_at=T0.astimezone(PLUS_0530),
        started_at=T0 + timedelta(seconds=1),
        finished_at=T0 + timedelta(seconds=2),
        heartbeat_at=T0 + timedelta(seconds=3),
    )
    assert store.create_job(full) == full
    got = store.get_job(ws, full.id)
    assert got == full
    assert got.status is JobStatus.RUNNING
    assert got.cancel_requested is True
    for when in (got.created_at, got.started_at, got.finished_at, got.heartbeat_at):
        assert when is not None and when.utcoffset() is not None
    assert store.list_jobs(ws) == [full, simple]


def test_find_job_by_run(store: MetadataStore, ws: str) -> None:
    store.create_workspace(Workspace("fraud"))
    store.create_job(job(ws, "j1", run_id="run-a"))
    store.create_job(job(ws, "j2"))
    assert store.find_job_by_run(ws, "run-a") == store.get_job(ws, "j1")
    assert store.find_job_by_run(ws, "run-b") is None
    assert store.find_job_by_run("fraud", "run-a") is None  # other workspaces see nothing
    with pytest.raises(NotFound):
        store.find_job_by_run("ghost", "run-a")
    # two jobs of one run (a retry): the oldest is found, whatever the insertion order
    store.create_job(job(ws, "j4", run_id="run-c", created_at=T0 + timedelta(minutes=2)))
    store.create_job(job(ws, "j3", run_id="run-c", created_at=T0 + timedelta(minutes=1)))
    found = store.find_job_by_run(ws, "run-c")
    assert found is not None and found.id == "j3"


def test_job_ids_are_unique_and_need_a_workspace(store: MetadataStore, ws: str) -> None:
    store.create_workspace(Workspace("fraud"))
    store.create_job(job(ws, "j1"))
    with pytest.raises(AlreadyExists, match="'j1'") as info:
        store.create_job(job(ws, "j1", kind="score"))
    assert info.value.field == "id"
    with pytest.raises(AlreadyExists, match="'j1'"):
        store.create_job(job("fraud", "j1"))
    with pytest.raises(NotFound) as info:
        store.create_job(job("ghost", "j2"))
    assert info.value.field == "workspace"
    assert store.get_job(ws, "j1").kind == "train"
    assert store.list_jobs("fraud") == []


def test_job_status_is_checked_on_create(store: MetadataStore, ws: str) -> None:
    assert store.create_job(job(ws, "j1", status="running")).status is JobStatus.RUNNING
    assert store.get_job(ws, "j1").status is JobStatus.RUNNING
    with pytest.raises(InvalidInput, match=r"'done'.*queued") as info:
        store.create_job(job(ws, "j2", status="done"))
    assert info.value.field == "status"
    with pytest.raises(NotFound):
        store.get_job(ws, "j2")


def test_job_not_found(store: MetadataStore, ws: str) -> None:
    with pytest.raises(NotFound, match=r"'j9'.*leptonic jobs list --workspace credit") as info:
        store.get_job(ws, "j9")
    assert info.value.field == "job"
    assert isinstance(info.value, KeyError)
    with pytest.raises(NotFound):
        store.update_job(ws, "j9", progress={"done": 1})
    with pytest.raises(NotFound) as info:
        store.get_job("ghost", "j9")
    assert info.value.field == "workspace"
    with pytest.raises(NotFound):
        store.list_jobs("ghost")


def test_jobs_stay_in_their_workspace(store: MetadataStore, ws: str) -> None:
    store.create_workspace(Workspace("fraud"))
    original = store.create_job(job(ws, "j1"))
    for call in (
        lambda: store.get_job("fraud", "j1"),
        lambda: store.update_job("fraud", "j1", cancel_requested=True),
    ):
        with pytest.raises(NotFound):
            call()
    assert store.list_jobs("fraud") == []
    assert store.get_job(ws, "j1") == original


def test_list_jobs_newest_first_with_filter_and_pages(store: MetadataStore, ws: str) -> None:
    assert store.list_jobs(ws) == []
    for i in range(7):
        status = JobStatus.SUCCEEDED if i % 2 else JobStatus.QUEUED
        store.create_job(job(ws, f"j{i}", created_at=T0 + timedelta(seconds=i), status=status))
    newest_first = [f"j{i}" for i in reversed(range(7))]
    assert [j.id for j in store.list_jobs(ws)] == newest_first
    assert [j.id for j in store.list_jobs(ws, limit=3)] == newest_first[:3]
    assert [j.id for j in store.list_jobs(ws, limit=3, offset=3)] == newest_first[3:6]
    assert [j.id for j in store.list_jobs(ws, limit=3, offset=6)] == newest_first[6:]
    assert store.list_jobs(ws, offset=7) == []
    assert store.list_jobs(ws, limit=0) == []
    assert [j.id for j in store.list_jobs(ws, status=JobStatus.SUCCEEDED)] == ["j5", "j3", "j1"]
    assert [j.id for j in store.list_jobs(ws, status="queued", limit=2, offset=1)] == [  # type: ignore[arg-type]
        "j4",
        "j2",
    ]
    assert store.list_jobs(ws, status=JobStatus.RUNNING) == []
    with pytest.raises(InvalidInput, match="'done'") as info:
        store.list_jobs(ws, status="done")  # type: ignore[arg-type]
    assert info.value.field == "status"
    with pytest.raises(InvalidInput, match="limit"):
        store.list_jobs(ws, limit=-1)
    with pytest.raises(InvalidInput, match="offset"):
        store.list_jobs(ws, offset=-1)


def test_list_jobs_ties_and_time_zones(store: MetadataStore, ws: str) -> None:
    for job_id in ["b", "a", "c-1", "c"]:
        store.create_job(job(ws, job_id))
    store.create_job(job(ws, "early", created_at=(T0 - timedelta(seconds=1)).astimezone(PLUS_0530)))
    store.create_job(job(ws, "late", created_at=T0 + timedelta(microseconds=1)))
    assert [j.id for j in store.list_jobs(ws)] == ["late", "c-1", "c", "b", "a", "early"]


def test_update_job_changes_only_what_is_named(store: MetadataStore, ws: str) -> None:
    original = store.create_job(job(ws, "j1"))
    t1, t2 = T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)
    changes: dict[str, Any] = {
        "status": JobStatus.RUNNING,
        "run_id": "r1",
        "owner": "server-1",
        "progress": {"done": 1, "total": 4, "message": UNICODE},
        "started_at": t1,
        "heartbeat_at": t2,
    }
    updated = store.update_job(ws, "j1", **changes)
    expected = replace(original, **changes)
    assert updated == expected
    assert store.get_job(ws, "j1") == expected
    done = store.update_job(
        ws, "j1", status="succeeded", result={"auc": 0.8}, finished_at=t2, owner=None
    )
    assert done.status is JobStatus.SUCCEEDED
    assert done == replace(
        expected, status=JobStatus.SUCCEEDED, result={"auc": 0.8}, finished_at=t2, owner=None
    )
    assert store.update_job(ws, "j1") == done
    cancelled = store.update_job(ws, "j1", cancel_requested=True, error="stopped by ana")
    assert (cancelled.cancel_requested, cancelled.error) == (True, "stopped by ana")
    assert store.get_job(ws, "j1") == cancelled


@pytest.mark.parametrize("field", ["id", "kind", "payload", "created_by", "created_at", "nope"])
def test_update_job_refuses_immutable_fields(store: MetadataStore, ws: str, field: str) -> None:
    original = store.create_job(job(ws, "j1"))
    with pytest.raises(InvalidInput, match=field) as info:
        store.update_job(ws, "j1", status=JobStatus.RUNNING, **{field: "x"})
    assert info.value.field == field
    assert store.get_job(ws, "j1") == original


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("status", "done", r"'done'.*queued, running"),
        ("progress", "half", "must be a dict"),
        ("result", None, "must be a dict"),
        ("cancel_requested", "yes", "True or False"),
        ("started_at", "yesterday", "datetime or None"),
        ("heartbeat_at", 1.5, "datetime or None"),
        ("error", 42, "str or None"),
        ("owner", ["a"], "str or None"),
    ],
)
def test_update_job_checks_values(
    store: MetadataStore, ws: str, field: str, value: Any, match: str
) -> None:
    original = store.create_job(job(ws, "j1"))
    with pytest.raises(InvalidInput, match=match) as info:
        store.update_job(ws, "j1", run_id="r1", **{field: value})
    assert info.value.field == field
    assert store.get_job(ws, "j1") == original


def test_claim_next_job_takes_the_oldest_queued(store: MetadataStore, ws: str) -> None:
    store.create_workspace(Workspace("fraud"))
    assert store.claim_next_job("server-1", T0) is None
    store.create_job(job(ws, "newest", created_at=T0 + timedelta(seconds=5)))
    store.create_job(job("fraud", "b", created_at=T0))
    store.create_job(job(ws, "a", created_at=T0))
    store.create_job(
        job(ws, "oldest", created_at=(T0 - timedelta(microseconds=1)).astimezone(PLUS_0530))
    )
    store.create_job(job(ws, "done", created_at=T0 - timedelta(days=1), status="succeeded"))
    store.create_job(job(ws, "busy", created_at=T0 - timedelta(days=1), status="running"))
    at = T0 + timedelta(minutes=1)

    claimed = [store.claim_next_job(f"server-{i}", at) for i in range(5)]
    assert [c.id if c else None for c in claimed] == ["oldest", "a", "b", "newest", None]
    first = claimed[0]
    assert first is not None
    assert first == replace(
        job(ws, "oldest", created_at=T0 - timedelta(microseconds=1)),
        status=JobStatus.RUNNING,
        owner="server-0",
        started_at=at,
        heartbeat_at=at,
    )
    assert store.get_job(ws, "oldest") == first
    assert store.get_job("fraud", "b").owner == "server-2"
    assert store.get_job(ws, "done").status is JobStatus.SUCCEEDED
    assert store.get_job(ws, "busy").owner is None


def test_claim_next_job_cancels_instead_of_handing_out(store: MetadataStore, ws: str) -> None:
    store.create_job(job(ws, "j1", created_at=T0, cancel_requested=True))
    store.create_job(job(ws, "j2", created_at=T0 + timedelta(seconds=1), cancel_requested=True))
    store.create_job(job(ws, "j3", created_at=T0 + timedelta(seconds=2)))
    at = T0 + timedelta(minutes=1)
    claimed = store.claim_next_job("server-1", at)
    assert claimed is not None and claimed.id == "j3"
    for job_id in ("j1", "j2"):
        got = store.get_job(ws, job_id)
        assert (got.status, got.finished_at, got.owner, got.started_at) == (
            JobStatus.CANCELLED,
            at,
            None,
            None,
        )
    store.create_job(job(ws, "j4", created_at=T0 + timedelta(seconds=3), cancel_requested=True))
    assert store.claim_next_job("server-1", at) is None
    assert store.get_job(ws, "j4").status is JobStatus.CANCELLED


def test_fail_stale_jobs(store: MetadataStore, ws: str) -> None:
    stale_before = T0 + timedelta(minutes=10)

    def make(job_id: str, status: JobStatus, beat: datetime | None, second: int) -> None:
        created = T0 + timedelta(seconds=second)
        store.create_job(
            job(ws, job_id, status=status, owner="a-server", heartbeat_at=beat, created_at=created)
        )

    make("stale-2", JobStatus.RUNNING, stale_before - timedelta(microseconds=1), 2)
    make("live", JobStatus.RUNNING, stale_before, 0)  # beat just in time: another server's
    make("silent-1", JobStatus.RUNNING, None, 1)
    make("stale-3", JobStatus.RUNNING, (T0 - timedelta(days=1)).astimezone(PLUS_0530), 3)
    make("live-tz", JobStatus.RUNNING, (stale_before + timedelta(hours=1)).astimezone(PLUS_0530), 4)
    make("waiting", JobStatus.QUEUED, None, 5)
    make("finished", JobStatus.SUCCEEDED, T0, 6)
    before = {j.id: j for j in store.list_jobs(ws)}
    at = T0 + timedelta(hours=1)

    failed = store.fail_stale_jobs(stale_before, at)
    assert [j.id for j in failed] == ["silent-1", "stale-2", "stale-3"]
    for j in failed:
        expected = replace(
            before[j.id], status=JobStatus.FAILED, error=ORPHANED_JOB_ERROR, finished_at=at
        )
        assert j == expected
        assert store.get_job(ws, j.id) == expected
    for job_id in ("live", "live-tz", "waiting", "finished"):
        assert store.get_job(ws, job_id) == before[job_id]
    assert store.fail_stale_jobs(stale_before, at) == []
    # a job whose owner keeps beating is never stale, whoever sweeps
    later = T0 + timedelta(hours=3)
    store.update_job(ws, "live", heartbeat_at=later)
    assert [j.id for j in store.fail_stale_jobs(later - timedelta(hours=1), later)] == ["live-tz"]
    assert store.get_job(ws, "live").status is JobStatus.RUNNING


def test_update_job_if_changes_only_in_the_named_state(store: MetadataStore, ws: str) -> None:
    t1 = T0 + timedelta(seconds=1)
    store.create_job(job(ws, "j1", status="running", owner="server-1", heartbeat_at=T0))
    original = store.get_job(ws, "j1")
    running = JobStatus.RUNNING
    # another owner, or another status: nothing changes
    other = store.update_job_if(
        ws, "j1", when_status=running, when_owner="server-2", status="succeeded"
    )
    assert other is None
    assert store.update_job_if(ws, "j1", when_status=["queued"], cancel_requested=True) is None
    assert store.get_job(ws, "j1") == original
    # the owner's heartbeat; no changes at all returns the record as it is
    beaten = store.update_job_if(
        ws, "j1", when_status=running, when_owner="server-1", heartbeat_at=t1
    )
    assert beaten == replace(original, heartbeat_at=t1) == store.get_job(ws, "j1")
    assert store.update_job_if(ws, "j1", when_status=(JobStatus.QUEUED, running)) == beaten
    # a sweep fails it; the owner's finishing write then changes nothing
    assert [j.id for j in store.fail_stale_jobs(T0 + timedelta(hours=1), t1)] == ["j1"]
    swept = store.get_job(ws, "j1")
    finish = store.update_job_if(
        ws, "j1", when_status=running, when_owner="server-1", status="succeeded", result={"a": 1}
    )
    assert finish is None
    assert store.get_job(ws, "j1") == swept
    assert (swept.status, swept.error) == (JobStatus.FAILED, ORPHANED_JOB_ERROR)
    # a cancel of a finished job changes nothing either
    active = (JobStatus.QUEUED, JobStatus.RUNNING)
    assert store.update_job_if(ws, "j1", when_status=active, cancel_requested=True) is None
    assert store.get_job(ws, "j1").cancel_requested is False
    # the owner finishing first wins
    store.create_job(job(ws, "j2", status="running", owner="server-1", heartbeat_at=T0))
    done = store.update_job_if(
        ws, "j2", when_status=running, when_owner="server-1", status="succeeded", finished_at=t1
    )
    assert done is not None and (done.status, done.finished_at) == (JobStatus.SUCCEEDED, t1)
    assert store.fail_stale_jobs(T0 + timedelta(hours=1), t1) == []
    assert store.get_job(ws, "j2") == done


def test_update_job_if_checks_its_arguments(store: MetadataStore, ws: str) -> None:
    original = store.create_job(job(ws, "j1"))
    with pytest.raises(NotFound) as info:
        store.update_job_if(ws, "j9", when_status=JobStatus.QUEUED, cancel_requested=True)
    assert info.value.field == "job"
    with pytest.raises(NotFound):
        store.update_job_if("ghost", "j1", when_status=JobStatus.QUEUED)
    with pytest.raises(InvalidInput, match="at least one") as info:
        store.update_job_if(ws, "j1", when_status=[], cancel_requested=True)
    assert info.value.field == "when_status"
    with pytest.raises(InvalidInput, match=r"'done'.*queued") as info:
        store.update_job_if(ws, "j1", when_status=["queued", "done"], cancel_requested=True)  # type: ignore[list-item]
    assert info.value.field == "when_status"
    with pytest.raises(InvalidInput, match="True or False") as info:
        store.update_job_if(ws, "j1", when_status=JobStatus.QUEUED, cancel_requested="yes")
    assert info.value.field == "cancel_requested"
    with pytest.raises(InvalidInput) as info:
        store.update_job_if(ws, "j1", when_status=JobStatus.QUEUED, kind="score")
    assert info.value.field == "kind"
    assert store.get_job(ws, "j1") == original


def test_sql_stores_refuse_job_values_json_cannot_hold(
    backend: str, store: MetadataStore, ws: str
) -> None:
    with pytest.raises(InvalidInput, match="nan") as info:
        store.create_job(job(ws, "j1", payload={"x": float("nan")}))
    assert info.value.field == "payload"
    assert store.list_jobs(ws) == []
    store.create_job(job(ws, "j1"))
    with pytest.raises(InvalidInput) as info:
        store.update_job(ws, "j1", result={1: "one"})
    assert info.value.field == "result"
    with pytest.raises(InvalidInput) as info:
        store.append_audit(event(details={"when": datetime.now(UTC)}))
    assert info.value.field == "details"
    assert store.list_audit() == []


def test_stored_jobs_do_not_change_with_the_callers_objects(store: MetadataStore, ws: str) -> None:
    payload: dict[str, Any] = {"spec": {"C": 1.0}}
    store.create_job(job(ws, "j1", payload=payload))
    payload["spec"]["C"] = 99.0
    got = store.get_job(ws, "j1")
    assert got.payload == {"spec": {"C": 1.0}}
    got.payload["spec"]["C"] = 5.0
    progress: dict[str, Any] = {"done": 1}
    store.update_job(ws, "j1", progress=progress)
    progress["done"] = 2
    assert store.get_job(ws, "j1").payload == {"spec": {"C": 1.0}}
    assert store.get_job(ws, "j1").progress == {"done": 1}


# -- concurrency: jobs and audit ------------------------------------------------------------------
def test_concurrent_claims_take_each_job_once(
    open_store: Callable[[], MetadataStore], store: MetadataStore, ws: str
) -> None:
    n_jobs = 3 * WRITERS
    for i in range(n_jobs):
        store.create_job(job(ws, f"j{i:02d}", created_at=T0 + timedelta(seconds=i % 5)))
    handles = [store, open_store()]

    def claim_all(i: int) -> list[str]:
        taken = []
        while (claimed := handles[i % 2].claim_next_job(f"worker-{i}", T0)) is not None:
            assert claimed.owner == f"worker-{i}"
            taken.append(claimed.id)
        return taken

    results = _in_threads(WRITERS, claim_all)
    claimed_ids = [job_id for taken in results for job_id in taken]
    assert sorted(claimed_ids) == [f"j{i:02d}" for i in range(n_jobs)]  # each exactly once
    owners = {job_id: f"worker-{i}" for i, taken in enumerate(results) for job_id in taken}
    jobs = store.list_jobs(ws, limit=n_jobs)
    assert {j.id: j.owner for j in jobs} == owners
    assert {j.status for j in jobs} == {JobStatus.RUNNING}
    assert store.claim_next_job("late", T0) is None


def test_concurrent_conditional_job_updates_have_one_winner(
    open_store: Callable[[], MetadataStore], store: MetadataStore, ws: str
) -> None:
    store.create_job(job(ws, "j1", status="running", owner="worker-0", heartbeat_at=T0))
    handles = [store, open_store()]
    sweep_at = T0 + timedelta(hours=1)

    def finish_or_sweep(i: int) -> str | None:
        if i % 2:  # half sweep the job as stale, half finish it as its owner
            return "swept" if handles[i % 2].fail_stale_jobs(sweep_at, sweep_at) else None
        done = handles[i % 2].update_job_if(
            ws,
            "j1",
            when_status=JobStatus.RUNNING,
            when_owner="worker-0",
            status=JobStatus.SUCCEEDED,
            error=f"writer {i}",
        )
        return None if done is None else f"writer {i}"

    winners = [w for w in _in_threads(WRITERS, finish_or_sweep) if w is not None]
    assert len(winners) == 1
    final = store.get_job(ws, "j1")
    if winners == ["swept"]:
        assert (final.status, final.error) == (JobStatus.FAILED, ORPHANED_JOB_ERROR)
    else:
        assert (final.status, final.error) == (JobStatus.SUCCEEDED, winners[0])


def test_concurrent_audit_appends_get_distinct_ids(
    open_store: Callable[[], MetadataStore], store: MetadataStore
) -> None:
    handles = [store, open_store()]
    per_writer = 5
    _in_threads(
        WRITERS,
        lambda i: [
            handles[i % 2].append_audit(event(actor=f"w{i}", details={"n": n}))
            for n in range(per_writer)
        ],
    )
    events = store.list_audit(limit=1000)
    ids = [e.id for e in events]
    assert len(events) == WRITERS * per_writer
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
    for i in range(WRITERS):  # each writer's events keep their order
        mine = [e.details["n"] for e in store.list_audit(actor=f"w{i}")]
        assert mine == list(reversed(range(per_writer)))


# -- values every store keeps, and refuses, alike -------------------------------------------------
# PostgreSQL cannot keep NUL in text and SQL keeps no None in a required column: every
# store refuses both, with the same InvalidInput naming the field, and changes nothing.
NAIVE = datetime(2024, 5, 1, 12, 0)  # taken to be UTC
LOCAL = datetime(2024, 5, 1, 18, 0, tzinfo=PLUS_0530)  # 12:30 UTC


@pytest.fixture
def filled(store: MetadataStore, ws: str) -> str:
    """``ws`` with one record of each kind: a dataset version, a run, a model version,
    user ``ana`` with token ``t1`` and a role, an audit event and a queued job."""
    store.add_dataset_version(dataset_version(ws), create=Dataset(ws, "applicants", created_at=T0))
    store.create_run(run(ws, "r1"))
    store.add_model_version(
        model_version(ws), create=Model(ws, "scorecard", "binary", created_at=T0)
    )
    store.create_user(user())
    store.create_token(token("t1"))
    store.set_membership(Membership(ws, "ana", Role.VIEWER, created_at=T0))
    store.append_audit(event())
    store.create_job(job(ws, "j1"))
    return ws


def snapshot(store: MetadataStore, ws: str) -> list[Any]:
    """Everything the store holds (for the ``filled`` workspace)."""
    return [
        store.list_workspaces(),
        store.list_datasets(ws),
        store.list_dataset_versions(ws, "applicants"),
        store.list_runs(ws),
        store.list_models(ws),
        store.list_model_versions(ws, "scorecard"),
        store.list_stage_transitions(ws, "scorecard"),
        store.list_users(),
        store.list_tokens("ana"),
        store.list_memberships(),
        store.list_audit(),
        store.list_jobs(ws),
    ]


def _stage(store: MetadataStore, ws: str, **kw: Any) -> Any:
    args: dict[str, Any] = {"actor": "ana", "reason": "ready"}
    args.update(kw)
    return store.set_stage(ws, "scorecard", args.pop("version", 1), Stage.STAGING, **args)


#: (case, call, the field named): calls that every store refuses.
REFUSED: list[tuple[str, Callable[[MetadataStore, str], Any], str]] = [
    # NUL in text
    ("workspace name", lambda s, ws: s.create_workspace(Workspace("re\x00tail")), "name"),
    (
        "workspace description",
        lambda s, ws: s.create_workspace(Workspace("retail", description="a\x00b")),
        "description",
    ),
    (
        "dataset description",
        lambda s, ws: s.create_dataset(Dataset(ws, "events", description="\x00")),
        "description",
    ),
    (
        "dataset version creator",
        lambda s, ws: s.add_dataset_version(
            dataset_version(ws, content_hash="h2", created_by="\x00")
        ),
        "created_by",
    ),
    ("run id", lambda s, ws: s.create_run(run(ws, "r\x002")), "id"),
    ("run error", lambda s, ws: s.create_run(run(ws, "r2", error="boom\x00")), "error"),
    ("run error update", lambda s, ws: s.update_run(ws, "r1", error="boom\x00"), "error"),
    (
        "run error conditional update",
        lambda s, ws: s.update_run_if(
            ws, "r1", when_status=RunStatus.QUEUED, status=RunStatus.FAILED, error="\x00"
        ),
        "error",
    ),
    ("model task", lambda s, ws: s.create_model(Model(ws, "m", task="bi\x00nary")), "task"),
    (
        "model card",
        lambda s, ws: s.add_model_version(model_version(ws, model_card="# \x00")),
        "model_card",
    ),
    ("stage reason", lambda s, ws: _stage(s, ws, reason="\x00"), "reason"),
    ("stage actor", lambda s, ws: _stage(s, ws, actor="\x00"), "actor"),
    (
        "user display name",
        lambda s, ws: s.create_user(user("bob", display_name="B\x00")),
        "display_name",
    ),
    ("token name", lambda s, ws: s.create_token(token("t2", secret="s2", name="\x00")), "name"),
    ("audit action", lambda s, ws: s.append_audit(event(action="dataset.\x00")), "action"),
    ("job kind", lambda s, ws: s.create_job(job(ws, "j2", kind="\x00")), "kind"),
    ("job error update", lambda s, ws: s.update_job(ws, "j1", error="\x00"), "error"),
    ("job owner", lambda s, ws: s.claim_next_job("server\x00", T0), "owner"),
    # text that is not valid Unicode (a lone surrogate)
    ("run error surrogate", lambda s, ws: s.update_run(ws, "r1", error="\ud800"), "error"),
    # None in a required field
    (
        "workspace description None",
        lambda s, ws: s.create_workspace(Workspace("retail", description=None)),  # type: ignore[arg-type]
        "description",
    ),
    (
        "dataset time None",
        lambda s, ws: s.create_dataset(Dataset(ws, "events", created_at=None)),  # type: ignore[arg-type]
        "created_at",
    ),
    ("run creator None", lambda s, ws: s.create_run(run(ws, "r2", created_by=None)), "created_by"),
    ("run params None", lambda s, ws: s.create_run(run(ws, "r2", params=None)), "params"),
    ("run params update None", lambda s, ws: s.update_run(ws, "r1", params=None), "params"),
    ("model task None", lambda s, ws: s.create_model(Model(ws, "m", task=None)), "task"),  # type: ignore[arg-type]
    (
        "model version flavor None",
        lambda s, ws: s.add_model_version(model_version(ws, flavor=None)),
        "flavor",
    ),
    (
        "user display name None",
        lambda s, ws: s.create_user(user("bob", display_name=None)),
        "display_name",
    ),
    (
        "token prefix None",
        lambda s, ws: s.create_token(token("t2", secret="s2", prefix=None)),
        "prefix",
    ),
    (
        "membership time None",
        lambda s, ws: s.set_membership(Membership(ws, "ana", Role.ADMIN, created_at=None)),  # type: ignore[arg-type]
        "created_at",
    ),
    ("audit actor None", lambda s, ws: s.append_audit(event(actor=None)), "actor"),
    ("job payload None", lambda s, ws: s.create_job(job(ws, "j2", payload=None)), "payload"),
    # arguments and fields of the wrong type
    (
        "run time a date",
        lambda s, ws: s.create_run(run(ws, "r2", created_at=T0.date())),  # type: ignore[arg-type]
        "created_at",
    ),
    ("run seed a str", lambda s, ws: s.create_run(run(ws, "r2", seed="7")), "seed"),
    ("user time a str", lambda s, ws: s.create_user(user("bob", created_at="now")), "created_at"),
    ("user flag an int", lambda s, ws: s.create_user(user("bob", is_admin=1)), "is_admin"),
    (
        "dataset rows a str",
        lambda s, ws: s.add_dataset_version(dataset_version(ws, content_hash="h2", num_rows="10")),
        "num_rows",
    ),
    ("model version a str", lambda s, ws: s.get_model_version(ws, "scorecard", "1"), "version"),  # type: ignore[arg-type]
    ("model version a bool", lambda s, ws: s.get_model_version(ws, "scorecard", True), "version"),
    (
        "dataset version a str",
        lambda s, ws: s.get_dataset_version(ws, "applicants", "1"),
        "version",
    ),  # type: ignore[arg-type]
    (
        "transitions version a float",
        lambda s, ws: s.list_stage_transitions(ws, "scorecard", 1.0),  # type: ignore[arg-type]
        "version",
    ),
    ("stage version a str", lambda s, ws: _stage(s, ws, version="1"), "version"),
    ("stage time a str", lambda s, ws: _stage(s, ws, at="now"), "at"),
    ("revoke time a str", lambda s, ws: s.revoke_token("t1", "now"), "at"),  # type: ignore[arg-type]
    ("claim time a str", lambda s, ws: s.claim_next_job("server", "2024-05-01"), "at"),  # type: ignore[arg-type]
    (
        "stale time a str",
        lambda s, ws: s.fail_stale_jobs("2024-05-01", T0),  # type: ignore[arg-type]
        "stale_before",
    ),
    ("sweep time a date", lambda s, ws: s.fail_stale_jobs(T0, T0.date()), "at"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("case", "call", "field"), REFUSED, ids=[c[0] for c in REFUSED])
def test_every_store_refuses_the_same_values(
    store: MetadataStore, filled: str, case: str, call: Any, field: str
) -> None:
    before = snapshot(store, filled)
    with pytest.raises(InvalidInput) as info:
        call(store, filled)
    assert info.value.field == field
    assert snapshot(store, filled) == before


def test_a_failure_made_safe_is_recorded(store: MetadataStore, ws: str) -> None:
    # what the run runner does with the error of a failed run: every store keeps it
    store.create_run(run(ws, "r1", status=RunStatus.RUNNING))
    error = safe_text("ValueError: bad byte \x00 in 'x\ud800'")
    failed = store.update_run_if(
        ws, "r1", when_status=RunStatus.RUNNING, status=RunStatus.FAILED, error=error
    )
    assert failed is not None and failed.error == "ValueError: bad byte \ufffd in 'x?'"
    assert store.get_run(ws, "r1") == failed


def _times(record: Any) -> list[datetime]:
    fields = dataclasses.fields(record)
    return [v for f in fields if isinstance(v := getattr(record, f.name), datetime)]


def test_every_record_keeps_its_times_in_utc(store: MetadataStore) -> None:
    # a naive time is taken to be UTC; an aware one comes back as the same instant in UTC
    for name, at in (("credit", NAIVE), ("fraud", LOCAL)):
        store.create_workspace(Workspace(name, created_at=at))
    ws = "credit"
    store.create_dataset(Dataset(ws, "applicants", created_at=NAIVE))
    store.add_dataset_version(dataset_version(ws, created_at=LOCAL))
    store.create_run(run(ws, "r1", created_at=NAIVE, started_at=LOCAL))
    store.update_run(ws, "r1", finished_at=NAIVE)
    store.create_run(run(ws, "r2", created_at=LOCAL))
    store.create_model(Model(ws, "scorecard", "binary", created_at=LOCAL))
    store.add_model_version(model_version(ws, created_at=NAIVE))
    store.set_stage(ws, "scorecard", 1, Stage.STAGING, actor="ana", reason="ok", at=LOCAL)
    store.create_user(user(created_at=NAIVE))
    store.create_user(user("bob", created_at=LOCAL))
    store.create_token(token("t1", created_at=LOCAL, expires_at=NAIVE))
    store.create_token(token("t2", secret="s2", created_at=NAIVE))
    store.revoke_token("t2", LOCAL)
    store.set_membership(Membership(ws, "ana", Role.VIEWER, created_at=LOCAL))
    store.append_audit(event(at=NAIVE))
    store.create_job(job(ws, "j1", created_at=NAIVE))
    store.create_job(job(ws, "j2", created_at=LOCAL))
    store.claim_next_job("server", LOCAL)  # j1
    store.update_job(ws, "j1", heartbeat_at=NAIVE)
    store.claim_next_job("server", LOCAL)  # j2

    # naive and aware times compare: the stale sweep and the listings by time work
    assert [j.id for j in store.fail_stale_jobs(NAIVE + timedelta(minutes=1), LOCAL)] == ["j1"]
    assert [r.id for r in store.list_runs(ws)] == ["r2", "r1"]  # 12:30 UTC, then 12:00 UTC
    assert [tk.id for tk in store.list_tokens("ana")] == ["t2", "t1"]
    records: list[Any] = [
        *store.list_workspaces(),
        store.get_dataset(ws, "applicants"),
        store.get_dataset_version(ws, "applicants"),
        *store.list_runs(ws),
        store.get_model(ws, "scorecard"),
        store.get_model_version(ws, "scorecard", 1),
        *store.list_stage_transitions(ws, "scorecard"),
        *store.list_users(),
        *store.list_tokens("ana"),
        *store.list_memberships(),
        *store.list_audit(),
        *store.list_jobs(ws),
    ]
    times = [at for record in records for at in _times(record)]
    assert len(times) == 27
    assert all(at.tzinfo is not None and at.utcoffset() == timedelta(0) for at in times)
    assert set(times) == {NAIVE.replace(tzinfo=UTC), LOCAL}
    assert store.get_token_by_hash(token("t2", secret="s2").token_hash).revoked_at == LOCAL
    assert store.get_job(ws, "j1").finished_at == LOCAL
    assert store.list_stage_transitions(ws, "scorecard")[1].at == LOCAL


def test_json_values_come_back_as_json_gives_them(store: MetadataStore, ws: str) -> None:
    # tuples come back as lists, from every store (SQL keeps JSON, which has no tuples)
    pair: Any = (1, "a")
    store.create_run(run(ws, "r1", spec={"grid": pair, "nested": {"rows": (pair,)}}))
    assert store.get_run(ws, "r1").spec == {"grid": [1, "a"], "nested": {"rows": [[1, "a"]]}}
    assert store.get_run(ws, "r1").spec["grid"] == [1, "a"]  # a list, not equal to a tuple
    updated = store.update_run(ws, "r1", metrics={"confusion": ((5, 1), (2, 9))})
    assert updated.metrics == store.get_run(ws, "r1").metrics == {"confusion": [[5, 1], [2, 9]]}
    store.add_model_version(
        model_version(ws, signature={"inputs": pair}),
        create=Model(ws, "scorecard", "binary", created_at=T0),
    )
    assert store.get_model_version(ws, "scorecard", 1).signature == {"inputs": [1, "a"]}
    store.add_dataset_version(
        dataset_version(ws, quality={"shape": (10, 2)}), create=Dataset(ws, "applicants")
    )
    assert store.get_dataset_version(ws, "applicants").quality == {"shape": [10, 2]}
    store.create_job(job(ws, "j1", payload={"ids": pair}))
    store.update_job(ws, "j1", result={"ids": pair})
    got = store.get_job(ws, "j1")
    assert (got.payload, got.result) == ({"ids": [1, "a"]}, {"ids": [1, "a"]})
    store.append_audit(event(details={"ids": pair}))
    assert store.list_audit()[0].details == {"ids": [1, "a"]}

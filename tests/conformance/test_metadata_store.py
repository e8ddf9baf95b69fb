"""One conformance suite for every metadata store: memory, SQLite and PostgreSQL.

Each test gets an empty store. PostgreSQL tests need the server described in
``tests/conftest.py`` and skip, saying how to get it, when it is absent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from leptonic.core import (
    Column,
    ColumnRole,
    Dataset,
    DatasetVersion,
    Model,
    ModelVersion,
    ObjectRef,
    Run,
    RunStatus,
    Stage,
    StageTransition,
    Workspace,
)
from leptonic.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from leptonic.storage.metadata.base import MetadataStore
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
    mv = model_version(ws, "ranker", signature=NESTED, metrics={"ndcg@10": 0.3}, model_card=UNICODE)
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
    if backend == "memory":
        pytest.skip("the memory store keeps any Python object")
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

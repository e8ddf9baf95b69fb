from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from leptonic.errors import UnsafeArtifact
from leptonic.registry.serialization import load_predictor, save_predictor
from leptonic.storage.artifacts.memory import MemoryArtifactStore
from leptonic.synthetic import applicants
from leptonic.tasks._data import load_training_data
from leptonic.tasks.predictor import TabularPredictor
from leptonic.tasks.spec import TrainSpec
from leptonic.tasks.tabular import train_tabular
from support import make_version

TABLE = applicants(1500, seed=11)


def fitted(candidate: str, artifacts: MemoryArtifactStore) -> TabularPredictor:
    version = make_version(TABLE, artifacts)
    spec = TrainSpec(target="default", candidates=(candidate,), trials=1, timeout_s=20.0)
    return train_tabular(load_training_data(version, artifacts, spec), spec).predictor


@pytest.mark.parametrize("candidate", ["logistic", "lightgbm", "mlp"])
def test_round_trip_predicts_the_same(candidate: str) -> None:
    store = MemoryArtifactStore()
    predictor = fitted(candidate, store)
    key, digest = save_predictor(predictor, store)
    loaded = load_predictor(store, key, digest)
    assert loaded.flavor == candidate and loaded.threshold == predictor.threshold
    rows = TABLE.slice(0, 50)
    np.testing.assert_allclose(loaded.predict_batch(rows), predictor.predict_batch(rows))
    rec = rows.to_pylist()[3]
    assert loaded.predict_one(rec) == pytest.approx(predictor.predict_one(rec))


def test_no_pickle_in_the_bundle() -> None:
    store = MemoryArtifactStore()
    key, _ = save_predictor(fitted("logistic", store), store)
    manifest = json.loads(store.get_bytes(key))
    blob = store.get_bytes(manifest["estimator"]["key"])
    with zipfile.ZipFile(io.BytesIO(blob)) as z:  # a skops file is a zip of JSON + arrays
        assert "schema.json" in z.namelist()
        assert not any(n.endswith((".pkl", ".pickle")) for n in z.namelist())


def test_wrong_digest_is_refused() -> None:
    store = MemoryArtifactStore()
    key, _ = save_predictor(fitted("logistic", store), store)
    with pytest.raises(UnsafeArtifact, match="registered digest"):
        load_predictor(store, key, "0" * 64)


def test_tampered_estimator_is_refused() -> None:
    store = MemoryArtifactStore()
    key, _ = save_predictor(fitted("lightgbm", store), store)
    manifest = json.loads(store.get_bytes(key))
    # swap in another (valid, self-consistent) estimator file: the manifest digest no longer fits
    other = store.put_bytes(b"tree\nversion=v4\n")
    manifest["estimator"]["key"] = other
    data = json.dumps(manifest).encode()
    import hashlib

    forged = store.put_bytes(data)
    with pytest.raises(UnsafeArtifact, match="does not match"):
        load_predictor(store, forged, hashlib.sha256(data).hexdigest())


def test_untrusted_types_are_refused() -> None:
    import hashlib

    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    store = MemoryArtifactStore()
    key, _ = save_predictor(fitted("logistic", store), store)
    manifest = json.loads(store.get_bytes(key))
    import os

    evil = sio.dumps(FunctionTransformer(func=os.system))  # a reference to os.system
    manifest["estimator"].update(key=store.put_bytes(evil), sha256=hashlib.sha256(evil).hexdigest())
    data = json.dumps(manifest).encode()
    with pytest.raises(UnsafeArtifact, match="not trusted"):
        load_predictor(store, store.put_bytes(data), hashlib.sha256(data).hexdigest())


def test_estimator_of_the_wrong_class_is_refused() -> None:
    import hashlib

    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    store = MemoryArtifactStore()
    key, _ = save_predictor(fitted("logistic", store), store)
    manifest = json.loads(store.get_bytes(key))
    other = sio.dumps(FunctionTransformer(func=np.exp))
    manifest["estimator"].update(
        key=store.put_bytes(other), sha256=hashlib.sha256(other).hexdigest()
    )
    data = json.dumps(manifest).encode()
    with pytest.raises(UnsafeArtifact, match="FunctionTransformer in a 'logistic' bundle"):
        load_predictor(store, store.put_bytes(data), hashlib.sha256(data).hexdigest())


def test_garbage_manifest_is_refused() -> None:
    import hashlib

    store = MemoryArtifactStore()
    data = b"\x80not json"
    with pytest.raises(UnsafeArtifact, match="not JSON"):
        load_predictor(store, store.put_bytes(data), hashlib.sha256(data).hexdigest())
    data = json.dumps({"format": "other/9"}).encode()
    with pytest.raises(UnsafeArtifact, match="unknown bundle format"):
        load_predictor(store, store.put_bytes(data), hashlib.sha256(data).hexdigest())

"""Recommender bundles without pickle.

A bundle is a JSON manifest plus one ``.npy`` file per array (factors, id
tables, seen items, neighbours...), written with ``allow_pickle=False`` into
the content-addressed artifact store. The manifest records each file's
SHA-256, dtype and shape; loading checks every byte against them (and the
manifest against the digest it was registered with) and refuses anything
else. Saving takes a snapshot of the current state, online events included.
"""

from __future__ import annotations

import hashlib
import io
import json
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any

import numpy as np

from leptonic.errors import UnsafeArtifact
from leptonic.storage.artifacts.base import ArtifactStore
from leptonic.tasks.recsys._catalogue import Segments
from leptonic.tasks.recsys._data import Confidence, Ids
from leptonic.tasks.recsys._models import ModelState
from leptonic.tasks.recsys.predictor import RecommenderPredictor

__all__ = ["RECOMMENDER_FORMAT", "load_recommender", "save_recommender"]

RECOMMENDER_FORMAT = "leptonic-recommender/1"

#: Array name → allowed dtype kinds (i: signed int, u: unsigned, f: float, U: unicode).
_ARRAYS: dict[str, str] = {
    "user_ids": "iU",
    "item_ids": "iU",
    "seen_indptr": "i",
    "seen_indices": "i",
    "seen_raw": "f",
    "seen_times": "f",
    "popularity": "f",
    "fresh_items": "i",
    "user_factors": "f",
    "item_factors": "f",
    "sim_indptr": "i",
    "sim_indices": "i",
    "sim_data": "f",
    "segments": "f",
}
_REQUIRED = ("user_ids", "item_ids", "seen_indptr", "seen_indices", "seen_raw", "popularity")
_KINDS: dict[str, tuple[str, ...]] = {
    "als": ("user_factors", "item_factors"),
    "bpr": ("user_factors", "item_factors"),
    "item_knn": ("sim_indptr", "sim_indices", "sim_data"),
    "popularity": (),
}


def _versions() -> dict[str, str]:
    out = {}
    for name in ("leptonic", "numpy", "implicit"):
        try:
            out[name] = package_version(name)
        except PackageNotFoundError:
            continue
    return out


def save_recommender(predictor: RecommenderPredictor, artifacts: ArtifactStore) -> tuple[str, str]:
    """Store a snapshot of ``predictor``; return ``(manifest_key, manifest_sha256)``."""
    snap = predictor.snapshot()
    files: dict[str, dict[str, Any]] = {}
    for name, array in snap["arrays"].items():
        arr = np.ascontiguousarray(array)
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        blob = buf.getvalue()
        files[name] = {
            "key": artifacts.put_bytes(blob),
            "sha256": hashlib.sha256(blob).hexdigest(),
            "dtype": arr.dtype.str,
            "shape": list(arr.shape),
        }
    manifest = {
        "format": RECOMMENDER_FORMAT,
        "task": "recommendation",
        **snap["meta"],
        "arrays": files,
        "versions": _versions(),
    }
    data = json.dumps(manifest, sort_keys=True, allow_nan=False).encode("utf-8")
    return artifacts.put_bytes(data), hashlib.sha256(data).hexdigest()


def _refuse(key: str, why: str) -> UnsafeArtifact:
    return UnsafeArtifact(
        f"refusing recommender artifact {key}: {why}; re-register the model from its run "
        "(`leptonic train ...`) or restore the artifact store from a backup",
        field="artifact",
    )


def _load_array(name: str, entry: dict[str, Any], artifacts: ArtifactStore) -> np.ndarray:
    key = entry["key"]
    try:
        blob = artifacts.get_bytes(key, verify=True)
    except UnsafeArtifact as exc:
        raise _refuse(key, f"array {name!r} is damaged ({exc.message})") from None
    if hashlib.sha256(blob).hexdigest() != entry["sha256"]:
        raise _refuse(key, f"array {name!r} does not match the manifest's digest")
    try:
        arr = np.load(io.BytesIO(blob), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise _refuse(key, f"array {name!r} is not a plain .npy file ({exc})") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in _ARRAYS[name]:
        raise _refuse(key, f"array {name!r} has an unexpected type")
    if arr.dtype.str != entry["dtype"] or list(arr.shape) != list(entry["shape"]):
        raise _refuse(key, f"array {name!r} does not have the manifest's dtype and shape")
    return arr


def load_recommender(
    artifacts: ArtifactStore, manifest_key: str, manifest_sha256: str
) -> RecommenderPredictor:
    """Load a bundle saved by :func:`save_recommender`, checking every file."""
    import scipy.sparse as sp

    data = artifacts.get_bytes(manifest_key, verify=True)
    if hashlib.sha256(data).hexdigest() != manifest_sha256:
        raise _refuse(manifest_key, "the manifest does not match the registered digest")
    try:
        manifest = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _refuse(manifest_key, "the manifest is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != RECOMMENDER_FORMAT:
        raise _refuse(manifest_key, f"unknown bundle format (expected {RECOMMENDER_FORMAT})")
    try:
        kind = manifest["kind"]
        files = manifest["arrays"]
        if kind not in _KINDS:
            raise _refuse(manifest_key, f"unknown model kind {kind!r}")
        unknown = set(files) - set(_ARRAYS)
        missing = [n for n in (*_REQUIRED, *_KINDS[kind]) if n not in files]
        if unknown or missing:
            raise _refuse(manifest_key, f"unexpected or missing arrays {sorted(unknown) + missing}")
        arrays = {name: _load_array(name, entry, artifacts) for name, entry in files.items()}
        users, items = Ids.from_array(arrays["user_ids"]), Ids.from_array(arrays["item_ids"])
        raw = sp.csr_matrix(
            (arrays["seen_raw"], arrays["seen_indices"], arrays["seen_indptr"]),
            shape=(len(users), len(items)),
        )
        segments = None
        if manifest["segments"] is not None and "segments" in arrays:
            seg = manifest["segments"]
            segments = Segments(
                {str(k): int(v) for k, v in seg["keys"].items()},
                arrays["segments"],
                {str(k): [float(x) for x in v] for k, v in seg["edges"].items()},
            )
        state = ModelState(
            kind,
            dict(manifest["params"]),
            Confidence.from_dict(manifest["confidence"]),
            {n: arrays[n] for n in _KINDS[kind]},
        )
        return RecommenderPredictor(
            state,
            user_ids=users,
            item_ids=items,
            raw=raw,
            last_times=arrays.get("seen_times"),
            item_attributes=manifest["item_attributes"],
            user_attributes=manifest["user_attributes"],
            popularity=arrays["popularity"],
            segments=segments,
            fresh_items=arrays["fresh_items"].tolist() if "fresh_items" in arrays else (),
            max_k=int(manifest["max_k"]),
            seed=int(manifest["seed"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, UnsafeArtifact):
            raise
        raise _refuse(manifest_key, f"the manifest lacks or mangles {exc}") from None

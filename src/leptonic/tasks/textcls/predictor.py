"""A fitted text classifier, loaded once, with a batch path and a single-text hot path.

Three flavors share one interface: ``transformer`` (a fine-tuned
``*ForSequenceClassification`` model, full or LoRA-merged, [CLS] pooling),
``mean_pool`` (an encoder, mean pooling and a linear head in
``head.safetensors``: the ``frozen`` mode, and ``full``/``lora`` with
``pooling="mean"``) and ``tfidf`` (TF-IDF + logistic regression).
:meth:`TextPredictor.save` writes an ordinary Hugging Face folder
(``config.json``, ``model.safetensors``, tokenizer files) plus
``label_map.json``, ``leptonic_text.json`` and ``leptonic_manifest.json``, the
SHA-256 of every file; :meth:`TextPredictor.load` refuses a folder whose files
do not match it. Nothing is ever unpickled: weights are safetensors, the
TF-IDF pipeline goes through ``skops`` with an explicit trusted-types list.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import numpy as np

from leptonic.errors import InvalidInput, UnsafeArtifact
from leptonic.tasks.textcls._data import Encoded, check_texts, encode_labels, encode_multilabels
from leptonic.tasks.textcls._multilabel import sigmoid as _sigmoid
from leptonic.tasks.textcls._runtime import (
    autocast,
    position_limit,
    quiet_transformers,
    torch_module,
    transformers_module,
)
from leptonic.tasks.textcls.spec import TASK

__all__ = ["FLAVORS", "MANIFEST", "TRUSTED_TYPES", "TextPredictor", "verify_folder"]

FLAVORS = ("transformer", "mean_pool", "tfidf")
FORMAT = "leptonic-text-model/1"
MANIFEST = "leptonic_manifest.json"
INFO = "leptonic_text.json"
LABELS = "label_map.json"
HEAD = "head.safetensors"
TFIDF = "tfidf.skops"
#: File kinds a saved text model may hold; anything else (pickles, code) is refused.
ALLOWED_SUFFIXES = (".json", ".safetensors", ".txt", ".model", ".skops")
#: The only scikit-learn types a ``tfidf`` model file may hold.
TRUSTED_TYPES: tuple[str, ...] = (
    "sklearn.pipeline.Pipeline",
    "sklearn.feature_extraction.text.TfidfVectorizer",
    "sklearn.feature_extraction.text.TfidfTransformer",
    "sklearn.linear_model._logistic.LogisticRegression",
    # multi-label: one logistic regression per label
    "sklearn.multiclass.OneVsRestClassifier",
    "sklearn.multiclass._ConstantPredictor",
    "sklearn.preprocessing._label.LabelBinarizer",
)


def _versions(*names: str) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = package_version(name)
        except PackageNotFoundError:
            continue
    return out


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _refuse(path: Path | str, why: str) -> UnsafeArtifact:
    return UnsafeArtifact(
        f"refusing text model {str(path)!r}: {why}; save the model again from its run "
        "or restore the folder from the artifact store",
        field="artifact",
    )


def verify_folder(
    path: str | os.PathLike[str], manifest_sha256: str | None = None
) -> dict[str, str]:
    """Check every file of a saved model against its manifest; return ``{file: sha256}``.

    Raises
    ------
    UnsafeArtifact
        No manifest, a manifest other than ``manifest_sha256``, a file missing,
        changed, unlisted or of a kind that is not allowed.
    """
    from leptonic.storage.artifacts.base import digest_file

    root = Path(path)
    mpath = root / MANIFEST
    if not mpath.is_file():
        raise _refuse(root, f"it has no {MANIFEST} (not saved by Leptonic)")
    data = mpath.read_bytes()
    if manifest_sha256 is not None and hashlib.sha256(data).hexdigest() != manifest_sha256:
        raise _refuse(root, "its manifest does not match the registered digest")
    try:
        manifest = json.loads(data)
        files = dict(manifest["files"])
        if manifest["format"] != FORMAT:
            raise ValueError(manifest["format"])
    except (ValueError, KeyError, TypeError):
        raise _refuse(root, f"its manifest is not a {FORMAT} manifest") from None
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    unlisted = sorted(present - set(files) - {MANIFEST})
    if unlisted:
        raise _refuse(root, f"it holds files its manifest does not list: {', '.join(unlisted)}")
    for name, digest in files.items():
        parts = Path(name).parts
        if Path(name).is_absolute() or ".." in parts or not name.endswith(ALLOWED_SUFFIXES):
            raise _refuse(root, f"its manifest lists a file that is not allowed: {name!r}")
        if name not in present:
            raise _refuse(root, f"the file {name} is missing")
        if digest_file(root / name) != digest:
            raise _refuse(root, f"the file {name} does not match its digest (changed or corrupted)")
    return files


class TextPredictor:
    """Texts → class probabilities; loaded once, kept in memory.

    Parameters
    ----------
    flavor
        ``transformer``, ``mean_pool`` or ``tfidf``.
    classes
        The label map: class names in the order of the probability columns.
    net
        torch module ``(input_ids, attention_mask) → logits`` (not for ``tfidf``).
    tokenizer
        The Hugging Face tokenizer of ``net``.
    tfidf
        Fitted scikit-learn pipeline (``tfidf`` flavor); its classes are positions in ``classes``.
    max_length
        Tokens kept per text.
    max_chars
        Longest text accepted; longer input is refused with :class:`InvalidInput`.
    batch_size
        Texts per forward pass in :meth:`predict_batch`.
    device, precision
        Where ``net`` runs; ``bf16`` runs it under bf16 autocast (faster on GPUs
        and CPUs with AMX or AVX-512 BF16, about 1e-2 off fp32 in probability).
    multi_label, threshold
        A multi-label model scores each label on its own (sigmoid; the
        probabilities do not sum to one) and gives every label whose
        probability reaches ``threshold`` (unset: 0.5); ``label_separator`` joins
        the labels of a string cell given to :meth:`evaluate`.
    info
        Extra facts saved with the model (base model, mode, metrics...).
    """

    task = TASK
    #: no binary decision threshold (a multi-label model's is ``label_threshold``)
    threshold = None

    def __init__(
        self,
        *,
        flavor: str,
        classes: Sequence[str],
        net: Any = None,
        tokenizer: Any = None,
        tfidf: Any = None,
        max_length: int = 128,
        max_chars: int = 20_000,
        batch_size: int = 64,
        device: str = "cpu",
        precision: str = "fp32",
        multi_label: bool = False,
        threshold: float | None = None,
        label_separator: str = "|",
        info: Mapping[str, Any] | None = None,
    ) -> None:
        if flavor not in FLAVORS:
            raise InvalidInput(f"unknown text model flavor {flavor!r}; known: {', '.join(FLAVORS)}")
        if (flavor == "tfidf") != (tfidf is not None) or (flavor != "tfidf") != (net is not None):
            raise InvalidInput(
                f"a {flavor!r} text model needs {'tfidf' if flavor == 'tfidf' else 'net'}"
            )
        self.flavor = flavor
        self.classes = [str(c) for c in classes]
        self.net = net
        self.tokenizer = tokenizer
        self.tfidf = tfidf
        self.max_length = int(max_length)
        self.max_chars = int(max_chars)
        self.batch_size = int(batch_size)
        self.precision = precision
        self.multi_label = bool(multi_label)
        #: multi-label: the probability from which a label is given (None otherwise)
        self.label_threshold = (
            (0.5 if threshold is None else float(threshold)) if self.multi_label else None
        )
        self.label_separator = label_separator
        self.info = dict(info or {})
        self._device: Any = None
        #: the padding-free pass of ``net`` (BERT encoders), or None: ``net``'s own
        self._packed: Any = None
        if net is not None:
            # a text longer than the encoder's positions would fail inside it: cut there
            encoder = getattr(net, "encoder", None)
            config = getattr(net, "config", None) or getattr(encoder, "config", None)
            limit = position_limit(config)
            if limit is not None:
                self.max_length = min(self.max_length, limit)
            torch = torch_module()
            self._device = torch.device(device)
            self.net = net.to(self._device).eval()
            from leptonic.tasks.textcls._packed import packed_forward

            self._packed = packed_forward(self.net)

    @property
    def inputs(self) -> list[dict[str, str]]:
        """The input signature: one text field."""
        return [{"name": "text", "type": "text"}]

    def __repr__(self) -> str:
        kind = ", multi_label=True" if self.multi_label else ""
        return f"TextPredictor(flavor={self.flavor!r}, classes={len(self.classes)}{kind})"

    # --- scoring -----------------------------------------------------------------

    def _context(self) -> contextlib.AbstractContextManager[Any]:
        """Inference mode and, for ``bf16``, one autocast region around all the passes of
        a call (its weight casts are then made once per call, not once per pass)."""
        torch = torch_module()
        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        stack.enter_context(autocast(self.precision, self._device))
        return stack

    @property
    def _call_cost(self) -> int:
        """Fixed cost of one forward pass, in padded tokens: above it, a batch is cut in two
        (bf16 passes of new shapes are dearer on CPUs: oneDNN builds kernels per shape;
        a padding-free pass spends little on padding: cutting rarely pays)."""
        if self._packed is not None:
            return 256
        return 64 if self.precision == "bf16" else 8

    def _run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Logits of one padded batch (inside :meth:`_context`); BERT encoders skip the
        padding (:mod:`._packed`)."""
        torch = torch_module()
        forward = self._packed if self._packed is not None else self.net
        out = forward(
            torch.from_numpy(ids).to(self._device), torch.from_numpy(mask).to(self._device)
        )
        return np.asarray(out.float().cpu().numpy(), dtype=np.float64)

    def _logits(self, texts: list[str]) -> np.ndarray:
        enc = Encoded.from_texts(self.tokenizer, texts, self.max_length)
        out = np.empty((len(texts), len(self.classes)), dtype=np.float64)
        with self._context():
            for rows in enc.eval_batches(self.batch_size, self._call_cost):
                out[rows] = self._run(*enc.pad(rows))
        return out

    def _proba(self, texts: list[str]) -> np.ndarray:
        if self.flavor == "tfidf":
            p = self.tfidf.predict_proba(texts)
            out = np.zeros((len(texts), len(self.classes)), dtype=np.float64)
            out[:, self.tfidf.classes_] = p
            return out
        return self._squash(self._logits(texts))

    def _squash(self, logits: np.ndarray) -> np.ndarray:
        """Probabilities of logits: sigmoid per label (multi-label) or softmax."""
        return _sigmoid(logits) if self.multi_label else _softmax(logits)

    def predict_batch(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities, shape ``(len(texts), len(classes))``; rows in input order.

        Raises
        ------
        InvalidInput
            A text is missing, empty or longer than ``max_chars``.
        """
        return self._proba(check_texts(texts, max_chars=self.max_chars))

    def predict_labels(self, texts: Sequence[str]) -> list[Any]:
        """The most probable class of each text; multi-label: the list of its labels."""
        p = self.predict_batch(texts)
        if self.multi_label:
            return [self.given_labels(row) for row in p]
        return [self.classes[i] for i in np.argmax(p, axis=1)]

    def given_labels(self, p: np.ndarray) -> list[str]:
        """Multi-label: the labels of one row of probabilities at or above the threshold,
        most probable first."""
        order = np.argsort(-p, kind="stable")
        return [self.classes[i] for i in order if p[i] >= (self.label_threshold or 0.5)]

    def predict_one(self, text: str, *, top_k: int = 3) -> dict[str, Any]:
        """``{"label", "probability", "probabilities": {class: p}, "top_k": [...]}`` of one text;
        a multi-label model adds ``labels``, every label from its threshold up."""
        if not isinstance(text, str):
            raise InvalidInput(f"text must be a string, got {type(text).__name__}", field="text")
        p = self._proba(check_texts([text], max_chars=self.max_chars))[0]
        return self.answer(p, top_k=top_k)

    def predict_answers(self, texts: Sequence[str], *, top_k: int = 3) -> list[dict[str, Any]]:
        """:meth:`predict_one` answers for many texts in one pass (what a micro-batcher calls)."""
        return [self.answer(row, top_k=top_k) for row in self.predict_batch(texts)]

    def answer(self, p: np.ndarray, *, top_k: int = 3) -> dict[str, Any]:
        """The JSON answer for one row of probabilities (see :meth:`predict_one`)."""
        if isinstance(top_k, bool) or not isinstance(top_k, int | np.integer):
            raise InvalidInput(
                f"top_k must be a whole number of labels, got {top_k!r}", field="top_k"
            )
        order = np.argsort(-p, kind="stable")[: max(1, int(top_k))]
        best = int(order[0])
        out = {
            "label": self.classes[best],
            "probability": float(p[best]),
            "probabilities": {c: float(v) for c, v in zip(self.classes, p, strict=True)},
            "top_k": [{"label": self.classes[i], "probability": float(p[i])} for i in order],
        }
        if self.multi_label:
            out["labels"] = self.given_labels(p)
        return out

    def evaluate(self, texts: Sequence[str], labels: Sequence[Any]) -> dict[str, Any]:
        """Accuracy, macro-F1, per-class report and confusion matrix on labelled texts
        (multi-label: :func:`~leptonic.evaluation.classification.multilabel_metrics`, each
        label cell a list of labels or a string of them joined by ``label_separator``).

        Raises
        ------
        TargetError
            A label is not in the model's label map.
        """
        if self.multi_label:
            y, _ = encode_multilabels(
                labels, self.classes, separator=self.label_separator, min_classes=0
            )
        else:
            y, _ = encode_labels(labels, self.classes, min_classes=1)
        p = self.predict_batch(texts)
        if len(y) != len(p):
            raise InvalidInput(
                f"{len(p)} texts but {len(y)} labels; pass one label per text", field="label"
            )
        return self.metrics(y, p)

    def metrics(self, y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
        """Metrics of probabilities ``p`` (from :meth:`predict_batch`) against encoded labels
        ``y``: class positions, or for a multi-label model a 0/1 matrix, scored at its
        threshold."""
        from leptonic.evaluation.classification import classification_metrics, multilabel_metrics

        if self.multi_label:
            return multilabel_metrics(y, p, self.classes, threshold=self.label_threshold or 0.5)
        return classification_metrics(y, p, self.classes)

    # --- saving and loading ---------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write the model to the folder ``path`` (created; must be empty or missing);
        return the SHA-256 of its manifest, which :meth:`load` can be asked to check.

        The files are written into a hidden folder beside ``path``, which is renamed
        to ``path`` once complete: a failed save leaves nothing behind.
        """
        root = Path(path)
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise InvalidInput(
                f"folder {str(root)!r} is not empty; save into a new folder", field="path"
            )
        # written beside it, then renamed into place: a failed save leaves no half model
        root.parent.mkdir(parents=True, exist_ok=True)
        partial = root.parent / f".{root.name}.partial-{uuid.uuid4().hex[:8]}"
        partial.mkdir()
        try:
            digest = self._write(partial)
            os.replace(partial, root)  # onto a missing or empty folder
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        return digest

    def _write(self, root: Path) -> str:
        from leptonic.storage.artifacts.base import digest_file

        if self.flavor == "tfidf":
            import skops.io as sio

            (root / TFIDF).write_bytes(sio.dumps(self.tfidf))
        else:
            with quiet_transformers():
                self.tokenizer.save_pretrained(root)
                inner = self.net.model if self.flavor == "transformer" else self.net.encoder
                inner.save_pretrained(root, safe_serialization=True)
            if self.flavor == "mean_pool":
                from safetensors.torch import save_file

                head = self.net.head
                save_file(
                    {
                        "weight": head.weight.detach().cpu().contiguous(),
                        "bias": head.bias.detach().cpu().contiguous(),
                    },
                    str(root / HEAD),
                )
        (root / LABELS).write_text(json.dumps({"labels": self.classes}, indent=1), encoding="utf-8")
        info = {
            "format": FORMAT,
            "task": self.task,
            "flavor": self.flavor,
            "classes": self.classes,
            "max_length": self.max_length,
            "max_chars": self.max_chars,
            "batch_size": self.batch_size,
            "pooling": "mean" if self.flavor == "mean_pool" else "cls",
            "multi_label": self.multi_label,
            "threshold": self.label_threshold,
            "label_separator": self.label_separator,
            "versions": _versions("leptonic", "torch", "transformers", "scikit-learn"),
            "info": self.info,
        }
        (root / INFO).write_text(json.dumps(info, indent=1, default=str), encoding="utf-8")
        files = {
            p.relative_to(root).as_posix(): digest_file(p)
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }
        bad = [name for name in files if not name.endswith(ALLOWED_SUFFIXES)]
        if bad:
            raise UnsafeArtifact(f"the saved model holds files of an unexpected kind: {bad}")
        data = json.dumps({"format": FORMAT, "files": files}, indent=1, sort_keys=True).encode()
        (root / MANIFEST).write_bytes(data)
        return hashlib.sha256(data).hexdigest()

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        manifest_sha256: str | None = None,
        device: str = "cpu",
        precision: str = "fp32",
    ) -> TextPredictor:
        """Load a folder written by :meth:`save`, after checking every file's SHA-256.

        Without ``manifest_sha256`` the folder's manifest vouches for itself: that
        catches a corrupted or truncated file, not a deliberate edit (whoever edits a
        file can rewrite the manifest too). Pass the digest :meth:`save` returned
        (the registry always does) to refuse any change.

        Raises
        ------
        UnsafeArtifact
            A file is missing, changed or unlisted, the manifest is not the one
            expected (``manifest_sha256``), or the label map disagrees with the
            model's description.
        """
        root = Path(path)
        verify_folder(root, manifest_sha256)
        try:
            info = json.loads((root / INFO).read_text(encoding="utf-8"))
            flavor, classes = info["flavor"], info["classes"]
            if info["format"] != FORMAT or flavor not in FLAVORS:
                raise ValueError(flavor)
        except (OSError, ValueError, KeyError, TypeError):
            raise _refuse(root, f"{INFO} is missing or not a {FORMAT} description") from None
        try:
            labels = json.loads((root / LABELS).read_text(encoding="utf-8"))["labels"]
        except (OSError, ValueError, KeyError, TypeError):
            raise _refuse(root, f"{LABELS} is missing or unreadable") from None
        if labels != classes:
            raise _refuse(root, f"{LABELS} lists other labels than {INFO}: {labels} ≠ {classes}")
        common = {
            "classes": classes,
            "max_length": info["max_length"],
            "max_chars": info["max_chars"],
            "batch_size": info.get("batch_size", 64),
            "multi_label": bool(info.get("multi_label", False)),
            "threshold": info.get("threshold"),
            "label_separator": info.get("label_separator", "|"),
            "info": info.get("info") or {},
        }
        if flavor == "tfidf":
            return cls(flavor=flavor, tfidf=_load_skops(root / TFIDF), **common)
        tf = transformers_module()
        with quiet_transformers():
            tokenizer = tf.AutoTokenizer.from_pretrained(root, local_files_only=True)
            if flavor == "transformer":
                from leptonic.tasks.textcls._nets import LogitsOf

                model = tf.AutoModelForSequenceClassification.from_pretrained(
                    root, local_files_only=True, use_safetensors=True
                )
                net: Any = LogitsOf(model)
            else:
                from safetensors.torch import load_file

                from leptonic.tasks.textcls._nets import MeanPoolClassifier

                encoder = tf.AutoModel.from_pretrained(
                    root, local_files_only=True, use_safetensors=True
                )
                head = load_file(str(root / HEAD))
                net = MeanPoolClassifier(encoder, head["weight"], head["bias"])
        outputs = model.config.num_labels if flavor == "transformer" else head["weight"].shape[0]
        if outputs != len(classes):
            raise _refuse(root, f"the model has {outputs} outputs for {len(classes)} classes")
        return cls(
            flavor=flavor,
            net=net,
            tokenizer=tokenizer,
            device=device,
            precision=precision,
            **common,
        )


def _load_skops(path: Path) -> Any:
    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        return sio.loads(path.read_bytes(), trusted=list(TRUSTED_TYPES))
    except UntrustedTypesFoundException as exc:
        raise _refuse(path, f"it holds types that are not trusted ({exc})") from None
    except Exception as exc:  # corrupted zip, bad schema...
        raise _refuse(path, f"it cannot be read as a skops file ({type(exc).__name__})") from None

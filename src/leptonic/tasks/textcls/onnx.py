"""ONNX Runtime export of a :class:`TextPredictor`, checked against its torch outputs.

:func:`export_onnx` traces the predictor's network (``input_ids``,
``attention_mask`` → logits, dynamic batch and sequence axes) into an ONNX
file, opens it in an ONNX Runtime CPU session and returns an
:class:`OnnxTextPredictor`: the same tokenizer, classes and answers, scored by
ONNX Runtime. :meth:`OnnxTextPredictor.max_abs_diff` compares its
probabilities with the torch model's on given texts.
"""

from __future__ import annotations

import contextlib
import os
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from leptonic.errors import InvalidInput, MissingExtra
from leptonic.tasks.textcls._runtime import torch_module
from leptonic.tasks.textcls.predictor import TextPredictor

__all__ = ["OnnxTextPredictor", "export_onnx"]

_CHECK_TEXTS = (
    "I still have not received my new card",
    "How do I top up by bank transfer?",
    "Operating profit rose to EUR 13.1 mn from EUR 8.7 mn in the corresponding period of 2007.",
    "ok",
    # longer than any max_length: checks truncation, and pads the others in one batch
    " ".join(["Net sales decreased to EUR 220.5 mn from EUR 237.7 mn a year earlier."] * 40),
)


class OnnxTextPredictor(TextPredictor):
    """A :class:`TextPredictor` whose network runs in ONNX Runtime.

    Parameters
    ----------
    source
        The torch predictor it was exported from (tokenizer, classes, limits).
    path
        The ONNX file.
    threads
        ONNX Runtime intra-op threads (unset: its default, one per core).
    """

    def __init__(
        self, source: TextPredictor, path: str | os.PathLike[str], *, threads: int | None = None
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise MissingExtra("onnxruntime", "text", "ONNX Runtime inference") from None
        super().__init__(
            flavor=source.flavor,
            classes=source.classes,
            tokenizer=source.tokenizer,
            net=source.net,
            device=str(source._device),  # (the source's module stays where it runs)
            max_length=source.max_length,
            max_chars=source.max_chars,
            batch_size=source.batch_size,
            multi_label=source.multi_label,
            threshold=source.label_threshold,
            label_separator=source.label_separator,
            info={**source.info, "runtime": "onnxruntime"},
        )
        self._packed = None  # the exported graph runs padded batches
        self.source = source
        self.path = Path(path)
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            str(self.path), options, providers=["CPUExecutionProvider"]
        )

    def _context(self) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()

    def _run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        (logits,) = self.session.run(["logits"], {"input_ids": ids, "attention_mask": mask})
        return np.asarray(logits, dtype=np.float64)

    def max_abs_diff(self, texts: Sequence[str] = _CHECK_TEXTS) -> float:
        """Largest absolute difference between this and the torch predictor's
        probabilities: answering ``texts`` as usual (batches of similar length), and
        all of them as one batch padded to the longest (what the graph must mask)."""
        from leptonic.tasks.textcls._data import Encoded

        # within the model's max_chars: the long check text is there to fill max_length
        texts = [t[: self.max_chars] for t in texts]
        answered = np.abs(self.predict_batch(texts) - self.source.predict_batch(texts))
        enc = Encoded.from_texts(self.tokenizer, list(texts), self.max_length)
        ids, mask = enc.pad(np.arange(len(texts)))
        with self.source._context():
            torch_logits = self.source._run(ids, mask)
        padded = np.abs(self._squash(self._run(ids, mask)) - self._squash(torch_logits))
        return float(max(answered.max(), padded.max()))

    def save(self, path: str | os.PathLike[str]) -> str:
        raise InvalidInput("save the torch TextPredictor and export it again after loading")


def export_onnx(
    predictor: TextPredictor,
    path: str | os.PathLike[str],
    *,
    threads: int | None = None,
    check_texts: Sequence[str] = _CHECK_TEXTS,
    tolerance: float = 1e-4,
) -> OnnxTextPredictor:
    """Export ``predictor`` to the ONNX file ``path``; check it on ``check_texts``.

    Raises
    ------
    InvalidInput
        A ``tfidf`` predictor (there is no network to export), or an export
        whose probabilities differ from torch's by more than ``tolerance``.
    MissingExtra
        ``onnx`` or ``onnxruntime`` is not installed.
    """
    if predictor.net is None:
        raise InvalidInput(
            f"a {predictor.flavor!r} text model has no network to export to ONNX; "
            "export a full, lora or frozen-mode model",
            field="flavor",
        )
    for package in ("onnx", "onnxruntime"):
        try:
            __import__(package)
        except ImportError:
            raise MissingExtra(package, "text", "ONNX export") from None
    torch = torch_module()
    enc = predictor.tokenizer(
        ["a short one", "a somewhat longer example sentence"],
        padding=True,
        return_tensors="pt",
        return_token_type_ids=False,
    )
    # exported beside ``path`` and renamed into place once checked: a failed or
    # refused export leaves no file behind
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial-{uuid.uuid4().hex[:8]}")
    net = predictor.net.cpu().eval()
    try:
        try:
            with warnings.catch_warnings():
                # The TorchScript exporter is deprecated in favour of torch.export (which needs
                # onnxscript); the tracer warns about shape checks that do not change the graph.
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    net,
                    (enc["input_ids"], enc["attention_mask"]),
                    str(partial),
                    input_names=["input_ids", "attention_mask"],
                    output_names=["logits"],
                    dynamic_axes={
                        "input_ids": {0: "batch", 1: "sequence"},
                        "attention_mask": {0: "batch", 1: "sequence"},
                        "logits": {0: "batch"},
                    },
                    opset_version=17,
                    dynamo=False,
                )
        finally:
            net.eval()
            predictor.net = net.to(predictor._device)
        exported = OnnxTextPredictor(predictor, partial, threads=threads)
        diff = exported.max_abs_diff(check_texts)
        exported.info["max_abs_diff"] = diff
        if not diff <= tolerance:
            raise InvalidInput(
                f"the ONNX export differs from the torch model by {diff:.3g} in probability "
                f"(tolerance {tolerance:g}); keep serving the torch model",
                field="onnx",
            )
        os.replace(partial, target)  # the open session has read the graph already
        exported.path = target
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return exported

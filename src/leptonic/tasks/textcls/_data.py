"""Texts and labels: validation, the label map, stratified splits and length-bucketed batches."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from leptonic.errors import InvalidInput, TargetError

__all__ = [
    "Encoded",
    "check_texts",
    "data_digest",
    "encode_labels",
    "encode_multilabels",
    "label_text",
    "multilabel_strata",
    "stratified_split",
]


def _rows(values: Any, name: str) -> list[Any]:
    if isinstance(values, str | bytes):
        raise InvalidInput(
            f"{name} must be a list of texts, not one {type(values).__name__}; wrap it: [text]",
            field=name,
        )
    if hasattr(values, "to_pylist"):  # pyarrow arrays and chunked arrays
        return list(values.to_pylist())
    if hasattr(values, "tolist"):  # numpy arrays, pandas series
        return list(values.tolist())
    if not isinstance(values, Iterable):
        raise InvalidInput(
            f"{name} must be a list of texts, got {type(values).__name__}", field=name
        )
    return list(values)


def _missing(value: Any) -> bool:
    """None, NaN, ``pandas.NA`` or ``NaT`` (without comparing: ``NA != NA`` is not a bool)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float | np.floating) and math.isnan(value)


def label_text(value: Any, i: int, field: str) -> str:
    """The class name of one label, the same whichever path it came by (a dataset's
    column read by Arrow, or Python values): booleans are ``"true"`` / ``"false"``,
    integral numbers their integer text (``1``, ``1.0`` and ``"1"`` are one class).

    Raises
    ------
    TargetError
        The label is missing, or several labels (a list: multi-label data).
    """
    if _missing(value):
        raise TargetError(
            f"{field} at row {i} is missing; drop unlabelled rows before training",
            field=field,
        )
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        # a float32 through its shortest decimal form (0.7, not 0.699999988...), as Arrow
        narrow = isinstance(value, np.floating) and value.itemsize < 8
        x = float(str(value)) if narrow else float(value)
        return str(int(x)) if x.is_integer() else repr(x)
    if isinstance(value, list | tuple | set | frozenset | dict | np.ndarray):
        raise TargetError(
            f"{field} at row {i} holds several labels ({type(value).__name__}); a text with "
            "several labels needs a multi-label classifier: set multi_label=True",
            field=field,
        )
    return str(value)


def check_texts(texts: Any, *, max_chars: int, field: str = "text") -> list[str]:
    """``texts`` as a list of non-empty strings of at most ``max_chars`` characters.

    Raises
    ------
    InvalidInput
        A text is missing, not a string, empty (or only whitespace), too long
        or holds an unpaired surrogate (not encodable as UTF-8); the message
        names its row.
    """
    rows = _rows(texts, field)
    if not rows:
        raise InvalidInput(f"no texts given in {field!r}; pass at least one text", field=field)
    for i, text in enumerate(rows):
        if not isinstance(text, str):
            what = "missing" if _missing(text) else f"a {type(text).__name__}"
            raise InvalidInput(
                f"{field} at row {i} is {what}, not a string; give every row a text",
                field=field,
            )
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:  # a lone surrogate, e.g. from a "\ud800" escape
                raise InvalidInput(
                    f"{field} at row {i} has an unpaired surrogate ({text[exc.start]!r} at "
                    f"character {exc.start}), which is not text; send valid UTF-8 (a pair of "
                    "surrogate escapes for characters beyond U+FFFF)",
                    field=field,
                ) from None
        if len(text) > max_chars:
            raise InvalidInput(
                f"{field} at row {i} has {len(text):,} characters, more than the {max_chars:,} "
                f"allowed; split the document or summarise it first (texts are cut to the "
                f"model's max_length tokens anyway)",
                field=field,
            )
        if not text.strip():
            raise InvalidInput(
                f"{field} at row {i} is empty; drop empty texts before training or predicting",
                field=field,
            )
    return rows


def encode_labels(
    labels: Any, label_map: Sequence[str] | None, *, field: str = "label", min_classes: int = 2
) -> tuple[np.ndarray, list[str]]:
    """Labels as positions in the label map (built from the data when ``label_map`` is None).

    Labels are compared by their :func:`label_text` (``1``, ``1.0`` and ``"1"`` are
    one class; ``True`` is ``"true"``).

    Raises
    ------
    TargetError
        A label is missing, the data holds fewer than ``min_classes`` classes,
        or a label is not in ``label_map``.
    """
    rows = _rows(labels, field)
    names = [label_text(value, i, field) for i, value in enumerate(rows)]
    if label_map is not None:  # a model trained before label_text spelled True "True"
        known = set(label_map)
        names = [
            n if n in known or str(v) not in known else str(v)
            for n, v in zip(names, rows, strict=True)
        ]
    seen = sorted(set(names))
    if not seen:
        raise TargetError(f"no labels given in {field!r}; pass one label per text", field=field)
    if len(seen) < min_classes:
        raise TargetError(
            f"{field} has a single class ({seen[0]!r} in every row); a classifier needs "
            "examples of at least two classes — check the label column or the data extract",
            field=field,
        )
    classes, index = _label_map(seen, label_map, field)
    return np.fromiter((index[n] for n in names), dtype=np.int64, count=len(names)), classes


def _label_map(
    seen: list[str], label_map: Sequence[str] | None, field: str
) -> tuple[list[str], dict[str, int]]:
    """The classes (``label_map``, or the labels seen) and their positions; a seen label
    missing from ``label_map`` is refused."""
    classes = list(label_map) if label_map is not None else seen
    index = {c: i for i, c in enumerate(classes)}
    unknown = [c for c in seen if c not in index]
    if unknown:
        shown = ", ".join(repr(c) for c in unknown[:5])
        raise TargetError(
            f"{field} holds {len(unknown)} label(s) missing from the label map, such as {shown}; "
            f"add them to labels (known: {', '.join(classes[:10])}"
            f"{', ...' if len(classes) > 10 else ''}) or drop those rows",
            field=field,
        )
    return classes, index


def _label_set(value: Any, i: int, separator: str, field: str) -> list[str]:
    """The labels of one multi-label cell: a list of labels, or a string joined by ``separator``."""
    if _missing(value):
        raise TargetError(
            f"{field} at row {i} is missing; give an empty list (or an empty string) for a "
            "text with no label, or drop unlabelled rows",
            field=field,
        )
    if isinstance(value, str):
        parts: list[Any] = value.split(separator)
    elif isinstance(value, list | tuple | set | frozenset | np.ndarray):
        parts = list(value)
    else:
        raise TargetError(
            f"{field} at row {i} is a {type(value).__name__}; a multi-label cell is a list of "
            f"labels or one string of labels joined by {separator!r}",
            field=field,
        )
    names = []
    for part in parts:
        if _missing(part):
            raise TargetError(f"{field} at row {i} lists a missing label", field=field)
        name = label_text(part, i, field).strip()
        if name:
            names.append(name)
    return names


def encode_multilabels(
    labels: Any,
    label_map: Sequence[str] | None,
    *,
    separator: str = "|",
    field: str = "label",
    min_classes: int = 2,
) -> tuple[np.ndarray, list[str]]:
    """Multi-label cells as a 0/1 matrix ``(texts, labels)`` over the label map (built from
    the data, sorted, when ``label_map`` is None).

    A cell is a list of labels or one string of labels joined by ``separator``
    (``"card|fees"``); an empty list or string means no label.

    Raises
    ------
    TargetError
        A cell is missing or of another type, the data names fewer than
        ``min_classes`` labels, or a label is not in ``label_map``.
    """
    rows = _rows(labels, field)
    sets = [_label_set(value, i, separator, field) for i, value in enumerate(rows)]
    seen = sorted({name for names in sets for name in names})
    if not rows:
        raise TargetError(
            f"no labels given in {field!r}; pass one label cell per text", field=field
        )
    if len(seen) < min_classes:
        found = f"only {seen[0]!r}" if seen else "no label at all"
        raise TargetError(
            f"{field} names {found}; a multi-label classifier needs at least two labels "
            "— check the label column and its separator "
            f"({separator!r})",
            field=field,
        )
    classes, index = _label_map(seen, label_map, field)
    y = np.zeros((len(rows), len(classes)), dtype=np.float32)
    for i, names in enumerate(sets):
        y[i, [index[n] for n in names]] = 1.0
    return y, classes


def multilabel_strata(y: np.ndarray) -> np.ndarray:
    """One stratum per text for :func:`stratified_split`: its rarest label (texts with no
    label share one stratum), so that every label is spread over both sides."""
    counts = y.sum(axis=0)
    rarity = np.where(y > 0, counts[None, :], np.inf)
    return np.where(np.isfinite(rarity.min(axis=1)), rarity.argmin(axis=1), y.shape[1])


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(kept, held_out)``: about ``fraction`` of each class held out, seeded.

    A class keeps at least one row on the kept side; a class of one row is never held out.
    """
    rng = np.random.default_rng(seed)
    kept: list[np.ndarray] = []
    held: list[np.ndarray] = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_held = min(len(idx) - 1, round(fraction * len(idx)))
        held.append(idx[:n_held])
        kept.append(idx[n_held:])
    return np.sort(np.concatenate(kept)), np.sort(np.concatenate(held))


def data_digest(texts: Sequence[str], y: np.ndarray) -> str:
    """SHA-256 of texts and labels: tells whether a checkpoint was made on the same data."""
    h = hashlib.sha256()
    for text in texts:
        h.update(text.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    if np.ndim(y) > 1:  # multi-label: the matrix's shape too
        h.update(str(np.shape(y)).encode())
    h.update(np.ascontiguousarray(y, dtype=np.int64).tobytes())
    return h.hexdigest()


@dataclass
class Encoded:
    """Tokenised texts (no padding) with their lengths; batches are padded on the fly."""

    ids: list[list[int]]
    lengths: np.ndarray
    pad_id: int

    @classmethod
    def from_texts(cls, tokenizer: Any, texts: Sequence[str], max_length: int) -> Encoded:
        ids = tokenizer(
            list(texts),
            truncation=True,
            max_length=max_length,
            padding=False,
            return_attention_mask=False,
            return_token_type_ids=False,
        )["input_ids"]
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        return cls(ids=ids, lengths=np.array([len(i) for i in ids], dtype=np.int64), pad_id=pad)

    def __len__(self) -> int:
        return len(self.ids)

    def eval_batches(self, batch_size: int, call_cost: int = 8) -> Iterator[np.ndarray]:
        """Row indices in batches of similar length, at most ``batch_size`` rows each.

        Rows are sorted by length and cut where the padding saved outweighs
        the fixed cost of one more forward pass (``call_cost``, in padded
        tokens), so a batch of short texts and one long text runs as two
        passes. Longest first: memory peaks early.
        """
        order = np.argsort(-self.lengths, kind="stable")
        lengths = self.lengths[order]
        n = len(order)
        # cost[i]: cheapest cut of rows i.. (sorted longest first); a batch costs
        # (its first row's length × its rows) + call_cost.
        cost = np.zeros(n + 1)
        cut = np.zeros(n + 1, dtype=np.int64)
        for i in range(n - 1, -1, -1):
            ends = np.arange(i + 1, min(n, i + batch_size) + 1)
            totals = lengths[i] * (ends - i) + call_cost + cost[ends]
            best = int(np.argmin(totals))
            cost[i], cut[i] = totals[best], ends[best]
        i = 0
        while i < n:
            yield order[i : cut[i]]
            i = int(cut[i])

    def train_batches(self, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
        """Shuffled batches of similar length: rows are shuffled, sorted by length within
        pools of 50 batches, cut into batches, and the batches shuffled."""
        order = rng.permutation(len(self.ids))
        pool = batch_size * 50
        batches: list[np.ndarray] = []
        for start in range(0, len(order), pool):
            chunk = order[start : start + pool]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
        return [batches[i] for i in rng.permutation(len(batches))]

    def n_train_batches(self, batch_size: int) -> int:
        pool = batch_size * 50
        full, rest = divmod(len(self.ids), pool)
        return full * math.ceil(pool / batch_size) + math.ceil(rest / batch_size)

    def pad(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(input_ids, attention_mask)`` int64 arrays padded to the longest row."""
        width = int(self.lengths[rows].max())
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for j, r in enumerate(rows):
            n = int(self.lengths[r])
            ids[j, :n] = self.ids[r]
            mask[j, :n] = 1
        return ids, mask

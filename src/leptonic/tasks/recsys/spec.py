"""What a recommender training run is asked to do: the :class:`RecommenderSpec`."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from leptonic.errors import InvalidInput
from leptonic.tasks.spec import MAX_SEED

__all__ = ["CANDIDATES", "CONFIDENCE", "SPLITS", "RecommenderSpec"]

CANDIDATES = ("als", "bpr", "item_knn", "popularity")
SPLITS = ("random", "time")
CONFIDENCE = ("auto", "search", "binary", "linear", "log")


@dataclass(frozen=True)
class RecommenderSpec:
    """A ``recommendation`` training job.

    Parameters
    ----------
    user, item
        Columns of the interactions table holding the user and item ids.
    timestamp
        Column with the event time (epoch seconds, datetimes or ISO 8601
        strings); needed by the ``time`` split and for duplicate checks.
    weight
        Column with a rating, quantity or other strength of the interaction
        (absent: every event weighs 1).
    min_weight
        Drop interactions whose weight is below this (e.g. 4 to keep only
        4- and 5-star ratings); None keeps all.
    candidates
        Model families to search: ``als`` (implicit ALS), ``bpr`` (implicit
        BPR), ``item_knn`` (item-item neighbours, cosine/BM25/TF-IDF) and
        ``popularity``.
    split
        ``random``: a seeded per-user fraction of each user's items is held
        out; ``time``: the latest events are held out (a global time
        cut-off). The validation part used by the search is carved from the
        training part in the same way.
    test_fraction, valid_fraction
        Shares held out for the test (from all data) and for validation
        (from the training part). A small validation share keeps the
        search's fits close in size to the final fit, which matters: the
        best ALS weights shift with the amount of data.
    valid_repeats
        Independent random validation splits each trial is scored on (the
        mean NDCG is used: one split is noisy enough to mislead the search);
        a time split has one.
    k
        Cut-off of the selection metric (NDCG@k on validation) and of the
        reported metrics.
    confidence
        How raw weights become confidences: ``binary``, ``linear``
        (1 + α·r), ``log`` (1 + α·log(1 + r)), ``search`` (the scheme and α
        are searched), or ``auto`` (``log`` with α = 1 when a ``weight``
        column is given, ``binary`` otherwise).
    trials, timeout_s
        Hyperparameter trials in all (shared among the candidates) and the
        wall-clock budget of the search in seconds (None: trials only).
    seed
        Seed for the splits, the search and the models.
    num_threads
        Threads for fitting (``implicit``); 0 means every core.
    blend
        At most this many of the best ALS configurations are blended (their
        standardised scores averaged, served as one model with concatenated
        factors) when that scores better on validation; 1 never blends.
    refit_all
        After the test, refit the chosen model on every interaction (train
        and test) so that serving knows the latest events; the reported test
        metrics remain those of the model fitted without the test part.
    max_k
        The largest ``k`` a ``recommend`` call may ask for.
    """

    user: str = "user"
    item: str = "item"
    timestamp: str | None = None
    weight: str | None = None
    min_weight: float | None = None
    candidates: tuple[str, ...] = CANDIDATES
    split: str = "random"
    test_fraction: float = 0.2
    valid_fraction: float = 0.1
    valid_repeats: int = 2
    k: int = 10
    confidence: str = "auto"
    trials: int = 30
    timeout_s: float | None = 120.0
    seed: int = 0
    num_threads: int = 1
    blend: int = 4
    refit_all: bool = False
    max_k: int = 1000

    def __post_init__(self) -> None:
        def bad(field: str, msg: str) -> InvalidInput:
            return InvalidInput(f"invalid recommender spec: {field} {msg}", field=field)

        for name in ("user", "item"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise bad(name, "must name a column of the interactions table")
        named = [n for n in ("user", "item", "timestamp", "weight") if getattr(self, n)]
        for i, name in enumerate(named):
            other = next((o for o in named[:i] if getattr(self, o) == getattr(self, name)), None)
            if other is not None:
                raise bad(
                    name,
                    f"names column {getattr(self, name)!r}, as {other} does; each role "
                    "needs its own column",
                )
        for name in ("timestamp", "weight"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise bad(name, f"is {value!r}; name a column or leave it unset")
        cands = self.candidates
        if isinstance(cands, str):
            cands = (cands,)
        if (
            not isinstance(cands, list | tuple)
            or not cands
            or any(c not in CANDIDATES for c in cands)
        ):
            raise bad(
                "candidates", f"{cands!r} must be a non-empty subset of {', '.join(CANDIDATES)}"
            )
        object.__setattr__(self, "candidates", tuple(dict.fromkeys(cands)))
        for name in ("k", "trials", "seed", "num_threads", "max_k", "valid_repeats", "blend"):
            value = getattr(self, name)
            if not _is_int(value):
                raise bad(name, f"is {value!r}; it must be a whole number")
            object.__setattr__(self, name, int(value))
        if not 0 <= self.seed <= MAX_SEED:
            raise bad("seed", f"is {self.seed}; use a whole number from 0 to {MAX_SEED}")
        for name in ("test_fraction", "valid_fraction", "timeout_s", "min_weight"):
            value = getattr(self, name)
            if value is None and name in ("timeout_s", "min_weight"):
                continue
            if not _is_number(value) or not np.isfinite(value):
                raise bad(name, f"is {value!r}; it must be a number")
            object.__setattr__(self, name, float(value))
        if self.split not in SPLITS:
            raise bad("split", f"is {self.split!r}; use one of {', '.join(SPLITS)}")
        if self.split == "time" and self.timestamp is None:
            raise bad("split", "'time' needs the timestamp column (set timestamp)")
        if self.confidence not in CONFIDENCE:
            raise bad("confidence", f"is {self.confidence!r}; use one of {', '.join(CONFIDENCE)}")
        for name in ("test_fraction", "valid_fraction"):
            if not 0 < getattr(self, name) < 1:
                raise bad(name, "must be between 0 and 1 (e.g. 0.2)")
        if not 1 <= self.k <= 100:
            raise bad("k", "must be between 1 and 100")
        if not 1 <= self.valid_repeats <= 5:
            raise bad("valid_repeats", "must be between 1 and 5")
        if not 1 <= self.blend <= 8:
            raise bad("blend", "must be between 1 (no blend) and 8")
        if self.trials < 1:
            raise bad("trials", "must be at least 1")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise bad("timeout_s", "must be positive (or None for no time limit)")
        if self.num_threads < 0:
            raise bad("num_threads", "must be ≥ 0 (0: every core)")
        if self.max_k < self.k:
            raise bad("max_k", f"must be at least k ({self.k})")
        if not isinstance(self.refit_all, bool):
            raise bad("refit_all", "must be true or false")

    @property
    def searched_confidence(self) -> bool:
        """Whether the confidence scheme is part of the search."""
        return self.confidence == "search" and self.weight is not None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["candidates"] = list(self.candidates)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecommenderSpec:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InvalidInput(
                f"unknown recommender spec field(s): {', '.join(unknown)}; "
                f"known: {', '.join(sorted(names))}",
                field=unknown[0],
            )
        kwargs: dict[str, Any] = {
            k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()
        }
        return cls(**kwargs)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)

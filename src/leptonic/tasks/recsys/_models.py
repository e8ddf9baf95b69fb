"""Recommender families searched by training, each with its search space.

Every family fits on a users × items matrix of raw weights and returns a
:class:`ModelState`: plain numpy arrays and JSON parameters, which is all a
:class:`~leptonic.tasks.recsys.predictor.RecommenderPredictor` needs. The
``implicit`` library (``pip install 'leptonic[recsys]'``) fits ALS, BPR and
the item-item neighbourhoods; serving needs only numpy and scipy.

ALS is parametrised as in Rendle et al., *Revisiting the Performance of iALS
on Item Recommendation Benchmarks* (2022): the loss is
``Σ_observed c·(1 − x·y)² + α0·Σ_all (x·y)² + λ·(‖X‖² + ‖Y‖²)``, with
``unobserved_weight`` α0 and ``regularization`` λ. ``implicit`` minimises the
same loss divided by α0, so it is given confidences ``c/α0`` and
regularization ``λ/α0``; each ALS model lists its ``members`` (one, or
several for a blend) with that confidence multiplier ("scale"), that
regularization ("reg"), its confidence scheme, its factor columns ("width")
and its score weight, for the predictor's online fold-in.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from leptonic.errors import MissingExtra
from leptonic.tasks.recsys._data import Confidence
from leptonic.tasks.recsys.spec import RecommenderSpec

__all__ = ["CANDIDATE_CLASSES", "Candidate", "ModelState", "blas_single_thread", "blend_als"]


@dataclass
class ModelState:
    """A fitted model as plain data.

    ``arrays`` holds ``user_factors``/``item_factors`` (ALS, BPR) or the
    item-item ``similarity`` as CSR parts ``sim_indptr``, ``sim_indices``,
    ``sim_data`` (item-kNN); popularity needs none.
    """

    kind: str
    params: dict[str, Any]
    confidence: Confidence
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def _require_implicit() -> None:
    try:
        import implicit  # noqa: F401
    except ImportError:
        raise MissingExtra("implicit", "recsys", "ALS, BPR and item-kNN recommenders") from None


@contextlib.contextmanager
def blas_single_thread() -> Iterator[None]:
    """One BLAS thread: ``implicit`` runs its own threads and warns (and slows) otherwise."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def confidence_params(trial: Any, spec: RecommenderSpec) -> dict[str, Any]:
    """The confidence part of a trial's parameters."""
    if spec.searched_confidence:
        scheme = trial.suggest_categorical("confidence", ["binary", "linear", "log"])
        alpha = 1.0
        if scheme != "binary":
            alpha = trial.suggest_float("confidence_alpha", 0.1, 100.0, log=True)
        return {"confidence": scheme, "confidence_alpha": alpha}
    return default_confidence(spec)


def default_confidence(spec: RecommenderSpec) -> dict[str, Any]:
    if spec.confidence in ("auto", "search"):
        scheme = "log" if spec.weight is not None else "binary"
    else:
        scheme = spec.confidence
    return {"confidence": scheme, "confidence_alpha": 1.0}


def confidence_of(params: dict[str, Any]) -> Confidence:
    return Confidence(params["confidence"], float(params["confidence_alpha"]))


class Candidate(abc.ABC):
    """One model family."""

    name: str
    #: share of the trial budget relative to the other families
    weight: float = 1.0
    #: the most trials worth running (a family without parameters needs one)
    max_trials: int | None = None

    @abc.abstractmethod
    def default_params(self, spec: RecommenderSpec) -> dict[str, Any]:
        """Sensible parameters, tried first."""

    @abc.abstractmethod
    def suggest(self, trial: Any, spec: RecommenderSpec) -> dict[str, Any]:
        """Parameters for an optuna trial."""

    @abc.abstractmethod
    def fit(self, raw: Any, params: dict[str, Any], spec: RecommenderSpec) -> ModelState:
        """Fit on a users × items CSR of raw weights."""


class ALSCandidate(Candidate):
    """Implicit-feedback ALS (Hu, Koren & Volinsky 2008), fitted by ``implicit``.

    Confidences are divided by their mean (the scheme sets their shape, α0
    their weight against the unobserved pairs), and the regularization is
    scaled by the data as in Rendle et al. (2022): λ = ``regularization`` ·
    (mean interactions per user + α0 · catalogue size), so that one search
    range fits catalogues of any size.
    """

    name = "als"
    weight = 3.0

    def default_params(self, spec: RecommenderSpec) -> dict[str, Any]:
        return {
            "factors": 64,
            "unobserved_weight": 0.3,
            "regularization": 0.02,
            "iterations": 15,
            **default_confidence(spec),
        }

    def suggest(self, trial: Any, spec: RecommenderSpec) -> dict[str, Any]:
        return {
            "factors": trial.suggest_int("factors", 32, 192, log=True),
            "unobserved_weight": trial.suggest_float("unobserved_weight", 0.05, 1.0, log=True),
            "regularization": trial.suggest_float("regularization", 0.001, 0.3, log=True),
            "iterations": 15,
            **confidence_params(trial, spec),
        }

    def fit(self, raw: Any, params: dict[str, Any], spec: RecommenderSpec) -> ModelState:
        _require_implicit()
        from implicit.cpu.als import AlternatingLeastSquares

        conf = confidence_of(params)
        alpha0 = float(params["unobserved_weight"])
        c = conf(raw.data)
        scale = 1.0 / (alpha0 * float(c.mean())) if c.size else 1.0 / alpha0
        n_users, n_items = raw.shape
        per_user = raw.nnz / max(n_users, 1)
        lam = float(params["regularization"]) * (per_user + alpha0 * n_items)
        reg = lam / alpha0
        matrix = raw.copy()
        matrix.data = (c * scale).astype(np.float32)
        with blas_single_thread():
            model = AlternatingLeastSquares(
                factors=int(params["factors"]),
                regularization=reg,
                alpha=1.0,
                iterations=int(params["iterations"]),
                num_threads=spec.num_threads,
                random_state=spec.seed,
            )
            model.fit(matrix, show_progress=False)
        member = {
            "scale": scale,
            "reg": reg,
            "confidence": conf.to_dict(),
            "width": int(params["factors"]),
            "weight": 1.0,
        }
        return ModelState(
            "als",
            {**params, "members": [member]},
            conf,
            {
                "user_factors": np.ascontiguousarray(model.user_factors, dtype=np.float32),
                "item_factors": np.ascontiguousarray(model.item_factors, dtype=np.float32),
            },
        )


def blend_als(states: list[ModelState], *, sample: int = 1000, seed: int = 0) -> ModelState:
    """One ALS model scoring the equally weighted sum of ``states``' scores.

    Each member's scores are divided by their standard deviation (measured on
    up to ``sample`` users) so that no member dominates; the blend is exact
    and as fast to serve as one model with the summed widths: item factors
    are concatenated, user factors concatenated after scaling by each
    member's weight. Online fold-in solves each member's problem with its own
    confidences and regularization (the ``members`` parameter).
    """
    if len(states) == 1:
        return states[0]
    rng = np.random.default_rng(seed)
    users, items, members = [], [], []
    for state in states:
        u, v = state.arrays["user_factors"], state.arrays["item_factors"]
        rows = rng.choice(u.shape[0], size=min(sample, u.shape[0]), replace=False)
        spread = float(np.std(u[rows] @ v.T)) or 1.0
        for member in state.params["members"]:
            members.append({**member, "weight": member["weight"] / spread})
        users.append(u / spread)
        items.append(v)
    first = states[0]
    params = {**{k: v for k, v in first.params.items() if k != "members"}}
    params["blend"] = [{k: v for k, v in s.params.items() if k != "members"} for s in states]
    params["members"] = members
    return ModelState(
        "als",
        params,
        first.confidence,
        {
            "user_factors": np.ascontiguousarray(np.hstack(users), dtype=np.float32),
            "item_factors": np.ascontiguousarray(np.hstack(items), dtype=np.float32),
        },
    )


class BPRCandidate(Candidate):
    """Bayesian personalised ranking (Rendle et al. 2009), fitted by ``implicit``."""

    name = "bpr"
    weight = 0.4

    def default_params(self, spec: RecommenderSpec) -> dict[str, Any]:
        return {
            "factors": 64,
            "learning_rate": 0.01,
            "regularization": 0.01,
            "iterations": 100,
            **default_confidence(spec),
        }

    def suggest(self, trial: Any, spec: RecommenderSpec) -> dict[str, Any]:
        return {
            "factors": trial.suggest_int("factors", 16, 128, log=True),
            "learning_rate": trial.suggest_float("learning_rate", 0.002, 0.05, log=True),
            "regularization": trial.suggest_float("regularization", 1e-4, 0.1, log=True),
            "iterations": trial.suggest_int("iterations", 40, 160, step=20),
            **confidence_params(trial, spec),
        }

    def fit(self, raw: Any, params: dict[str, Any], spec: RecommenderSpec) -> ModelState:
        _require_implicit()
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        conf = confidence_of(params)
        matrix = raw.copy()
        matrix.data = conf(raw.data).astype(np.float32)
        with blas_single_thread():
            model = BayesianPersonalizedRanking(
                factors=int(params["factors"]),
                learning_rate=float(params["learning_rate"]),
                regularization=float(params["regularization"]),
                iterations=int(params["iterations"]),
                num_threads=spec.num_threads,
                random_state=spec.seed,
            )
            model.fit(matrix, show_progress=False)
        return ModelState(
            "bpr",
            dict(params),
            conf,
            {
                "user_factors": np.ascontiguousarray(model.user_factors, dtype=np.float32),
                "item_factors": np.ascontiguousarray(model.item_factors, dtype=np.float32),
            },
        )


class ItemKNNCandidate(Candidate):
    """Item-item nearest neighbours on the item × user matrix (cosine, BM25 or TF-IDF).

    A user's score for item i is Σ_j c_uj · S[j, i] over the items j the user
    interacted with, S keeping each item's ``neighbours`` most similar items.
    """

    name = "item_knn"
    weight = 1.0

    def default_params(self, spec: RecommenderSpec) -> dict[str, Any]:
        return {
            "similarity": "bm25",
            "neighbours": 200,
            "bm25_k1": 1.2,
            "bm25_b": 0.75,
            **default_confidence(spec),
        }

    def suggest(self, trial: Any, spec: RecommenderSpec) -> dict[str, Any]:
        similarity = trial.suggest_categorical("similarity", ["cosine", "bm25", "tfidf"])
        params: dict[str, Any] = {
            "similarity": similarity,
            "neighbours": trial.suggest_int("neighbours", 10, 800, log=True),
            "bm25_k1": 1.2,
            "bm25_b": 0.75,
        }
        if similarity == "bm25":
            params["bm25_k1"] = trial.suggest_float("bm25_k1", 0.2, 5.0, log=True)
            params["bm25_b"] = trial.suggest_float("bm25_b", 0.1, 1.0)
        return {**params, **confidence_params(trial, spec)}

    def fit(self, raw: Any, params: dict[str, Any], spec: RecommenderSpec) -> ModelState:
        _require_implicit()
        import scipy.sparse as sp
        from implicit.nearest_neighbours import all_pairs_knn, bm25_weight, normalize, tfidf_weight

        conf = confidence_of(params)
        matrix = raw.copy()
        matrix.data = conf(raw.data)
        item_users = matrix.T.tocsr()
        kind = params["similarity"]
        if kind == "bm25":
            weighted = bm25_weight(item_users, float(params["bm25_k1"]), float(params["bm25_b"]))
        elif kind == "tfidf":
            weighted = normalize(tfidf_weight(item_users))
        else:
            weighted = normalize(item_users)
        weighted = sp.csr_matrix(weighted.T, dtype=np.float64)
        with blas_single_thread():
            similarity = all_pairs_knn(
                weighted,
                int(min(params["neighbours"], raw.shape[1])),
                show_progress=False,
                num_threads=spec.num_threads,
            ).tocsr()
        similarity.setdiag(0.0)
        similarity.eliminate_zeros()
        similarity.sort_indices()
        return ModelState(
            "item_knn",
            dict(params),
            conf,
            {
                "sim_indptr": similarity.indptr.astype(np.int64),
                "sim_indices": similarity.indices.astype(np.int32),
                "sim_data": similarity.data.astype(np.float32),
            },
        )


class PopularityCandidate(Candidate):
    """The most popular items (distinct users per item), the same for everyone."""

    name = "popularity"
    weight = 0.0
    max_trials = 1

    def default_params(self, spec: RecommenderSpec) -> dict[str, Any]:
        return {"confidence": "binary", "confidence_alpha": 1.0}

    def suggest(self, trial: Any, spec: RecommenderSpec) -> dict[str, Any]:
        return self.default_params(spec)

    def fit(self, raw: Any, params: dict[str, Any], spec: RecommenderSpec) -> ModelState:
        return ModelState("popularity", dict(params), confidence_of(params))


CANDIDATE_CLASSES: dict[str, type[Candidate]] = {
    c.name: c for c in (ALSCandidate, BPRCandidate, ItemKNNCandidate, PopularityCandidate)
}

"""Recommender training: split, search candidates on validation, test once.

:func:`fit_recommender` searches the candidate families with optuna on a
validation split carved from the interactions it is given, then refits the
best on all of them. :func:`train_recommender` first holds out a test part
(random per user, or the latest events), calls :func:`fit_recommender` on
the rest and scores the test part once, after the choice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from leptonic.errors import DataError, InvalidInput
from leptonic.evaluation.ranking import metric_curves, random_split, ranking_metrics, time_split
from leptonic.tasks._budget import share_trials
from leptonic.tasks.recsys._data import Interactions, attribute_table
from leptonic.tasks.recsys._models import CANDIDATE_CLASSES, Candidate, ModelState, blend_als
from leptonic.tasks.recsys.predictor import RecommenderPredictor
from leptonic.tasks.recsys.spec import RecommenderSpec

__all__ = [
    "FitResult",
    "RecommenderTrainingResult",
    "evaluate_recommender",
    "fit_recommender",
    "split_interactions",
    "train_recommender",
]

LogFn = Callable[[str], None]
ProgressFn = Callable[[int, int], None]
logger = logging.getLogger("leptonic.train")

#: Cut-offs of the metric curves in reports.
CURVE_KS = tuple(range(1, 21))


@dataclass
class FitResult:
    """The fitted predictor and how it was chosen."""

    predictor: RecommenderPredictor
    chosen: str
    params: dict[str, Any]
    leaderboard: list[dict[str, Any]]
    valid_metrics: dict[str, float]
    trials: list[dict[str, Any]]
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class RecommenderTrainingResult:
    """Everything a run records and a report shows."""

    predictor: RecommenderPredictor
    chosen: str
    params: dict[str, Any]
    leaderboard: list[dict[str, Any]]
    valid_metrics: dict[str, float]
    test_metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    curves: dict[str, dict[str, list[float]]]
    recommended_popularity: np.ndarray
    catalogue_popularity: np.ndarray
    split: dict[str, Any]
    trials: list[dict[str, Any]]
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def split_interactions(
    data: Interactions, spec: RecommenderSpec, fraction: float, seed: int
) -> np.ndarray:
    """Boolean held-out mask over ``data``'s rows, by ``spec.split``.

    ``random``: a per-user share of each user's (user, item) pairs (all
    events of a pair fall on the same side); ``time``: the latest events.
    """
    if spec.split == "time":
        if data.timestamps is None:
            raise InvalidInput("a time split needs timestamps", field="split")
        return time_split(data.timestamps, test_fraction=fraction)
    key = data.users * data.n_items + data.items
    pairs, inverse = np.unique(key, return_inverse=True)
    held = random_split(pairs // data.n_items, test_fraction=fraction, seed=seed)
    return np.asarray(held[inverse.ravel()])


def _relevant(train: Interactions, held: Interactions) -> tuple[np.ndarray, Any]:
    """Users to score and their held-out items not already seen in ``train``."""
    import scipy.sparse as sp

    seen = train.presence()
    truth = held.presence()
    truth = truth - truth.multiply(seen)
    truth = sp.csr_matrix(truth)
    truth.eliminate_zeros()
    has_train = np.diff(seen.indptr) > 0
    users = np.flatnonzero((np.diff(truth.indptr) > 0) & has_train)
    return users, truth[users]


def evaluate_recommender(
    predictor: RecommenderPredictor,
    train: Interactions,
    held: Interactions,
    k: int,
    *,
    curves: bool = False,
) -> tuple[dict[str, float], dict[str, list[float]] | None, np.ndarray]:
    """Metrics of ``predictor`` (fitted on ``train``) on the ``held`` events.

    Scored users are those with training events and at least one held-out
    item they had not seen; seen items are excluded from the rankings.
    Returns the metrics at ``k``, optionally the curves at k = 1..20, and the
    recommended item codes.
    """
    users, truth = _relevant(train, held)
    if users.size == 0:
        raise InvalidInput(
            "no user has both training and held-out interactions; use more data or a "
            "larger test fraction",
            field="interactions",
        )
    depth = max(k, CURVE_KS[-1]) if curves else k
    depth = min(depth, predictor.n_items)
    recs = predictor.recommend_codes(users, depth)
    popularity = train.presence().sum(axis=0).A1
    metrics = ranking_metrics(
        recs, truth, min(k, depth), n_items=predictor.n_items, item_popularity=popularity
    )
    curve = None
    if curves:
        ks = [c for c in CURVE_KS if c <= depth]
        curve = metric_curves(recs, truth, ks)
    return metrics, curve, recs


def _predictor(
    state: ModelState,
    data: Interactions,
    spec: RecommenderSpec,
    item_attributes: dict[str, list[Any]] | None = None,
    user_attributes: dict[str, list[Any]] | None = None,
) -> RecommenderPredictor:
    raw = data.matrix()
    return RecommenderPredictor(
        state,
        user_ids=data.user_ids,
        item_ids=data.item_ids,
        raw=raw,
        last_times=data.last_times(raw),
        item_attributes=item_attributes,
        user_attributes=user_attributes,
        max_k=spec.max_k,
        seed=spec.seed,
    )


class _Search:
    """optuna studies over the candidates, scored by the mean NDCG@k on repeated validation
    splits carved from the data given (the test part never enters)."""

    def __init__(self, data: Interactions, spec: RecommenderSpec, log: LogFn) -> None:
        self.spec = spec
        self.log = log
        self.data = data
        repeats = 1 if spec.split == "time" else spec.valid_repeats
        self.splits = [self._split(spec.seed + 1 + r) for r in range(repeats)]
        self.trials: list[dict[str, Any]] = []
        self.results: list[tuple[float, Candidate, dict[str, Any], dict[str, float]]] = []
        self.fresh_splits: list[tuple[Interactions, Interactions, Any]] = []
        self.fresh_states: dict[int, list[ModelState]] = {}
        self.blend_score: float | None = None

    def _split(self, seed: int) -> tuple[Interactions, Interactions, Any]:
        held = split_interactions(self.data, self.spec, self.spec.valid_fraction, seed)
        fit_part = self.data.subset(~held)
        return fit_part, self.data.subset(held), fit_part.matrix()

    def evaluate(
        self,
        cand: Candidate,
        params: dict[str, Any],
        splits: list[tuple[Interactions, Interactions, Any]] | None = None,
    ) -> tuple[float, dict[str, float]]:
        """Mean NDCG@k over the validation splits, and the metrics of the first."""
        scores, first = [], None
        for fit_part, valid_part, raw in splits or self.splits:
            state = cand.fit(raw, params, self.spec)
            pred = _predictor(state, fit_part, self.spec)
            metrics, _, _ = evaluate_recommender(pred, fit_part, valid_part, self.spec.k)
            scores.append(metrics[f"ndcg@{self.spec.k}"])
            first = first or metrics
        assert first is not None  # at least one split by construction
        return float(np.mean(scores)), first

    def rescore(
        self, top: int = 5, fresh: int = 3
    ) -> list[tuple[float, Candidate, dict[str, Any], dict[str, float]]]:
        """Score the ``top`` trials again on ``fresh`` new validation splits; rank by the
        mean over all splits.

        Validation scores of neighbouring configurations differ by less than
        the noise of one split, and the best of many noisy scores is biased
        upwards (the winner's curse); scoring the leaders on more splits,
        the same splits for each, steadies the choice. A time split has only
        one "latest" part, so it is not rescored.
        """
        ranked = sorted(self.results, key=lambda r: -r[0])
        self.fresh_splits = []
        self.fresh_states = {}
        if self.spec.split == "time" or len(ranked) < 2 or fresh < 1:
            return ranked
        n = len(self.splits)
        self.fresh_splits = [self._split(self.spec.seed + 1 + n + r) for r in range(fresh)]
        out = []
        for score, cand, params, metrics in ranked[:top]:
            states = [cand.fit(raw, params, self.spec) for _, _, raw in self.fresh_splits]
            pairs = zip(states, self.fresh_splits, strict=True)
            again = float(np.mean([self._ndcg(s, split) for s, split in pairs]))
            self.fresh_states[id(params)] = states
            self.log(f"{cand.name}: search score {score:.4f}, on {fresh} fresh splits {again:.4f}")
            out.append(((n * score + fresh * again) / (n + fresh), cand, params, metrics))
        return sorted(out, key=lambda r: -r[0]) + ranked[top:]

    def _ndcg(self, state: ModelState, split: tuple[Interactions, Interactions, Any]) -> float:
        fit_part, valid_part, _ = split
        pred = _predictor(state, fit_part, self.spec)
        metrics, _, _ = evaluate_recommender(pred, fit_part, valid_part, self.spec.k)
        return float(metrics[f"ndcg@{self.spec.k}"])

    def choose_blend(
        self, ranked: list[tuple[float, Candidate, dict[str, Any], dict[str, float]]]
    ) -> list[dict[str, Any]]:
        """The ALS configurations to blend: the leaders, as many as help on the fresh splits.

        When the best configuration is an ALS one, blends of the best 2, 3...
        ``spec.blend`` ALS configurations (equal weights on standardised
        scores) are scored on the rescoring splits, whose fits are reused;
        the blend is kept only where it beats fewer members there.
        """
        best = [ranked[0][2]]
        if self.spec.blend < 2 or ranked[0][1].name != "als" or not self.fresh_splits:
            return best
        members = [r[2] for r in ranked if r[1].name == "als" and id(r[2]) in self.fresh_states]
        members = members[: self.spec.blend]
        if len(members) < 2:
            return best
        scores = []
        for n in range(1, len(members) + 1):
            per_split = []
            for s, split in enumerate(self.fresh_splits):
                parts = [self.fresh_states[id(p)][s] for p in members[:n]]
                per_split.append(self._ndcg(blend_als(parts, seed=self.spec.seed), split))
            scores.append(float(np.mean(per_split)))
            self.log(f"blend of the best {n} ALS configuration(s): {scores[-1]:.4f}")
        n_best = int(np.argmax(scores)) + 1
        self.blend_score = scores[n_best - 1]
        return members[:n_best]

    def run(
        self, cands: list[Candidate], progress: ProgressFn | None
    ) -> list[tuple[float, Candidate, dict[str, Any], dict[str, float]]]:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        spec = self.spec
        total_w = sum(c.weight for c in cands) or 1.0
        shares = share_trials(spec.trials, [c.weight for c in cands])
        budgets = [
            min(share, c.max_trials or share) for c, share in zip(cands, shares, strict=True)
        ]
        done, total = 0, sum(budgets)
        bests: dict[str, tuple[float, Candidate, dict[str, Any], dict[str, float]]] = {}
        for cand, budget in zip(cands, budgets, strict=True):
            deadline = None
            if spec.timeout_s is not None:
                seconds = spec.timeout_s * max(cand.weight, 0.05) / total_w
                deadline = time.perf_counter() + seconds
            sampler = optuna.samplers.TPESampler(seed=spec.seed, n_startup_trials=5)
            study = optuna.create_study(direction="maximize", sampler=sampler)
            study.enqueue_trial(cand.default_params(spec))
            for i in range(budget):
                if i > 0 and deadline is not None and time.perf_counter() > deadline:
                    self.log(f"{cand.name}: time budget reached after {i} trial(s)")
                    break
                trial = study.ask()
                params = cand.suggest(trial, spec)
                t0 = time.perf_counter()
                try:
                    score, metrics = self.evaluate(cand, params)
                except (ValueError, FloatingPointError, np.linalg.LinAlgError) as exc:
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                    self.log(f"{cand.name} trial {i}: failed ({exc}); skipped")
                    continue
                seconds = time.perf_counter() - t0
                study.tell(trial, score)
                self.trials.append(
                    {
                        "candidate": cand.name,
                        "trial": i,
                        "params": params,
                        "score": score,
                        "seconds": round(seconds, 3),
                    }
                )
                self.log(f"{cand.name} trial {i}: ndcg@{spec.k} {score:.4f} in {seconds:.2f}s")
                self.results.append((score, cand, params, metrics))
                if cand.name not in bests or score > bests[cand.name][0]:
                    bests[cand.name] = (score, cand, params, metrics)
                done += 1
                if progress is not None:
                    progress(done, total)
        if not bests:
            raise InvalidInput(
                "every training trial failed; see the run log for the errors", field="candidates"
            )
        if progress is not None:  # trials cut by the time budget, or failed, end it too
            progress(total, total)
        return sorted(bests.values(), key=lambda b: -b[0])


def _leaderboard(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for t in trials:
        row = rows.setdefault(
            t["candidate"],
            {"candidate": t["candidate"], "trials": 0, "best_score": -np.inf, "seconds": 0.0},
        )
        row["trials"] += 1
        row["seconds"] = round(row["seconds"] + t["seconds"], 3)
        if t["score"] > row["best_score"]:
            row["best_score"] = t["score"]
            row["best_params"] = t["params"]
    return sorted(rows.values(), key=lambda r: -r["best_score"])


def _attributes(
    table: Any, key: str, ids: Any, what: str, log: LogFn
) -> dict[str, list[Any]] | None:
    if table is None:
        return None
    columns, unknown = attribute_table(table, key, ids, what)
    if unknown:
        log(f"{len(unknown)} row(s) of the {what} table name ids without interactions; ignored")
    return columns


def _fit_members(
    cand: Candidate, members: list[dict[str, Any]], data: Interactions, spec: RecommenderSpec
) -> ModelState:
    """Fit one configuration, or each member of a blend, on ``data``."""
    raw = data.matrix()
    states = [cand.fit(raw, params, spec) for params in members]
    return states[0] if len(states) == 1 else blend_als(states, seed=spec.seed)


def fit_recommender(
    data: Interactions,
    spec: RecommenderSpec,
    *,
    item_attributes: Any = None,
    user_attributes: Any = None,
    item_key: str | None = None,
    user_key: str | None = None,
    log: LogFn | None = None,
    progress: ProgressFn | None = None,
) -> FitResult:
    """Search the candidates on a validation split of ``data``; refit the best on all of it.

    Parameters
    ----------
    data
        The interactions to learn from (a training part, or everything).
    spec
        The job; ``spec.valid_fraction`` of ``data`` is held out for the search.
    item_attributes, user_attributes
        Optional attribute tables (keyed by ``item_key`` / ``user_key``,
        default the spec's item / user column) for filters and cold start.
    """
    log = log or logger.info
    if spec.k > data.n_items:
        raise DataError(
            f"the catalogue has {data.n_items} item(s), fewer than k = {spec.k}; set k to "
            f"at most {data.n_items}, or add items",
            field="k",
        )
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    search = _Search(data, spec, log)
    cands = [CANDIDATE_CLASSES[name]() for name in spec.candidates]
    search.run(cands, progress)
    ranked = search.rescore()
    chosen = search.choose_blend(ranked)
    timings["search_s"] = time.perf_counter() - t0
    score, cand, params, valid_metrics = ranked[0]
    name = cand.name if len(chosen) == 1 else f"{cand.name} (blend of {len(chosen)})"
    if len(chosen) > 1 and search.blend_score is not None:
        score = search.blend_score
    log(f"chosen: {name} (validation ndcg@{spec.k} {score:.4f}: {chosen}); refitting")
    items = _attributes(item_attributes, item_key or spec.item, data.item_ids, "item", log)
    users = _attributes(user_attributes, user_key or spec.user, data.user_ids, "user", log)
    t1 = time.perf_counter()
    state = _fit_members(cand, chosen, data, spec)
    predictor = _predictor(state, data, spec, items, users)
    timings["final_fit_s"] = time.perf_counter() - t1
    return FitResult(
        predictor=predictor,
        chosen=name,
        params=params if len(chosen) == 1 else {"blend": chosen},
        leaderboard=_leaderboard(search.trials),
        valid_metrics=valid_metrics,
        trials=search.trials,
        timings=timings,
    )


def train_recommender(
    interactions: Any,
    spec: RecommenderSpec,
    *,
    item_attributes: Any = None,
    user_attributes: Any = None,
    item_key: str | None = None,
    user_key: str | None = None,
    log: LogFn | None = None,
    progress: ProgressFn | None = None,
) -> RecommenderTrainingResult:
    """Hold out a test part, fit on the rest, test once; optionally refit on everything.

    Parameters
    ----------
    interactions
        The interactions table (pyarrow Table or pandas DataFrame) or an
        :class:`~leptonic.tasks.recsys._data.Interactions`.
    spec
        The job.
    item_attributes, user_attributes
        Optional attribute tables, keyed by ``item_key`` / ``user_key``
        (default: the spec's item / user column names).
    """
    log = log or logger.info
    started = time.perf_counter()
    data = (
        interactions
        if isinstance(interactions, Interactions)
        else Interactions.from_table(
            interactions,
            user=spec.user,
            item=spec.item,
            timestamp=spec.timestamp,
            weight=spec.weight,
            min_weight=spec.min_weight,
        )
    )
    held = split_interactions(data, spec, spec.test_fraction, spec.seed)
    train, test = data.subset(~held), data.subset(held)
    log(
        f"{len(data):,} interactions, {data.n_users:,} users, {data.n_items:,} items; "
        f"{spec.split} split: {len(train):,} train, {len(test):,} test"
    )
    fit = fit_recommender(
        train,
        spec,
        item_attributes=item_attributes,
        user_attributes=user_attributes,
        item_key=item_key,
        user_key=user_key,
        log=log,
        progress=progress,
    )
    test_metrics, curve, recs = evaluate_recommender(
        fit.predictor, train, test, spec.k, curves=True
    )
    popular = CANDIDATE_CLASSES["popularity"]()
    pop_state = popular.fit(train.matrix(), popular.default_params(spec), spec)
    baseline = _predictor(pop_state, train, spec)
    base_metrics, base_curve, _ = evaluate_recommender(baseline, train, test, spec.k, curves=True)
    catalogue_pop = train.presence().sum(axis=0).A1
    shown = recs[:, : spec.k]
    notes = [
        f"Selection: NDCG@{spec.k} on a {spec.split} validation split carved from the training "
        "part; the test part was scored once, after the choice.",
        "Scored users have training interactions and at least one held-out item they had "
        "not seen; items seen in training are excluded from the rankings.",
    ]
    if spec.split == "time":
        cold = len(set(np.unique(test.users)) - set(np.unique(train.users)))
        notes.append(f"{cold} test user(s) have no training events (cold start); not scored.")
    predictor = fit.predictor
    timings = dict(fit.timings)
    if spec.refit_all:
        t2 = time.perf_counter()
        members = fit.params.get("blend", [fit.params])
        state = _fit_members(CANDIDATE_CLASSES[fit.chosen.split()[0]](), members, data, spec)
        items = _attributes(item_attributes, item_key or spec.item, data.item_ids, "item", log)
        users = _attributes(user_attributes, user_key or spec.user, data.user_ids, "user", log)
        predictor = _predictor(state, data, spec, items, users)
        timings["refit_all_s"] = time.perf_counter() - t2
        notes.append("The kept model was refitted on all interactions after the test.")
    timings["total_s"] = time.perf_counter() - started
    return RecommenderTrainingResult(
        predictor=predictor,
        chosen=fit.chosen,
        params=fit.params,
        leaderboard=fit.leaderboard,
        valid_metrics=fit.valid_metrics,
        test_metrics=test_metrics,
        baseline_metrics=base_metrics,
        curves={fit.chosen: curve or {}, "popularity (baseline)": base_curve or {}},
        recommended_popularity=catalogue_pop[shown[shown >= 0]],
        catalogue_popularity=catalogue_pop,
        split={
            "kind": spec.split,
            "test_fraction": spec.test_fraction,
            "valid_fraction": spec.valid_fraction,
            "train_rows": len(train),
            "test_rows": len(test),
            "seed": spec.seed,
        },
        trials=fit.trials,
        timings=timings,
        notes=notes,
    )

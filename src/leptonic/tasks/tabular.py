"""Tabular training: split, search candidates, choose on validation, test once.

:func:`train_tabular` takes a :class:`~leptonic.tasks._data.TrainingData`
and a :class:`~leptonic.tasks.spec.TrainSpec` and returns a
:class:`TrainingResult` holding the fitted :class:`TabularPredictor` and
everything a report needs. Every preprocessing step is fitted on the training
part only. The test part is scored once, after the choice.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from leptonic.compute.base import Executor
from leptonic.errors import InvalidInput
from leptonic.evaluation.metrics import (
    binary_metrics,
    choose_threshold,
    multiclass_metrics,
    regression_metrics,
    roc_auc,
)
from leptonic.evaluation.scorecard import Scorecard
from leptonic.features._common import category_codes, check_reserved_categories
from leptonic.features.behaviour import SequenceAggregates
from leptonic.features.preprocessing import TabularPreprocessor
from leptonic.features.woe import WoEBinner
from leptonic.tasks._budget import share_trials
from leptonic.tasks._data import TrainingData
from leptonic.tasks._split import Split, make_split
from leptonic.tasks.candidates import CANDIDATE_CLASSES, Candidate
from leptonic.tasks.predictor import EnsemblePredictor, Predictor, TabularPredictor
from leptonic.tasks.spec import TrainSpec

__all__ = ["Split", "TrainingResult", "make_split", "train_tabular"]

LogFn = Callable[[str], None]
ProgressFn = Callable[[int, int], None]


@dataclass
class TrainingResult:
    predictor: Predictor
    chosen: str
    params: dict[str, Any]
    leaderboard: list[dict[str, Any]]
    valid_metrics: dict[str, Any]
    test_metrics: dict[str, Any]
    y_test: np.ndarray
    test_scores: np.ndarray
    threshold: float | None
    split: dict[str, Any]
    features: dict[str, Any]
    #: positions in the training frame of the rows held out for the test
    test_rows: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    iv_table: list[dict[str, Any]] = field(default_factory=list)
    scorecard: Scorecard | None = None
    importance: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def _early_stopping(
    cand: Candidate, X: np.ndarray, y: np.ndarray, spec: TrainSpec, fold: int
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """The rows to fit on and the early-stopping set, both from the training rows ``X``.

    A candidate that early-stops (LightGBM) does so on a seeded share of the
    training rows, stratified by class, so the rows it is scored on play no
    part in its fit; the others fit on every row, without an early-stopping set.
    """
    share = cand.early_stopping_share
    if not share:
        return X, y, None
    rng = np.random.default_rng((spec.seed, fold))
    positions = np.arange(len(y))
    groups = [positions] if spec.task == "regression" else [positions[y == c] for c in np.unique(y)]
    stop = np.sort(np.concatenate([rng.permutation(g)[: round(share * len(g))] for g in groups]))
    if not stop.size:
        return X, y, None
    keep = np.setdiff1d(positions, stop, assume_unique=True)
    return X[keep], y[keep], (X[stop], y[stop])


def _score(task: str, y: np.ndarray, pred: np.ndarray) -> float:
    """Selection score, higher is better."""
    if task == "binary":
        return roc_auc(y, pred)
    if task == "multiclass":
        p = np.clip(pred[np.arange(len(y)), y], 1e-15, 1.0)
        return float(np.mean(np.log(p)))
    return -float(np.sqrt(np.mean((y - pred) ** 2)))


def _metrics(
    task: str, y: np.ndarray, pred: np.ndarray, threshold: float | None, classes: list[Any] | None
) -> dict[str, Any]:
    if task == "binary":
        return binary_metrics(y, pred, threshold=threshold)
    if task == "multiclass":
        return multiclass_metrics(y, pred, [str(c) for c in (classes or [])])
    return regression_metrics(y, pred)


class _Search:
    """Runs optuna studies over the candidates on fixed folds."""

    def __init__(
        self, frame: pd.DataFrame, data: TrainingData, spec: TrainSpec, split: Split, log: LogFn
    ) -> None:
        self.frame = frame
        self.data = data
        self.spec = spec
        self.split = split
        self.log = log
        self.n_classes = len(data.classes) if data.classes else 0
        self._cache: dict[tuple[Any, ...], tuple[Any, np.ndarray, np.ndarray]] = {}
        self.trials: list[dict[str, Any]] = []

    def _encoded(
        self, cand: Candidate, params: dict[str, Any], fold: int
    ) -> tuple[Any, np.ndarray, np.ndarray]:
        pre = cand.preprocessor(params, self.data.numeric, self.data.categorical, self.spec)
        key = (fold, type(pre).__name__, json.dumps(_pre_key(pre), sort_keys=True, default=str))
        if key not in self._cache:
            tr, va = self.split.folds[fold]
            pre.fit(self.frame.iloc[tr], self.data.y[tr])
            self._cache[key] = (
                pre,
                pre.transform(self.frame.iloc[tr]),
                pre.transform(self.frame.iloc[va]),
            )
        return self._cache[key]

    def evaluate(
        self, cand: Candidate, params: dict[str, Any]
    ) -> tuple[float, np.ndarray, list[dict[str, Any]]]:
        """Mean validation score, out-of-fold predictions and fit facts."""
        y = self.data.y
        oof: np.ndarray | None = None
        scores: list[float] = []
        facts: list[dict[str, Any]] = []
        for k, (tr, va) in enumerate(self.split.folds):
            pre, Xtr, Xva = self._encoded(cand, params, k)
            X_fit, y_fit, eval_set = _early_stopping(cand, Xtr, y[tr], self.spec, k)
            est, fact = cand.fit(
                params,
                X_fit,
                y_fit,
                self.spec,
                self.n_classes,
                eval_set=eval_set,
                categorical_indices=list(getattr(pre, "categorical_indices_", [])),
            )
            pred = cand.predict(est, Xva, self.spec)
            if oof is None:
                shape = (len(y), *pred.shape[1:])
                oof = np.full(shape, np.nan)
            oof[va] = pred
            scores.append(_score(self.spec.task, y[va], pred))
            facts.append(fact)
        assert oof is not None  # at least one fold exists by construction
        return float(np.mean(scores)), oof, facts

    def study(self, job: _StudyJob, tick: Callable[[], None] | None = None) -> _StudyOutcome:
        """One candidate's optuna study: its trials and its best trial (None when every
        trial failed). ``tick`` is called after each trial."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        cand, budget, share = job
        spec = self.spec
        deadline = None if share is None else time.perf_counter() + share
        sampler = optuna.samplers.TPESampler(seed=spec.seed, n_startup_trials=4)
        study = optuna.create_study(direction="maximize", sampler=sampler)
        study.enqueue_trial(cand.default_params(spec))
        trials: list[dict[str, Any]] = []
        best: _Best | None = None
        for i in range(budget):
            if i > 0 and deadline is not None and time.perf_counter() > deadline:
                self.log(
                    f"{cand.name}: time budget reached after {i} of {budget} trial(s); "
                    "the number of trials depends on the machine's speed and load, so "
                    "this seed may not repeat the run (timeout_s=None runs every trial)"
                )
                break
            trial = study.ask()
            params = cand.suggest(trial, spec)
            t0 = time.perf_counter()
            stage = "preprocessing"
            try:
                for k in range(len(self.split.folds)):
                    self._encoded(cand, params, k)  # kept for evaluate
                stage = "fit"
                score, oof, facts = self.evaluate(cand, params)
            except (ValueError, FloatingPointError) as exc:
                if stage == "preprocessing" and isinstance(exc, InvalidInput):
                    raise  # the data's fault, not these parameters': no trial would pass
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                self.log(f"{cand.name} trial {i}: failed ({exc}); skipped")
                continue
            seconds = time.perf_counter() - t0
            study.tell(trial, score)
            trials.append(
                {
                    "candidate": cand.name,
                    "trial": i,
                    "params": params,
                    "score": score,
                    "seconds": round(seconds, 3),
                }
            )
            self.log(f"{cand.name} trial {i}: score {score:.4f} in {seconds:.2f}s {params}")
            if best is None or score > best.score:
                best = _Best(score, cand, params, oof, facts)
            if tick is not None:
                tick()
        return _StudyOutcome(trials, best, [])

    def run(
        self,
        cands: list[Candidate],
        progress: ProgressFn | None,
        executor: Executor | None = None,
    ) -> list[_Best]:
        """Search each candidate; return the best trial of each, best first.

        With an ``executor`` that runs elsewhere the candidates' studies run side by
        side on it; their log lines and progress then come as each study ends (a
        cancel is seen within a second). Each study gets its share of
        ``timeout_s`` by its family's weight, or all of it when there is a worker
        for every study; with ``timeout_s=None`` the model is the same as here."""
        spec = self.spec
        total_w = sum(c.weight for c in cands)
        budgets = share_trials(spec.trials, [c.weight for c in cands])
        side_by_side = executor is not None and not executor.runs_here and len(cands) > 1
        at_once = side_by_side and executor is not None and executor.workers >= len(cands)
        jobs: list[_StudyJob] = [
            (
                c,
                b,
                None
                if spec.timeout_s is None
                else spec.timeout_s * (1.0 if at_once else c.weight / total_w),
            )
            for c, b in zip(cands, budgets, strict=True)
        ]
        done = 0
        total = sum(budgets)
        started = time.perf_counter()

        def tick(n: int = 1) -> None:
            nonlocal done
            done += n
            if progress is not None:
                progress(done, total)

        if executor is None or not side_by_side:
            outcomes = [self.study(job, tick) for job in jobs]
        else:
            self.log(
                f"searching {len(jobs)} candidate families side by side on {executor.uri} "
                f"({executor.workers} workers)"
            )

            def finished(_: int, outcome: _StudyOutcome) -> None:
                for line in outcome.lines:
                    self.log(line)
                tick(len(outcome.trials))

            def check() -> None:  # a cancel or a shutdown, seen while studies run
                if progress is not None:
                    progress(done, total)

            shared = _SearchInput(self.frame, self.data, self.spec, self.split)
            outcomes = executor.map(_remote_study, shared, jobs, on_result=finished, poll=check)
        bests: dict[str, _Best] = {}
        for outcome in outcomes:
            self.trials.extend(outcome.trials)
            best = outcome.best
            kept = None if best is None else bests.get(best.cand.name)
            if best is not None and (kept is None or best.score > kept.score):
                bests[best.cand.name] = best
        if not bests:
            raise InvalidInput(
                "every training trial failed; see the run log for the errors", field="candidates"
            )
        if progress is not None:
            progress(total, total)
        self.log(f"search finished in {time.perf_counter() - started:.1f}s")
        return sorted(bests.values(), key=lambda b: -b.score)


#: One candidate's study: the family, its trial budget and its share of the time limit.
_StudyJob = tuple[Candidate, int, float | None]


@dataclass
class _StudyOutcome:
    trials: list[dict[str, Any]]
    best: _Best | None
    lines: list[str]  # log lines of a study run elsewhere


@dataclass
class _SearchInput:
    """What a worker needs to run a study (sent to each worker once)."""

    frame: pd.DataFrame
    data: TrainingData
    spec: TrainSpec
    split: Split


def _remote_study(shared: _SearchInput, job: _StudyJob) -> _StudyOutcome:
    """A candidate's study in a worker process or on a cluster."""
    lines: list[str] = []
    search = _Search(shared.frame, shared.data, shared.spec, shared.split, lines.append)
    try:
        outcome = search.study(job)
    except Exception as exc:
        # the study's last log lines travel with its error
        exc.add_note("\n".join([f"{job[0].name} study log (last lines):", *lines[-10:]]))
        raise
    outcome.lines = lines
    return outcome


#: How much validation score a blend may give up against the best single model and still be
#: preferred: the best single model's score is the maximum over many trials and so biased up
#: (the winner's curse), while a blend of families generalises more steadily.
_TOLERANCE = {"binary": 0.005, "multiclass": 0.005, "regression": 0.0}


@dataclass
class _Best:
    """The best trial of one candidate family."""

    score: float
    cand: Candidate
    params: dict[str, Any]
    oof: np.ndarray
    facts: list[dict[str, Any]]


def select_ensemble(
    oofs: list[np.ndarray], y: np.ndarray, task: str, steps: int = 25, init: int = 0
) -> tuple[list[float], float]:
    """Greedy ensemble selection with replacement (Caruana et al., 2004).

    Starts from the ``init`` first members (sorted initialisation: pass the
    members best first), then repeatedly adds the member whose inclusion most
    improves the validation score of the averaged predictions. Returns the
    weights (summing to 1) and the score of the blend.
    """
    counts = np.zeros(len(oofs))
    total = np.zeros_like(oofs[0])
    for i in range(min(init, len(oofs))):
        counts[i] += 1
        total = total + oofs[i]
    best_score = _score(task, y, total / counts.sum()) if counts.sum() else -np.inf
    for _ in range(steps):
        scores = [_score(task, y, (total + o) / (counts.sum() + 1)) for o in oofs]
        i = int(np.argmax(scores))
        if scores[i] <= best_score and counts.sum() > 0:
            break
        best_score = scores[i]
        counts[i] += 1
        total = total + oofs[i]
    weights = counts / counts.sum()
    return [float(w) for w in weights], float(best_score)


def _choose_blend(
    bests: list[_Best], y: np.ndarray, rows: np.ndarray, task: str
) -> tuple[list[_Best], list[float], float, float] | None:
    """The greedy blend of ``bests`` (best first) when it is worth keeping: its members,
    weights, score and the best single model's score; None to keep that model alone.

    Both scores are computed the same way, on the pooled out-of-fold predictions of
    ``rows`` (a mean of per-fold scores differs from a pooled score even for one
    model, which would bias the choice).
    """
    ws, blend_score = select_ensemble([b.oof[rows] for b in bests], y[rows], task, init=2)
    single_score = _score(task, y[rows], bests[0].oof[rows])
    if blend_score < single_score - _TOLERANCE[task] or sum(w > 0 for w in ws) < 2:
        return None
    members = [b for b, w in zip(bests, ws, strict=True) if w > 0]
    return members, [w for w in ws if w > 0], blend_score, single_score


def _rescore(
    bests: list[_Best],
    frame: pd.DataFrame,
    data: TrainingData,
    spec: TrainSpec,
    split: Split,
    log: LogFn,
) -> list[_Best]:
    """Score each family's best parameters again on freshly shuffled folds.

    The best trial of a search is the maximum of many noisy estimates, so
    its score is biased upwards, most for the family searched hardest (the
    winner's curse). On small data, where cross-validation is used, that
    bias is large enough to pick the wrong family; re-estimating every
    family on folds the search never saw puts them back on an equal footing
    before the choice and the ensemble weights.
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    seed = spec.seed + 101
    splitter = (
        KFold(spec.cv_folds, shuffle=True, random_state=seed)
        if spec.task == "regression"
        else StratifiedKFold(spec.cv_folds, shuffle=True, random_state=seed)
    )
    pool = split.pool
    folds = [
        (np.sort(pool[a]), np.sort(pool[b]))
        for a, b in splitter.split(pool, None if spec.task == "regression" else data.y[pool])
    ]
    fresh = _Search(frame, data, spec, Split("cv", pool, folds, split.test), log)
    rescored = []
    for b in bests:
        score, oof, facts = fresh.evaluate(b.cand, b.params)
        log(f"{b.cand.name}: search score {b.score:.4f}, on fresh folds {score:.4f}")
        rescored.append(_Best(score, b.cand, b.params, oof, facts))
    return sorted(rescored, key=lambda b: -b.score)


def _pre_key(pre: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(pre).items() if not k.endswith("_")}


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


def _importance(predictor: Predictor) -> list[dict[str, Any]]:
    if isinstance(predictor, EnsemblePredictor):
        order = np.argsort(-np.asarray(predictor.weights))
        for i in order:
            rows = _importance(predictor.members[int(i)])
            if rows:
                return rows
        return []
    names = list(predictor.preprocessor.feature_names_out_)
    est = predictor.estimator
    if predictor.flavor == "lightgbm":
        values = np.asarray(est.feature_importance(importance_type="gain"), dtype=float)
    elif predictor.flavor == "logistic":
        coef = np.atleast_2d(np.asarray(est.coef_, dtype=float))
        values = np.abs(coef).sum(axis=0)
    else:
        return []
    if len(values) != len(names) or values.sum() <= 0:
        return []
    share = values / values.sum()
    order = np.argsort(-share)[:25]
    return [{"feature": names[i], "importance": round(float(share[i]), 4)} for i in order]


def _scorecard(
    frame: pd.DataFrame, data: TrainingData, rows: np.ndarray, spec: TrainSpec, C: float
) -> tuple[Scorecard, list[dict[str, Any]]]:
    """A WoE logistic scorecard on ``rows``, with its IV table."""
    from sklearn.linear_model import LogisticRegression

    columns = [*data.numeric, *data.categorical]
    binner = WoEBinner().fit(frame.iloc[rows][columns], data.y[rows], categorical=data.categorical)
    X = binner.transform(frame.iloc[rows][columns])
    lr = LogisticRegression(C=C, max_iter=2000).fit(X, data.y[rows])
    coefs = dict(zip(columns, lr.coef_[0].tolist(), strict=True))
    card = Scorecard.from_logistic(
        coefs,
        float(lr.intercept_[0]),
        binner.bins_,
        pdo=spec.pdo,
        base_score=spec.base_score,
        base_odds=spec.base_odds,
    )
    return card, binner.iv_table()


def train_tabular(
    data: TrainingData,
    spec: TrainSpec,
    *,
    log: LogFn | None = None,
    progress: ProgressFn | None = None,
    executor: Executor | None = None,
) -> TrainingResult:
    """Search the spec's candidates and return the chosen, tested model.

    With an ``executor`` of several workers (``LEPTONIC_COMPUTE``), the candidate
    families are searched side by side on it; the result is the same."""
    log = log or logging.getLogger("leptonic.train").info
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    frame = data.frame
    behaviour: SequenceAggregates | None = None
    if spec.behaviour_aggregates:
        behaviour = SequenceAggregates().fit(data.numeric)
        if behaviour.families_:
            frame = behaviour.transform(frame)
            data = TrainingData(
                frame=frame,
                y=data.y,
                numeric=[*data.numeric, *behaviour.feature_names_out_],
                categorical=data.categorical,
                classes=data.classes,
                excluded=data.excluded,
                dropped_missing_target=data.dropped_missing_target,
            )
            log(f"behaviour aggregates for {', '.join(behaviour.families_)}")
        else:
            behaviour = None
    _check_data(data, spec)
    split = make_split(data.y, spec, data.classes)
    log(
        f"split {split.kind}: {len(split.pool)} rows for search "
        f"({len(split.folds)} fold(s)), {len(split.test)} held out for test"
    )
    cands = [CANDIDATE_CLASSES[name]() for name in spec.candidates]
    search = _Search(frame, data, spec, split, log)
    bests = search.run(cands, progress, executor)
    if split.kind == "cv" and len(bests) > 1:
        bests = _rescore(bests, frame, data, spec, split, log)
    timings["search_s"] = time.perf_counter() - t0

    y = data.y
    pool_valid = np.concatenate([va for _, va in split.folds])
    members = [bests[0]]
    weights = [1.0]
    oof = bests[0].oof
    if spec.ensemble and len(bests) > 1:
        blend = _choose_blend(bests, y, pool_valid, spec.task)
        if blend is not None:
            members, weights, blend_score, single_score = blend
            oof = np.sum([w * b.oof for b, w in zip(members, weights, strict=True)], axis=0)
            log(
                f"ensemble of {', '.join(f'{b.cand.name} ({w:.2f})' for b, w in zip(members, weights, strict=True))}"
                f" scores {blend_score:.4f} against {single_score:.4f} for {bests[0].cand.name} alone"
            )
    chosen_name = members[0].cand.name if len(members) == 1 else "ensemble"
    log(f"chose {chosen_name}")

    threshold: float | None = None
    if spec.task == "binary":
        method: Any = spec.threshold
        threshold = float(choose_threshold(y[pool_valid], oof[pool_valid], method=method))
    valid_metrics = _metrics(spec.task, y[pool_valid], oof[pool_valid], threshold, data.classes)

    inputs = [{"name": c, "type": "numeric"} for c in data.numeric if c in data.frame.columns]
    inputs += [{"name": c, "type": "categorical"} for c in data.categorical]
    if behaviour is not None:
        generated = set(behaviour.feature_names_out_)
        inputs = [i for i in inputs if i["name"] not in generated]
    n_classes = len(data.classes) if data.classes else 0

    def fit_member(best: _Best, rows: np.ndarray, early_stop: bool) -> TabularPredictor:
        cand = best.cand
        # without early stopping (a refit on more rows) the fit takes the number of
        # rounds learned by the search's early-stopped fits
        params = best.params if early_stop else cand.refit_params(best.params, best.facts)
        pre = cand.preprocessor(params, data.numeric, data.categorical, spec)
        pre.fit(frame.iloc[rows], y[rows])
        X_fit, y_fit, eval_set = pre.transform(frame.iloc[rows]), y[rows], None
        if early_stop:  # as the search's fit on the first fold
            X_fit, y_fit, eval_set = _early_stopping(cand, X_fit, y_fit, spec, 0)
        estimator, _ = cand.fit(
            params,
            X_fit,
            y_fit,
            spec,
            n_classes,
            eval_set=eval_set,
            categorical_indices=list(getattr(pre, "categorical_indices_", [])),
        )
        return TabularPredictor(
            task=spec.task,
            flavor=cand.name,
            estimator=estimator,
            preprocessor=pre,
            behaviour=behaviour,
            inputs=inputs,
            classes=data.classes,
            threshold=threshold if len(members) == 1 else None,
        )

    def assemble(fitted: list[TabularPredictor]) -> Predictor:
        if len(fitted) == 1:
            return fitted[0]
        return EnsemblePredictor(fitted, weights, threshold=threshold)

    t1 = time.perf_counter()
    fit_rows = split.pool if spec.refit else split.folds[0][0]
    predictor = assemble([fit_member(b, fit_rows, not spec.refit) for b in members])
    timings["refit_s"] = time.perf_counter() - t1

    test_scores = predictor.predict_encoded(frame.iloc[split.test])
    test_metrics = _metrics(spec.task, y[split.test], test_scores, threshold, data.classes)
    headline = {k: v for k, v in test_metrics.items() if not isinstance(v, dict | list)}
    log(f"test metrics: {headline}")

    if spec.refit_all:
        every = np.concatenate([split.pool, split.test])
        predictor = assemble([fit_member(b, every, False) for b in members])
        log(f"refit on all {len(every)} rows")

    def kept_params(b: _Best) -> dict[str, Any]:
        """The parameters of the kept model (refit: with the rounds it was fitted with)."""
        return b.cand.refit_params(b.params, b.facts) if spec.refit or spec.refit_all else b.params

    params: dict[str, Any]
    if len(members) == 1:
        params = kept_params(members[0])
    else:
        params = {
            "members": {b.cand.name: kept_params(b) for b in members},
            "weights": {b.cand.name: round(w, 4) for b, w in zip(members, weights, strict=True)},
        }

    scorecard = None
    iv_table: list[dict[str, Any]] = []
    if spec.task == "binary":
        t2 = time.perf_counter()
        C = _best_logistic_c(search.trials)
        scorecard, iv_table = _scorecard(frame, data, split.pool, spec, C)
        timings["scorecard_s"] = time.perf_counter() - t2
    timings["train_total_s"] = time.perf_counter() - t0
    return TrainingResult(
        predictor=predictor,
        chosen=chosen_name,
        params=params,
        leaderboard=_leaderboard(search.trials),
        valid_metrics=valid_metrics,
        test_metrics=test_metrics,
        y_test=y[split.test],
        test_scores=test_scores,
        test_rows=split.test,
        threshold=threshold,
        split={
            "kind": split.kind,
            "search_rows": len(split.pool),
            "folds": len(split.folds),
            "test_rows": len(split.test),
        },
        features={
            "numeric": data.numeric,
            "categorical": data.categorical,
            "excluded": data.excluded,
            "encoded": {
                m.flavor: len(m.preprocessor.feature_names_out_) for m in _members(predictor)
            },
        },
        iv_table=iv_table,
        scorecard=scorecard,
        importance=_importance(predictor),
        timings={k: round(v, 3) for k, v in timings.items()},
    )


def _check_data(data: TrainingData, spec: TrainSpec) -> None:
    """Refuse, before the search, what would make trials (or the scorecard) fail.

    Only LightGBM keeps categories as codes and ignores the projection.
    """
    dense = set(spec.candidates) - {"lightgbm"}
    if spec.projection == "lda" and spec.n_components is not None and dense:
        n_classes = len(np.unique(data.y))
        if spec.n_components > n_classes - 1:
            raise InvalidInput(
                f"invalid training spec: n_components is {spec.n_components}, but LDA keeps "
                f"at most n_classes - 1 = {n_classes - 1} axes for the {n_classes} classes "
                f"of {spec.target!r}; lower it or leave it unset",
                field="n_components",
            )
    if spec.projection == "pca" and spec.n_components is not None and dense:
        widths = _encoded_widths(data, spec, sorted(dense))
        narrowest = min(width for width, _ in widths.values())
        if spec.n_components > narrowest:
            each = "; ".join(f"{name}: {w} with {how}" for name, (w, how) in widths.items())
            raise InvalidInput(
                f"invalid training spec: n_components is {spec.n_components}, but PCA keeps "
                "at most one component per encoded feature, and the training data encodes "
                f"into {narrowest} feature(s) for a candidate that projects them ({each}); "
                f"lower n_components to {narrowest} or less, or leave it unset (PCA then "
                "keeps the components that explain 95% of the variance)",
                field="n_components",
            )
    if spec.task == "binary" or dense:
        # the WoE scorecard and one-hot encoding give these labels to missing and rare values
        for name in data.categorical:
            _, keys = category_codes(data.frame[name])
            check_reserved_categories(keys, name, what="training")


def _encoded_widths(
    data: TrainingData, spec: TrainSpec, names: list[str]
) -> dict[str, tuple[int, str]]:
    """Features each candidate's default preprocessing makes of the data, before projecting.

    Each entry is ``(width, how)``. WoE gives one feature per input column, the
    fewest; one-hot's width comes from fitting the preprocessing, without the
    projection, on the whole table (a fold may hold a few categories fewer).
    """
    widths: dict[str, tuple[int, str]] = {}
    fitted: dict[str, int] = {}
    for name in names:
        cand = CANDIDATE_CLASSES[name]()
        pre = cand.preprocessor(cand.default_params(spec), data.numeric, data.categorical, spec)
        if pre.encoding == "woe":
            widths[name] = (len(data.numeric) + len(data.categorical), "WoE encoding")
            continue
        params = {**pre.get_params(), "projection": None, "n_components": None, "clip": None}
        key = repr(sorted(params.items()))
        if key not in fitted:
            fitted[key] = TabularPreprocessor(**params).fit(data.frame).n_features_out_
        widths[name] = (fitted[key], f"{pre.encoding} encoding")
    return widths


def _members(predictor: Predictor) -> list[TabularPredictor]:
    return predictor.members if isinstance(predictor, EnsemblePredictor) else [predictor]


def _best_logistic_c(trials: list[dict[str, Any]]) -> float:
    logistic = [t for t in trials if t["candidate"] == "logistic"]
    if not logistic:
        return 0.3
    return float(max(logistic, key=lambda t: t["score"])["params"]["C"])

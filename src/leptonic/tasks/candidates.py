"""Model families searched by tabular training, each with its search space.

A candidate knows how to suggest hyperparameters for an optuna trial, which
preprocessing it needs, how to fit on encoded features and how to score. The
fitted estimator is a scikit-learn object (logistic / ridge regression, MLP)
or a LightGBM booster.
"""

from __future__ import annotations

import abc
import math
import warnings
from typing import Any

import numpy as np

from leptonic.features.preprocessing import TabularPreprocessor
from leptonic.tasks.spec import TrainSpec

__all__ = ["CANDIDATE_CLASSES", "Candidate", "LightGBMCandidate", "LinearCandidate", "MLPCandidate"]


def _dense_preprocessor(
    encoding: str, numeric: list[str], categorical: list[str], spec: TrainSpec
) -> TabularPreprocessor:
    """Imputed, scaled, encoded features (and the spec's projection) for linear and MLP models."""
    return TabularPreprocessor(
        numeric,
        categorical,
        encoding=encoding,  # type: ignore[arg-type]  # "onehot" or "woe"
        projection=spec.projection,  # type: ignore[arg-type]  # checked by TrainSpec
        n_components=spec.n_components,
    )


class Candidate(abc.ABC):
    """One model family."""

    name: str

    #: share of the trial budget relative to other candidates
    weight: float = 1.0

    #: share of the training rows that fits early-stop on, taken out of the rows they
    #: fit on (never the rows they are scored on); ``None``: no early stopping
    early_stopping_share: float | None = None

    @abc.abstractmethod
    def default_params(self, spec: TrainSpec) -> dict[str, Any]:
        """Sensible parameters, tried first."""

    @abc.abstractmethod
    def suggest(self, trial: Any, spec: TrainSpec) -> dict[str, Any]:
        """Parameters for an optuna trial."""

    @abc.abstractmethod
    def preprocessor(
        self, params: dict[str, Any], numeric: list[str], categorical: list[str], spec: TrainSpec
    ) -> TabularPreprocessor: ...

    @abc.abstractmethod
    def fit(
        self,
        params: dict[str, Any],
        X: np.ndarray,
        y: np.ndarray,
        spec: TrainSpec,
        n_classes: int,
        eval_set: tuple[np.ndarray, np.ndarray] | None = None,
        categorical_indices: list[int] | None = None,
    ) -> tuple[Any, dict[str, Any]]:
        """Fit; return the estimator and facts learned on the way (best iteration...)."""

    @abc.abstractmethod
    def predict(self, estimator: Any, X: np.ndarray, spec: TrainSpec) -> np.ndarray:
        """Binary: P(positive); multiclass: class probabilities; regression: values."""

    def refit_params(self, params: dict[str, Any], facts: list[dict[str, Any]]) -> dict[str, Any]:
        """Parameters for the final fit on more data, given facts from the search fits."""
        return params


class LinearCandidate(Candidate):
    """L2-regularised logistic regression (ridge regression for ``regression``).

    For binary targets the features may be WoE-binned (the scorecard) or
    one-hot encoded and standardised; the search chooses.
    """

    name = "logistic"
    weight = 0.6

    def default_params(self, spec: TrainSpec) -> dict[str, Any]:
        encoding = "woe" if spec.task == "binary" else "onehot"
        return {"C": 0.3, "encoding": encoding}

    def suggest(self, trial: Any, spec: TrainSpec) -> dict[str, Any]:
        encodings = ["woe", "onehot"] if spec.task == "binary" else ["onehot"]
        return {
            "C": trial.suggest_float("C", 1e-3, 10.0, log=True),
            "encoding": trial.suggest_categorical("encoding", encodings),
        }

    def preprocessor(
        self, params: dict[str, Any], numeric: list[str], categorical: list[str], spec: TrainSpec
    ) -> TabularPreprocessor:
        return _dense_preprocessor(params["encoding"], numeric, categorical, spec)

    def fit(
        self,
        params: dict[str, Any],
        X: np.ndarray,
        y: np.ndarray,
        spec: TrainSpec,
        n_classes: int,
        eval_set: tuple[np.ndarray, np.ndarray] | None = None,
        categorical_indices: list[int] | None = None,
    ) -> tuple[Any, dict[str, Any]]:
        if spec.task == "regression":
            from sklearn.linear_model import Ridge

            return Ridge(alpha=1.0 / params["C"]).fit(X, y), {}
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=params["C"], max_iter=2000, tol=1e-6)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)
        return model, {}

    def predict(self, estimator: Any, X: np.ndarray, spec: TrainSpec) -> np.ndarray:
        if spec.task == "regression":
            return np.asarray(estimator.predict(X), dtype=float)
        proba = np.asarray(estimator.predict_proba(X), dtype=float)
        return proba[:, 1] if spec.task == "binary" else proba


class LightGBMCandidate(Candidate):
    """Gradient-boosted trees (LightGBM) on raw numerics and integer-coded categoricals."""

    name = "lightgbm"
    weight = 1.6
    early_stopping_share = 0.15

    def default_params(self, spec: TrainSpec) -> dict[str, Any]:
        return {
            "learning_rate": 0.03,
            "num_leaves": 15,
            "min_child_samples": 50,
            "feature_fraction": 0.6,
            "bagging_fraction": 0.8,
            "lambda_l2": 5.0,
            "max_bin": 255,
        }

    def suggest(self, trial: Any, spec: TrainSpec) -> dict[str, Any]:
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.15, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 4, 64, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 5, 200, log=True),
            "feature_fraction": trial.suggest_float("feature_fraction", 0.3, 1.0),
            "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
            "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 30.0, log=True),
            "max_bin": trial.suggest_categorical("max_bin", [63, 255]),
        }

    def preprocessor(
        self, params: dict[str, Any], numeric: list[str], categorical: list[str], spec: TrainSpec
    ) -> TabularPreprocessor:
        return TabularPreprocessor(numeric, categorical, encoding="ordinal")

    @staticmethod
    def _objective(spec: TrainSpec, n_classes: int) -> dict[str, Any]:
        if spec.task == "binary":
            # early stopping watches a small share of the training rows, where the
            # log-loss moves smoothly and the AUC jumps about
            return {"objective": "binary", "metric": "binary_logloss"}
        if spec.task == "multiclass":
            return {"objective": "multiclass", "num_class": n_classes, "metric": "multi_logloss"}
        return {"objective": "regression", "metric": "l2"}

    def fit(
        self,
        params: dict[str, Any],
        X: np.ndarray,
        y: np.ndarray,
        spec: TrainSpec,
        n_classes: int,
        eval_set: tuple[np.ndarray, np.ndarray] | None = None,
        categorical_indices: list[int] | None = None,
    ) -> tuple[Any, dict[str, Any]]:
        import lightgbm as lgb

        p = {k: v for k, v in params.items() if k != "num_boost_round"}
        booster_params = {
            **self._objective(spec, n_classes),
            **p,
            "bagging_freq": 1,
            "seed": spec.seed,
            "deterministic": True,
            "force_col_wise": True,
            "num_threads": 1,  # more threads spin and stall when other work shares the cores
            "verbosity": -1,
        }
        cats = categorical_indices or []
        train = lgb.Dataset(
            X, label=y, categorical_feature=cats, params={"max_bin": p.get("max_bin", 255)}
        )
        if eval_set is not None:
            valid = lgb.Dataset(eval_set[0], label=eval_set[1], reference=train)
            booster = lgb.train(
                booster_params,
                train,
                num_boost_round=3000,
                valid_sets=[valid],
                callbacks=[lgb.early_stopping(100, verbose=False)],
            )
            best = max(int(booster.best_iteration), 1)
            return booster, {"best_iteration": best, "n_train": len(y)}
        rounds = int(params.get("num_boost_round", 300))
        booster = lgb.train(booster_params, train, num_boost_round=rounds)
        return booster, {"best_iteration": rounds, "n_train": len(y)}

    def refit_params(self, params: dict[str, Any], facts: list[dict[str, Any]]) -> dict[str, Any]:
        best = [f["best_iteration"] for f in facts if "best_iteration" in f]
        # more rows than the search fits, which also left out their early-stopping share
        rounds = int(np.mean(best) * 1.15 / (1 - self.early_stopping_share)) if best else 300
        return {**params, "num_boost_round": max(rounds, 1)}

    def predict(self, estimator: Any, X: np.ndarray, spec: TrainSpec) -> np.ndarray:
        best = getattr(estimator, "best_iteration", 0) or None
        return np.asarray(estimator.predict(X, num_iteration=best), dtype=float)


class MLPCandidate(Candidate):
    """A small multi-layer perceptron (scikit-learn) with early stopping.

    For ``regression`` it fits a standardised target (mean and standard deviation
    of the rows it fits on) and folds that scaling back into its output layer, so
    its predictions do not depend on the target's unit.
    """

    name = "mlp"
    weight = 0.4

    def default_params(self, spec: TrainSpec) -> dict[str, Any]:
        return {"hidden": 64, "layers": 1, "alpha": 1e-3, "learning_rate_init": 1e-3}

    def suggest(self, trial: Any, spec: TrainSpec) -> dict[str, Any]:
        return {
            "hidden": trial.suggest_categorical("hidden", [16, 32, 64, 128]),
            "layers": trial.suggest_int("layers", 1, 2),
            "alpha": trial.suggest_float("alpha", 1e-5, 1e-1, log=True),
            "learning_rate_init": trial.suggest_float("learning_rate_init", 3e-4, 1e-2, log=True),
        }

    def preprocessor(
        self, params: dict[str, Any], numeric: list[str], categorical: list[str], spec: TrainSpec
    ) -> TabularPreprocessor:
        return _dense_preprocessor("onehot", numeric, categorical, spec)

    def fit(
        self,
        params: dict[str, Any],
        X: np.ndarray,
        y: np.ndarray,
        spec: TrainSpec,
        n_classes: int,
        eval_set: tuple[np.ndarray, np.ndarray] | None = None,
        categorical_indices: list[int] | None = None,
    ) -> tuple[Any, dict[str, Any]]:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        cls = MLPRegressor if spec.task == "regression" else MLPClassifier
        early_stopping = len(y) >= 200
        # early stopping holds out a tenth of the rows (rounded up) before batching
        n_fit = len(y) - math.ceil(0.1 * len(y)) if early_stopping else len(y)
        model = cls(
            hidden_layer_sizes=(int(params["hidden"]),) * int(params["layers"]),
            alpha=params["alpha"],
            learning_rate_init=params["learning_rate_init"],
            early_stopping=early_stopping,
            validation_fraction=0.1,
            n_iter_no_change=8,
            max_iter=120,
            batch_size=max(1, min(256, n_fit)),
            random_state=spec.seed,
        )
        if spec.task != "regression":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(X, y)
            return model, {"n_iter": int(model.n_iter_)}
        # The network learns a standardised target (its initial weights, learning
        # rate and penalty assume values of about unit size), then the scaling is
        # folded into the linear output layer: the fitted estimator predicts in the
        # target's units on every path (batch, single record, reason codes, a saved
        # bundle) with nothing else to store or to undo.
        target = np.asarray(y, dtype=float)
        mean = float(target.mean())
        scale = float(target.std())
        if not np.isfinite(scale) or scale <= 0.0:
            scale = 1.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, (target - mean) / scale)
        model.coefs_[-1] = model.coefs_[-1] * scale
        model.intercepts_[-1] = model.intercepts_[-1] * scale + mean
        return model, {"n_iter": int(model.n_iter_)}

    def predict(self, estimator: Any, X: np.ndarray, spec: TrainSpec) -> np.ndarray:
        if spec.task == "regression":
            return np.asarray(estimator.predict(X), dtype=float)
        proba = np.asarray(estimator.predict_proba(X), dtype=float)
        return proba[:, 1] if spec.task == "binary" else proba


CANDIDATE_CLASSES: dict[str, type[Candidate]] = {
    "logistic": LinearCandidate,
    "lightgbm": LightGBMCandidate,
    "mlp": MLPCandidate,
}

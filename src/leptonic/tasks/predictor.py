"""A fitted tabular model with a batch path and a lean single-record path."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa

from leptonic.errors import InvalidInput
from leptonic.features.behaviour import SequenceAggregates
from leptonic.features.preprocessing import TabularPreprocessor

if TYPE_CHECKING:
    from leptonic.tasks._lgbm_fast import FastPredictor
    from leptonic.tasks.recsys.predictor import RecommenderPredictor
    from leptonic.tasks.textcls.predictor import TextPredictor

__all__ = ["FLAVORS", "AnyPredictor", "EnsemblePredictor", "Predictor", "TabularPredictor"]

FLAVORS = ("logistic", "lightgbm", "mlp")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class TabularPredictor:
    """Behaviour aggregates → preprocessing → estimator, loaded once, kept in memory.

    Parameters
    ----------
    task
        ``binary``, ``multiclass`` or ``regression``.
    flavor
        ``logistic``, ``lightgbm`` or ``mlp``.
    estimator
        Fitted scikit-learn estimator or LightGBM booster.
    preprocessor
        Fitted :class:`~leptonic.features.preprocessing.TabularPreprocessor`.
    behaviour
        Fitted :class:`~leptonic.features.behaviour.SequenceAggregates` or None.
    inputs
        The input signature: ``[{"name", "type": "numeric"|"categorical"}, ...]``.
    classes
        Class labels (binary: ``[negative, positive]``).
    threshold
        Binary decision threshold on P(positive).
    """

    def __init__(
        self,
        *,
        task: str,
        flavor: str,
        estimator: Any,
        preprocessor: TabularPreprocessor,
        behaviour: SequenceAggregates | None,
        inputs: Sequence[Mapping[str, str]],
        classes: Sequence[Any] | None = None,
        threshold: float | None = None,
    ) -> None:
        if flavor not in FLAVORS:
            raise InvalidInput(f"unknown model flavor {flavor!r}; known: {', '.join(FLAVORS)}")
        self.task = task
        self.flavor = flavor
        self.estimator = estimator
        self.preprocessor = preprocessor
        self.behaviour = behaviour
        self.inputs = [dict(i) for i in inputs]
        self.classes = list(classes) if classes is not None else None
        self.threshold = threshold
        self._compile()

    @property
    def input_names(self) -> list[str]:
        return [i["name"] for i in self.inputs]

    def _compile(self) -> None:
        """Extract plain arrays for the single-record path."""
        est = self.estimator
        self._linear: tuple[np.ndarray, np.ndarray] | None = None
        self._logit: tuple[np.ndarray, float] | None = None
        self._layers: list[tuple[np.ndarray, np.ndarray]] | None = None
        self._fast: FastPredictor | None = None
        if self.flavor == "lightgbm":
            import lightgbm as lgb

            if isinstance(est, lgb.Booster):
                from leptonic.tasks._lgbm_fast import FastPredictor

                self._fast = FastPredictor(est)
        elif self.flavor == "logistic":
            coef = np.asarray(est.coef_, dtype=float)
            intercept = np.atleast_1d(np.asarray(est.intercept_, dtype=float))
            self._linear = (coef.T if coef.ndim == 2 else coef[:, None], intercept)
            if self.task == "binary" and self._linear[0].shape[1] == 1:
                self._logit = (np.ascontiguousarray(self._linear[0][:, 0]), float(intercept[0]))
        elif self.flavor == "mlp":
            self._layers = [
                (np.asarray(w, dtype=float), np.asarray(b, dtype=float))
                for w, b in zip(est.coefs_, est.intercepts_, strict=True)
            ]
            self._out_activation = est.out_activation_

    # -- batch -------------------------------------------------------------
    def _frame(self, table: pa.Table | pd.DataFrame | Sequence[Mapping[str, Any]]) -> pd.DataFrame:
        if isinstance(table, pa.Table):
            frame = table.to_pandas()
        elif isinstance(table, pd.DataFrame):
            frame = table
        else:
            frame = pd.DataFrame(list(table))
        missing = [n for n in self.input_names if n not in frame.columns]
        if missing:
            raise InvalidInput(
                f"input is missing column(s) {', '.join(missing)}; the model needs: "
                f"{', '.join(self.input_names)}",
                field=missing[0],
            )
        # Categorical values are normalised by the preprocessor exactly as on the
        # record path (``category_key``): 2, 2.0 and "2" are one category, True is "1".
        frame = frame[self.input_names]
        if self.behaviour is not None:
            frame = self.behaviour.transform(frame)
        return frame

    def features(self, table: pa.Table | pd.DataFrame) -> np.ndarray:
        """The encoded feature matrix the estimator sees."""
        return self.preprocessor.transform(self._frame(table))

    def _raw_batch(self, X: np.ndarray) -> np.ndarray:
        est = self.estimator
        if self.flavor == "lightgbm":
            best = getattr(est, "best_iteration", 0) or None
            return np.asarray(est.predict(X, num_iteration=best), dtype=float)
        if self.task == "regression":
            return np.asarray(est.predict(X), dtype=float)
        proba = np.asarray(est.predict_proba(X), dtype=float)
        return proba[:, 1] if self.task == "binary" else proba

    def predict_batch(
        self, table: pa.Table | pd.DataFrame | Sequence[Mapping[str, Any]]
    ) -> np.ndarray:
        """Score many rows: P(positive) for binary, an (n, k) probability matrix for
        multiclass, predicted values for regression."""
        return self._raw_batch(self.features(table))

    def predict_encoded(self, frame: pd.DataFrame) -> np.ndarray:
        """Score a frame that already holds the behaviour-aggregate columns (training)."""
        return self._raw_batch(self.preprocessor.transform(frame))

    # -- single record (the serving hot path) -------------------------------
    def _vector(self, record: Mapping[str, Any]) -> np.ndarray:
        if self.behaviour is not None:
            record = self.behaviour.transform_record(record)
        return self.preprocessor.transform_record(record)

    def with_aggregates(self, record: Mapping[str, Any]) -> Mapping[str, Any]:
        """``record`` with the behaviour-aggregate fields the model uses added
        (``record`` itself when the model has none)."""
        if self.behaviour is None:
            return record
        return self.behaviour.transform_record(record)

    def encode_one(
        self, record: Mapping[str, Any], *, aggregated: bool = False, projected: bool = True
    ) -> np.ndarray:
        """The encoded feature vector of one record, as ``predict_one`` computes it.

        Parameters
        ----------
        record
            The raw record.
        aggregated
            ``record`` is already the output of :meth:`with_aggregates`.
        projected
            ``False`` returns the vector before the preprocessor's PCA / LDA
            projection (when it has one), one column per encoded input
            column, which reason codes map back to the inputs.
        """
        if self.behaviour is not None and not aggregated:
            record = self.behaviour.transform_record(record)
        pre = self.preprocessor
        if projected or pre.projection_ is None:
            return pre.transform_record(record)
        return pre._record_fn(record)

    def predict_one(self, record: Mapping[str, Any]) -> float | dict[str, float]:
        """Score one record (a plain dict): no DataFrame, no model loading.

        Returns P(positive) for binary, ``{label: probability}`` for
        multiclass and the predicted value for regression.
        """
        return self.predict_vector(self._vector(record))

    def predict_vector(self, x: np.ndarray) -> float | dict[str, float]:
        """:meth:`predict_one` from the encoded vector (:meth:`encode_one`'s output)."""
        logit = self._logit
        if logit is not None:  # binary logistic: one dot product, scalar math
            z = float(x @ logit[0]) + logit[1]
            try:
                return 1.0 / (1.0 + math.exp(-z))
            except OverflowError:
                return 0.0
        if self._linear is not None:
            w, b = self._linear
            z = x @ w + b
            if self.task == "regression":
                return float(z[0])
            if self.task == "binary":
                return float(_sigmoid(z)[0])
            return self._label_proba(_softmax(z))
        if self._layers is not None:
            h = x
            last = len(self._layers) - 1
            for i, (w, b) in enumerate(self._layers):
                h = h @ w + b
                if i < last:
                    h = np.maximum(h, 0.0)
            if self.task == "regression":
                return float(h[0])
            if self._out_activation == "logistic":
                return float(_sigmoid(h)[0])
            return self._label_proba(_softmax(h))
        fast = self._fast
        if fast is not None:
            # LightGBM's single-row C API: equal to the batch path, without its set-up cost.
            if self.task == "multiclass":
                return self._label_proba(fast.predict(x))
            return fast.predict_value(x)
        out = self._raw_batch(x[None, :])
        if self.task == "multiclass":
            return self._label_proba(out[0])
        return float(out[0])

    def _label_proba(self, proba: np.ndarray) -> dict[str, float]:
        labels = self.classes or list(range(len(proba)))
        return {str(label): float(p) for label, p in zip(labels, proba, strict=True)}

    def decide(self, probability: float) -> bool:
        """Binary decision at the chosen threshold."""
        if self.threshold is None:
            raise InvalidInput("this model has no decision threshold (not a binary model)")
        return probability >= self.threshold


class EnsemblePredictor:
    """A weighted average of tabular predictors trained on the same data.

    Parameters
    ----------
    members
        Fitted predictors of one task and one input signature.
    weights
        Non-negative weights, one per member; they are normalised to sum to 1.
    threshold
        Binary decision threshold on the blended P(positive).
    """

    flavor = "ensemble"

    def __init__(
        self,
        members: Sequence[TabularPredictor],
        weights: Sequence[float],
        threshold: float | None = None,
    ) -> None:
        if not members or len(members) != len(weights):
            raise InvalidInput("an ensemble needs one weight per member and at least one member")
        if len({m.task for m in members}) != 1:
            raise InvalidInput("ensemble members must share one task")
        total = float(sum(weights))
        if total <= 0 or any(w < 0 for w in weights):
            raise InvalidInput("ensemble weights must be non-negative with a positive sum")
        self.members = list(members)
        self.weights = [float(w) / total for w in weights]
        self.task = members[0].task
        self.inputs = members[0].inputs
        self.classes = members[0].classes
        self.threshold = threshold

    @property
    def input_names(self) -> list[str]:
        return [i["name"] for i in self.inputs]

    def predict_batch(
        self, table: pa.Table | pd.DataFrame | Sequence[Mapping[str, Any]]
    ) -> np.ndarray:
        """The weighted average of the members' :meth:`TabularPredictor.predict_batch`."""
        if isinstance(table, pa.Table):
            table = table.to_pandas()
        parts = [m.predict_batch(table) for m in self.members]
        return np.asarray(sum(w * p for w, p in zip(self.weights, parts, strict=True)))

    def predict_encoded(self, frame: pd.DataFrame) -> np.ndarray:
        parts = [m.predict_encoded(frame) for m in self.members]
        return np.asarray(sum(w * p for w, p in zip(self.weights, parts, strict=True)))

    def predict_one(self, record: Mapping[str, Any]) -> float | dict[str, float]:
        """The weighted average of the members' :meth:`TabularPredictor.predict_one`."""
        outs = [m.predict_one(record) for m in self.members]
        blended: dict[str, float] = {}
        value = 0.0
        for w, out in zip(self.weights, outs, strict=True):
            if isinstance(out, dict):
                for label, p in out.items():
                    blended[label] = blended.get(label, 0.0) + w * p
            else:
                value += w * out
        return blended if self.task == "multiclass" else value

    def decide(self, probability: float) -> bool:
        if self.threshold is None:
            raise InvalidInput("this model has no decision threshold (not a binary model)")
        return probability >= self.threshold


#: Anything that scores tables and single records (a tabular model).
Predictor = TabularPredictor | EnsemblePredictor

#: A fitted model of any task, as the registry stores and loads it: tabular,
#: recommendation (:class:`~leptonic.tasks.recsys.RecommenderPredictor`) or
#: text classification (:class:`~leptonic.tasks.textcls.TextPredictor`). The
#: latter two are named for type checkers only, so that importing this module
#: imports neither package.
AnyPredictor: TypeAlias = "Predictor | RecommenderPredictor | TextPredictor"

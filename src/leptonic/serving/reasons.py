"""Reason codes: which inputs pushed one applicant's score towards the bad outcome.

An :class:`Explainer` is built once per served model and then gives, for one
record, the contribution of every input column to the model's log-odds of the
bad outcome, and the top-k *reason codes*: the inputs that push hardest
towards "bad", each with its value and a short sentence.

How contributions are computed, by model flavor:

- **logistic** — ``coefficient × (x − baseline)`` per encoded column, summed
  back to the input column that produced it. With the baseline term
  :attr:`Explainer.base_value` (``intercept + coefficients · baseline``) the
  contributions add up to the record's logit exactly. A PCA / LDA projection
  is linear, so its coefficients are pulled back to the encoded columns first.
- **lightgbm** — TreeSHAP from the booster (``pred_contrib``, through the fast
  single-row C API), summed per input column; with the expected value (the
  base value) they add up to the raw margin. ``tree_method="path"`` gives
  path (Saabas) attributions instead: the same additivity and base value, at
  the cost of one prediction rather than a full TreeSHAP pass.
- **mlp** — baseline substitution: the logit drop when one input's encoded
  columns are replaced by the baseline, all inputs in one batched forward
  pass. These do not add up to the logit (interactions are not split).
- **ensemble** — the members' contributions weighted by the ensemble
  weights. The ensemble averages probabilities, so these explain the weighted
  average of the members' log-odds, which is close to, not equal to, the
  log-odds of the blended probability.

The **baseline** of an encoded column is its training mean where the fitted
preprocessor knows it (weight-of-evidence columns, standardised numbers,
anything before a projection) and otherwise a typical value: not missing,
not an outlier, the most frequent category. Pass ``background`` (training
rows) to use their exact means instead.

Behaviour aggregates (``utilization_m__mean`` ...) summarise several input
columns; they are reported under their own name with their computed value.
"""

from __future__ import annotations

import abc
import math
import sys
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa

from leptonic.errors import InvalidInput
from leptonic.features._common import MISSING, OTHER, category_key, to_float
from leptonic.features.preprocessing import TabularPreprocessor
from leptonic.tasks.predictor import EnsemblePredictor, Predictor, TabularPredictor

__all__ = ["TREE_METHODS", "Explainer", "format_number"]

#: How LightGBM contributions are computed: exact TreeSHAP, or path attributions.
TREE_METHODS = ("shap", "path")

#: The largest finite float: an infinite contribution is reported as this.
_LARGEST = sys.float_info.max

Background: TypeAlias = pa.Table | pd.DataFrame | Sequence[Mapping[str, Any]]
#: A reason's sentence for a value; ``shown`` (personal data: its hash) is printed
#: instead of the value, and bins are then named by position, not by their values.
Text: TypeAlias = Callable[[Any, str | None], str]


class Explainer:
    """Per-input contributions (log-odds) and reason codes for one record at a time.

    Parameters
    ----------
    predictor
        A binary :class:`~leptonic.tasks.predictor.TabularPredictor` or
        :class:`~leptonic.tasks.predictor.EnsemblePredictor`.
    background
        Optional training rows whose encoded means become the baseline
        (logistic and MLP); at most ``max_background`` evenly spaced rows are used.
    event
        What the positive class is, for the wording ("a high default rate").
    max_background
        Rows of ``background`` to use at most.
    tree_method
        LightGBM models: ``"shap"`` (TreeSHAP through the booster's
        ``pred_contrib``: Shapley values, but it walks every path of every
        tree, hundreds of µs per record) or ``"path"`` (path attributions:
        credits along the one path the record takes, as fast as a
        prediction; additive too, but they favour splits near the root).

    Attributes
    ----------
    features : list of str
        The explained columns: the model's inputs, then any behaviour
        aggregates it derives. :meth:`contributions` follows this order.
    base_value : float
        The log-odds the contributions start from (see the module docstring).

    Examples
    --------
    >>> explainer = Explainer(predictor)  # doctest: +SKIP
    >>> explainer.reasons({"utilisation": 0.93, "age": 22}, 2)  # doctest: +SKIP
    [{'feature': 'utilisation', 'value': 0.93, 'contribution': 0.61,
      'text': 'utilisation 0.93 is in bin (0.8, inf) with a high default rate (31.0% against 9.8% overall)'},
     ...]
    """

    def __init__(
        self,
        predictor: Predictor,
        *,
        background: Background | None = None,
        event: str = "default",
        max_background: int = 2000,
        tree_method: str = "shap",
    ) -> None:
        if tree_method not in TREE_METHODS:
            raise InvalidInput(
                f"tree_method must be one of {', '.join(TREE_METHODS)}, got {tree_method!r}",
                field="tree_method",
            )
        if predictor.task != "binary":
            raise InvalidInput(
                f"reason codes explain a binary model's probability of the bad outcome; "
                f"this is a {predictor.task} model",
                field="predictor",
            )
        if isinstance(predictor, EnsemblePredictor):
            members = list(zip(predictor.members, predictor.weights, strict=True))
        else:
            members = [(predictor, 1.0)]
        first = members[0][0]
        self.predictor = predictor
        self._behaviour = first.behaviour
        features = list(first.input_names)
        if first.behaviour is not None:
            features += [n for n in first.behaviour.feature_names_out_ if n not in features]
        self.features = features
        index = {name: g for g, name in enumerate(features)}
        rows = _background_rows(background, max_background)
        self._parts: list[tuple[TabularPredictor, float, _Part]] = []
        for member, weight in members:
            sources = _encoded_sources(member.preprocessor)
            unknown = [s for s in sources if s not in index]
            if unknown:
                raise InvalidInput(
                    f"the {member.flavor} member encodes column {unknown[0]!r}, which is "
                    "not one of the model's inputs; the members of an ensemble must share "
                    "their inputs",
                    field="predictor",
                )
            groups = np.zeros((len(sources), len(features)))
            groups[np.arange(len(sources)), [index[s] for s in sources]] = 1.0
            self._parts.append((member, weight, _part(member, groups, rows, tree_method)))
        self.base_value = float(sum(w * part.base for _, w, part in self._parts))
        self._texts = _texts(features, [m for m, _ in members], event)

    # -- the hot path ------------------------------------------------------
    def _contributions(self, record: Mapping[str, Any]) -> np.ndarray:
        (member, weight, part), *rest = self._parts
        total = part.contributions(member.encode_one(record, aggregated=True, projected=False))
        if not rest:
            return total
        total = weight * total
        for member, weight, part in rest:
            x = member.encode_one(record, aggregated=True, projected=False)
            total += weight * part.contributions(x)
        return total

    def _augment(self, record: Mapping[str, Any]) -> Mapping[str, Any]:
        behaviour = self._behaviour
        return record if behaviour is None else behaviour.transform_record(record)

    def contributions(self, record: Mapping[str, Any]) -> np.ndarray:
        """Log-odds contribution of each of :attr:`features` for one record.

        Positive values push towards the bad outcome. For logistic and
        LightGBM models ``contributions(record).sum() + base_value`` is the
        record's log-odds (raw margin).
        """
        return self._contributions(self._augment(record))

    @property
    def direct(self) -> TabularPredictor | None:
        """The single model whose encoded vector the contributions read directly
        (no ensemble, no projection), so a caller that already encoded a record
        for scoring can pass it to :meth:`reasons`; None otherwise."""
        if len(self._parts) != 1:
            return None
        member = self._parts[0][0]
        return member if member.preprocessor.projection_ is None else None

    def reasons(
        self,
        record: Mapping[str, Any],
        k: int = 4,
        *,
        encoded: tuple[Mapping[str, Any], np.ndarray] | None = None,
    ) -> list[dict[str, Any]]:
        """The top ``k`` reason codes for one record, strongest first.

        Only inputs that push towards the bad outcome (positive contribution)
        are reported, so fewer than ``k`` may come back.

        Returns
        -------
        list of dict
            ``feature`` (the input column), ``value`` (its raw value; ``None``
            when missing or not finite, such as an aggregate of extreme inputs
            that overflowed), ``contribution`` (log-odds, a finite float) and
            ``text`` (a short sentence, which never prints ``inf`` or ``nan``
            for the value).

        ``encoded``: ``(record with aggregates, encoded vector)`` from the
        :attr:`direct` model's :meth:`~TabularPredictor.with_aggregates` and
        :meth:`~TabularPredictor.encode_one`, to skip encoding twice.
        """
        if k <= 0:
            return []
        if encoded is not None and self.direct is not None:
            # (record with aggregates, its encoded vector), as the caller scored it
            rec = encoded[0]
            part = self._parts[0][2]
            c = part.contributions(encoded[1])
        else:
            rec = self._augment(record)
            c = self._contributions(rec)
        adverse = np.flatnonzero(c > 0.0)
        if adverse.size == 0:
            return []
        top = adverse[np.argsort(-c[adverse], kind="stable")[:k]]
        features, texts = self.features, self._texts
        out = []
        for g in top.tolist():
            name = features[g]
            value = rec.get(name)
            text = texts[g](value, None)  # worded from the value itself (its bin)
            if isinstance(value, float | np.floating):
                if value - value != 0.0:  # NaN (missing) or ±inf: neither is JSON
                    value = None
            elif value is not None and value != value:  # NaN-like: missing
                value = None
            contribution = float(c[g])
            if contribution == math.inf:  # only positive ones get here; keep it a number
                contribution = _LARGEST
            out.append(
                {"feature": name, "value": value, "contribution": contribution, "text": text}
            )
        return out

    def reason_text(self, feature: str, value: Any, shown: str | None = None) -> str:
        """The sentence of a reason on ``feature`` at ``value``; with ``shown`` (a PII
        feature's hash) that is printed instead of the value, and bins are named by
        position instead of by the values they hold."""
        return self._texts[self.features.index(feature)](value, shown)

    def __repr__(self) -> str:
        flavors = "+".join(m.flavor for m, _, _ in self._parts)
        return f"Explainer({flavors}, {len(self.features)} features)"


# ------------------------------------------------------------------ members


class _Part(abc.ABC):
    """Contributions of one tabular model, over the explained features."""

    base: float

    @abc.abstractmethod
    def contributions(self, x: np.ndarray) -> np.ndarray: ...


class _Linear(_Part):
    def __init__(self, member: TabularPredictor, groups: np.ndarray, mean: np.ndarray) -> None:
        est = member.estimator
        w = np.asarray(est.coef_, dtype=np.float64).reshape(-1)
        b = float(np.asarray(est.intercept_, dtype=np.float64).reshape(-1)[0])
        projection = member.preprocessor.projection_
        if projection is not None:  # logit = ((x - c) @ M) @ w + b = x @ (M @ w) + b - c @ M @ w
            w, b = projection.matrix_ @ w, b - float(projection.center_ @ projection.matrix_ @ w)
        self.weights = w[:, None] * groups
        self.shift = mean @ self.weights
        self.base = b + float(w @ mean)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        return x @ self.weights - self.shift


class _Trees(_Part):
    def __init__(self, member: TabularPredictor, groups: np.ndarray) -> None:
        from leptonic.tasks._lgbm_fast import FastPredictor

        self.fast = FastPredictor(member.estimator, "contrib")
        self.groups = groups
        # The last TreeSHAP column is the expected value: the same for every row.
        self.base = float(self.fast.predict(np.zeros(self.fast.n_features))[-1])

    def contributions(self, x: np.ndarray) -> np.ndarray:
        return self.fast.predict(x)[:-1] @ self.groups


class _TreePaths(_Part):
    """Path attributions (Saabas): along the record's path through each tree, the
    change of the expected value at every split is credited to the split's column.

    The expected value of a node is the count-weighted mean of its leaves, so the
    root's is TreeSHAP's expected value, and the credits along a path add up to
    the leaf value minus it: contributions + base value = raw margin, exactly as
    with TreeSHAP. One leaf-index call and one gather per record.
    """

    def __init__(self, member: TabularPredictor, groups: np.ndarray) -> None:
        from leptonic.tasks._lgbm_fast import FastPredictor

        booster = member.estimator
        self.fast = FastPredictor(booster, "leaf")
        trees = booster.dump_model(num_iteration=self.fast.num_iteration)["tree_info"]
        column_group = groups.argmax(axis=1).tolist()
        n_groups = groups.shape[1]
        offsets: list[int] = []
        tables: list[np.ndarray] = []
        base = 0.0
        for tree in trees[: self.fast.n_outputs]:
            root_value, leaves = _leaf_paths(tree["tree_structure"], column_group, n_groups)
            table = np.zeros((int(tree["num_leaves"]), n_groups))
            for leaf, credit in leaves.items():
                table[leaf] = credit
            offsets.append(sum(len(t) for t in tables))
            tables.append(table)
            base += root_value
        self.offsets = np.asarray(offsets, dtype=np.intp)
        self.table = np.vstack(tables) if tables else np.zeros((0, n_groups))
        self.ones = np.ones(len(offsets))
        self.base = base

    def contributions(self, x: np.ndarray) -> np.ndarray:
        rows = self.offsets + self.fast.predict(x).astype(np.intp)
        return self.ones @ self.table.take(rows, axis=0)  # a BLAS sum, twice numpy's


def _leaf_paths(
    root: Mapping[str, Any], column_group: list[int], n_groups: int
) -> tuple[float, dict[int, np.ndarray]]:
    """The root's expected value, and each leaf's path credits per group."""
    order: list[Mapping[str, Any]] = []
    stack = [root]
    while stack:
        node = stack.pop()
        order.append(node)
        if "split_feature" in node:
            stack += [node["left_child"], node["right_child"]]
    expected: dict[int, tuple[float, float]] = {}
    for node in reversed(order):  # children before their parents
        if "split_feature" in node:
            vl, cl = expected[id(node["left_child"])]
            vr, cr = expected[id(node["right_child"])]
            n = cl + cr
            expected[id(node)] = ((vl * cl + vr * cr) / n if n > 0 else (vl + vr) / 2.0, n)
        else:
            expected[id(node)] = (float(node["leaf_value"]), float(node.get("leaf_count", 0)))
    leaves: dict[int, np.ndarray] = {}
    walk = [(root, np.zeros(n_groups))]
    while walk:
        node, credit = walk.pop()
        if "split_feature" not in node:
            leaves[int(node.get("leaf_index", 0))] = credit
            continue
        g = column_group[int(node["split_feature"])]
        value = expected[id(node)][0]
        for child in (node["left_child"], node["right_child"]):
            step = credit.copy()
            step[g] += expected[id(child)][0] - value
            walk.append((child, step))
    return expected[id(root)][0], leaves


class _Substitution(_Part):
    def __init__(self, member: TabularPredictor, groups: np.ndarray, mean: np.ndarray) -> None:
        self.layers = [
            (np.asarray(w, dtype=np.float64), np.asarray(b, dtype=np.float64))
            for w, b in zip(member.estimator.coefs_, member.estimator.intercepts_, strict=True)
        ]
        self.projection = member.preprocessor.projection_
        # Row 0 keeps the record; row 1 + g has feature g's columns at the baseline.
        self.mask = np.vstack([np.zeros((1, groups.shape[0]), dtype=bool), groups.T > 0])
        self.mean = mean
        self.base = float(self._logits(mean[None, :])[0])

    def _logits(self, X: np.ndarray) -> np.ndarray:
        if self.projection is not None:
            X = (X - self.projection.center_) @ self.projection.matrix_
        h = X
        last = len(self.layers) - 1
        for i, (w, b) in enumerate(self.layers):
            h = h @ w + b
            if i < last:
                h = np.maximum(h, 0.0)
        return h[:, 0]

    def contributions(self, x: np.ndarray) -> np.ndarray:
        z = self._logits(np.where(self.mask, self.mean, x))
        return z[0] - z[1:]


def _part(
    member: TabularPredictor,
    groups: np.ndarray,
    rows: list[Mapping[str, Any]],
    tree_method: str,
) -> _Part:
    if member.flavor == "lightgbm":
        return _Trees(member, groups) if tree_method == "shap" else _TreePaths(member, groups)
    if rows:
        encoded = np.array([member.encode_one(r, projected=False) for r in rows])
        mean = encoded.mean(axis=0)
    else:
        mean = _reference(member.preprocessor)
    if member.flavor == "logistic":
        return _Linear(member, groups, mean)
    return _Substitution(member, groups, mean)


def _background_rows(background: Background | None, limit: int) -> list[Mapping[str, Any]]:
    if background is None:
        return []
    if isinstance(background, pa.Table):
        rows: Sequence[Mapping[str, Any]] = background.to_pylist()
    elif isinstance(background, pd.DataFrame):
        rows = background.to_dict("records")  # type: ignore[assignment]
    else:
        rows = list(background)
    if not rows:
        raise InvalidInput("background has no rows; pass training rows or None", field="background")
    if len(rows) > limit:
        picks = np.linspace(0, len(rows) - 1, limit).astype(int)
        rows = [rows[i] for i in picks.tolist()]
    return list(rows)


# ------------------------------------------------------- encoded columns


def _n_encoded(pre: TabularPreprocessor) -> int:
    if pre.projection_ is not None:
        return int(pre.projection_.n_features_in_)
    return int(pre.n_features_out_)


def _encoded_sources(pre: TabularPreprocessor) -> list[str]:
    """The input column behind each encoded column (before any projection).

    Follows the output layout documented on :class:`TabularPreprocessor`.
    """
    numeric, categorical = list(pre.numeric_), list(pre.categorical_)
    if pre.encoding in ("woe", "ordinal"):
        sources = [*numeric, *categorical]
    else:
        stats = pre.numeric_stats_
        sources = list(numeric)
        sources += [name for name in numeric if stats[name]["indicator"]]
        if pre.flag_outliers:
            sources += numeric
        for name in categorical:
            sources += [name] * (len(pre.categories_[name]) + 1)
    if len(sources) != _n_encoded(pre):
        raise InvalidInput(
            f"cannot map the preprocessor's {_n_encoded(pre)} encoded columns back to its "
            f"inputs (expected {len(sources)}); was it saved by another Leptonic version?",
            field="preprocessor",
        )
    return sources


def _reference(pre: TabularPreprocessor) -> np.ndarray:
    """A baseline per encoded column when no background rows are given."""
    if pre.projection_ is not None:
        return np.array(pre.projection_.center_, dtype=np.float64)  # the training mean
    numeric, categorical = list(pre.numeric_), list(pre.categorical_)
    out = np.zeros(_n_encoded(pre))
    if pre.encoding == "woe":
        binner = pre.woe_
        if binner is None:  # pragma: no cover - set with encoding='woe'
            return out
        for j, name in enumerate([*numeric, *categorical]):
            bins = binner.bins_[name]
            out[j] = math.fsum(b["count"] * b["woe"] for b in bins) / binner.n_samples_
        return out
    if pre.encoding == "onehot":
        for j, name in enumerate(numeric):
            s = pre.numeric_stats_[name]
            # standardised columns have training mean 0; unscaled ones get the imputation value
            out[j] = 0.0 if pre.scale else s["fill"]
        # indicators and outlier flags stay 0; each categorical gets its most frequent category
        start = len(numeric) + sum(1 for n in numeric if pre.numeric_stats_[n]["indicator"])
        start += len(numeric) if pre.flag_outliers else 0
        for name in categorical:
            out[start] = 1.0  # categories_ are kept most frequent first; else "__other__"
            start += len(pre.categories_[name]) + 1
    return np.where(np.isfinite(out), out, 0.0)  # no imputation value: 0


# ------------------------------------------------------------------ wording


def _label(name: str) -> str:
    return " ".join(name.replace("__", " ").replace("_", " ").split())


def format_number(x: float) -> str:
    """A number as reason texts spell it: whole numbers without a point, else 6 digits."""
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.6g}"


def _spoken(x: float) -> str:
    """A number as a sentence says it; an infinite one (an aggregate of extreme
    inputs that overflowed) is described, not printed as ``inf``."""
    if math.isinf(x):
        return "(too large to show)" if x > 0 else "(too negative to show)"
    return format_number(x)


def _texts(features: list[str], members: list[TabularPredictor], event: str) -> list[Text]:
    """One sentence builder per feature, from the most telling member's encoding."""
    woe = next((m.preprocessor for m in members if m.preprocessor.encoding == "woe"), None)
    out: list[Text] = []
    for name in features:
        label = _label(name)
        if woe is not None and woe.woe_ is not None and name in woe.woe_.bins_:
            binner = woe.woe_
            overall = binner.n_events_ / binner.n_samples_ if binner.n_samples_ else 0.0
            bins = binner.bins_[name]
            if binner.kinds_[name] == "numeric":
                out.append(_woe_numeric(label, bins, overall, event))
            else:
                out.append(_woe_categorical(label, bins, overall, event))
            continue
        pre = next((m.preprocessor for m in members if name in m.preprocessor.categorical_), None)
        if pre is not None:
            out.append(_plain_categorical(label, event))
            continue
        average = None
        for m in members:
            p = m.preprocessor
            if p.encoding == "onehot" and p.scale and name in p.numeric_stats_:
                average = float(p.numeric_stats_[name]["mean"])
                break
        out.append(_plain_numeric(label, event, average))
    return out


def _rate(b: Mapping[str, Any], overall: float, event: str, *, verb: str = "") -> str:
    """`` [verb] a high default rate (31.0% against 9.8% overall)``, or a neutral
    ``, where the default rate is 7.0% (9.8% overall)`` for a bin no riskier than
    average (a model can still weigh it adversely, e.g. through collinear inputs)."""
    rate = float(b["event_rate"])
    if rate > overall:
        lead = f" {verb}" if verb else ""
        return f"{lead} with a high {event} rate ({rate:.1%} against {overall:.1%} overall)"
    return f", where the {event} rate is {rate:.1%} ({overall:.1%} overall)"


def _woe_numeric(label: str, bins: list[dict[str, Any]], overall: float, event: str) -> Text:
    values = [b for b in bins if b["label"] != MISSING]
    missing = next((b for b in bins if b["label"] == MISSING), None)
    edges = [float(b["upper"]) for b in values[:-1]]
    phrases = [f" is in bin {b['label']}{_rate(b, overall, event)}" for b in values]
    when_missing = f"{label} is missing"
    if missing is not None:
        when_missing += _rate(missing, overall, event)

    hidden = [f" is in bin {i}{_rate(b, overall, event)}" for i, b in enumerate(values, 1)]

    def text(value: Any, shown: str | None = None) -> str:
        x = value if type(value) is float else to_float(value)
        if x != x:
            return when_missing
        said = _spoken(x) if shown is None else shown
        if not phrases:
            return f"{label} {said}"
        return f"{label} {said}{(phrases if shown is None else hidden)[bisect_left(edges, x)]}"

    return text


def _woe_categorical(label: str, bins: list[dict[str, Any]], overall: float, event: str) -> Text:
    phrases: dict[str, str] = {}
    when_missing = f"{label} is missing"
    for b in bins:
        if b["label"] == MISSING:
            when_missing += _rate(b, overall, event)
            continue
        rare = " is a rare value" if b["label"] == OTHER else ""
        for key in b["categories"]:
            phrases[key] = rare + _rate(b, overall, event, verb="" if rare else "comes")

    def text(value: Any, shown: str | None = None) -> str:
        key = value if type(value) is str else category_key(value)
        if key is None:
            return when_missing
        phrase = phrases.get(key)
        said = key if shown is None else shown
        if phrase is None:
            return f"{label} '{said}' was not seen in training"
        return f"{label} '{said}'{phrase}"

    return text


def _plain_categorical(label: str, event: str) -> Text:
    def text(value: Any, shown: str | None = None) -> str:
        key = value if type(value) is str else category_key(value)
        if key is None:
            return f"{label} is missing"
        return f"{label} '{key if shown is None else shown}' raises the {event} risk"

    return text


def _plain_numeric(label: str, event: str, average: float | None) -> Text:
    tail = "" if average is None else f" (training average {average:.4g})"

    def text(value: Any, shown: str | None = None) -> str:
        x = value if type(value) is float else to_float(value)
        if x != x:
            return f"{label} is missing"
        said = _spoken(x) if shown is None else shown
        return f"{label} {said} raises the {event} risk{tail}"

    return text

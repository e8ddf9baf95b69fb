"""Tabular preprocessing fitted on training data only, with a lean single-record path.

:class:`TabularPreprocessor` turns a table of numeric and categorical columns
into a float64 matrix: impute, clip and flag outliers, scale, encode categories
(one-hot, weight of evidence or ordinal codes), optionally project (PCA / LDA).
Everything it learns is plain numbers and strings, so it saves as JSON inside
a model version, and :meth:`TabularPreprocessor.transform_record` serves one
record (a dict) without building a DataFrame.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from leptonic.errors import DataError, InvalidInput
from leptonic.features._common import (
    MISSING,
    OTHER,
    ParamsMixin,
    category_codes,
    category_key,
    check_fitted,
    check_reserved_categories,
    check_saved,
    check_unique_names,
    decode_float,
    encode_float,
    fit_numeric_column,
    numeric_column,
    require_columns,
    to_float,
)
from leptonic.features.projection import LDAProjection, PCAProjection
from leptonic.features.woe import WoEBinner, _value_woe

__all__ = ["TabularPreprocessor"]

_FORMAT_VERSION = 1
_IMPUTE = ("median", "mean", None)
_ENCODINGS = ("onehot", "woe", "ordinal")
_PROJECTIONS = (None, "pca", "lda")
_STAT_KEYS = ("clip_low", "clip_high", "fence_low", "fence_high", "fill", "mean", "scale")
_NAN = math.nan
_INF = math.inf


class TabularPreprocessor(ParamsMixin):
    """Preprocess numeric and categorical columns into one float64 feature matrix.

    Every statistic (quantiles, medians, means, standard deviations, category
    lists, WoE bins, projections) is learned by :meth:`fit` from the training
    data only and reused unchanged by :meth:`transform` and
    :meth:`transform_record`.

    With ``encoding="onehot"`` (the default) the output is, in order:

    1. one column per numeric input: coerced to a number (unparseable → missing),
       clipped to the training quantiles ``clip`` (to the training minimum and
       maximum where both quantiles are equal, as for a rare 0/1 flag, so that
       no column is clipped to a single value), missing values imputed with
       the training ``impute`` statistic (computed after clipping), then
       standardised with the training mean and standard deviation (``scale``).
       Infinite values are clipped like any other; with ``clip=None`` they are
       refused (:class:`~leptonic.errors.DataError`);
    2. ``"<col>__missing"`` 0/1 indicators, for the numeric columns that had
       missing values in the training data (``add_missing_indicators``);
    3. ``"<col>__outlier"`` 0/1 flags, one per numeric column
       (``flag_outliers``): the raw value lies outside the training
       ``[Q1 - 1.5 IQR, Q3 + 1.5 IQR]``;
    4. per categorical column, ``"<col>=<category>"`` for each kept category
       and a last ``"<col>=__other__"``. Missing values count as the category
       ``"__missing__"``. Categories seen in fewer than ``min_category_frac`` of
       the training rows, or beyond the ``max_categories`` most frequent, and
       categories never seen in training all go to ``"__other__"``. A real
       category named ``"__missing__"`` or ``"__other__"`` is refused (rename it).

    With ``encoding="woe"`` every numeric and categorical column is replaced
    by its weight of evidence from a :class:`~leptonic.features.WoEBinner`
    (``max_bins=woe_max_bins``, other settings at their defaults); clipping,
    imputation, scaling, missing indicators and outlier flags do not apply
    (WoE bins handle all of them). Output: numeric columns then categorical.

    With ``encoding="ordinal"`` (for gradient-boosted trees) numeric columns
    pass through as numbers, missing kept as NaN (no clip, impute, scale,
    indicators or flags), and each categorical column becomes one column of
    integer codes stored as floats: kept categories are coded ``0, 1, ...`` by
    descending training frequency, the grouped rare ones share the next code,
    and unseen or missing values are NaN. ``categorical_indices_`` lists these
    columns' positions (e.g. for LightGBM's ``categorical_feature``).

    ``projection="pca"`` or ``"lda"`` finally projects the whole matrix with
    :class:`~leptonic.features.PCAProjection` or
    :class:`~leptonic.features.LDAProjection`.

    Parameters
    ----------
    numeric
        Numeric input columns.
    categorical
        Categorical input columns.
    impute
        Statistic that replaces missing numeric values, or ``None`` to keep NaN.
    add_missing_indicators
        Add 0/1 columns marking the imputed values.
    clip
        Lower and upper quantile to clip numeric values to, or ``None``.
    flag_outliers
        Add 0/1 columns flagging values beyond 1.5 × IQR from the quartiles.
    scale
        Standardise numeric columns to mean 0 and standard deviation 1.
    encoding
        ``"onehot"``, ``"woe"`` or ``"ordinal"`` (see above).
    max_categories
        Most categories kept per categorical column (the rest → ``"__other__"``).
    min_category_frac
        Smallest share of the training rows a kept category must hold.
    woe_max_bins
        Starting number of quantile bins for numeric WoE columns.
    projection
        ``None``, ``"pca"`` or ``"lda"``.
    n_components
        Components to keep after projection; ``None``: PCA keeps enough for
        95 % of the variance, LDA keeps ``n_classes - 1``.

    Attributes
    ----------
    numeric_, categorical_ : list of str
        The fitted input columns.
    numeric_stats_ : dict of str to dict
        ``encoding="onehot"`` only: per numeric column ``clip_low``,
        ``clip_high``, ``fence_low``, ``fence_high``, ``fill``, ``mean``,
        ``scale`` (floats) and ``indicator`` (bool).
    categories_ : dict of str to list of str
        ``"onehot"`` / ``"ordinal"``: kept categories per column, in output order.
    rare_categories_ : dict of str to list of str
        Categories grouped into ``"__other__"`` per column.
    woe_ : WoEBinner or None
        The fitted binner (``encoding="woe"``).
    projection_ : PCAProjection or LDAProjection or None
        The fitted projection.
    feature_names_out_ : list of str
        Output column names (``"pc1"``... / ``"ld1"``... after a projection).
    categorical_indices_ : list of int
        ``encoding="ordinal"``: positions of the categorical code columns in
        the output; empty otherwise.
    n_features_out_ : int
        Width of the output.

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"age": [25, 40, None, 60], "home": ["own", "rent", "own", None]})
    >>> pre = TabularPreprocessor(["age"], ["home"], clip=None, scale=False).fit(X)
    >>> pre.feature_names_out_
    ['age', 'age__missing', 'home=own', 'home=__missing__', 'home=rent', 'home=__other__']
    >>> pre.transform_record({"age": "61.5", "home": "boat"}).tolist()
    [61.5, 0.0, 0.0, 0.0, 0.0, 1.0]
    >>> pre.transform_record({"home": None}).tolist()  # age imputed with the median
    [40.0, 1.0, 0.0, 1.0, 0.0, 0.0]
    """

    def __init__(
        self,
        numeric: Sequence[str],
        categorical: Sequence[str],
        *,
        impute: Literal["median", "mean"] | None = "median",
        add_missing_indicators: bool = True,
        clip: tuple[float, float] | None = (0.005, 0.995),
        flag_outliers: bool = False,
        scale: bool = True,
        encoding: Literal["onehot", "woe", "ordinal"] = "onehot",
        max_categories: int = 30,
        min_category_frac: float = 0.005,
        woe_max_bins: int = 8,
        projection: Literal["pca", "lda"] | None = None,
        n_components: int | None = None,
    ) -> None:
        self.numeric = numeric
        self.categorical = categorical
        self.impute = impute
        self.add_missing_indicators = add_missing_indicators
        self.clip = clip
        self.flag_outliers = flag_outliers
        self.scale = scale
        self.encoding = encoding
        self.max_categories = max_categories
        self.min_category_frac = min_category_frac
        self.woe_max_bins = woe_max_bins
        self.projection = projection
        self.n_components = n_components

    # ------------------------------------------------------------------ fit

    def fit(self, X: pd.DataFrame, y: ArrayLike | None = None) -> TabularPreprocessor:
        """Learn every preprocessing statistic from the training table ``X``.

        Parameters
        ----------
        X
            Training data holding every column of ``numeric`` and ``categorical``
            (other columns are ignored).
        y
            Target, needed by ``encoding="woe"`` (binary 0/1) and
            ``projection="lda"`` (class labels); ignored otherwise.

        Returns
        -------
        TabularPreprocessor
            ``self``, fitted.

        Raises
        ------
        SchemaError
            If ``X`` lacks one of the columns (all missing ones are named), or
            has several columns of one of their names.
        InvalidInput
            If a parameter is out of range, or ``y`` is needed but not given.
        TargetError
            If ``encoding="woe"`` and ``y`` is not binary 0/1.
        DataError
            If ``encoding`` is ``"onehot"`` or ``"woe"`` and a categorical column
            holds the value ``"__missing__"`` or ``"__other__"``; if a numeric
            column holds dates, durations or text that is not a number; if
            ``clip`` is set and a numeric column has infinite but no finite
            values; if a cell holds a list or a dict; or if ``projection="lda"``
            and the features do not separate the classes.
        """
        numeric, categorical = self._check_params()
        require_columns(X, [*numeric, *categorical], what="TabularPreprocessor.fit")
        n = len(X)
        if n == 0:
            raise DataError("TabularPreprocessor.fit got a table with no rows.", field="X")
        if y is not None and np.shape(y)[:1] != (n,):
            raise InvalidInput(
                f"y must hold one value per row of X ({n}), got shape {np.shape(y)}.",
                field="y",
            )
        if self.projection == "lda":
            _require_y(y, "projection='lda'")
        woe: WoEBinner | None = None
        if self.encoding == "woe":  # the binner checks the numeric columns
            target = _require_y(y, "encoding='woe'")
            woe = WoEBinner(max_bins=self.woe_max_bins)
            woe.fit(X[[*numeric, *categorical]], target, categorical=categorical)
        stats: dict[str, dict[str, Any]] = {}
        kept: dict[str, list[str]] = {}
        rare: dict[str, list[str]] = {}
        if self.encoding != "woe":
            for name in numeric:
                x = fit_numeric_column(X[name], name, what="TabularPreprocessor.fit")
                if self.encoding == "onehot":
                    stats[name] = self._numeric_stats(name, x)
            for name in categorical:
                kept[name], rare[name] = self._categories(name, X[name], n)

        self.numeric_ = numeric
        self.categorical_ = categorical
        self.numeric_stats_ = stats
        self.categories_ = kept
        self.rare_categories_ = rare
        self.woe_ = woe
        self._layout()

        self.projection_: PCAProjection | LDAProjection | None = None
        if self.projection is not None:
            matrix = self._encode(X)
            projector: PCAProjection | LDAProjection
            if self.projection == "pca":
                projector = PCAProjection(n_components=self.n_components)
            else:
                projector = LDAProjection(n_components=self.n_components)
            self.projection_ = projector.fit(matrix, y)
        self._finish()
        return self

    def fit_transform(self, X: pd.DataFrame, y: ArrayLike | None = None) -> np.ndarray:
        """Fit on ``X`` (and ``y``), then transform ``X``."""
        return self.fit(X, y).transform(X)

    def _check_params(self) -> tuple[list[str], list[str]]:
        columns: dict[str, list[str]] = {}
        for field in ("numeric", "categorical"):
            value = getattr(self, field)
            if isinstance(value, str) or not all(isinstance(c, str) for c in value):
                raise InvalidInput(
                    f"{field} must be a list of column names, got {value!r}.", field=field
                )
            columns[field] = list(value)
            check_unique_names(columns[field], field=field)
        numeric, categorical = columns["numeric"], columns["categorical"]
        both = [c for c in numeric if c in set(categorical)]
        if both:
            raise InvalidInput(
                f"column(s) {both} are listed as both numeric and categorical; keep one.",
                field="categorical",
            )
        if not numeric and not categorical:
            raise InvalidInput(
                "no columns to preprocess: give numeric and/or categorical column names.",
                field="numeric",
            )
        _choice(self.impute, _IMPUTE, "impute")
        _choice(self.encoding, _ENCODINGS, "encoding")
        _choice(self.projection, _PROJECTIONS, "projection")
        if self.clip is not None:
            try:
                low, high = (float(q) for q in self.clip)
                ok = 0.0 <= low < high <= 1.0
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise InvalidInput(
                    f"clip must be None or two quantiles (low, high) with "
                    f"0 <= low < high <= 1, got {self.clip!r}; e.g. (0.005, 0.995).",
                    field="clip",
                )
        _positive_int(self.max_categories, "max_categories")
        _positive_int(self.woe_max_bins, "woe_max_bins")
        if self.n_components is not None:
            _positive_int(self.n_components, "n_components")
            if self.projection is None:
                raise InvalidInput(
                    "n_components is set but projection is None; set projection='pca' "
                    "or 'lda', or leave n_components=None.",
                    field="n_components",
                )
        frac = self.min_category_frac
        if not _is_number(frac) or not 0.0 <= float(frac) < 1.0:
            raise InvalidInput(
                f"min_category_frac must be in [0, 1), got {self.min_category_frac!r}.",
                field="min_category_frac",
            )
        if self.projection is not None:
            if self.encoding == "ordinal":
                raise InvalidInput(
                    "projection needs a matrix without missing values, but "
                    "encoding='ordinal' keeps NaN; use encoding='onehot' or 'woe'.",
                    field="projection",
                )
            if self.encoding == "onehot" and self.impute is None and numeric:
                raise InvalidInput(
                    "projection needs a matrix without missing values; set impute to "
                    "'median' or 'mean'.",
                    field="impute",
                )
        return numeric, categorical

    def _numeric_stats(self, name: str, x: np.ndarray) -> dict[str, Any]:
        finite = x[np.isfinite(x)]
        clip_low, clip_high = -_INF, _INF
        if self.clip is not None and not finite.size and np.isinf(x).any():
            raise DataError(
                f"TabularPreprocessor.fit: numeric column {name!r} has no finite values "
                "in the training data (only infinite or missing ones), so there is "
                "nothing to clip them to; replace the infinite values with finite "
                "numbers or missing values (NaN), or drop the column.",
                field=name,
            )
        if self.clip is not None and finite.size:
            q = np.quantile(finite, [float(self.clip[0]), float(self.clip[1])])
            clip_low, clip_high = float(q[0]), float(q[1])
            if clip_low == clip_high:  # e.g. a rare flag: clipping would leave one value
                clip_low, clip_high = float(finite.min()), float(finite.max())
        fence_low, fence_high = -_INF, _INF
        if self.flag_outliers and finite.size:
            q1, q3 = (float(v) for v in np.quantile(finite, [0.25, 0.75]))
            fence_low, fence_high = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
        clipped = np.clip(x, clip_low, clip_high)
        present = clipped[np.isfinite(clipped)]
        if self.impute is None:
            fill = _NAN
        elif not present.size:
            fill = 0.0
        elif self.impute == "median":
            fill = float(np.median(present))
        else:
            fill = float(present.mean())
        mean, scale = 0.0, 1.0
        if self.scale:
            imputed = np.where(np.isnan(clipped), fill, clipped)
            values = imputed[np.isfinite(imputed)]
            if values.size:
                mean = float(values.mean())
                std = float(values.std())
                if math.isfinite(std) and std > 1e-12 * max(1.0, abs(mean)):
                    scale = std
        return {
            "clip_low": clip_low,
            "clip_high": clip_high,
            "fence_low": fence_low,
            "fence_high": fence_high,
            "fill": fill,
            "mean": mean,
            "scale": scale,
            "indicator": bool(self.add_missing_indicators and np.isnan(x).any()),
        }

    def _categories(self, name: str, series: pd.Series, n: int) -> tuple[list[str], list[str]]:
        codes, keys = category_codes(series)
        if self.encoding == "onehot":
            check_reserved_categories(keys, name, what="TabularPreprocessor.fit")
        present = codes >= 0
        counts_u = np.bincount(codes[present], minlength=len(keys)).tolist()
        counts: dict[str, int] = {}
        n_missing = int((~present).sum())
        for key, c in zip(keys, counts_u, strict=True):
            if key is None:
                n_missing += c
            else:
                counts[key] = counts.get(key, 0) + c
        if self.encoding == "onehot" and n_missing:
            counts[MISSING] = counts.get(MISSING, 0) + n_missing
        ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        min_count = float(self.min_category_frac) * n
        kept = [k for k, c in ordered if c >= min_count][: int(self.max_categories)]
        kept_set = set(kept)
        rare = sorted(k for k in counts if k not in kept_set)
        return kept, rare

    # --------------------------------------------------------------- layout

    def _layout(self) -> None:
        """Derive output positions and the record-path plans from the learned state."""
        names: list[str] = []
        cat_indices: list[int] = []
        numeric, categorical = self.numeric_, self.categorical_
        self._cat_plan: list[tuple[str, dict[str, Any], Any]] = []
        self._record_fn: Callable[[Mapping[str, Any]], np.ndarray]
        if self.encoding == "woe":
            binner = self.woe_
            if binner is None:  # pragma: no cover - fit/from_dict always set it
                raise InvalidInput("encoding='woe' needs a fitted WoEBinner.", field="woe")
            names = [*numeric, *categorical]
            plans = binner._plans
            self._woe_plan = [(name, plans[name], j) for j, name in enumerate(names)]
            self._record_fn = self._record_woe
        elif self.encoding == "ordinal":
            names = [*numeric, *categorical]
            self._num_plan_raw = [(name, j) for j, name in enumerate(numeric)]
            for j, name in enumerate(categorical, start=len(numeric)):
                lookup: dict[str, Any] = {k: float(i) for i, k in enumerate(self.categories_[name])}
                other = float(len(lookup))
                for k in self.rare_categories_[name]:
                    lookup[k] = other
                self._cat_plan.append((name, lookup, j))
                cat_indices.append(j)
            self._record_fn = self._record_ordinal
        else:
            stats = [self.numeric_stats_[name] for name in numeric]
            names = list(numeric)
            indicator_src = [i for i, s in enumerate(stats) if s["indicator"]]
            indicator_out = list(range(len(names), len(names) + len(indicator_src)))
            names += [f"{numeric[i]}__missing" for i in indicator_src]
            flag_out: list[int] = []
            if self.flag_outliers:
                flag_out = list(range(len(names), len(names) + len(numeric)))
                names += [f"{name}__outlier" for name in numeric]
            ind_of = dict(zip(indicator_src, indicator_out, strict=True))
            self._num_plan = [
                (
                    name,
                    i,
                    ind_of.get(i, -1),
                    flag_out[i] if flag_out else -1,
                    s["clip_low"],
                    s["clip_high"],
                    s["fence_low"],
                    s["fence_high"],
                    s["fill"],
                    s["mean"],
                    s["scale"],
                )
                for i, (name, s) in enumerate(zip(numeric, stats, strict=True))
            ]
            self._indicator_src = np.asarray(indicator_src, dtype=np.intp)
            self._indicator_out = np.asarray(indicator_out, dtype=np.intp)
            self._flag_out = np.asarray(flag_out, dtype=np.intp)
            self._num_arrays = {
                key: np.asarray([s[key] for s in stats], dtype=np.float64) for key in _STAT_KEYS
            }
            for name in categorical:
                start = len(names)
                kept = self.categories_[name]
                lookup = {k: start + i for i, k in enumerate(kept)}
                names += [f"{name}={k}" for k in kept] + [f"{name}={OTHER}"]
                self._cat_plan.append((name, lookup, start + len(kept)))
            self._record_fn = self._record_onehot
        self._n_encoded = len(names)
        self._encoded_names = names
        self._encoded_cat_indices = cat_indices

    def _finish(self) -> None:
        if self.projection_ is None:
            self.feature_names_out_ = list(self._encoded_names)
            self.categorical_indices_ = list(self._encoded_cat_indices)
        else:
            prefix = "pc" if isinstance(self.projection_, PCAProjection) else "ld"
            k = self.projection_.n_components_
            self.feature_names_out_ = [f"{prefix}{i + 1}" for i in range(k)]
            self.categorical_indices_ = []
        self.n_features_out_ = len(self.feature_names_out_)

    # ------------------------------------------------------------ transform

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """Transform a table with the statistics learned by :meth:`fit`.

        Parameters
        ----------
        X
            Data holding every fitted input column (others are ignored).

        Returns
        -------
        numpy.ndarray
            float64, shape ``(len(X), n_features_out_)``.

        Raises
        ------
        SchemaError
            If ``X`` lacks fitted columns (all are named).
        DataError
            If ``encoding="onehot"`` without ``clip`` and a numeric value is
            infinite (the column is named).
        """
        check_fitted(self, "feature_names_out_")
        require_columns(
            X, [*self.numeric_, *self.categorical_], what="TabularPreprocessor.transform"
        )
        matrix = self._encode(X)
        if self.projection_ is not None:
            matrix = self.projection_.transform(matrix)
        return matrix

    def _encode(self, X: pd.DataFrame) -> np.ndarray:
        n = len(X)
        if self.encoding == "woe":
            binner = self.woe_
            if binner is None:  # pragma: no cover - set with encoding='woe'
                raise InvalidInput("encoding='woe' needs a fitted WoEBinner.", field="woe")
            return binner.transform(X)
        out = np.zeros((n, self._n_encoded), dtype=np.float64)
        p = len(self.numeric_)
        if p:
            raw = np.empty((n, p), dtype=np.float64)
            for j, name in enumerate(self.numeric_):
                raw[:, j] = numeric_column(X[name])
            if self.encoding == "ordinal":
                out[:, :p] = raw
            else:
                a = self._num_arrays
                missing = np.isnan(raw)
                if self._indicator_src.size:
                    out[:, self._indicator_out] = missing[:, self._indicator_src]
                if self._flag_out.size:
                    out[:, self._flag_out] = (raw < a["fence_low"]) | (raw > a["fence_high"])
                clipped = np.clip(raw, a["clip_low"], a["clip_high"])
                infinite = np.isinf(clipped).any(axis=0)
                if infinite.any():
                    raise _infinite(self.numeric_[int(np.argmax(infinite))])
                imputed = np.where(missing, a["fill"], clipped)
                out[:, :p] = (imputed - a["mean"]) / a["scale"]
        if self.encoding == "ordinal":
            for name, lookup, j in self._cat_plan:
                codes, keys = category_codes(X[name])
                values = [_NAN if k is None else lookup.get(k, _NAN) for k in keys]
                values.append(_NAN)
                out[:, j] = np.asarray(values, dtype=np.float64)[codes]
        else:
            rows = np.arange(n)
            for name, lookup, other in self._cat_plan:
                codes, keys = category_codes(X[name])
                cols = [lookup.get(MISSING if k is None else k, other) for k in keys]
                cols.append(lookup.get(MISSING, other))
                out[rows, np.asarray(cols, dtype=np.intp)[codes]] = 1.0
        return out

    def transform_record(self, record: Mapping[str, Any]) -> np.ndarray:
        """Transform one record: the serving hot path.

        Equal to ``transform(pandas.DataFrame([record]))[0]``, without pandas.
        A key absent from ``record`` is a missing value, as are ``None`` and
        NaN; a string in a numeric column is parsed as a number (missing if it
        does not parse); extra keys are ignored. No validation beyond that
        (and the infinite values :meth:`transform` refuses).

        Parameters
        ----------
        record
            Column name to raw value.

        Returns
        -------
        numpy.ndarray
            float64 vector of length ``n_features_out_``.

        Raises
        ------
        DataError
            As :meth:`transform`, for an infinite numeric value.
        """
        try:
            record_fn = self._record_fn
        except AttributeError:
            check_fitted(self, "feature_names_out_")
            raise
        vector = record_fn(record)
        if self.projection_ is not None:
            return self.projection_.transform_one(vector)
        return vector

    def _record_onehot(self, record: Mapping[str, Any]) -> np.ndarray:
        out = [0.0] * self._n_encoded
        get = record.get
        for name, vi, mi, oi, lo, hi, flo, fhi, fill, mean, scale in self._num_plan:
            v = get(name)
            x = v if type(v) is float else to_float(v)
            if x != x:
                if mi >= 0:
                    out[mi] = 1.0
                x = fill
            else:
                if oi >= 0 and (x < flo or x > fhi):
                    out[oi] = 1.0
                if x < lo:
                    x = lo
                elif x > hi:
                    x = hi
                if x == _INF or x == -_INF:
                    raise _infinite(name)
            out[vi] = (x - mean) / scale
        for name, lookup, other in self._cat_plan:
            v = get(name)
            k = v if type(v) is str else category_key(v)
            out[lookup.get(MISSING if k is None else k, other)] = 1.0
        return np.array(out, dtype=np.float64)

    def _record_ordinal(self, record: Mapping[str, Any]) -> np.ndarray:
        out = [0.0] * self._n_encoded
        get = record.get
        for name, j in self._num_plan_raw:
            v = get(name)
            out[j] = v if type(v) is float else to_float(v)
        for name, lookup, j in self._cat_plan:
            v = get(name)
            k = v if type(v) is str else category_key(v)
            out[j] = _NAN if k is None else lookup.get(k, _NAN)
        return np.array(out, dtype=np.float64)

    def _record_woe(self, record: Mapping[str, Any]) -> np.ndarray:
        out = [0.0] * self._n_encoded
        get = record.get
        for name, plan, j in self._woe_plan:
            out[j] = _value_woe(plan, get(name))
        return np.array(out, dtype=np.float64)

    # ---------------------------------------------------------- persistence

    def to_dict(self) -> dict[str, Any]:
        """Return the fitted preprocessor as a JSON-compatible dict.

        Only lists, dicts, strings, numbers, booleans and ``None``; NaN and
        ±inf are written as ``"nan"``, ``"inf"``, ``"-inf"``.
        """
        check_fitted(self, "feature_names_out_")
        params = self._json_params()
        params["numeric"] = list(self.numeric_)
        params["categorical"] = list(self.categorical_)
        params["clip"] = None if self.clip is None else [float(v) for v in self.clip]
        params["min_category_frac"] = float(params["min_category_frac"])
        return {
            "type": "TabularPreprocessor",
            "version": _FORMAT_VERSION,
            "params": params,
            "numeric_stats": {
                name: {k: (bool(v) if k == "indicator" else encode_float(v)) for k, v in s.items()}
                for name, s in self.numeric_stats_.items()
            },
            "categories": {k: list(v) for k, v in self.categories_.items()},
            "rare_categories": {k: list(v) for k, v in self.rare_categories_.items()},
            "woe": None if self.woe_ is None else self.woe_.to_dict(),
            "projection": None if self.projection_ is None else self.projection_.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TabularPreprocessor:
        """Rebuild a fitted preprocessor from :meth:`to_dict` output.

        The result transforms exactly as the preprocessor that wrote the dict.
        """
        saved = check_saved(dict(d), "TabularPreprocessor")
        try:
            params = dict(saved["params"])
            if params.get("clip") is not None:
                params["clip"] = (float(params["clip"][0]), float(params["clip"][1]))
            pre = cls(**params)
            pre.numeric_ = [str(c) for c in params["numeric"]]
            pre.categorical_ = [str(c) for c in params["categorical"]]
            pre.numeric_stats_ = {
                name: {k: (bool(v) if k == "indicator" else decode_float(v)) for k, v in s.items()}
                for name, s in saved["numeric_stats"].items()
            }
            pre.categories_ = {k: [str(c) for c in v] for k, v in saved["categories"].items()}
            pre.rare_categories_ = {
                k: [str(c) for c in v] for k, v in saved["rare_categories"].items()
            }
            pre.woe_ = None if saved["woe"] is None else WoEBinner.from_dict(saved["woe"])
            proj = saved["projection"]
            pre.projection_ = None
            if proj is not None:
                kind = PCAProjection if proj.get("type") == "PCAProjection" else LDAProjection
                pre.projection_ = kind.from_dict(proj)
            pre._layout()
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidInput(
                f"TabularPreprocessor.from_dict: the dict is incomplete or malformed ({exc!r}); "
                "pass the unchanged output of TabularPreprocessor.to_dict().",
                field="d",
            ) from exc
        pre._finish()
        return pre


def _require_y(y: ArrayLike | None, what: str) -> ArrayLike:
    if y is None:
        raise InvalidInput(
            f"TabularPreprocessor with {what} needs the target: pass y to fit(X, y).",
            field="y",
        )
    return y


def _infinite(column: str) -> DataError:
    return DataError(
        f"numeric column {column!r} holds an infinite value, which would make the "
        "features infinite; replace it with a finite number or a missing value (NaN is "
        "imputed), or fit the preprocessor with clip=(0.005, 0.995) to clip it.",
        field=column,
    )


def _choice(value: Any, allowed: Sequence[Any], field: str) -> None:
    if value not in allowed:
        raise InvalidInput(f"{field} must be one of {list(allowed)}, got {value!r}.", field=field)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool)


def _positive_int(value: Any, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise InvalidInput(f"{field} must be an integer >= 1, got {value!r}.", field=field)

"""Linear projections of a numeric feature matrix: PCA and LDA, applied in plain numpy.

Both keep only arrays (a centre and a projection matrix), so a fitted
projection serialises to JSON and transforms one record with one
vector-matrix product.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from leptonic.errors import DataError, InvalidInput
from leptonic.features._common import (
    ParamsMixin,
    check_fitted,
    check_saved,
    decode_float,
    encode_float,
)

__all__ = ["LDAProjection", "PCAProjection"]

_FORMAT_VERSION = 1


def _matrix(X: ArrayLike, *, what: str) -> np.ndarray:
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InvalidInput(
            f"{what} expects a non-empty 2-D numeric matrix, got shape {arr.shape}.",
            field="X",
        )
    if not np.isfinite(arr).all():  # one scan on the common path; the message picks
        if np.isinf(arr).any():
            raise InvalidInput(
                f"{what}: X holds infinite values; replace or clip them before projecting "
                "(TabularPreprocessor with clip=(0.005, 0.995) clips them).",
                field="X",
            )
        raise InvalidInput(
            f"{what}: X holds NaN values; impute them before projecting "
            "(TabularPreprocessor with impute='median' does).",
            field="X",
        )
    return arr


def _check_n_components(n_components: Any) -> None:
    if n_components is None:
        return
    if isinstance(n_components, bool) or not isinstance(n_components, int | np.integer):
        raise InvalidInput(
            f"n_components must be a positive integer or None, got {n_components!r}.",
            field="n_components",
        )
    if n_components < 1:
        raise InvalidInput(f"n_components must be >= 1, got {n_components}.", field="n_components")


def _encode_matrix(a: np.ndarray) -> list[Any]:
    return [[encode_float(v) for v in row] for row in a.tolist()]


def _decode_matrix(rows: Any) -> np.ndarray:
    return np.array([[decode_float(v) for v in row] for row in rows], dtype=np.float64)


def _check_spread(arr: np.ndarray, first: np.ndarray) -> None:
    """Refuse a matrix without spread within the classes, where LDA is undefined.

    ``first`` is, for each row, the position of the first row of its class.
    scikit-learn's LDA scales by the spread of the rows around their class
    mean and fails with a bare ``IndexError`` when there is none.
    """
    if not (arr == arr[first]).all():
        return
    if (arr == arr[0]).all():
        raise DataError(
            "LDAProjection.fit: every feature is constant, so the features do not "
            "separate the classes and LDA has no axis to find; train without the "
            "projection (projection=None) or add informative features.",
            field="X",
        )
    raise DataError(
        "LDAProjection.fit: every feature is constant within each class, so LDA, "
        "which scales by the spread within the classes, is undefined; train without "
        "the projection (projection=None).",
        field="X",
    )


class _Projection(ParamsMixin):
    """A fitted ``x -> (x - center_) @ matrix_`` map; subclasses learn both."""

    _kind = "projection"
    center_: np.ndarray
    matrix_: np.ndarray

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Project the rows of ``X``.

        Parameters
        ----------
        X
            Matrix of shape ``(n_rows, n_features_in_)``.

        Returns
        -------
        numpy.ndarray
            float64, shape ``(n_rows, n_components_)``.
        """
        check_fitted(self, "matrix_")
        arr = np.asarray(X, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != self.center_.shape[0]:
            raise InvalidInput(
                f"{type(self).__name__}.transform expects shape (n, {self.center_.shape[0]}),"
                f" got {arr.shape}.",
                field="X",
            )
        return (arr - self.center_) @ self.matrix_

    def transform_one(self, x: np.ndarray) -> np.ndarray:
        """Project one 1-D feature vector (the hot path; no validation).

        Parameters
        ----------
        x
            float64 vector of length ``n_features_in_``.

        Returns
        -------
        numpy.ndarray
            float64 vector of length ``n_components_``.
        """
        return (x - self.center_) @ self.matrix_

    @property
    def n_features_in_(self) -> int:
        """Number of input features."""
        check_fitted(self, "matrix_")
        return int(self.center_.shape[0])

    @property
    def n_components_(self) -> int:
        """Number of output components."""
        check_fitted(self, "matrix_")
        return int(self.matrix_.shape[1])

    def _state(self) -> dict[str, Any]:
        return {}

    def _load_state(self, state: Mapping[str, Any]) -> None:
        return None

    def to_dict(self) -> dict[str, Any]:
        """Return the fitted projection as a JSON-compatible dict (non-finite → strings)."""
        check_fitted(self, "matrix_")
        return {
            "type": type(self).__name__,
            "version": _FORMAT_VERSION,
            "params": self._json_params(),
            "center": [encode_float(v) for v in self.center_.tolist()],
            "matrix": _encode_matrix(self.matrix_),
            **self._state(),
        }

    @classmethod
    def _from_saved(cls, d: Mapping[str, Any]) -> Any:
        saved = check_saved(dict(d), cls.__name__)
        try:
            obj = cls(**saved["params"])
            obj.center_ = np.array([decode_float(v) for v in saved["center"]], dtype=np.float64)
            obj.matrix_ = _decode_matrix(saved["matrix"]).reshape(obj.center_.shape[0], -1)
            obj._load_state(saved)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(
                f"{cls.__name__}.from_dict: the dict is incomplete or malformed ({exc!r}); "
                f"pass the unchanged output of {cls.__name__}.to_dict().",
                field="d",
            ) from exc
        return obj


class PCAProjection(_Projection):
    """Principal component analysis by SVD of the centred training matrix.

    Components match scikit-learn's ``PCA(svd_solver="full")`` up to the sign of
    each component.

    Parameters
    ----------
    n_components
        Components to keep; ``None`` keeps the fewest whose explained variance
        reaches ``min_variance``.
    min_variance
        Share of the total variance to explain when ``n_components`` is ``None``.

    Attributes
    ----------
    mean_ : numpy.ndarray
        Column means of the training matrix (the centre).
    components_ : numpy.ndarray
        Shape ``(n_components_, n_features_in_)``, one principal axis per row.
    explained_variance_ : numpy.ndarray
        Variance along each kept component (``ddof=1``).
    explained_variance_ratio_ : numpy.ndarray
        Share of the total variance per kept component.
    """

    def __init__(self, n_components: int | None = None, min_variance: float = 0.95) -> None:
        self.n_components = n_components
        self.min_variance = min_variance

    def fit(self, X: ArrayLike, y: ArrayLike | None = None) -> PCAProjection:
        """Learn the principal axes of ``X`` (``y`` is ignored).

        Returns
        -------
        PCAProjection
            ``self``, fitted.
        """
        _check_n_components(self.n_components)
        if not 0.0 < float(self.min_variance) <= 1.0:
            raise InvalidInput(
                f"min_variance must be in (0, 1], got {self.min_variance!r}.",
                field="min_variance",
            )
        arr = _matrix(X, what="PCAProjection.fit")
        n, p = arr.shape
        limit = min(n, p)
        if self.n_components is not None and self.n_components > limit:
            raise InvalidInput(
                f"n_components={self.n_components} exceeds min(n_rows, n_features) = {limit}; "
                f"lower it to {limit} or less, or leave it None to keep the components "
                "that explain min_variance of the variance.",
                field="n_components",
            )
        mean = arr.mean(axis=0)
        _, s, vt = np.linalg.svd(arr - mean, full_matrices=False)
        variance = s**2 / max(n - 1, 1)
        total = float(variance.sum())
        ratio = variance / total if total > 0 else np.zeros_like(variance)
        if self.n_components is not None:
            k = int(self.n_components)
        elif total > 0:
            cumulative = np.cumsum(ratio)
            k = int(np.searchsorted(cumulative, float(self.min_variance) - 1e-12) + 1)
            k = min(k, limit)
        else:
            k = 1
        self.mean_ = mean
        self.components_ = vt[:k].copy()
        self.explained_variance_ = variance[:k].copy()
        self.explained_variance_ratio_ = ratio[:k].copy()
        self.center_ = mean
        self.matrix_ = np.ascontiguousarray(self.components_.T)
        return self

    def _state(self) -> dict[str, Any]:
        return {
            "explained_variance": [encode_float(v) for v in self.explained_variance_.tolist()],
            "explained_variance_ratio": [
                encode_float(v) for v in self.explained_variance_ratio_.tolist()
            ],
        }

    def _load_state(self, state: Mapping[str, Any]) -> None:
        self.mean_ = self.center_
        self.components_ = np.ascontiguousarray(self.matrix_.T)
        self.explained_variance_ = np.array(
            [decode_float(v) for v in state["explained_variance"]], dtype=np.float64
        )
        self.explained_variance_ratio_ = np.array(
            [decode_float(v) for v in state["explained_variance_ratio"]], dtype=np.float64
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PCAProjection:
        """Rebuild a fitted projection from :meth:`to_dict` output."""
        obj: PCAProjection = cls._from_saved(d)
        return obj


class LDAProjection(_Projection):
    """Linear discriminant analysis projection, fitted by scikit-learn, applied in numpy.

    ``fit`` runs :class:`sklearn.discriminant_analysis.LinearDiscriminantAnalysis`
    (``solver="svd"``) and keeps only its ``xbar_`` and the first ``k`` columns
    of ``scalings_``, so ``transform`` is ``(X - xbar_) @ scalings_[:, :k]``,
    equal to scikit-learn's ``transform``. No scikit-learn object is kept.

    Parameters
    ----------
    n_components
        Discriminant axes to keep, at most ``n_classes - 1``; ``None`` keeps
        all that the data supports.

    Attributes
    ----------
    xbar_ : numpy.ndarray
        Prior-weighted overall mean of the training matrix (the centre).
    scalings_ : numpy.ndarray
        Shape ``(n_features_in_, n_components_)``.
    classes_ : list
        Class labels seen in ``y`` (as given, made JSON-friendly).
    """

    def __init__(self, n_components: int | None = None) -> None:
        self.n_components = n_components

    def fit(self, X: ArrayLike, y: ArrayLike | None = None) -> LDAProjection:
        """Learn the discriminant axes of ``X`` for the classes in ``y``.

        Raises
        ------
        InvalidInput
            If ``y`` is missing, has fewer than two classes, or ``n_components``
            exceeds ``n_classes - 1``.
        DataError
            If the features do not separate the classes: every feature is
            constant (within each class), or the class means coincide.

        Returns
        -------
        LDAProjection
            ``self``, fitted.
        """
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

        _check_n_components(self.n_components)
        if y is None:
            raise InvalidInput(
                "LDAProjection.fit needs the class labels: pass y (one label per row).",
                field="y",
            )
        arr = _matrix(X, what="LDAProjection.fit")
        labels = np.asarray(y)
        if labels.ndim != 1 or labels.shape[0] != arr.shape[0]:
            raise InvalidInput(
                f"y must be 1-D with one label per row of X ({arr.shape[0]}), "
                f"got shape {labels.shape}.",
                field="y",
            )
        classes, first, index = np.unique(labels, return_index=True, return_inverse=True)
        if classes.size < 2:
            raise InvalidInput("LDA needs at least two classes in y.", field="y")
        limit = min(classes.size - 1, arr.shape[1])
        if self.n_components is not None and self.n_components > limit:
            raise InvalidInput(
                f"n_components={self.n_components} exceeds min(n_classes - 1, n_features) "
                f"= {limit}.",
                field="n_components",
            )
        _check_spread(arr, first[index.reshape(-1)])
        lda = LinearDiscriminantAnalysis(solver="svd", n_components=self.n_components)
        with np.errstate(divide="ignore", invalid="ignore"):  # no axis: refused just below
            lda.fit(arr, labels)
        if lda.scalings_.shape[1] == 0:
            raise DataError(
                "LDAProjection.fit: the class means coincide, so the features do not "
                "separate the classes and LDA finds no discriminant axis; train without "
                "the projection (projection=None) or add features that differ between "
                "the classes.",
                field="X",
            )
        k = limit if self.n_components is None else int(self.n_components)
        k = min(k, lda.scalings_.shape[1])
        self.xbar_ = np.asarray(lda.xbar_, dtype=np.float64).copy()
        self.scalings_ = np.ascontiguousarray(lda.scalings_[:, :k], dtype=np.float64)
        self.classes_ = [c.item() if isinstance(c, np.generic) else c for c in classes]
        self.center_ = self.xbar_
        self.matrix_ = self.scalings_
        return self

    def _state(self) -> dict[str, Any]:
        return {
            "classes": [c if isinstance(c, str | int | float) else str(c) for c in self.classes_]
        }

    def _load_state(self, state: Mapping[str, Any]) -> None:
        self.xbar_ = self.center_
        self.scalings_ = self.matrix_
        self.classes_ = list(state["classes"])

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LDAProjection:
        """Rebuild a fitted projection from :meth:`to_dict` output."""
        obj: LDAProjection = cls._from_saved(d)
        return obj

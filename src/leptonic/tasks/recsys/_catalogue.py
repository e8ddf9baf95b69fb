"""The item side of a served recommender: ids, factors, attributes and filters.

A :class:`Catalogue` is replaced as a whole when items are added (copy on
write), so a reader that took a reference sees one consistent catalogue.
Attribute filters are equality tests (``{"genre": "Comedy"}``); a list-valued
attribute matches when it contains the value, a list of wanted values
matches any of them. Masks are cached per (attribute, value).

:class:`Segments` holds per-segment item popularity for the cold start of
users known only by attributes (``{"gender": "F", "age": 31}``).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

from leptonic.errors import InvalidInput
from leptonic.tasks.recsys._data import Ids

__all__ = ["Catalogue", "Segments"]

_MASK_CACHE = 512


def _hashable(value: Any) -> bool:
    return value is None or isinstance(value, str | numbers.Number)


class Catalogue:
    """Items: ids, model arrays, popularity and attributes (see module doc)."""

    def __init__(
        self,
        ids: Ids,
        *,
        item_factors: np.ndarray | None,
        similarity: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
        popularity: np.ndarray,
        attributes: dict[str, list[Any]],
        segments: Segments | None,
        explain_width: int | None = None,
    ) -> None:
        self.ids = ids
        self.n_items = int(popularity.size)
        self.item_factors = item_factors
        #: unit-norm factors (the first ``explain_width`` columns: the best model of a blend)
        #: for similar items and explanations
        self.unit: np.ndarray | None = None
        self.gram: np.ndarray | None = None
        self.explain_width = explain_width
        if item_factors is not None:
            head = item_factors[:, :explain_width]
            norms = np.linalg.norm(head, axis=1, keepdims=True)
            self.unit = np.ascontiguousarray(head / np.where(norms > 0, norms, 1.0))
            f64 = item_factors.astype(np.float64)
            self.gram = f64.T @ f64
        self.similarity = similarity
        self.popularity = popularity
        self.attributes = attributes
        self.segments = segments
        self._masks: dict[tuple[str, Any], np.ndarray] = {}

    # -- filters ---------------------------------------------------------------------------
    def _value_mask(self, column: str, value: Any) -> np.ndarray:
        key = (column, value)
        mask = self._masks.get(key)
        if mask is None:
            values = self.attributes[column]
            mask = np.fromiter(
                (
                    (value in v) if isinstance(v, list) else (v == value and v is not None)
                    for v in values
                ),
                dtype=bool,
                count=len(values),
            )
            if len(self._masks) >= _MASK_CACHE:
                self._masks.clear()
            self._masks[key] = mask
        return mask

    def filter_mask(self, filter: Mapping[str, Any]) -> np.ndarray:
        """Boolean mask of the items matching every condition of ``filter``."""
        if not isinstance(filter, Mapping):
            raise InvalidInput(
                'filter must be a mapping of item attribute to value, e.g. {"genre": "Comedy"}',
                field="filter",
            )
        mask = np.ones(self.n_items, dtype=bool)
        for column, wanted in filter.items():
            if column not in self.attributes:
                known = ", ".join(sorted(self.attributes)) or "none (no item attributes given)"
                raise InvalidInput(
                    f"filter names the item attribute {column!r}, which this model does not "
                    f"have; known attributes: {known}",
                    field="filter",
                )
            options = wanted if isinstance(wanted, list | tuple) else [wanted]
            if not options or not all(_hashable(v) and v is not None for v in options):
                raise InvalidInput(
                    f"filter value for {column!r} must be a string or number, or a list of them",
                    field="filter",
                )
            any_of = np.zeros(self.n_items, dtype=bool)
            for v in options:
                any_of |= self._value_mask(column, v)
            mask &= any_of
        return mask

    # -- growth ----------------------------------------------------------------------------
    def extended(
        self,
        new: int,
        attributes: list[dict[str, Any]],
    ) -> Catalogue:
        """A copy with ``new`` more items (zero factors, no neighbours, no popularity)."""
        factors = self.item_factors
        if factors is not None:
            factors = np.vstack([factors, np.zeros((new, factors.shape[1]), factors.dtype)])
        similarity = self.similarity
        if similarity is not None:
            indptr, indices, data = similarity
            indptr = np.r_[indptr, np.full(new, indptr[-1], dtype=indptr.dtype)]
            similarity = (indptr, indices, data)
        columns = {name: list(values) for name, values in self.attributes.items()}
        for name in {k for row in attributes for k in row} - set(columns):
            columns[name] = [None] * self.n_items
        for name, values in columns.items():
            values.extend(row.get(name) for row in attributes)
        cat = Catalogue(
            self.ids,
            item_factors=None,
            similarity=similarity,
            popularity=np.r_[self.popularity, np.zeros(new)],
            attributes=columns,
            segments=self.segments.extended(new) if self.segments is not None else None,
            explain_width=self.explain_width,
        )
        cat.item_factors = factors
        if factors is not None and self.unit is not None:
            cat.unit = np.vstack([self.unit, np.zeros((new, self.unit.shape[1]), self.unit.dtype)])
            cat.gram = self.gram.copy() if self.gram is not None else None
        return cat

    def set_factor(self, item: int, vector: np.ndarray) -> None:
        """Replace one item's factors in place (writer only), keeping the Gram matrix exact."""
        if self.item_factors is None or self.unit is None or self.gram is None:
            return
        old = self.item_factors[item].astype(np.float64)
        new = vector.astype(np.float64)
        self.gram += np.outer(new, new) - np.outer(old, old)
        self.item_factors[item] = vector
        head = vector[: self.explain_width]
        norm = float(np.linalg.norm(head))
        self.unit[item] = head / norm if norm > 0 else 0.0


class Segments:
    """Item popularity within user segments, for attribute-based cold start.

    Each attribute column becomes segments: one per value for columns with
    at most ``max_values`` distinct values, quantile bins for numeric columns
    with more. A user described by several attributes gets the mean of the
    matching segments' popularity shares.
    """

    def __init__(
        self,
        keys: dict[str, int],
        matrix: np.ndarray,
        edges: dict[str, list[float]],
    ) -> None:
        self.keys = keys
        self.matrix = matrix
        self.edges = edges

    @staticmethod
    def _is_numeric(values: list[Any]) -> bool:
        present = [v for v in values if v is not None]
        return bool(present) and all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) for v in present
        )

    @classmethod
    def fit(
        cls,
        columns: Mapping[str, list[Any]],
        presence: Any,
        *,
        max_values: int = 50,
        bins: int = 5,
    ) -> Segments | None:
        """Segments of the users in ``columns`` (aligned with the rows of ``presence``)."""
        keys: dict[str, int] = {}
        rows: list[np.ndarray] = []
        edges: dict[str, list[float]] = {}
        n_users = presence.shape[0]
        for name, values in columns.items():
            values = list(values)[:n_users]
            distinct = {v for v in values if v is not None and _hashable(v)}
            if cls._is_numeric(values) and len(distinct) > max_values:
                arr = np.array([np.nan if v is None else float(v) for v in values])
                qs = np.nanquantile(arr, np.linspace(0, 1, bins + 1)[1:-1])
                edges[name] = sorted({float(q) for q in qs})
                labels: list[Any] = [
                    None if np.isnan(a) else f"bin{int(np.searchsorted(edges[name], a, 'right'))}"
                    for a in arr
                ]
            elif len(distinct) <= max_values:
                labels = [v if v in distinct else None for v in values]
            else:
                continue  # an id-like column (zip codes...): no useful segments
            for label in sorted({lab for lab in labels if lab is not None}, key=str):
                users = np.flatnonzero(np.array([lab == label for lab in labels], dtype=bool))
                counts = np.asarray(presence[users].sum(axis=0), dtype=np.float64).ravel()
                if counts.sum() <= 0:
                    continue
                keys[_segment_key(name, label)] = len(rows)
                rows.append((counts / counts.sum()).astype(np.float32))
        if not rows:
            return None
        return cls(keys, np.vstack(rows), edges)

    def label(self, column: str, value: Any) -> Any:
        if column in self.edges:
            if not isinstance(value, numbers.Real) or isinstance(value, bool):
                return None
            return f"bin{int(np.searchsorted(self.edges[column], float(value), 'right'))}"
        return value

    def scores(self, attributes: Mapping[str, Any]) -> np.ndarray | None:
        """Mean popularity share over the user's segments (None if none matches)."""
        rows = []
        for column, value in attributes.items():
            if not _hashable(value):
                continue
            row = self.keys.get(_segment_key(column, self.label(column, value)))
            if row is not None:
                rows.append(row)
        if not rows:
            return None
        return np.asarray(self.matrix[rows].mean(axis=0), dtype=np.float64)

    def extended(self, new: int) -> Segments:
        pad = np.zeros((self.matrix.shape[0], new), dtype=self.matrix.dtype)
        return Segments(self.keys, np.hstack([self.matrix, pad]), self.edges)


def _segment_key(column: str, label: Any) -> str:
    if isinstance(label, float) and label.is_integer():
        label = int(label)
    return f"{column}\x1f{type(label).__name__}\x1f{label}"

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from leptonic.errors import DataError, InvalidInput, NotFitted
from leptonic.features import LDAProjection, PCAProjection


def _correlated(n: int = 300, p: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 2))
    mixing = rng.normal(size=(2, p))
    return latent @ mixing + 0.1 * rng.normal(size=(n, p)) + rng.normal(size=p)


def _aligned_signs(ours: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """Flip each column of ``ours`` to the sign of ``theirs``."""
    signs = np.sign((ours * theirs).sum(axis=0))
    return ours * signs


# ------------------------------------------------------------------ contract


@pytest.mark.parametrize(
    ("cls", "params"),
    [
        (PCAProjection, {"n_components": 2, "min_variance": 0.9}),
        (LDAProjection, {"n_components": 1}),
    ],
)
def test_init_only_stores_arguments(cls: type, params: dict[str, object]) -> None:
    obj = cls(**params)
    assert vars(obj) == params
    assert obj.get_params() == params


@pytest.mark.parametrize("cls", [PCAProjection, LDAProjection])
def test_use_before_fit_raises_not_fitted(cls: type) -> None:
    obj = cls()
    with pytest.raises(NotFitted, match="not fitted"):
        obj.transform(np.zeros((2, 3)))
    with pytest.raises(NotFitted):
        obj.to_dict()


def test_fit_returns_self() -> None:
    X, y = load_iris(return_X_y=True)
    pca = PCAProjection(n_components=2)
    assert pca.fit(X) is pca
    lda = LDAProjection()
    assert lda.fit(X, y) is lda


# -------------------------------------------------------------------- PCA


@pytest.mark.parametrize("k", [1, 2, 4])
def test_pca_matches_sklearn_up_to_sign(k: int) -> None:
    X = _correlated()
    ours = PCAProjection(n_components=k).fit(X)
    theirs = PCA(n_components=k, svd_solver="full").fit(X)
    np.testing.assert_allclose(ours.mean_, theirs.mean_, atol=1e-12)
    np.testing.assert_allclose(ours.explained_variance_, theirs.explained_variance_, rtol=1e-10)
    np.testing.assert_allclose(
        ours.explained_variance_ratio_, theirs.explained_variance_ratio_, rtol=1e-10
    )
    X_new = _correlated(n=50, seed=1)
    expected = theirs.transform(X_new)
    got = _aligned_signs(ours.transform(X_new), expected)
    np.testing.assert_allclose(got, expected, atol=1e-9)
    comps = _aligned_signs(ours.components_.T, theirs.components_.T).T
    np.testing.assert_allclose(comps, theirs.components_, atol=1e-10)


def test_pca_keeps_enough_components_for_95_percent_variance() -> None:
    X = _correlated()
    ours = PCAProjection().fit(X)
    theirs = PCA(n_components=0.95, svd_solver="full").fit(X)
    assert ours.n_components_ == theirs.n_components_ == 2
    assert ours.explained_variance_ratio_.sum() >= 0.95


def test_pca_fit_uses_training_data_only() -> None:
    X = _correlated()
    pca = PCAProjection(n_components=2).fit(X)
    shifted = X + 100.0
    # the training mean is subtracted, not the mean of the data transformed
    out = pca.transform(shifted)
    assert not np.allclose(out.mean(axis=0), 0.0)
    np.testing.assert_allclose(out.mean(axis=0), (100.0 * np.ones(6)) @ pca.matrix_, atol=1e-8)


def test_pca_rejects_bad_input() -> None:
    with pytest.raises(InvalidInput) as info:
        PCAProjection(n_components=10).fit(np.ones((5, 3)))
    assert info.value.field == "n_components"
    with pytest.raises(InvalidInput, match=r"NaN.*impute"):
        PCAProjection().fit(np.array([[1.0, np.nan], [2.0, 3.0]]))
    with pytest.raises(InvalidInput, match=r"infinite.*clip"):
        PCAProjection().fit(np.array([[1.0, np.inf], [2.0, 3.0]]))
    with pytest.raises(InvalidInput):
        PCAProjection(n_components=0).fit(np.ones((5, 3)))
    pca = PCAProjection(n_components=1).fit(_correlated())
    with pytest.raises(InvalidInput):
        pca.transform(np.ones((2, 3)))


# -------------------------------------------------------------------- LDA


@pytest.mark.parametrize("k", [None, 1, 2])
def test_lda_transform_matches_sklearn(k: int | None) -> None:
    X, y = load_iris(return_X_y=True)
    ours = LDAProjection(n_components=k).fit(X, y)
    theirs = LinearDiscriminantAnalysis(n_components=k).fit(X, y)
    np.testing.assert_allclose(ours.transform(X), theirs.transform(X), atol=1e-10)
    assert ours.n_components_ == (2 if k is None else k)
    assert ours.classes_ == [0, 1, 2]


def test_lda_keeps_no_sklearn_object() -> None:
    X, y = load_iris(return_X_y=True)
    lda = LDAProjection().fit(X, y)
    for value in vars(lda).values():
        assert isinstance(value, np.ndarray | list | int | type(None))


def test_lda_needs_labels_and_valid_components() -> None:
    X, y = load_iris(return_X_y=True)
    with pytest.raises(InvalidInput) as info:
        LDAProjection().fit(X)
    assert info.value.field == "y"
    with pytest.raises(InvalidInput) as info:
        LDAProjection(n_components=3).fit(X, y)
    assert info.value.field == "n_components"
    with pytest.raises(InvalidInput):
        LDAProjection().fit(X, np.zeros(len(X)))


@pytest.mark.parametrize(
    ("X", "y", "match"),
    [
        # all constant: scikit-learn failed with a bare IndexError
        ([[1.0, 5.0]] * 4, [0, 1, 0, 1], "every feature is constant, so the features do not"),
        ([[0.0], [1.0], [0.0], [1.0]], [0, 1, 0, 1], "constant within each class"),
        # coinciding class means: no axis, an (n, 0) output
        ([[1.0], [2.0], [1.0], [2.0]], [0, 0, 1, 1], "class means coincide, so the features do"),
    ],
    ids=["constant", "constant-within-classes", "same-means"],
)
def test_lda_refuses_features_that_do_not_separate_the_classes(
    X: list[list[float]], y: list[int], match: str
) -> None:
    with pytest.raises(DataError, match=rf"{match}.*projection=None") as info:
        LDAProjection().fit(np.array(X), y)
    assert info.value.field == "X"


# -------------------------------------------------- single vector, persistence


@pytest.mark.parametrize("kind", ["pca", "lda"])
def test_transform_one_equals_transform(kind: str) -> None:
    X, y = load_iris(return_X_y=True)
    proj = PCAProjection().fit(X) if kind == "pca" else LDAProjection().fit(X, y)
    batch = proj.transform(X)
    for i in range(0, len(X), 17):
        np.testing.assert_allclose(proj.transform_one(X[i]), batch[i], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["pca", "lda"])
def test_json_round_trip_transforms_identically(kind: str) -> None:
    X, y = load_iris(return_X_y=True)
    proj = PCAProjection().fit(X) if kind == "pca" else LDAProjection().fit(X, y)
    text = json.dumps(proj.to_dict(), allow_nan=False)
    cls = PCAProjection if kind == "pca" else LDAProjection
    loaded = cls.from_dict(json.loads(text))
    np.testing.assert_array_equal(loaded.transform(X), proj.transform(X))
    assert loaded.get_params() == proj.get_params()
    if kind == "pca":
        assert isinstance(loaded, PCAProjection) and isinstance(proj, PCAProjection)
        np.testing.assert_array_equal(
            loaded.explained_variance_ratio_, proj.explained_variance_ratio_
        )


def test_from_dict_rejects_the_other_kind() -> None:
    X, _ = load_iris(return_X_y=True)
    saved = PCAProjection().fit(X).to_dict()
    with pytest.raises(InvalidInput):
        LDAProjection.from_dict(saved)

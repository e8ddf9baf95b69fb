from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from leptonic.errors import InvalidInput
from leptonic.evaluation.ranking import (
    catalogue_coverage,
    gini_coefficient,
    hit_matrix,
    map_at_k,
    metric_curves,
    ndcg_at_k,
    popularity_percentile,
    precision_at_k,
    random_split,
    ranking_metrics,
    recall_at_k,
    time_split,
)
from leptonic.evaluation.ranking_report import (
    metric_curve_plot,
    popularity_plot,
    render_ranking_report,
)

RECS = np.array([[0, 1, 2], [3, 4, 5], [6, -1, -1]])
RELEVANT = [[1, 9], [6], [6, 7, 8, 0]]


def test_hand_computed_values() -> None:
    # user 0: hit at rank 2 of 3, 2 relevant; user 1: no hit; user 2: hit at rank 1, 4 relevant
    d2 = 1 / math.log2(3)
    d3 = 1 / math.log2(4)
    assert recall_at_k(RECS, RELEVANT, 3) == pytest.approx((1 / 2 + 0 + 1 / 4) / 3)
    assert precision_at_k(RECS, RELEVANT, 3) == pytest.approx((1 / 3 + 0 + 1 / 3) / 3)
    ndcg0 = d2 / (1 + d2)
    ndcg2 = 1 / (1 + d2 + d3)
    assert ndcg_at_k(RECS, RELEVANT, 3) == pytest.approx((ndcg0 + 0 + ndcg2) / 3)
    # AP: user 0 precision@2 = 1/2 over min(3, 2) = 2; user 2 precision@1 = 1 over 3
    assert map_at_k(RECS, RELEVANT, 3) == pytest.approx((0.25 + 0 + 1 / 3) / 3)
    assert ndcg_at_k(RECS, RELEVANT, 1) == pytest.approx((0 + 0 + 1) / 3)


def test_users_without_relevant_items_are_not_scored() -> None:
    m = ranking_metrics(RECS, [[1], [], [6]], k=3, n_items=10)
    assert m["users"] == 2
    assert m["recall@3"] == pytest.approx(1.0)


def test_sparse_and_list_inputs_agree() -> None:
    rows = np.repeat(np.arange(3), [len(r) for r in RELEVANT])
    cols = np.concatenate(RELEVANT)
    matrix = sp.csr_matrix((np.ones(cols.size), (rows, cols)), shape=(3, 12))
    assert ranking_metrics(RECS, matrix, 3) == pytest.approx(
        ranking_metrics(RECS, RELEVANT, 3, n_items=12)
    )


def _loop_metrics(recs: np.ndarray, rel: list[set[int]], k: int) -> dict[str, float]:
    out: dict[str, list[float]] = {"recall": [], "ndcg": [], "map": []}
    for r, truth in zip(recs, rel, strict=True):
        if not truth:
            continue
        hits = [int(i) in truth for i in r[:k]]
        dcg = sum(h / math.log2(j + 2) for j, h in enumerate(hits))
        idcg = sum(1 / math.log2(j + 2) for j in range(min(k, len(truth))))
        ap = sum(sum(hits[: j + 1]) / (j + 1) for j, h in enumerate(hits) if h)
        out["recall"].append(sum(hits) / len(truth))
        out["ndcg"].append(dcg / idcg)
        out["map"].append(ap / min(k, len(truth)))
    return {name: float(np.mean(v)) for name, v in out.items()}


def test_random_data_matches_a_plain_loop_and_scikit_learn() -> None:
    from sklearn.metrics import ndcg_score

    rng = np.random.default_rng(0)
    n_users, n_items, k = 50, 30, 7
    truth = rng.random((n_users, n_items)) < 0.15
    truth[np.arange(n_users), rng.integers(0, n_items, n_users)] = True  # ≥ 1 relevant each
    scores = rng.random((n_users, n_items))
    recs = np.argsort(-scores, axis=1)[:, :k]
    rel = [set(np.flatnonzero(t).tolist()) for t in truth]
    got = ranking_metrics(recs, sp.csr_matrix(truth), k)
    want = _loop_metrics(recs, rel, k)
    assert got[f"recall@{k}"] == pytest.approx(want["recall"])
    assert got[f"ndcg@{k}"] == pytest.approx(want["ndcg"])
    assert got[f"map@{k}"] == pytest.approx(want["map"])
    assert got[f"ndcg@{k}"] == pytest.approx(ndcg_score(truth.astype(float), scores, k=k))


def test_matches_implicit_evaluation() -> None:
    implicit_eval = pytest.importorskip(
        "implicit.evaluation", reason="implicit is not installed: pip install 'leptonic[recsys]'"
    )

    rng = np.random.default_rng(1)
    n_users, n_items, k = 40, 25, 5
    train = sp.csr_matrix((rng.random((n_users, n_items)) < 0.2).astype(np.float32))
    test = (rng.random((n_users, n_items)) < 0.2).astype(np.float32)
    test[train.toarray() > 0] = 0
    test = sp.csr_matrix(test)
    scores = rng.random((n_users, n_items)).astype(np.float32)

    class Fixed:
        def recommend(self, userid, user_items, N=10, filter_already_liked_items=True, **kw):  # type: ignore[no-untyped-def]
            s = scores[userid].copy()
            s[user_items.toarray() > 0] = -np.inf
            ids = np.argsort(-s, axis=1)[:, :N].astype(np.int32)
            return ids, np.take_along_axis(s, ids, axis=1)

    want = implicit_eval.ranking_metrics_at_k(Fixed(), train, test, K=k, show_progress=False)
    s = scores.copy()
    s[train.toarray() > 0] = -np.inf
    recs = np.argsort(-s, axis=1)[:, :k]
    got = ranking_metrics(recs, test, k)
    assert got[f"ndcg@{k}"] == pytest.approx(want["ndcg"], rel=1e-6)
    assert got[f"map@{k}"] == pytest.approx(want["map"], rel=1e-6)


def test_hits_ignore_padding() -> None:
    hits, n_rel = hit_matrix(np.array([[-1, 2]]), [[2]])
    assert hits.tolist() == [[False, True]]
    assert n_rel.tolist() == [1]


def test_coverage_popularity_and_gini() -> None:
    assert catalogue_coverage(RECS, n_items=14) == pytest.approx(7 / 14)
    assert catalogue_coverage(RECS, n_items=14, k=1) == pytest.approx(3 / 14)
    pop = np.array([1.0, 2, 3, 4, 5])
    assert popularity_percentile(np.array([[4]]), pop) == pytest.approx(1.0)
    assert popularity_percentile(np.array([[0, 4]]), pop) == pytest.approx(0.5)
    assert popularity_percentile(np.array([[0, 1]]), np.array([3.0, 3.0, 1.0])) == pytest.approx(
        0.75
    )
    assert gini_coefficient([1, 1, 1, 1]) == pytest.approx(0.0)
    assert gini_coefficient([0, 0, 0, 1]) == pytest.approx(0.75)
    m = ranking_metrics(RECS, RELEVANT, 3, n_items=10, item_popularity=np.arange(10.0))
    assert 0 <= m["popularity_percentile@3"] <= 1
    assert 0 <= m["gini@3"] <= 1


def test_curves_are_consistent_with_point_metrics() -> None:
    rng = np.random.default_rng(2)
    recs = np.argsort(rng.random((20, 30)), axis=1)[:, :20]
    rel = [rng.choice(30, 5, replace=False) for _ in range(20)]
    curves = metric_curves(recs, rel, ks=range(1, 21))
    assert curves["k"] == [float(k) for k in range(1, 21)]
    assert np.all(np.diff(curves["recall"]) >= -1e-12)
    assert curves["ndcg"][9] == pytest.approx(ndcg_at_k(recs, rel, 10))


@pytest.mark.parametrize("k", [0, -1, 4, True, 2.5])
def test_bad_k(k: object) -> None:
    with pytest.raises(InvalidInput) as err:
        ndcg_at_k(RECS, RELEVANT, k)  # type: ignore[arg-type]
    assert err.value.field == "k"


def test_bad_shapes() -> None:
    with pytest.raises(InvalidInput) as err:
        ndcg_at_k(np.array([0, 1, 2]), RELEVANT, 1)
    assert err.value.field == "recommended"
    with pytest.raises(InvalidInput) as err:
        ndcg_at_k(RECS, RELEVANT[:2], 1)
    assert err.value.field == "relevant"


def test_random_split_is_per_user_and_seeded() -> None:
    users = np.repeat(np.arange(5), [10, 5, 1, 2, 20])
    mask = random_split(users, test_fraction=0.2, seed=3)
    counts = [int(mask[users == u].sum()) for u in range(5)]
    assert counts == [2, 1, 0, 0, 4]
    assert np.array_equal(mask, random_split(users, test_fraction=0.2, seed=3))
    assert not np.array_equal(mask, random_split(users, test_fraction=0.2, seed=4))
    with pytest.raises(InvalidInput) as err:
        random_split(users, test_fraction=1.5)
    assert err.value.field == "test_fraction"


def test_time_split_global_and_per_user() -> None:
    ts = np.array([5, 1, 4, 2, 3, 9, 8, 7, 6, 0])
    mask = time_split(ts, test_fraction=0.3)
    assert sorted(ts[mask].tolist()) == [7, 8, 9]
    users = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    per_user = time_split(ts, test_fraction=0.4, users=users)
    assert sorted(ts[per_user].tolist()) == [4, 5, 8, 9]
    dates = np.array(["2024-01-01", "2024-01-03", "2024-01-02"], dtype="datetime64[D]")
    assert time_split(dates, test_fraction=0.34).tolist() == [False, True, False]
    with pytest.raises(InvalidInput) as err:
        time_split(np.array([1.0, np.nan]))
    assert err.value.field == "timestamps"


def test_report_is_self_contained_html() -> None:
    curves = {
        "als <b>": {"k": [1.0, 2.0], "ndcg": [0.3, 0.35], "recall": [0.1, 0.2], "map": [0.3, 0.2]},
        "popularity": {"k": [1.0, 2.0], "ndcg": [0.2, 0.2], "recall": [0.05, 0.1]},
    }
    page = render_ranking_report(
        title="Movies <test>",
        summary={"chosen model": "als"},
        metrics={"test": {"ndcg@10": 0.45, "coverage@10": 0.3}},
        leaderboard=[{"candidate": "als", "best_score": 0.3}],
        curves=curves,
        recommended_popularity=np.array([50, 60, 70]),
        catalogue_popularity=np.array([0, 1, 2, 50, 60, 70, 300]),
        notes=["seen items excluded"],
    )
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("data:image/png;base64,") == 4
    assert "Movies &lt;test&gt;" in page and "<b>" not in page.split("<body>")[1].split("<main>")[0]
    assert metric_curve_plot(curves, "recall").startswith(b"\x89PNG")
    assert popularity_plot([], [1, 2, 3]).startswith(b"\x89PNG")
    with pytest.raises(InvalidInput):
        metric_curve_plot(curves, "auc")


def test_an_item_recommended_twice_is_one_hit() -> None:
    recs = np.array([[1, 1, 1], [2, 0, 2]])
    m = ranking_metrics(recs, [[1], [2, 0]], k=3)
    assert m["recall@3"] == 1.0 and m["map@3"] <= 1.0 and m["ndcg@3"] <= 1.0
    assert recall_at_k(np.array([[1, 1, 1]]), [[1]], 3) == 1.0
    assert ndcg_at_k(np.array([[1, 1, 1]]), [[1]], 3) == 1.0
    assert map_at_k(np.array([[1, 1, 1]]), [[1]], 3) == 1.0


def test_coverage_counts_recommended_items_beyond_the_relevant_ones() -> None:
    m = ranking_metrics(np.array([[0, 1], [2, 3]]), [[1], [1]], k=2)
    assert m["coverage@2"] == 1.0  # four items seen, all four shown


def test_a_boolean_indicator_array_is_read_as_users_by_items() -> None:
    recs = np.array([[1, 3], [0, 2]])
    indicator = np.array([[False, True, False, True], [True, False, False, False]])
    assert recall_at_k(recs, indicator, 2) == recall_at_k(recs, sp.csr_matrix(indicator), 2)
    assert recall_at_k(recs, indicator, 2) == 1.0


def test_the_callers_sparse_matrix_is_left_as_given() -> None:
    rel = sp.csr_matrix((np.array([1.0, 0.0, 1.0]), np.array([1, 2, 0]), np.array([0, 2, 3])))
    before = (rel.nnz, rel.indptr.tolist(), rel.indices.tolist())
    ranking_metrics(np.array([[1, 0], [0, 1]]), rel, k=2)
    assert (rel.nnz, rel.indptr.tolist(), rel.indices.tolist()) == before

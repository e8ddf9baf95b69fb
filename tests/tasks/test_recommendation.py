from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from leptonic.errors import DataError, InvalidInput, SchemaError, UnsafeArtifact
from leptonic.storage.artifacts.memory import MemoryArtifactStore

pytest.importorskip("implicit", reason="implicit is not installed: pip install 'leptonic[recsys]'")

from leptonic.tasks.recsys import (
    Confidence,
    Interactions,
    RecommenderPredictor,
    RecommenderSpec,
    fit_recommender,
    load_recommender,
    save_recommender,
    train_recommender,
)
from leptonic.tasks.recsys._shortlist import UNEXPLAINED

ML100K = Path(__file__).resolve().parents[3] / "shared" / "data" / "movielens_100k" / "u.data"
GROUPS = 4
T0 = 1_700_000_000


def interactions(n_users: int = 60, n_items: int = 40, seed: int = 0) -> pd.DataFrame:
    """Users of group g mostly like items of group g (item i is in group i % 4)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        g = u % GROUPS
        own = [i for i in range(n_items) if i % GROUPS == g and i < n_items - GROUPS]
        picks = [*rng.choice(own, size=6, replace=False), int(rng.integers(0, n_items - GROUPS))]
        for j, i in enumerate(dict.fromkeys(int(p) for p in picks)):
            rows.append((f"u{u}", f"i{i}", int(rng.integers(1, 6)), T0 + 1000 * j + u))
    return pd.DataFrame(rows, columns=["user", "item", "rating", "ts"])


def item_table(n_items: int = 40) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item": [f"i{i}" for i in range(n_items)],
            "genre": [f"g{i % GROUPS}" for i in range(n_items)],
            "tags": [["even" if i % 2 == 0 else "odd", f"t{i % 3}"] for i in range(n_items)],
        }
    )


def user_table(n_users: int = 60) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user": [f"u{u}" for u in range(n_users)],
            "group": [f"G{u % GROUPS}" for u in range(n_users)],
            "age": [18 + (u * 7) % 60 for u in range(n_users)],
        }
    )


def spec(**kw: Any) -> RecommenderSpec:
    base: dict[str, Any] = dict(
        timestamp="ts", weight="rating", trials=1, timeout_s=None, num_threads=1, seed=0
    )
    base.update(kw)
    return RecommenderSpec(**base)


def fitted(kind: str = "als", **kw: Any) -> RecommenderPredictor:
    s = spec(candidates=(kind,), **kw)
    data = Interactions.from_table(
        interactions(), timestamp="ts", weight="rating", user="user", item="item"
    )
    return fit_recommender(
        data, s, item_attributes=item_table(), user_attributes=user_table(), log=lambda _: None
    ).predictor


KINDS = ["als", "bpr", "item_knn", "popularity"]


@pytest.fixture
def als() -> RecommenderPredictor:
    return fitted("als")


# -- data ----------------------------------------------------------------------------------------
def test_interactions_table_to_codes() -> None:
    df = interactions()
    data = Interactions.from_table(pa.Table.from_pandas(df), timestamp="ts", weight="rating")
    assert data.n_users == 60 and len(data) == len(df)
    assert data.user_ids.values == sorted(set(df["user"]))
    m = data.matrix()
    assert m.shape == (60, data.n_items) and m.sum() == pytest.approx(df["rating"].sum())


def test_integer_ids_accept_either_spelling() -> None:
    df = interactions()
    df["user"] = df["user"].str[1:].astype(int)
    data = Interactions.from_table(df, timestamp="ts")
    assert data.user_ids.kind == "int"
    assert data.user_ids.code("7") == data.user_ids.code(7) is not None
    assert data.user_ids.code(" 007 ") == data.user_ids.code(7.0) == data.user_ids.code(7)
    assert data.user_ids.code(True) is None
    ids = data.user_ids  # an integer id is int64, written with the digits 0-9
    assert ids.key(2**63 - 1) == 2**63 - 1 and ids.key("-" + "0" * 30 + "5") == -5
    for bad in (2**63, -(2**63) - 1, "9" * 20, "1e3", "²", "--5", "+5", "٣", 1e300, 2.5):
        assert ids.key(bad) is None, bad


def test_confidence_schemes() -> None:
    r = np.array([0.0, 1.0, 4.0])
    assert Confidence("binary")(r).tolist() == [1, 1, 1]
    assert Confidence("linear", alpha=2)(r).tolist() == [1, 3, 9]
    assert Confidence("log", alpha=1, eps=1)(r) == pytest.approx(1 + np.log1p(r))
    with pytest.raises(InvalidInput):
        Confidence("square")
    with pytest.raises(InvalidInput):
        Confidence("log", alpha=-1)


def test_bad_training_tables() -> None:
    df = interactions()
    with pytest.raises(SchemaError) as err:
        Interactions.from_table(df, user="customer")
    assert err.value.field == "customer"
    dup = pd.concat([df, df.iloc[:3]])
    with pytest.raises(DataError) as err:
        Interactions.from_table(dup, timestamp="ts")
    assert "duplicate" in str(err.value)
    bad = df.astype({"ts": object})
    bad.loc[5, "ts"] = "yesterday-ish"
    with pytest.raises(InvalidInput) as err:
        Interactions.from_table(bad, timestamp="ts")
    assert err.value.field == "ts" and "yesterday-ish" in str(err.value)
    neg = df.copy()
    neg.loc[0, "rating"] = -1
    with pytest.raises(InvalidInput) as err:
        Interactions.from_table(neg, weight="rating")
    assert err.value.field == "rating"
    with pytest.raises(DataError):
        Interactions.from_table(df.iloc[:0])


def test_a_catalogue_smaller_than_k_is_refused() -> None:
    df = interactions()
    few = df[df["item"].isin(sorted(df["item"].unique())[:20])]
    data = Interactions.from_table(few)
    with pytest.raises(DataError, match="set k to at most 20") as err:
        fit_recommender(data, RecommenderSpec(k=21, candidates=("popularity",), trials=1))
    assert err.value.field == "k"
    fitted = fit_recommender(data, RecommenderSpec(k=20, candidates=("popularity",), trials=1))
    assert fitted.predictor.n_items == 20  # a top-k of the whole catalogue still trains


def test_iso_timestamps_are_parsed() -> None:
    df = interactions().head(20)
    df["ts"] = pd.to_datetime(df["ts"], unit="s", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    data = Interactions.from_table(df, timestamp="ts")
    assert data.timestamps is not None and data.timestamps.min() >= T0


def test_min_weight_keeps_strong_interactions() -> None:
    df = interactions()
    data = Interactions.from_table(df, weight="rating", min_weight=4)
    assert len(data) == int((df["rating"] >= 4).sum())


def test_spec_validation() -> None:
    with pytest.raises(InvalidInput) as err:
        RecommenderSpec(candidates=("svd",))
    assert err.value.field == "candidates"
    with pytest.raises(InvalidInput) as err:
        RecommenderSpec(split="time")
    assert err.value.field == "split"
    with pytest.raises(InvalidInput):
        RecommenderSpec(k=0)
    s = RecommenderSpec(timestamp="ts", candidates=["als"])
    assert RecommenderSpec.from_dict(s.to_dict()) == s
    assert not s.searched_confidence
    assert RecommenderSpec(weight="rating", confidence="search").searched_confidence
    with pytest.raises(InvalidInput) as err:
        RecommenderSpec(confidence="cubic")
    assert err.value.field == "confidence"
    with pytest.raises(InvalidInput):
        RecommenderSpec.from_dict({"colour": "red"})
    with pytest.raises(InvalidInput, match="as user does") as err:
        RecommenderSpec(user="customer", item="customer")
    assert err.value.field == "item"


# -- training ------------------------------------------------------------------------------------
@pytest.mark.parametrize("split", ["random", "time"])
def test_train_recommender_searches_and_beats_popularity(split: str) -> None:
    result = train_recommender(
        interactions(120, 40),
        spec(
            trials=8,
            split=split,
            candidates=("als", "bpr", "item_knn", "popularity"),
            confidence="search",
        ),
        item_attributes=item_table(),
        log=lambda _: None,
    )
    assert result.chosen.split()[0] in ("als", "bpr", "item_knn", "popularity")
    assert {row["candidate"] for row in result.leaderboard} == {
        "als",
        "bpr",
        "item_knn",
        "popularity",
    }
    assert result.test_metrics["ndcg@10"] > 0
    assert set(result.curves) == {result.chosen, "popularity (baseline)"}
    assert len(result.curves[result.chosen]["ndcg"]) == 20
    assert result.timings["final_fit_s"] < 10
    if split == "random":
        assert result.test_metrics["ndcg@10"] > result.baseline_metrics["ndcg@10"]
    from leptonic.evaluation.ranking_report import report_from_result

    page = report_from_result(result)
    assert page.count("data:image/png;base64,") == 4


# -- serving ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_recommend_excludes_seen_and_explains(kind: str) -> None:
    p = fitted(kind)
    seen = set(p.seen("u1"))
    recs = p.recommend("u1", 5)
    assert len(recs) == 5
    assert not seen & {item for item, _, _ in recs}
    scores = [s for _, s, _ in recs]
    assert scores == sorted(scores, reverse=True)
    if kind == "popularity":
        assert all(b is None for _, _, b in recs)
    elif kind == "item_knn":
        assert all(b is None or b in seen for _, _, b in recs)
    else:
        assert all(b in seen for _, _, b in recs)
    with_seen = p.recommend("u1", p.n_items, exclude_seen=False)
    assert len(with_seen) == p.n_items


def test_personal_answers_follow_the_users_group(als: RecommenderPredictor) -> None:
    for u in range(8):
        recs = als.recommend(f"u{u}", 3)
        groups = [int(item[1:]) % GROUPS for item, _, _ in recs]
        assert sum(g == u % GROUPS for g in groups) >= 2


@pytest.mark.parametrize("kind", KINDS)
def test_an_event_changes_the_next_answer(kind: str) -> None:
    p = fitted(kind)
    before = p.recommend("u0", 5)
    other = [f"i{i}" for i in range(1, 20, GROUPS)]  # 5 of the 9 items of group 1
    other = list(dict.fromkeys([*other, before[0][0]]))  # and the current favourite
    stamps = [T0 + 10**6 + j for j in range(len(other))]
    n = p.add_events("u0", other, weights=[5] * len(other), timestamps=stamps)
    assert n == len(other)
    after = p.recommend("u0", 5)
    assert after != before
    assert not {i for i, _, _ in after} & set(other)  # the new events are seen now
    assert set(other) <= set(p.seen("u0"))
    if kind in ("als", "bpr", "item_knn"):
        groups = [int(item[1:]) % GROUPS for item, _, _ in after]
        assert groups.count(1) >= 2  # the answer moved towards the new interest


def test_event_updates_als_vector_like_a_refit(als: RecommenderPredictor) -> None:
    code = als.user_code("u3")
    assert code is not None
    trained = als._view(code)[3].copy()  # type: ignore[union-attr]
    als.add_events("u3", ["i3"], timestamps=[T0 + 10**7])
    folded = als._view(code)[3]
    assert folded is not None
    cos = float(trained @ folded / np.linalg.norm(trained) / np.linalg.norm(folded))
    assert cos > 0.9  # one more event of the same taste barely moves the user


def test_unknown_user_gets_a_cold_start_answer(als: RecommenderPredictor) -> None:
    recs = als.recommend("stranger", 5)
    assert [s for _, s, _ in recs] == sorted(als.popularity.tolist(), reverse=True)[:5]
    assert all(b is None for _, _, b in recs)
    seg = als.recommend("stranger", 5, user_attributes={"group": "G2"})
    groups = [int(item[1:]) % GROUPS for item, _, _ in seg]
    assert groups.count(2) >= 4
    assert als.recommend("stranger", 3, user_attributes={"age": 30, "nothing": "x"})


def test_new_user_registered_then_warmed_up(als: RecommenderPredictor) -> None:
    with pytest.raises(InvalidInput) as err:
        als.add_events("newbie", ["i1"])
    assert err.value.field == "user"
    als.add_user("newbie", {"group": "G3"})
    cold = als.recommend("newbie", 4)
    assert [int(i[1:]) % GROUPS for i, _, _ in cold].count(3) >= 3
    als.add_events("newbie", ["i1", "i5", "i9"], timestamps=[T0, T0 + 1, T0 + 2])
    warm = als.recommend("newbie", 4)
    assert all(b in {"i1", "i5", "i9"} for _, _, b in warm)
    assert [int(i[1:]) % GROUPS for i, _, _ in warm].count(1) >= 3


def test_filters(als: RecommenderPredictor) -> None:
    recs = als.recommend("u0", 5, filter={"genre": "g2"})
    assert recs and all(int(i[1:]) % GROUPS == 2 for i, _, _ in recs)
    tagged = als.recommend("u0", 30, filter={"tags": "odd", "genre": ["g1", "g3"]})
    assert tagged and all(int(i[1:]) % 2 == 1 for i, _, _ in tagged)
    assert als.recommend("u0", 5, filter={"genre": "no-such-genre"}) == []
    with pytest.raises(InvalidInput) as err:
        als.recommend("u0", 5, filter={"colour": "red"})
    assert err.value.field == "filter"
    with pytest.raises(InvalidInput):
        als.recommend("u0", 5, filter={"genre": {"nested": 1}})


@pytest.mark.parametrize("kind", KINDS)
def test_similar_items(kind: str) -> None:
    p = fitted(kind)
    sims = p.similar_items("i4", 5)
    assert sims and "i4" not in {i for i, _ in sims}
    if kind != "popularity":
        assert sum(int(i[1:]) % GROUPS == 0 for i, _ in sims) >= 3
    with pytest.raises(InvalidInput) as err:
        p.similar_items("nope", 5)
    assert err.value.field == "item"


def test_new_items_get_vectors_from_events(als: RecommenderPredictor) -> None:
    als.add_items(["fresh"], attributes={"fresh": {"genre": "g0"}})
    assert als.n_items == 37 and als.item_code("fresh") == 36
    with pytest.raises(InvalidInput):
        als.add_items(["fresh"])
    for u in (0, 4, 8, 12):
        als.add_events(f"u{u}", ["fresh"], weights=[5], timestamps=[T0 + 5 * 10**6])
    sims = als.similar_items("fresh", 5)
    assert sum(int(i[1:]) % GROUPS == 0 for i, _ in sims) >= 3
    assert "fresh" in {i for i, _, _ in als.recommend("u16", 10, filter={"genre": "g0"})}


@pytest.mark.parametrize("k", [0, -3, 10**9, 41, "5", 2.0, True, None])
def test_bad_k(als: RecommenderPredictor, k: Any) -> None:
    with pytest.raises(InvalidInput) as err:
        als.recommend("u0", k)
    assert err.value.field == "k"


def test_bad_events(als: RecommenderPredictor) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"items": ["i-unknown"]}, "items"),
        ({"items": []}, "items"),
        ({"items": ["i1"], "timestamps": ["not a time"]}, "timestamps"),
        ({"items": ["i1"], "timestamps": [None]}, "timestamps"),
        ({"items": ["i1", "i2"], "timestamps": [T0]}, "timestamps"),
        ({"items": ["i1"], "weights": [-2.0]}, "weights"),
        ({"items": ["i1"], "weights": [float("nan")]}, "weights"),
        ({"items": ["i1", "i1"], "timestamps": [T0 + 9, T0 + 9]}, "items"),
    ]
    before = als.recommend("u0", 5)
    for kwargs, field in cases:
        with pytest.raises(InvalidInput) as err:
            als.add_events("u0", **kwargs)
        assert err.value.field == field, kwargs
    assert als.recommend("u0", 5) == before  # nothing was half-applied
    with pytest.raises(InvalidInput) as err:
        als.recommend({"a": 1}, 5)
    assert err.value.field == "user"


def test_duplicate_events_are_refused(als: RecommenderPredictor) -> None:
    df = interactions()
    first = df.iloc[0]
    with pytest.raises(InvalidInput) as err:  # a replay of a training event
        als.add_events(first["user"], [first["item"]], timestamps=[int(first["ts"])])
    assert err.value.field == "timestamps"
    als.add_events("u0", ["i9"], timestamps=["2024-05-01T12:00:00Z"])
    with pytest.raises(InvalidInput) as err:  # the same event posted twice
        als.add_events("u0", ["i9"], timestamps=["2024-05-01T12:00:00+00:00"])
    assert "duplicate" in str(err.value)
    als.add_events("u0", ["i9"], timestamps=["2024-05-02T12:00:00Z"])  # a repeat is fine


def test_holds_event_knows_what_it_learned(als: RecommenderPredictor) -> None:
    df = interactions()
    first = df.iloc[0]
    user, item = als.user_code(first["user"]), als.item_code(first["item"])
    assert user is not None and item is not None
    ts = float(first["ts"])  # each pair once in the data: its latest time
    assert als.holds_event(user, item, ts) is True
    assert als.holds_event(user, item, ts - 1) is None  # maybe an earlier training event
    assert als.holds_event(user, item, ts + 1) is False
    other = next(i for i in range(als.n_items) if als.item_ids[i] not in als.seen(first["user"]))
    assert als.holds_event(user, other, ts) is False
    als.add_events(first["user"], [als.item_ids[other]], timestamps=[T0 + 5])
    assert als.holds_event(user, other, T0 + 5) is True
    assert als.holds_event(user, other, T0 + 6) is False


def test_a_failed_fold_in_changes_nothing(
    als: RecommenderPredictor, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: Any) -> None:
        raise FloatingPointError("fold-in failed")

    unseen = [i for i in als.item_ids if i not in als.seen("u0")][:2]
    before = (als.popularity, als.seen("u0"), als.recommend("u0", 5))
    monkeypatch.setattr(als, "_fold_user", fail)
    with pytest.raises(FloatingPointError):
        als.add_events("u0", unseen, timestamps=[T0 + 7, T0 + 8])
    monkeypatch.undo()
    assert np.array_equal(als.popularity, before[0])
    assert (als.seen("u0"), als.recommend("u0", 5)) == before[1:]
    assert als.add_events("u0", unseen, timestamps=[T0 + 7, T0 + 8]) == 2  # not half-recorded


def test_predict_one_record(als: RecommenderPredictor) -> None:
    out = als.predict_one({"user": "u2", "k": 3, "filter": {"genre": "g2"}})
    assert len(out) == 3 and set(out[0]) == {"item", "score", "because"}
    with pytest.raises(InvalidInput):
        als.predict_one({"k": 3})
    with pytest.raises(InvalidInput):
        als.predict_one({"user": "u2", "exclude_seen": "yes"})


def test_concurrent_reads_during_writes(als: RecommenderPredictor) -> None:
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                assert len(als.recommend("u5", 5)) == 5
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for j in range(30):
        als.add_events("u5", [f"i{j % 6}"], timestamps=[T0 + 10**8 + j])
    stop.set()
    for t in threads:
        t.join()
    assert not errors


# -- artifacts -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_save_load_gives_identical_answers(kind: str) -> None:
    p = fitted(kind)
    p.add_user("late", {"group": "G1"})
    p.add_items(["new-item"], attributes={"new-item": {"genre": "g1"}})
    p.add_events("u7", ["i2", "new-item"], timestamps=[T0 + 10**6, T0 + 10**6 + 1])
    store = MemoryArtifactStore()
    key, sha = save_recommender(p, store)
    q = load_recommender(store, key, sha)
    for user in ("u0", "u7", "late", "stranger"):
        assert q.recommend(user, 6) == p.recommend(user, 6)
        assert q.recommend(user, 3, filter={"genre": "g1"}) == p.recommend(
            user, 3, filter={"genre": "g1"}
        )
    assert q.similar_items("i1", 4) == p.similar_items("i1", 4)
    with pytest.raises(InvalidInput):  # the history travelled too: duplicates still refused
        q.add_events("u7", ["i2"], timestamps=[T0 + 10**6])
    q.add_events("u0", ["i3"], timestamps=[T0 + 10**7])
    p.add_events("u0", ["i3"], timestamps=[T0 + 10**7])
    assert q.recommend("u0", 6) == p.recommend("u0", 6)


def test_tampered_artifacts_are_refused(als: RecommenderPredictor) -> None:
    import json

    store = MemoryArtifactStore()
    key, sha = save_recommender(als, store)
    with pytest.raises(UnsafeArtifact):
        load_recommender(store, key, "0" * 64)
    manifest = json.loads(store.get_bytes(key))
    factors_key = manifest["arrays"]["item_factors"]["key"]
    blob = bytearray(store.get_bytes(factors_key))
    blob[-1] ^= 0xFF
    store._blobs[factors_key] = bytes(blob)  # corrupt one file in place
    with pytest.raises(UnsafeArtifact) as err:
        load_recommender(store, key, sha)
    assert "item_factors" in str(err.value)
    # a manifest pointing at a pickled object array is refused too
    import io

    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    evil = buf.getvalue()
    import hashlib

    manifest["arrays"]["item_factors"] = {
        "key": store.put_bytes(evil),
        "sha256": hashlib.sha256(evil).hexdigest(),
        "dtype": "|O",
        "shape": [1],
    }
    data = json.dumps(manifest, sort_keys=True).encode()
    with pytest.raises(UnsafeArtifact):
        load_recommender(store, store.put_bytes(data), hashlib.sha256(data).hexdigest())


# -- real data -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def movielens() -> pd.DataFrame:
    if not ML100K.exists():
        pytest.skip(f"MovieLens 100k not found at {ML100K}; put the GroupLens ml-100k files there")
    return pd.read_csv(ML100K, sep="\t", names=["user", "item", "rating", "ts"])


def test_movielens_als_beats_popularity(movielens: pd.DataFrame) -> None:
    from leptonic.tasks.recsys import evaluate_recommender, split_interactions

    s = spec(candidates=("als",))
    data = Interactions.from_table(movielens, timestamp="ts", weight="rating")
    held = split_interactions(data, s, 0.2, seed=0)
    train, test = data.subset(~held), data.subset(held)
    als = fit_recommender(train, s, log=lambda _: None)
    pop = fit_recommender(train, spec(candidates=("popularity",)), log=lambda _: None)
    als_m, _, _ = evaluate_recommender(als.predictor, train, test, 10)
    pop_m, _, _ = evaluate_recommender(pop.predictor, train, test, 10)
    assert pop_m["ndcg@10"] == pytest.approx(0.22, abs=0.02)  # the published popularity figure
    assert als_m["ndcg@10"] > 0.38
    assert als_m["coverage@10"] > pop_m["coverage@10"]


def test_als_fold_in_matches_implicit_recalculate_user() -> None:
    import scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    from leptonic.tasks.recsys._foldin import als_solve

    data = Interactions.from_table(interactions(), weight="rating")
    conf = data.matrix()
    conf.data = (1.0 + np.log1p(conf.data)).astype(np.float32)
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=8, regularization=2.0, num_threads=1, random_state=0
        )
        model.fit(conf, show_progress=False)
        want = model.recalculate_user(3, sp.csr_matrix(conf[3]))
    y = model.item_factors.astype(np.float64)
    row = conf[3]
    got = als_solve(y.T @ y, model.item_factors[row.indices], row.data, 2.0)
    assert got == pytest.approx(want, rel=1e-3, abs=1e-4)


def test_predict_batch_table(als: RecommenderPredictor) -> None:
    table = als.predict_batch(pd.DataFrame({"user": ["u1", "stranger"]}), k=3)
    assert list(table.columns) == ["user", "rank", "item", "score", "because"]
    assert table["user"].tolist() == ["u1"] * 3 + ["stranger"] * 3
    assert table["rank"].tolist() == [1, 2, 3, 1, 2, 3]
    with pytest.raises(InvalidInput):
        als.predict_batch(pd.DataFrame({"customer": ["u1"]}))


def test_blended_als_sums_member_scores_and_folds_in() -> None:
    from leptonic.tasks.recsys._models import ALSCandidate, blend_als

    data = Interactions.from_table(interactions(), timestamp="ts", weight="rating")
    s = spec()
    cand = ALSCandidate()
    raw = data.matrix()
    a = cand.fit(raw, {**cand.default_params(s), "factors": 8}, s)
    b = cand.fit(raw, {**cand.default_params(s), "factors": 16, "unobserved_weight": 0.6}, s)
    blend = blend_als([a, b])
    wa, wb = (m["weight"] for m in blend.params["members"])
    want = wa * a.arrays["user_factors"] @ a.arrays["item_factors"].T
    want += wb * b.arrays["user_factors"] @ b.arrays["item_factors"].T
    got = blend.arrays["user_factors"] @ blend.arrays["item_factors"].T
    assert got == pytest.approx(want, rel=1e-4, abs=1e-5)
    p = RecommenderPredictor(
        blend,
        user_ids=data.user_ids,
        item_ids=data.item_ids,
        raw=raw,
        last_times=data.last_times(raw),
    )
    code = p.user_code("u3")
    assert code is not None
    trained = np.array(p._view(code)[3])
    p.add_events("u3", ["i3"], timestamps=[T0 + 10**7])
    folded = np.array(p._view(code)[3])
    for lo, hi in ((0, 8), (8, 24)):  # each member moves little
        x, y = trained[lo:hi], folded[lo:hi]
        assert float(x @ y / np.linalg.norm(x) / np.linalg.norm(y)) > 0.9
    store = MemoryArtifactStore()
    q = load_recommender(store, *save_recommender(p, store))
    assert q.recommend("u3", 5) == p.recommend("u3", 5)


def test_warm_started_fold_in_is_close_to_the_exact_solution() -> None:
    from leptonic.tasks.recsys._foldin import als_solve

    rng = np.random.default_rng(0)
    y = rng.normal(size=(300, 32)) * 0.3
    gram = y.T @ y
    items = rng.choice(300, 120, replace=False)
    conf = 1 + rng.random(120) * 4
    exact = als_solve(gram, y[items], conf, 5.0)
    near = exact + rng.normal(size=32).astype(np.float32) * 0.05 * np.linalg.norm(exact)
    warm = als_solve(gram, y[items], conf, 5.0, start=near, cg_steps=3)
    assert np.linalg.norm(warm - exact) < 0.2 * np.linalg.norm(near - exact)


# -- shortlists (serving) ------------------------------------------------------------------------
def _same_answers(a: list[Any], b: list[Any]) -> None:
    # lists come from a matrix-matrix product, answers from a matrix-vector one: the
    # last float32 bits may differ, so items tied to 1e-5 may come in either order
    def canonical(answer: list[Any]) -> list[Any]:
        return sorted(answer, key=lambda r: (-round(r[1], 5), str(r[0])))

    a, b = canonical(a), canonical(b)
    assert [(i, why) for i, _, why in a] == [(i, why) for i, _, why in b]
    assert [s for _, s, _ in a] == pytest.approx([s for _, s, _ in b], rel=1e-5, abs=1e-6)


ASKS: list[tuple[int, dict[str, Any] | None, bool]] = [
    (1, None, True),
    (5, None, True),
    (5, {"genre": "g1"}, True),
    (3, {"tags": "even"}, True),
    (20, None, True),  # more than listed: the catalogue is scored
    (5, None, False),  # seen items wanted: the catalogue is scored
]


@pytest.mark.parametrize("kind", ["als", "bpr"])
def test_shortlists_answer_like_scoring_the_catalogue(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain, listed = fitted(kind), fitted(kind)
    assert listed.precompute(size=8)
    for user in plain.user_ids:
        for k, flt, exclude in ASKS:
            want = plain.recommend(user, k, filter=flt, exclude_seen=exclude)
            _same_answers(listed.recommend(user, k, filter=flt, exclude_seen=exclude), want)

    def no_scoring(*args: Any) -> None:
        raise AssertionError("a listed user's answer scored the catalogue")

    monkeypatch.setattr(listed, "_scores", no_scoring)
    assert len(listed.recommend("u0", 5)) == 5
    assert len(listed.recommend("u1", 2, filter={"genre": "g1"})) == 2


def test_shortlists_follow_events_and_new_items(monkeypatch: pytest.MonkeyPatch) -> None:
    plain, listed, late = fitted("als"), fitted("als"), fitted("als")
    assert listed.precompute(size=8)
    for p in (plain, listed, late):
        p.add_events("u0", ["i1", "i2"], weights=[5, 5], timestamps=[T0 + 10**7, T0 + 10**7])
        p.add_items(["fresh"], attributes={"fresh": {"genre": "g0"}})
        for u in (4, 8, 12):
            p.add_events(f"u{u}", ["fresh"], weights=[5], timestamps=[T0 + 2 * 10**7])
    assert late.precompute(size=8)  # after the events: those users are listed as they are now
    got = listed.recommend("u16", 10, filter={"genre": "g0"})  # "fresh" is merged in
    assert "fresh" in {i for i, _, _ in got}
    _same_answers(got, plain.recommend("u16", 10, filter={"genre": "g0"}))
    for user in ("u0", "u4", "u16", "u20"):
        _same_answers(listed.recommend(user, 6), plain.recommend(user, 6))
        _same_answers(late.recommend(user, 6), plain.recommend(user, 6))
    assert {"i1", "i2"}.isdisjoint(i for i, _, _ in listed.recommend("u0", 30))

    def no_scoring(*args: Any) -> None:
        raise AssertionError("a listed user's answer scored the catalogue")

    monkeypatch.setattr(listed, "_scores", no_scoring)
    assert len(listed.recommend("u0", 5)) == 5  # relisted after its event
    code = listed.user_code("u0")
    assert listed._shortlists is not None and code is not None
    because = listed._shortlists._rows[code][2]  # type: ignore[index]
    assert (because[:6] >= 0).all()  # the answered entries are explained, once
    assert (because[6:] == UNEXPLAINED).all()  # the others when first answered


def test_a_list_is_used_only_with_the_state_it_came_from() -> None:
    p = fitted("als")
    assert p.precompute(size=8)
    short, code = p._shortlists, p.user_code("u0")
    assert short is not None and code is not None
    assert short.top(code, 3, origin=None) is not None  # as trained
    p.add_events("u0", ["i5"], timestamps=[T0 + 10**7])
    # a reader that read the state before the event does not get the new list
    assert short.top(code, 3, origin=None) is None
    assert short.top(code, 3, origin=p._online[code]) is not None


def test_explanations_follow_items_added_online() -> None:
    plain, listed = fitted("als"), fitted("als")
    assert listed.precompute(size=8)
    users = [f"u{u}" for u in range(0, 40, 2)]
    for p in (plain, listed):
        p.add_items(["fresh"], attributes={"fresh": {"genre": "g0"}})
    for n, user in enumerate(users):  # each event moves the new item's factors
        for p in (plain, listed):
            p.add_events(user, ["fresh"], weights=[5], timestamps=[T0 + 10**7 + n])
        listed.recommend(user, 5)  # explained and kept now...
    for user in users:  # ...and still right after everyone's events
        _same_answers(listed.recommend(user, 5), plain.recommend(user, 5))


def test_shortlists_only_for_factor_models_within_budget() -> None:
    assert not fitted("item_knn").precompute()
    assert not fitted("popularity").precompute()
    assert not fitted("als").precompute(budget=100)
    p = fitted("als")
    assert p.precompute(size=1000)  # more than the catalogue: every unseen item is listed
    short = p._shortlists
    assert short is not None and short.complete.any()
    code = p.user_code("u0")
    assert code is not None
    none_pass = np.zeros(p.n_items, dtype=bool)
    listed = short.top(code, 3, none_pass)
    assert listed is not None and listed[0].size == 0  # complete list: truly nothing left
    assert p.recommend("u0", 3, filter={"genre": "g9"}) == []
    q = fitted("als")
    assert q.precompute(size=2)
    assert q._shortlists is not None and q._shortlists.top(code, 3) is None  # too short: scored
    assert len(q.recommend("u0", 3)) == 3


# -- edge cases: users the model cannot score, items without factors, races -------------------
def _knn_without_neighbours() -> RecommenderPredictor:
    """Item-kNN over i0..i3 where only i1 and i2 are neighbours; user c saw i0 alone,
    user d i1 alone."""
    import scipy.sparse as sp

    from leptonic.tasks.recsys._data import Ids
    from leptonic.tasks.recsys._models import ModelState

    raw = sp.csr_matrix(
        np.array([[0, 1, 1, 1], [0, 1, 0, 1], [1, 0, 0, 0], [0, 1, 0, 0]], dtype=float)
    )
    sim = sp.csr_matrix(np.array([[0, 0, 0, 0], [0, 0, 0.5, 0], [0, 0.5, 0, 0], [0, 0, 0, 0]]))
    sim.sort_indices()
    arrays = {
        "sim_indptr": sim.indptr.astype(np.int64),
        "sim_indices": sim.indices.astype(np.int32),
        "sim_data": sim.data.astype(np.float32),
    }
    return RecommenderPredictor(
        ModelState("item_knn", {}, Confidence(), arrays),
        user_ids=Ids(["a", "b", "c", "d"], "str"),
        item_ids=Ids(["i0", "i1", "i2", "i3"], "str"),
        raw=raw,
    )


def test_item_knn_user_whose_items_have_no_neighbours_gets_the_cold_start() -> None:
    p = _knn_without_neighbours()
    # popularity: i1 (3 users), i3 (2), i0 and i2 (1); the seen i0 left out
    assert p.recommend("c", 2) == [("i1", 3.0, None), ("i3", 2.0, None)]
    assert p.recommend("c", 1, exclude_seen=False) == [("i1", 3.0, None)]
    code = p.user_code("c")
    assert code is not None
    assert p.recommend_codes(np.array([code]), 2).tolist() == [[1, 3]]
    assert p.recommend("d", 1) == [("i2", 0.5, "i1")]  # a user with neighbours: as before


@pytest.mark.parametrize("kind", ["als", "bpr"])
@pytest.mark.parametrize("listed", [False, True])
def test_a_user_whose_items_have_no_factors_gets_the_cold_start(kind: str, listed: bool) -> None:
    p = fitted(kind)
    if listed:
        assert p.precompute(size=10)
    p.add_items(["fresh"])
    p.add_user("newcomer")
    cold = p.recommend("newcomer", 5)
    p.add_events("newcomer", ["fresh"], timestamps=[T0 + 10**6])
    # the fresh item has no factors: nothing to score from, so the popular items, unexplained
    assert p.recommend("newcomer", 5) == cold
    assert all(b is None for _, _, b in cold) and cold[0][1] > 0
    code = p.user_code("newcomer")
    assert code is not None
    top = p.recommend_codes(np.array([code]), 5)[0]
    assert [p.item_ids[c] for c in top] == [i for i, _, _ in cold]


@pytest.mark.parametrize("kind", KINDS)
def test_an_item_without_factors_or_neighbours_has_no_similar_items(kind: str) -> None:
    p = fitted(kind)
    p.add_items(["fresh"])
    assert p.similar_items("fresh", 3) == []
    assert len(p.similar_items("i1", 3)) == 3


def _write_between_catalogue_and_state(
    p: RecommenderPredictor, monkeypatch: pytest.MonkeyPatch, item: str
) -> None:
    """Run a writer right after the next reader took the catalogue (checking ``k`` is the
    first thing a reader does with it): ``item`` added, and an event of u1 on it."""
    check_k = p._check_k

    def interleaved(k: Any, cat: Any) -> int:
        monkeypatch.setattr(p, "_check_k", check_k)
        p.add_items([item])
        p.add_events("u1", [item], timestamps=[T0 + 10**6 + len(p.seen("u1"))])
        return check_k(k, cat)

    monkeypatch.setattr(p, "_check_k", interleaved)


@pytest.mark.parametrize(("kind", "listed"), [("als", False), ("als", True), ("item_knn", False)])
def test_a_reader_leaves_out_items_added_after_it_took_the_catalogue(
    kind: str, listed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = fitted(kind)
    if listed:
        assert p.precompute(size=10)
    _write_between_catalogue_and_state(p, monkeypatch, "late")
    answer = p.recommend("u1", 5)
    assert len(answer) == 5 and all(i != "late" and b != "late" for i, _, b in answer)
    assert "late" in p.seen("u1")
    _write_between_catalogue_and_state(p, monkeypatch, "later")
    code = p.user_code("u1")
    assert code is not None
    top = p.recommend_codes(np.array([code]), 5)[0]
    assert (top >= 0).all() and p.item_code("later") not in top.tolist()


def test_popularity_similar_items_while_a_writer_adds_users() -> None:
    p = fitted("popularity")
    p.add_events("u1", ["i2"], timestamps=[T0 + 10**6])
    code = p.user_code("u1")
    assert code is not None
    real = p._online[code]
    wrote: list[int] = []

    class Interleaved:
        """u1's state, whose items start a writer adding a user on first read."""

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        @property
        def items(self) -> np.ndarray:
            if not wrote:
                wrote.append(1)
                p.add_user("late")
                p.add_events("late", ["i2"], timestamps=[T0 + 10**6])
            return real.items

    p._online[code] = Interleaved()  # type: ignore[assignment]
    similar = p.similar_items("i2", 3)  # reads u1's items while other users' are read
    assert wrote and len(similar) == 3 and p.user_code("late") in p._online


def test_add_events_takes_one_weight_and_arrays() -> None:
    p = fitted("als")
    code = p.user_code("u1")
    assert code is not None

    def raw_of(item: str) -> float:
        items, _, raw, _ = p._view(code)
        where = np.flatnonzero(items == p.item_code(item))
        return float(raw[where[0]]) if where.size else 0.0

    before = raw_of("i5")
    assert p.add_events("u1", "i5", weights=2.0, timestamps=T0 + 10**6) == 1
    assert p.add_events("u1", "i5", weights=np.float64(3.0), timestamps=T0 + 10**6 + 1) == 1
    assert p.add_events("u1", "i5", weights=np.array(1.5), timestamps=T0 + 10**6 + 2) == 1
    assert raw_of("i5") == pytest.approx(before + 6.5)
    assert p.add_events("u1", np.array(["i6", "i7"]), timestamps=[T0 + 10**6] * 2) == 2
    assert {"i6", "i7"} <= set(p.seen("u1"))
    with pytest.raises(InvalidInput) as info:
        p.add_events("u1", ["i6", "i7"], weights=2.0, timestamps=[T0 + 10**7] * 2)
    assert info.value.field == "weights"


def test_event_times_are_kept_once_per_user_not_copied_per_event() -> None:
    p = fitted("als")
    code, item = p.user_code("u1"), p.item_code("i5")
    assert code is not None and item is not None
    p.add_events("u1", ["i5"], timestamps=[T0 + 10**6])
    times = p._online[code].times
    for n in range(1, 5):
        p.add_events("u1", ["i5"], timestamps=[T0 + 10**6 + n])
        assert p._online[code].times is times  # one index, added to: no copy per event
    for n in range(5):  # every earlier event is still recognised and refused
        assert p.holds_event(code, item, T0 + 10**6 + n)
        with pytest.raises(InvalidInput, match="duplicate"):
            p.add_events("u1", ["i5"], timestamps=[T0 + 10**6 + n])
    assert not p.holds_event(code, item, T0 + 10**6 + 5)

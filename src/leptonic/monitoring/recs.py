"""Monitoring a recommendation endpoint: click-through, conversion, coverage, popularity drift.

Pure computation over the recommendations an endpoint served (its prediction
log: one record per request, the items in ``reasons``) and the events posted
to it (:class:`~leptonic.core.event.Event`):

- **click-through rate**: the share of served recommendation lists followed,
  within the attribution window, by a ``click`` of the same user on one of the
  recommended items; **conversion rate** the same for ``purchase``.
- **catalogue coverage**: the share of the catalogue recommended at least once.
- **popularity drift**: the PSI between the share of training interactions
  and the share of recent events falling in each popularity band. The bands
  split the items, most popular first, into ``bins`` groups holding equal
  shares of the training interactions; items unknown to training form one
  more band. A PSI above 0.2 says that users now interact with a differently
  popular part of the catalogue (a trend, a new range, a broken feed).

:func:`recommendation_monitoring` reads these from the store for an endpoint
(the one function here that touches storage).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from leptonic.core._time import checked_utc
from leptonic.core.endpoint import Prediction
from leptonic.core.event import Event
from leptonic.errors import InvalidInput, NotFound
from leptonic.governance.pii import hash_value
from leptonic.monitoring.drift import psi

if TYPE_CHECKING:
    from leptonic.storage.artifacts.base import ArtifactStore
    from leptonic.storage.metadata.base import MetadataStore

__all__ = [
    "RecommendationReport",
    "popularity_psi",
    "recommendation_monitoring",
    "recommendation_report",
]


@dataclass(frozen=True)
class RecommendationReport:
    """What a recommendation endpoint achieved over a window (rates None without data)."""

    window_start: datetime | None
    window_end: datetime | None
    recommendations: int
    users: int
    clicked: int
    converted: int
    click_through_rate: float | None
    conversion_rate: float | None
    distinct_items: int
    catalogue_size: int
    coverage: float | None
    events: int
    events_by_kind: dict[str, int]
    popularity_psi: float | None
    attribution_s: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (times as ISO 8601)."""
        out = asdict(self)
        for name in ("window_start", "window_end"):
            value = out[name]
            out[name] = value.isoformat() if value is not None else None
        return out


def _items_of(p: Prediction) -> list[str]:
    return [str(r["item"]) for r in p.reasons if isinstance(r, Mapping) and "item" in r]


def popularity_psi(
    training: Mapping[str, float], recent: Iterable[str], *, bins: int = 10
) -> float | None:
    """PSI of recent interactions over the training popularity bands (module docstring).

    ``training`` maps item → training interactions; ``recent`` lists the
    item of each recent event. None when either side is empty.
    """
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
        raise InvalidInput(f"bins must be a whole number ≥ 2, got {bins!r}", field="bins")
    counts = {str(k): float(v) for k, v in training.items() if float(v) > 0}
    recent = [str(i) for i in recent]
    total = sum(counts.values())
    if total <= 0 or not recent:
        return None
    ranked = sorted(counts, key=lambda i: (-counts[i], i))
    cumulative = np.cumsum([counts[i] for i in ranked]) / total
    # band b holds the items whose cumulative share (before them) is in [b/bins, (b+1)/bins)
    before = np.r_[0.0, cumulative[:-1]]
    band_of = dict(zip(ranked, np.minimum((before * bins).astype(int), bins - 1), strict=True))
    expected = np.zeros(bins + 1)
    for item, band in band_of.items():
        expected[band] += counts[item]
    actual = np.zeros(bins + 1)
    for item in recent:
        actual[band_of.get(item, bins)] += 1.0
    used = (expected > 0) | (actual > 0)
    return psi(expected[used], actual[used])


def recommendation_report(
    served: Sequence[Prediction],
    events: Sequence[Event],
    *,
    catalogue: Sequence[str],
    training_popularity: Mapping[str, float] | None = None,
    attribution: timedelta = timedelta(hours=1),
    window: tuple[datetime | None, datetime | None] = (None, None),
    click_kinds: Sequence[str] = ("click",),
    conversion_kinds: Sequence[str] = ("purchase",),
    bins: int = 10,
) -> RecommendationReport:
    """Click-through, conversion, coverage and popularity drift (module docstring).

    Parameters
    ----------
    served
        Logged recommendations (live route); ``entity`` is the user, ``at``
        when it was served and ``reasons`` the items.
    events
        Events of the endpoint; an event follows a recommendation when its
        ``received_at`` lies in ``[at, at + attribution]``. Events whose
        ``received_at`` is in ``window`` count for the popularity drift and
        the kind counts.
    catalogue
        Item ids of the served model (as text).
    training_popularity
        Item → training interactions, for the drift (None: no drift).
    """
    if attribution <= timedelta(0):
        raise InvalidInput("attribution must be a positive time span", field="attribution")
    start, end = window
    live = [p for p in served if p.route == "live"]
    by_user: dict[str, list[tuple[datetime, str, str]]] = {}
    for e in sorted(events, key=lambda e: (e.received_at, e.id)):
        by_user.setdefault(e.user, []).append((e.received_at, e.kind, e.item))
    clicks, conversions = set(click_kinds), set(conversion_kinds)
    clicked = converted = 0
    recommended: set[str] = set()
    for p in live:
        items = set(_items_of(p))
        recommended |= items
        mine = by_user.get(p.entity or "", [])
        lo = bisect.bisect_left(mine, (p.at,))
        hit_click = hit_conv = False
        for at, kind, item in mine[lo:]:
            if at > p.at + attribution:
                break
            if item in items:
                hit_click = hit_click or kind in clicks
                hit_conv = hit_conv or kind in conversions
        clicked += hit_click
        converted += hit_conv
    in_window = [
        e
        for e in events
        if (start is None or e.received_at >= start) and (end is None or e.received_at < end)
    ]
    kinds: dict[str, int] = {}
    for e in in_window:
        kinds[e.kind] = kinds.get(e.kind, 0) + 1
    catalogue_ids = {str(i) for i in catalogue}
    n = len(live)
    drift = (
        popularity_psi(training_popularity, (e.item for e in in_window), bins=bins)
        if training_popularity is not None
        else None
    )
    return RecommendationReport(
        window_start=start,
        window_end=end,
        recommendations=n,
        users=len({p.entity for p in live}),
        clicked=clicked,
        converted=converted,
        click_through_rate=clicked / n if n else None,
        conversion_rate=converted / n if n else None,
        distinct_items=len(recommended),
        catalogue_size=len(catalogue_ids),
        coverage=len(recommended & catalogue_ids) / len(catalogue_ids) if catalogue_ids else None,
        events=len(in_window),
        events_by_kind=dict(sorted(kinds.items())),
        popularity_psi=drift,
        attribution_s=attribution.total_seconds(),
    )


def _with_user_ids(
    metadata: MetadataStore, workspace: str, served: list[Prediction], events: list[Event]
) -> list[Prediction]:
    """The recommendations with the user id as ``entity`` where the log holds its salted
    hash (versions whose user ids are personal data), matched through the events' users."""
    from leptonic.serving.recs import user_is_pii

    hashed: set[tuple[str, int]] = set()
    for model, version in {(p.model, p.version) for p in served}:
        try:
            if user_is_pii(metadata, metadata.get_model_version(workspace, model, version)):
                hashed.add((model, version))
        except NotFound:  # a version deleted since: its entities may be hashes
            hashed.add((model, version))
    if not hashed:
        return served
    salt = metadata.get_workspace(workspace).pii_salt
    user_of = {hash_value(u, salt): u for u in {e.user for e in events}}
    return [
        replace(p, entity=user_of.get(p.entity or "", p.entity))
        if (p.model, p.version) in hashed
        else p
        for p in served
    ]


def recommendation_monitoring(
    metadata: MetadataStore,
    artifacts: ArtifactStore,
    workspace: str,
    endpoint: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    attribution: timedelta = timedelta(hours=1),
) -> RecommendationReport:
    """Click-through, conversion, coverage and popularity drift of an endpoint, from the store.

    Reads the recommendations logged in ``[since, until)``, the events
    received from ``since`` until ``until`` plus the attribution window, and
    the training popularity of the served (primary) model version; see
    :func:`recommendation_report`.
    """
    from leptonic.serving.recs import load_recommender_version

    since = None if since is None else checked_utc(since, "since")
    until = None if until is None else checked_utc(until, "until")
    route = metadata.get_endpoint(workspace, endpoint).routes[0]
    _, predictor = load_recommender_version(
        metadata, artifacts, workspace, route.model, route.version
    )
    served = metadata.list_predictions(
        workspace, endpoint, since=since, until=until, limit=None, newest_first=False
    )
    events = metadata.list_events(
        workspace,
        endpoint,
        since=since,
        until=None if until is None else until + attribution,
        limit=None,
    )
    ids = [str(i) for i in predictor.item_ids]
    return recommendation_report(
        _with_user_ids(metadata, workspace, served, events),
        events,
        catalogue=ids,
        training_popularity=dict(zip(ids, predictor.popularity.tolist(), strict=True)),
        attribution=attribution,
        window=(since, until),
    )

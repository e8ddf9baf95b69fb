"""Retraining a recommendation endpoint on the events it received.

An endpoint's events are durable (the ``events`` table). A retrain takes the
interactions the served version was trained on, appends the events that
arrived since (mapped onto the dataset's own columns and types), ingests
that as a new version of the same dataset (its ``source`` names the endpoint
and the arrival time of its newest event), and trains the served version's
recorded spec on it as an ordinary run that registers a new model version.
The version's signature carries that arrival time (``events_until``), so an
endpoint serving it replays only the events that came later. With
``promote``, the endpoint then serves the new version (a recommendation
endpoint serves one route), which a serving process picks up on its next
reload check.

It runs when asked (``leptonic endpoint retrain``, the API, a scheduler such as
cron), and ``min_new_events`` makes it a trigger: below that many new events
it does nothing. Events younger than the settle time (``SETTLE_S``) wait for
the next retrain; the result counts them (``settling``).

Event times are written at the precision of the dataset's time column (whole
seconds for an integer column), so two events of one user on one item close
together (a double click) can land on the same time, which the recommender
refuses as a duplicate event. They are merged into one row, as the recommender
itself sums repeated (user, item) events: their weights are summed where the
data has a weight column, otherwise one of them is kept.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from leptonic.core.endpoint import Route
from leptonic.core.uri import ObjectRef
from leptonic.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

    from leptonic.core.dataset import DatasetVersion
    from leptonic.core.event import Event
    from leptonic.platform import Platform, TrainOutcome

__all__ = [
    "EVENTS_ORIGIN",
    "SETTLE_S",
    "RecsRetrain",
    "append_events",
    "retrain_recommendation",
    "settling_note",
]

logger = logging.getLogger(__name__)

#: Seconds an accepted event may take to reach the store (the log writer's batching and
#: retries); a retrain leaves younger events for the next one.
SETTLE_S = 30.0

#: Keys of a dataset version's ``source`` written by a retrain.
EVENTS_ORIGIN = ("events_of", "events_until", "events_added", "base")


@dataclass(frozen=True)
class RecsRetrain:
    """What a recommendation retrain did.

    ``outcome`` is None when fewer than ``min_new_events`` events had arrived
    (nothing was ingested or trained); ``new_events`` counts them either way.
    ``settling`` counts the stored events younger than ``settle_s`` seconds, left
    for the next retrain; ``merged`` the new events merged into another row because
    they had the same user, item and time at the precision of the data's time column.
    """

    new_events: int
    outcome: TrainOutcome[Any] | None = None
    dataset_version: int | None = None
    promoted: bool = False
    settling: int = 0
    settle_s: float = SETTLE_S
    merged: int = 0

    def summary(self) -> dict[str, Any]:
        """What it did as JSON values: events (new, settling, merged), run, dataset and
        model versions, promoted."""
        mv = self.outcome.model_version if self.outcome is not None else None
        return {
            "new_events": self.new_events,
            "settling": self.settling,
            "settle_s": self.settle_s,
            "merged": self.merged,
            "run_id": self.outcome.run.id if self.outcome is not None else None,
            "dataset_version": self.dataset_version,
            "model": mv.model if mv else None,
            "model_version": mv.version if mv else None,
            "promoted": self.promoted,
        }


def settling_note(summary: Mapping[str, Any]) -> str:
    """``"; N event(s) younger than S s are left for the next retrain"`` for a retrain's
    :meth:`RecsRetrain.summary` that left events to settle, else ``""``."""
    settling = int(summary.get("settling") or 0)
    if not settling:
        return ""
    given = summary.get("settle_s")
    settle_s = SETTLE_S if given is None else float(given)
    return f"; {settling} event(s) younger than {settle_s:g} s are left for the next retrain"


def _since(base: DatasetVersion, workspace: str, endpoint: str) -> datetime | None:
    """Events after this arrival time are not in ``base`` (None: none of them are)."""
    source = base.source or {}
    if source.get("events_of") != f"{workspace}/{endpoint}" or not source.get("events_until"):
        return None
    until = datetime.fromisoformat(str(source["events_until"]))
    return until + timedelta(microseconds=1)


def _ids(values: list[str], like: pd.Series, column: str) -> Any:
    """Event ids (stored as text) in the dtype of the dataset's id column."""
    import pandas as pd

    if pd.api.types.is_integer_dtype(like.dtype):
        info = np.iinfo(like.dtype)
        out = []
        for v in values:
            try:
                number = int(v)
            except ValueError:
                number = None
            if number is None or not info.min <= number <= info.max:
                raise InvalidInput(
                    f"event id {v!r} does not fit the integer column {column!r} "
                    f"({like.dtype}) of the training data; retrain from a dataset whose ids "
                    "are text",
                    field=column,
                )
            out.append(number)
        return pd.Series(out, dtype=like.dtype)
    if pd.api.types.is_float_dtype(like.dtype):
        return pd.Series([float(v) for v in values], dtype=like.dtype)
    return pd.Series(values, dtype=like.dtype if like.dtype == object else "string")


def _times(seconds: list[float], like: pd.Series) -> Any:
    """Event times (epoch seconds) in the representation of the dataset's time column."""
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(like.dtype):
        stamps = pd.to_datetime(seconds, unit="s", utc=True)
        tz = getattr(like.dtype, "tz", None)
        stamps = stamps.tz_convert(tz) if tz is not None else stamps.tz_localize(None)
        return pd.Series(stamps).astype(like.dtype)
    if pd.api.types.is_integer_dtype(like.dtype):
        return pd.Series([round(s) for s in seconds], dtype=like.dtype)
    if pd.api.types.is_numeric_dtype(like.dtype):
        return pd.Series(seconds, dtype=like.dtype)
    return pd.Series([datetime.fromtimestamp(s, UTC).isoformat() for s in seconds])


def append_events(
    frame: pd.DataFrame,
    events: list[Event],
    *,
    user: str,
    item: str,
    timestamp: str | None,
    weight: str | None,
) -> pd.DataFrame:
    """``frame`` with one row per event appended, in the frame's columns and types.

    Columns other than the roles are left empty (missing) on event rows. An event
    whose user, item and time (at the precision of the ``timestamp`` column, e.g.
    whole seconds) are those of an earlier row or event is merged into that row, as
    the recommender sums repeated (user, item) events: with a ``weight`` column the
    weights are added up, without one the earlier row stands for both. The number
    merged is logged.
    """
    import pandas as pd

    if not events:
        return frame
    rows: dict[str, Any] = {
        user: _ids([e.user for e in events], frame[user], user),
        item: _ids([e.item for e in events], frame[item], item),
    }
    if timestamp is not None:
        rows[timestamp] = _times([e.at.timestamp() for e in events], frame[timestamp])
    if weight is not None:
        rows[weight] = pd.Series([e.weight for e in events]).astype(
            frame[weight].dtype if pd.api.types.is_float_dtype(frame[weight].dtype) else "float64"
        )
    added = pd.DataFrame(rows)
    out = pd.concat([frame, added], ignore_index=True)[list(frame.columns)]
    if timestamp is None:  # without times repeated events are no duplicates
        return out
    out, merged = _merge_collisions(
        out, len(frame), user=user, item=item, timestamp=timestamp, weight=weight
    )
    if merged:
        how = f"their {weight} summed" if weight is not None else "one row kept"
        logger.warning(
            "merged %d endpoint event(s) into rows with the same %s, %s and %s (%s)",
            merged,
            user,
            item,
            timestamp,
            how,
        )
    return out


def _merge_collisions(
    frame: pd.DataFrame,
    first_new: int,
    *,
    user: str,
    item: str,
    timestamp: str,
    weight: str | None,
) -> tuple[pd.DataFrame, int]:
    """Merge each row from ``first_new`` on into the first row with its (user, item,
    time); return the frame and how many rows were merged away.

    Times are compared as the recommender reads them (epoch seconds of the column's
    values), so a collision here is exactly what it would refuse as a duplicate.
    """
    import pandas as pd

    from leptonic.tasks.recsys._data import parse_timestamps

    keys = pd.DataFrame(
        {
            "u": frame[user].astype(str).to_numpy(),
            "i": frame[item].astype(str).to_numpy(),
            "t": parse_timestamps(frame[timestamp], field=timestamp),
        }
    )
    group = keys.groupby(["u", "i", "t"], sort=False, dropna=False).ngroup().to_numpy()
    repeat = keys.duplicated().to_numpy()
    # only groups an event joins: the training rows are left as they are
    touched = np.isin(group, group[first_new:][repeat[first_new:]])
    drop = repeat & touched
    if not drop.any():
        return frame, 0
    out = frame.copy()
    if weight is not None:
        sums = out[weight].groupby(group).sum(min_count=1)
        keep = touched & ~repeat
        out.loc[keep, weight] = sums.loc[group[keep]].to_numpy()
    return out.loc[~drop].reset_index(drop=True), int(drop.sum())


def retrain_recommendation(
    platform: Platform,
    workspace: str,
    name: str,
    *,
    min_new_events: int = 1,
    promote: bool = True,
    reason: str = "retrain",
    settle_s: float = SETTLE_S,
    progress: Callable[[int, int], None] | None = None,
    echo: Callable[[str], None] | None = None,
    run_id: str | None = None,
) -> RecsRetrain:
    """Retrain a recommendation endpoint's primary version on its data plus its new events.

    Events that arrived in the last ``settle_s`` seconds are left for the next
    retrain: a serving process writes accepted events to the store in the
    background, so the newest ones may not be there yet, and an event that
    arrived before the recorded cutoff but was stored after it would be in no
    model and never replayed.

    ``progress``, ``echo`` and ``run_id`` go to :meth:`Platform.train`, as a
    background job passes them: the run gets that id, reports each trial, and
    stops (ends cancelled or failed) when ``progress`` raises.

    Raises
    ------
    InvalidInput
        The endpoint does not serve a recommendation model trained by a
        recorded run, or ``min_new_events`` is negative.
    """
    import pyarrow.parquet as pq

    from leptonic.governance.schema import Contract
    from leptonic.tasks.recsys.spec import RecommenderSpec
    from leptonic.tasks.spec import spec_from_dict

    if (
        isinstance(min_new_events, bool)
        or not isinstance(min_new_events, int)
        or min_new_events < 0
    ):
        raise InvalidInput(
            f"min_new_events must be a whole number ≥ 0, got {min_new_events!r}",
            field="min_new_events",
        )
    if isinstance(settle_s, bool) or not isinstance(settle_s, int | float) or settle_s < 0:
        raise InvalidInput(f"settle_s must be seconds ≥ 0, got {settle_s!r}", field="settle_s")
    metadata = platform.metadata
    endpoint = metadata.get_endpoint(workspace, name)
    primary = endpoint.routes[0]
    mv = metadata.get_model_version(workspace, primary.model, primary.version)
    if mv.task != "recommendation":
        raise InvalidInput(
            f"endpoint {name!r} serves a {mv.task} model; this retrain is for recommendation "
            "endpoints",
            field="endpoint",
        )
    spec = spec_from_dict(platform.get_run(workspace, mv.run_id).spec)
    if not isinstance(spec, RecommenderSpec):  # a recommendation version has a recommender run
        raise InvalidInput(f"{mv.model} v{mv.version} was not trained by a recommendation run")
    ref = ObjectRef.parse(mv.dataset)
    base = platform.dataset_version(workspace, ref.name, ref.version)
    since = _since(base, workspace, name)
    settled = datetime.now(UTC) - timedelta(seconds=settle_s)
    events = metadata.list_events(workspace, name, since=since, until=settled, limit=None)
    young = settled if since is None else max(since, settled)
    settling = metadata.count_events(workspace, name, since=young)
    if len(events) < max(min_new_events, 1):
        return RecsRetrain(new_events=len(events), settling=settling, settle_s=float(settle_s))
    frame = pq.read_table(platform.artifacts.local_path(base.artifact_key)).to_pandas()
    merged = append_events(
        frame,
        events,
        user=spec.user,
        item=spec.item,
        timestamp=spec.timestamp,
        weight=spec.weight,
    )
    folded = len(frame) + len(events) - len(merged)
    if folded and echo is not None:
        echo(
            f"merged {folded} event(s) into rows with the same {spec.user}, {spec.item} and "
            f"{spec.timestamp}"
        )
    until = events[-1].received_at
    with tempfile.TemporaryDirectory(prefix="leptonic-retrain-") as tmp:
        path = Path(tmp) / f"{base.dataset}.parquet"
        merged.to_parquet(path, index=False)
        contract = (base.source or {}).get("contract")
        dv, _ = platform.add_data(
            workspace,
            path,
            name=base.dataset,
            contract=Contract.from_dict(contract) if contract else None,
            description=f"{base.dataset} v{base.version} and {len(events)} events of endpoint "
            f"{name}" + (f" ({folded} merged into rows at the same time)" if folded else ""),
            origin={
                "events_of": f"{workspace}/{name}",
                "events_until": until.isoformat(),
                "events_added": len(events),
                "base": str(ObjectRef(workspace, "dataset", base.dataset, base.version)),
            },
        )
    outcome = platform.train(
        workspace,
        dv.dataset,
        spec,
        version=dv.version,
        model_name=mv.model,
        progress=progress,
        echo=echo,
        run_id=run_id,
    )
    new = outcome.model_version
    platform.audit(
        "endpoint.retrain",
        workspace,
        [ObjectRef(workspace, "endpoint", name), ObjectRef(workspace, "run", outcome.run.id)],
        dataset=dv.dataset,
        dataset_version=dv.version,
        events=len(events),
        reason=reason,
    )
    promoted = False
    if promote and new is not None:
        platform.endpoints.set_routes(
            workspace,
            name,
            (Route(new.model, new.version, 100.0),),
            reason=reason,
            action="endpoint.promote",
        )
        promoted = True
    return RecsRetrain(
        new_events=len(events),
        outcome=outcome,
        dataset_version=dv.version,
        promoted=promoted,
        settling=settling,
        settle_s=float(settle_s),
        merged=folded,
    )

"""Outcomes posted for logged decisions, by request id or by entity key.

An outcome names the decision it belongs to by ``request_id``, or by
``entity`` (the endpoint's entity key value: the newest live decision for
that entity is meant). Labels are 1 for the bad outcome (default, fraud)
and 0 for the good one; booleans are accepted. A batch is all or nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from leptonic.core._time import checked_utc
from leptonic.core.endpoint import Feedback
from leptonic.errors import InvalidInput, NotFound
from leptonic.governance.pii import hash_value
from leptonic.serving.requests import entity_text
from leptonic.storage.metadata.base import MetadataStore

__all__ = ["MAX_FEEDBACK_BATCH", "parse_feedback", "record_feedback"]

#: The most outcomes one call may carry.
MAX_FEEDBACK_BATCH = 10_000

_FIELDS = frozenset({"request_id", "entity", "label", "at"})


def _label(value: Any, where: str) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float) and math.isfinite(value) and value in (0, 1):
        return float(value)
    raise InvalidInput(
        f"{where}.label must be 0 (good outcome) or 1 (bad outcome), got {value!r}",
        field=f"{where}.label",
    )


def _time(value: Any, where: str) -> datetime:
    if value is None:
        return datetime.now(UTC)
    if isinstance(value, datetime):
        return checked_utc(value, f"{where}.at")
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return checked_utc(parsed, f"{where}.at")
    raise InvalidInput(
        f"{where}.at must be an ISO 8601 time such as '2026-11-30T09:00:00Z', got {value!r}",
        field=f"{where}.at",
    )


def parse_feedback(payload: Any) -> list[dict[str, Any]]:
    """Check the shape of posted outcomes: one object or a list of them.

    Each is ``{"request_id": str | "entity": str, "label": 0|1, "at": iso time?}``.
    """
    items = payload if isinstance(payload, list) else [payload]
    if not items:
        raise InvalidInput("no outcomes given; send at least one", field="body")
    if len(items) > MAX_FEEDBACK_BATCH:
        raise InvalidInput(
            f"{len(items)} outcomes in one call; send at most {MAX_FEEDBACK_BATCH} per call",
            field="body",
        )
    out: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        where = f"[{i}]" if isinstance(payload, list) else "body"
        if not isinstance(item, dict):
            raise InvalidInput(
                f"{where} must be an object with request_id (or entity) and label", field=where
            )
        unknown = sorted(set(item) - _FIELDS)
        if unknown:
            raise InvalidInput(
                f"{where} has unknown field(s) {', '.join(unknown)}; "
                "an outcome has request_id or entity, label and optionally at",
                field=f"{where}.{unknown[0]}",
            )
        rid, entity = item.get("request_id"), item.get("entity")
        if (rid is None) == (entity is None):
            raise InvalidInput(
                f"{where} must name its decision by exactly one of request_id or entity",
                field=f"{where}.request_id",
            )
        if rid is not None and (not isinstance(rid, str | int) or isinstance(rid, bool)):
            raise InvalidInput(f"{where}.request_id must be a string", field=f"{where}.request_id")
        # the entity's text as decisions log it: 42, 42.0 and "42" name the same one
        entity = entity_text(entity, f"{where}.entity")
        if "label" not in item:
            raise InvalidInput(
                f"{where} has no label; send 1 for the bad outcome, 0 for the good one",
                field=f"{where}.label",
            )
        out.append(
            {
                "request_id": None if rid is None else str(rid),
                "entity": entity,
                "label": _label(item["label"], where),
                "at": _time(item.get("at"), where),
            }
        )
    return out


def record_feedback(
    metadata: MetadataStore,
    workspace: str,
    endpoint: str,
    items: Sequence[Mapping[str, Any]],
    *,
    pii_entity: bool = False,
) -> list[Feedback]:
    """Resolve outcomes (by entity key → the newest decision) and store them, all or none.

    ``items`` come from :func:`parse_feedback`. ``pii_entity``: the entity
    key holds personal data, so logged entities are hashed with the
    workspace salt and a posted entity is hashed the same way to match.
    """
    salt = metadata.get_workspace(workspace).pii_salt if pii_entity else ""
    records: list[Feedback] = []
    for i, item in enumerate(items):
        rid = item["request_id"]
        entity = item["entity"]
        if rid is None:
            key = hash_value(entity, salt) if pii_entity else entity
            latest = metadata.latest_prediction_for_entity(workspace, endpoint, key)
            if latest is None:
                raise NotFound(
                    f"no logged decision of endpoint {endpoint!r} for entity {entity!r} "
                    f"(outcome [{i}]); post outcomes after the decision, or by request_id",
                    field=f"[{i}].entity",
                )
            rid = latest.request_id
            entity = latest.entity
        records.append(
            Feedback(
                workspace=workspace,
                endpoint=endpoint,
                request_id=rid,
                label=item["label"],
                at=item["at"],
                entity=entity,
            )
        )
    metadata.add_feedback(records)
    return records

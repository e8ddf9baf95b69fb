"""The model registry: register versions with lineage and cards, move them through stages."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from leptonic.core.dataset import DatasetVersion
from leptonic.core.model_version import Model, ModelVersion, Stage, StageTransition
from leptonic.core.names import validate_name
from leptonic.core.run import Run
from leptonic.core.uri import ObjectRef
from leptonic.errors import Conflict, InvalidInput, NotFound
from leptonic.registry.model_card import render_model_card
from leptonic.registry.serialization import load_predictor, save_predictor
from leptonic.storage.artifacts.base import ArtifactStore
from leptonic.storage.metadata.base import MetadataStore
from leptonic.tasks.predictor import AnyPredictor, EnsemblePredictor, Predictor, TabularPredictor

__all__ = ["ModelRegistry", "check_model_task", "dataset_ref", "model_version_ref", "run_ref"]


def dataset_ref(v: DatasetVersion) -> ObjectRef:
    return ObjectRef(v.workspace, "dataset", v.dataset, v.version)


def run_ref(run: Run) -> ObjectRef:
    return ObjectRef(run.workspace, "run", run.id)


def model_version_ref(mv: ModelVersion) -> ObjectRef:
    return ObjectRef(mv.workspace, "model", mv.model, mv.version)


#: The request signature of a recommender (see ``RecommenderPredictor.predict_one``).
RECOMMENDER_INPUTS: tuple[dict[str, str], ...] = ({"name": "user", "type": "id"},)


def _signature(
    predictor: AnyPredictor,
) -> tuple[str, list[dict[str, str]], list[Any] | None, float | None]:
    """``(flavor, inputs, classes, threshold)`` of a predictor of any task."""
    if isinstance(predictor, TabularPredictor | EnsemblePredictor):
        return predictor.flavor, predictor.inputs, predictor.classes, predictor.threshold
    if predictor.task == "recommendation":
        from leptonic.tasks.recsys.predictor import RecommenderPredictor

        if isinstance(predictor, RecommenderPredictor):
            return predictor.kind, [dict(i) for i in RECOMMENDER_INPUTS], None, None
    from leptonic.tasks.textcls.predictor import TextPredictor

    if isinstance(predictor, TextPredictor):
        return predictor.flavor, predictor.inputs, list(predictor.classes), None
    raise InvalidInput(
        f"cannot register a {type(predictor).__name__}: the registry holds tabular models, "
        "recommenders and text classifiers trained by Leptonic",
        field="predictor",
    )


def _events_of(dataset: DatasetVersion) -> dict[str, Any]:
    """For data that holds an endpoint's events (a recommendation retrain): which
    endpoint and the arrival time of its newest event included."""
    source = dataset.source or {}
    if source.get("events_of") and source.get("events_until"):
        return {"events_of": source["events_of"], "events_until": source["events_until"]}
    return {}


def _same_task(existing: Model, task: str) -> None:
    if existing.task != task:
        raise Conflict(
            f"model {existing.name!r} holds {existing.task} models; this one is {task} — "
            "register it under another name",
            field="model",
        )


def check_model_task(metadata: MetadataStore, workspace: str, model: str, task: str) -> None:
    """Refuse, before any training, a model name that holds models of another task
    (:class:`Conflict`, field ``model``); a new name is fine."""
    try:
        existing = metadata.get_model(workspace, model)
    except NotFound:
        return
    _same_task(existing, task)


class ModelRegistry:
    """Registers fitted predictors and loads them back, once, from memory afterwards.

    Every task's models are registered the same way (bundle, digest, card,
    lineage). :meth:`load` returns tabular models, what decision endpoints and
    batch scoring serve; :meth:`load_any` returns a model of any task. The
    ``max_cached`` most recently used models stay in memory (a long-running
    server loads many versions over time; an endpoint keeps its own model).
    """

    def __init__(
        self, metadata: MetadataStore, artifacts: ArtifactStore, *, max_cached: int = 16
    ) -> None:
        if isinstance(max_cached, bool) or not isinstance(max_cached, int) or max_cached < 1:
            raise InvalidInput(
                f"max_cached must be a whole number of 1 or more, got {max_cached!r}",
                field="max_cached",
            )
        self.metadata = metadata
        self.artifacts = artifacts
        self.max_cached = max_cached
        self._cache: OrderedDict[tuple[str, str], AnyPredictor] = OrderedDict()
        self._lock = threading.Lock()

    def register(
        self,
        workspace: str,
        model: str,
        predictor: AnyPredictor,
        *,
        run: Run,
        dataset: DatasetVersion,
        metrics: dict[str, Any],
        excluded: dict[str, str],
        actor: str,
        description: str = "",
    ) -> ModelVersion:
        """Store the predictor's bundle and add a new ``candidate`` version."""
        validate_name(model, "model")
        flavor, inputs, classes, threshold = _signature(predictor)
        key, digest = save_predictor(predictor, self.artifacts)
        try:
            _same_task(self.metadata.get_model(workspace, model), predictor.task)
            create = None
        except NotFound:  # created with its first version: never left empty
            create = Model(workspace, model, predictor.task, description)
        card = render_model_card(
            model=model,
            version=None,
            workspace=workspace,
            task=predictor.task,
            flavor=flavor,
            run_id=run.id,
            dataset=str(dataset_ref(dataset)),
            dataset_rows=dataset.num_rows,
            dataset_hash=dataset.content_hash,
            metrics=metrics,
            inputs=inputs,
            excluded=excluded,
            threshold=threshold,
            created_by=actor,
            description=description,
        )
        mv = self.metadata.add_model_version(
            ModelVersion(
                workspace=workspace,
                model=model,
                version=0,
                task=predictor.task,
                flavor=flavor,
                run_id=run.id,
                dataset=str(dataset_ref(dataset)),
                artifact_key=key,
                artifact_digest=digest,
                signature={"inputs": inputs, "classes": classes, **_events_of(dataset)},
                metrics=metrics,
                model_card=card,
                created_by=actor,
            ),
            lineage_from=[run_ref(run)],
            create=create,
        )
        return mv

    def load(self, workspace: str, model: str, version: int) -> Predictor:
        """The tabular predictor of one version; loaded and verified once, then kept in memory.

        Raises
        ------
        InvalidInput
            The version is a recommender or a text classifier (use :meth:`load_any`).
        """
        predictor = self.load_any(workspace, model, version)
        if not isinstance(predictor, TabularPredictor | EnsemblePredictor):
            raise InvalidInput(
                f"{model} v{version} is a {predictor.task} model; this needs a tabular "
                "(binary, multiclass or regression) model — pick another model version",
                field="model",
            )
        return predictor

    def load_any(self, workspace: str, model: str, version: int) -> AnyPredictor:
        """The predictor of one version, of any task; loaded and verified once, then kept
        in memory and shared by every caller of this registry. Serving does not use this
        copy for recommenders: each endpoint loads its own (``load_recommender_version``),
        so its online updates stay with that endpoint and never reach this cache."""
        mv = self.metadata.get_model_version(workspace, model, version)
        cache_key = (mv.artifact_key, mv.artifact_digest)
        with self._lock:
            cached = self._cache.get(cache_key)
            if cached is not None:
                self._cache.move_to_end(cache_key)
                return cached
        predictor = load_predictor(self.artifacts, mv.artifact_key, mv.artifact_digest)
        with self._lock:
            predictor = self._cache.setdefault(cache_key, predictor)
            self._cache.move_to_end(cache_key)
            while len(self._cache) > self.max_cached:
                self._cache.popitem(last=False)  # the least recently used
        return predictor

    def promote(
        self, workspace: str, model: str, version: int, stage: str, *, actor: str, reason: str
    ) -> ModelVersion:
        """Move a version to ``stage`` (promote or demote), recording who and why."""
        try:
            target = Stage(stage)
        except ValueError:
            raise InvalidInput(
                f"unknown stage {stage!r}; use one of {', '.join(s.value for s in Stage)}",
                field="stage",
            ) from None
        if not reason.strip():
            raise InvalidInput("a stage change needs a reason (--reason '...')", field="reason")
        return self.metadata.set_stage(
            workspace, model, version, target, actor=actor, reason=reason.strip()
        )

    def history(
        self, workspace: str, model: str, version: int | None = None
    ) -> list[StageTransition]:
        """Stage changes, oldest first, of the model or one version (:class:`NotFound`
        for a version that does not exist, rather than no changes)."""
        if version is not None:
            self.metadata.get_model_version(workspace, model, version)
        return self.metadata.list_stage_transitions(workspace, model, version)

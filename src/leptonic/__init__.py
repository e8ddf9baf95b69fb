"""Leptonic: an open-source AI platform from governed data to real-time decisions.

The public API is what ``__all__`` lists; everything else is an
implementation detail that may change.
"""

from __future__ import annotations

from leptonic.config import Settings
from leptonic.core import (
    Column,
    ColumnRole,
    Dataset,
    DatasetVersion,
    Model,
    ModelVersion,
    ObjectRef,
    Run,
    RunStatus,
    Stage,
    StageTransition,
    Workspace,
)
from leptonic.errors import (
    AlreadyExists,
    ConfigError,
    Conflict,
    DataError,
    InvalidInput,
    InvalidName,
    LeptonicError,
    MissingExtra,
    NotFitted,
    NotFound,
    SchemaError,
    StoreError,
    TargetError,
    UnknownBackend,
    UnsafeArtifact,
)
from leptonic.platform import Platform
from leptonic.sdk import Client
from leptonic.tasks import TabularPredictor, TrainSpec

__version__ = "0.1.0"

__all__ = [
    "AlreadyExists",
    "Client",
    "Column",
    "ColumnRole",
    "ConfigError",
    "Conflict",
    "DataError",
    "Dataset",
    "DatasetVersion",
    "InvalidInput",
    "InvalidName",
    "LeptonicError",
    "MissingExtra",
    "Model",
    "ModelVersion",
    "NotFitted",
    "NotFound",
    "ObjectRef",
    "Platform",
    "Run",
    "RunStatus",
    "SchemaError",
    "Settings",
    "Stage",
    "StageTransition",
    "StoreError",
    "TabularPredictor",
    "TargetError",
    "TrainSpec",
    "UnknownBackend",
    "UnsafeArtifact",
    "Workspace",
    "__version__",
]

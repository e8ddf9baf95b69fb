"""Frozen records for the objects of the platform: workspaces, datasets, runs, models.

Records carry data only; services in other packages create and change them
through a metadata store.
"""

from __future__ import annotations

from leptonic.core.access import ApiToken, Membership, Role, User
from leptonic.core.audit import AuditEvent
from leptonic.core.dataset import Column, ColumnRole, Dataset, DatasetVersion
from leptonic.core.job import Job, JobStatus
from leptonic.core.model_version import Model, ModelVersion, Stage, StageTransition
from leptonic.core.names import validate_name
from leptonic.core.run import Run, RunStatus
from leptonic.core.uri import ObjectRef
from leptonic.core.workspace import Workspace

__all__ = [
    "ApiToken",
    "AuditEvent",
    "Column",
    "ColumnRole",
    "Dataset",
    "DatasetVersion",
    "Job",
    "JobStatus",
    "Membership",
    "Model",
    "ModelVersion",
    "ObjectRef",
    "Role",
    "Run",
    "RunStatus",
    "Stage",
    "StageTransition",
    "User",
    "Workspace",
    "validate_name",
]

from __future__ import annotations

import pyarrow as pa
import pytest

from leptonic.core.dataset import DatasetVersion
from leptonic.storage.artifacts.memory import MemoryArtifactStore
from leptonic.synthetic import applicants
from support import make_version


@pytest.fixture
def artifacts() -> MemoryArtifactStore:
    return MemoryArtifactStore()


@pytest.fixture(scope="session")
def applicant_table() -> pa.Table:
    return applicants(3000, seed=3)


@pytest.fixture
def applicant_version(applicant_table: pa.Table, artifacts: MemoryArtifactStore) -> DatasetVersion:
    return make_version(applicant_table, artifacts, "applicants")

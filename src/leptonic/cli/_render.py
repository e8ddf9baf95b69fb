"""Rich rendering helpers shared by the CLI commands."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

console = Console()
err_console = Console(stderr=True)


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


def plain(value: Any) -> Text:
    """``value`` as text shown as it is: brackets in user data are never Rich markup."""
    return Text(fmt(value))


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    whole: Collection[str] = (),
) -> Table:
    """A table of ``rows``; the title, column names and cells are shown as plain text
    (a cell ``[/b]`` or a column named ``[red]x`` is data, not markup). The columns
    named in ``whole`` (ids to copy) keep each value on one line; the others wrap."""
    cells = [[plain(v) for v in row] for row in rows]
    t = Table(title=None if title is None else Text(title), header_style="bold")
    for i, c in enumerate(columns):
        if c in whole:
            widest = max((r[i].cell_len for r in cells if i < len(r)), default=0)
            t.add_column(Text(str(c)), no_wrap=True, min_width=max(widest, len(str(c))))
        else:
            # a narrow terminal wraps values, never cuts them
            t.add_column(Text(str(c)), overflow="fold")
    for row in cells:
        t.add_row(*row)
    return t


def kv_table(title: str, data: Mapping[str, Any]) -> Table:
    return table(title, ["field", "value"], data.items())


@contextmanager
def progress_bar(description: str, total: int | None = None) -> Any:
    """A Rich progress bar; yields ``update(done, total)``."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    ) as progress:
        task = progress.add_task(description, total=total)

        def update(done: int, new_total: int | None = None) -> None:
            if new_total is not None:
                progress.update(task, total=new_total)
            progress.update(task, completed=done)

        yield update

"""``leptonic``: workspaces, data, training, runs and models from the terminal."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from leptonic.cli._admin import register_admin_commands
from leptonic.cli._endpoints import endpoint_app
from leptonic.cli._render import console, err_console, kv_table, progress_bar, table
from leptonic.config import Settings
from leptonic.errors import InvalidInput, LeptonicError
from leptonic.platform import Platform

if TYPE_CHECKING:
    from leptonic.core.run import Run
    from leptonic.sdk import Client
    from leptonic.tasks.recsys.spec import RecommenderSpec
    from leptonic.tasks.spec import TrainSpec
    from leptonic.tasks.textcls.spec import TextClassificationSpec

__all__ = ["app", "main"]

app = typer.Typer(
    help="Leptonic: governed data → features → training → evaluation → registry.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
workspace_app = typer.Typer(help="Workspaces (one per business line).", no_args_is_help=True)
data_app = typer.Typer(help="Governed datasets and their versions.", no_args_is_help=True)
runs_app = typer.Typer(help="Training runs.", no_args_is_help=True)
models_app = typer.Typer(help="Registered models, versions and stages.", no_args_is_help=True)
member_app = typer.Typer(
    help="Members of a workspace and their roles (viewer, developer, admin).",
    no_args_is_help=True,
)
workspace_app.add_typer(member_app, name="member")
app.add_typer(workspace_app, name="workspace")
app.add_typer(data_app, name="data")
app.add_typer(runs_app, name="runs")
app.add_typer(models_app, name="models")
register_admin_commands(app)
app.add_typer(endpoint_app, name="endpoint")

Workspace = Annotated[str, typer.Option("--workspace", "-w", help="Workspace name.")]
Version = Annotated[
    int | None, typer.Option("--version", "-v", help="Version (latest if omitted).")
]


def _platform() -> Platform | Client:
    """The local platform, or the server named by LEPTONIC_URL when it is set."""
    settings = Settings.from_environ()
    if settings.url:
        from leptonic.sdk import Client

        return Client.from_settings(settings)
    return Platform.open(settings)


# -- workspaces ---------------------------------------------------------------
@workspace_app.command("create")
def workspace_create(
    name: str, description: Annotated[str, typer.Option(help="What it is for.")] = ""
) -> None:
    """Create a workspace."""
    with _platform() as lp:
        ws = lp.create_workspace(name, description)
    console.print(f"created workspace [bold]{ws.name}[/bold]")


@workspace_app.command("list")
def workspace_list() -> None:
    """List workspaces."""
    with _platform() as lp:
        rows = [(w.name, w.description, w.created_at) for w in lp.list_workspaces()]
    console.print(table("Workspaces", ["name", "description", "created"], rows))


@member_app.command("set")
def member_set(
    workspace: Annotated[str, typer.Argument(help="Workspace name.")],
    user: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[str, typer.Argument(help="viewer, developer or admin.")],
    raw_pii: Annotated[
        bool, typer.Option("--raw-pii", help="Also grant unmasked personal data.")
    ] = False,
) -> None:
    """Give a user a role in a workspace, replacing any role they had there."""
    with _platform() as lp:
        member = lp.set_member(workspace, user, role, raw_pii=raw_pii)
    pii = " with raw personal data" if member.raw_pii else ""
    console.print(
        f"{member.user} is now {member.role.value} in {member.workspace}{pii}", markup=False
    )


@member_app.command("remove")
def member_remove(
    workspace: Annotated[str, typer.Argument(help="Workspace name.")],
    user: Annotated[str, typer.Argument(help="User name.")],
) -> None:
    """Take a user's role in a workspace away."""
    with _platform() as lp:
        lp.remove_member(workspace, user)
    console.print(f"{user} is no longer a member of {workspace}", markup=False)


@member_app.command("list")
def member_list(workspace: Annotated[str, typer.Argument(help="Workspace name.")]) -> None:
    """List a workspace's members and their roles."""
    with _platform() as lp:
        lp.get_workspace(workspace)  # an unknown workspace is an error, not an empty list
        rows = [
            (m.user, m.role.value, m.raw_pii, m.created_at)
            for m in lp.memberships(workspace=workspace)
        ]
    console.print(table(f"Members of {workspace}", ["user", "role", "raw pii", "since"], rows))


# -- data ---------------------------------------------------------------------
@data_app.command("add")
def data_add(
    file: Annotated[Path, typer.Argument(help="CSV, Parquet or JSON-lines file.")],
    workspace: Workspace,
    name: Annotated[str | None, typer.Option(help="Dataset name (default: file name).")] = None,
    contract: Annotated[Path | None, typer.Option(help="Contract file (TOML or JSON).")] = None,
    target: Annotated[str | None, typer.Option(help="Target column.")] = None,
    delimiter: Annotated[str | None, typer.Option(help="CSV delimiter.")] = None,
    encoding: Annotated[str | None, typer.Option(help="Text encoding (default utf-8).")] = None,
    fmt_: Annotated[str | None, typer.Option("--format", help="csv, parquet or jsonl.")] = None,
) -> None:
    """Ingest a file as an immutable dataset version."""
    size = file.stat().st_size if file.is_file() else None
    with _platform() as lp, progress_bar(f"ingesting {file.name} (bytes)", size) as update:
        version, created = lp.add_data(
            workspace,
            file,
            name=name,
            contract=contract,
            target=target,
            delimiter=delimiter,
            encoding=encoding,
            fmt=fmt_,
            progress=lambda rows, nbytes: update(nbytes),
        )
    what = "new version" if created else "unchanged: same content as"
    console.print(
        f"{what} [bold]{version.dataset}[/bold] v{version.version} "
        f"({version.num_rows} rows × {version.num_columns} columns, "
        f"sha256 {version.content_hash[:12]})"
    )
    _print_issues(version.quality)


def _print_issues(quality: dict[str, Any]) -> None:
    issues = quality.get("issues", [])
    if issues:
        console.print(
            table(
                "Quality issues",
                ["severity", "column", "check", "message"],
                [
                    (i.get("severity"), i.get("column"), i.get("check"), i.get("message"))
                    for i in issues
                ],
            )
        )


@data_app.command("list")
def data_list(workspace: Workspace) -> None:
    """List datasets and their latest versions."""
    with _platform() as lp:
        rows = []
        for ds in lp.list_datasets(workspace):
            versions = lp.dataset_versions(workspace, ds.name)
            last = versions[-1] if versions else None
            rows.append(
                (
                    ds.name,
                    len(versions),
                    last.num_rows if last else None,
                    last.created_at if last else None,
                )
            )
    console.print(table(f"Datasets in {workspace}", ["name", "versions", "rows", "latest"], rows))


@data_app.command("show")
def data_show(name: str, workspace: Workspace, version: Version = None) -> None:
    """Schema, roles, PII map and lineage of a dataset version."""
    with _platform() as lp:
        v = lp.dataset_version(workspace, name, version)
    console.print(
        kv_table(
            f"{v.dataset} v{v.version}",
            {
                "rows": v.num_rows,
                "columns": v.num_columns,
                "size (bytes)": v.size_bytes,
                "sha256": v.content_hash,
                "source": v.source.get("path"),
                "source sha256": v.source.get("sha256"),
                "created": f"{v.created_at} by {v.created_by}",
            },
        )
    )
    console.print(
        table(
            "Schema",
            ["column", "type", "role", "pii", "nullable"],
            [(c.name, c.dtype, c.role.value, c.pii, c.nullable) for c in v.columns],
        )
    )


@data_app.command("profile")
def data_profile(name: str, workspace: Workspace, version: Version = None) -> None:
    """The quality report of a dataset version."""
    with _platform() as lp:
        v = lp.dataset_version(workspace, name, version)
    q = v.quality
    cols = q.get("columns", {})
    rows = []
    for col, s in cols.items():
        rows.append(
            (
                col,
                s.get("missing_rate"),
                s.get("distinct"),
                s.get("min"),
                s.get("max"),
                s.get("mean"),
                s.get("outlier_rate"),
            )
        )
    console.print(
        table(
            f"Profile of {v.dataset} v{v.version} ({q.get('rows', v.num_rows)} rows, "
            f"{q.get('duplicate_rows', 0)} duplicate rows)",
            ["column", "missing", "distinct", "min", "max", "mean", "IQR outliers"],
            rows,
        )
    )
    if q.get("target_balance"):
        console.print(kv_table("Target balance", q["target_balance"]))
    _print_issues(q)


@data_app.command("preview")
def data_preview(
    name: str,
    workspace: Workspace,
    version: Version = None,
    limit: Annotated[int, typer.Option(help="Rows to show.")] = 10,
    raw: Annotated[bool, typer.Option(help="Show PII unmasked.")] = False,
) -> None:
    """The first rows, with PII masked."""
    with _platform() as lp:
        t = lp.preview(workspace, name, version, limit=limit, raw=raw)
    rows = t.to_pylist()
    console.print(
        table(f"{name} (first {len(rows)} rows)", t.column_names, [list(r.values()) for r in rows])
    )


# -- training -------------------------------------------------------------------
#: CLI option of each spec field, for messages.
_OPTION = {"timeout_s": "--timeout", "text": "--text-column"}


@app.command("train")
def train(
    workspace: Workspace,
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="Dataset name.")],
    target: Annotated[
        str | None, typer.Option(help="Column to predict (binary, multiclass, regression).")
    ] = None,
    version: Version = None,
    task: Annotated[
        str | None,
        typer.Option(
            help="binary (default), multiclass, regression, recommendation or text-classification."
        ),
    ] = None,
    candidates: Annotated[
        str | None, typer.Option(help="Model families, comma-separated (default: all).")
    ] = None,
    trials: Annotated[int | None, typer.Option(help="Search trials in all.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Search time budget, seconds.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    split: Annotated[
        str | None, typer.Option(help="auto, holdout or cv; recommendation: random or time.")
    ] = None,
    positive_label: Annotated[str | None, typer.Option(help="Event class (binary).")] = None,
    exclude: Annotated[
        str | None, typer.Option(help="Comma-separated columns to leave out.")
    ] = None,
    allow_pii: Annotated[
        str | None, typer.Option(help="Comma-separated PII columns to use.")
    ] = None,
    user: Annotated[str | None, typer.Option(help="User id column (recommendation).")] = None,
    item: Annotated[str | None, typer.Option(help="Item id column (recommendation).")] = None,
    timestamp: Annotated[
        str | None, typer.Option(help="Event time column (recommendation).")
    ] = None,
    weight: Annotated[
        str | None, typer.Option(help="Rating or quantity column (recommendation).")
    ] = None,
    text_column: Annotated[
        str | None, typer.Option("--text-column", help="Text column (text-classification).")
    ] = None,
    label: Annotated[str | None, typer.Option(help="Label column (text-classification).")] = None,
    mode: Annotated[
        str | None, typer.Option(help="tfidf, frozen, lora or full (text-classification).")
    ] = None,
    spec_file: Annotated[
        Path | None,
        typer.Option("--spec", help="JSON file of further spec fields; options given here win."),
    ] = None,
    model: Annotated[str | None, typer.Option(help="Register the result as this model.")] = None,
) -> None:
    """Train, evaluate and (with --model) register a model of any task."""

    def split_list(text: str | None) -> tuple[str, ...] | None:
        return None if text is None else tuple(x.strip() for x in text.split(",") if x.strip())

    given = {
        "target": target,
        "candidates": split_list(candidates),
        "trials": trials,
        "timeout_s": timeout,
        "seed": seed,
        "split": split,
        "positive_label": positive_label,
        "exclude": split_list(exclude),
        "allow_pii": split_list(allow_pii),
        "user": user,
        "item": item,
        "timestamp": timestamp,
        "weight": weight,
        "text": text_column,
        "label": label,
        "mode": mode,
    }
    spec = _train_spec(spec_file, task, {k: v for k, v in given.items() if v is not None})
    with _platform() as lp:
        if isinstance(lp, Platform):
            with progress_bar(_progress_label(spec), getattr(spec, "trials", None)) as update:
                outcome = lp.train(
                    workspace,
                    dataset,
                    spec,
                    version=version,
                    model_name=model,
                    progress=lambda done, total: update(done, total),
                )
            _print_outcome(outcome)
            return
        job = lp.start_run(workspace, dataset, spec, version=version, model_name=model)
        run_id = job.run_id or ""
        err_console.print(f"run {run_id} queued on the server (job {job.id})", highlight=False)
        try:
            with progress_bar(_progress_label(spec), getattr(spec, "trials", None)) as update:
                run = lp.wait_for_run(
                    workspace, run_id, progress=lambda done, total: update(done, total)
                )
        except KeyboardInterrupt:  # the server's job would run on: stop it too
            with contextlib.suppress(LeptonicError):
                lp.cancel_run(workspace, run_id)
            err_console.print(f"cancelled run {run_id} on the server", highlight=False)
            raise typer.Exit(130) from None
        if run.status.value != "succeeded":
            console.print(
                f"run [bold]{run.id}[/bold]: {run.status.value} {escape(run.error or '')}"
            )
            raise typer.Exit(1)
        # the job's result names the version it registered, as a local outcome does
        done = lp.get_job(workspace, job.id).result
        mv = None
        if done.get("model_version") is not None:
            mv = lp.model_version(workspace, str(done["model"]), int(done["model_version"]))
    _print_summary(run, None, mv)


def _train_spec(
    spec_file: Path | None, task: str | None, given: dict[str, Any]
) -> TrainSpec | RecommenderSpec | TextClassificationSpec:
    """The spec from the ``--spec`` file, the options given (which win) and the task."""
    import dataclasses
    import json

    from leptonic.tasks.spec import ALL_TASKS, TrainSpec, spec_from_dict

    data: dict[str, Any] = {}
    if spec_file is not None:
        try:
            data = json.loads(spec_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidInput(
                f"cannot read the spec file {spec_file}: {exc}; give a JSON object of spec "
                'fields, e.g. {"trials": 10}',
                field="spec",
            ) from None
        if not isinstance(data, dict):
            raise InvalidInput(f"the spec file {spec_file} must hold a JSON object", field="spec")
    data["task"] = task or data.get("task") or "binary"
    cls: Any = TrainSpec
    if data["task"] == "recommendation":
        from leptonic.tasks.recsys.spec import RecommenderSpec

        cls = RecommenderSpec
    elif data["task"] == "text-classification":
        from leptonic.tasks.textcls.spec import TextClassificationSpec

        cls = TextClassificationSpec
    known = {f.name for f in dataclasses.fields(cls)}
    misplaced = [name for name in given if name not in known]
    if misplaced and data["task"] in ALL_TASKS:
        option = _OPTION.get(misplaced[0], "--" + misplaced[0].replace("_", "-"))
        raise InvalidInput(f"{option} does not apply to --task {data['task']}", field=misplaced[0])
    return spec_from_dict({**data, **given})


def _progress_label(spec: Any) -> str:
    return "training trials" if hasattr(spec, "trials") else "training"


def _task_of(spec: Any) -> str:
    from leptonic.tasks.spec import spec_to_dict

    return str(spec_to_dict(spec)["task"])


def _print_outcome(outcome: Any) -> None:
    """A local training outcome: its candidates, metrics, choice and registered version."""
    leaderboard = None
    if outcome.run.spec.get("task") != "text-classification":
        leaderboard = outcome.result.leaderboard
    _print_summary(outcome.run, leaderboard, outcome.model_version)


def _print_summary(run: Run, leaderboard: list[dict[str, Any]] | None, mv: Any) -> None:
    """A succeeded run's summary, from what the run records (a run trained here or on a
    server alike): the candidates (given ``leaderboard``), the metrics of each split,
    the choice and the model version ``mv`` it registered (None: none)."""
    task = run.spec.get("task")
    metrics = run.metrics
    if task == "text-classification":
        keys: tuple[str, ...] = ("accuracy", "macro_f1", "weighted_f1")
        splits = [(name, metrics.get(name)) for name in ("test", "baseline_tfidf")]
        chosen = run.params.get("mode")
    else:
        if leaderboard:
            console.print(
                table(
                    "Candidates",
                    ["candidate", "trials", "best validation score", "seconds"],
                    [
                        (r["candidate"], r["trials"], r["best_score"], r["seconds"])
                        for r in leaderboard
                    ],
                )
            )
        splits = [("valid", metrics.get("valid")), ("test", metrics.get("test"))]
        if task == "recommendation":
            keys = tuple(k for k in metrics.get("test") or {} if "@" in k)
            splits.append(("test (popularity)", metrics.get("baseline_popularity")))
        else:
            keys = ("auc", "ks", "gini", "pr_auc", "brier", "accuracy", "macro_f1", "rmse", "r2")
        chosen = run.params.get("candidate")
    keys = tuple(k for k in keys if any(m and m.get(k) is not None for _, m in splits))
    rows = [(name, *[m.get(k) for k in keys]) for name, m in splits if m]
    console.print(table("Metrics", ["split", *keys], rows))
    choice = f", chose {escape(str(chosen))}" if chosen is not None else ""
    console.print(f"run [bold]{run.id}[/bold]: {run.status.value}{choice}")
    if mv is not None:
        console.print(
            f"registered [bold]{escape(mv.model)}[/bold] v{mv.version} ({mv.stage.value})"
        )


# -- runs -----------------------------------------------------------------------
@runs_app.command("list")
def runs_list(
    workspace: Workspace,
    status: Annotated[str | None, typer.Option(help="Only runs in this status.")] = None,
    limit: Annotated[int, typer.Option(help="How many.")] = 20,
) -> None:
    """List runs, newest first."""
    with _platform() as lp:
        runs = lp.list_runs(workspace, status=status, limit=limit)
    rows = [
        (
            r.id[:12],
            r.status.value,
            r.params.get("candidate"),
            r.metrics.get("test", {}).get("auc"),
            r.created_at,
            r.created_by,
        )
        for r in runs
    ]
    console.print(
        table(f"Runs in {workspace}", ["id", "status", "model", "test auc", "created", "by"], rows)
    )


@runs_app.command("show")
def runs_show(run_id: str, workspace: Workspace) -> None:
    """Spec, parameters, metrics, timings and artifacts of a run."""
    with _platform() as lp:
        r = lp.get_run(workspace, run_id)
    console.print(
        kv_table(
            f"Run {r.id}",
            {
                "status": r.status.value,
                "inputs": ", ".join(r.inputs),
                "seed": r.seed,
                "created": f"{r.created_at} by {r.created_by}",
                "finished": r.finished_at,
                "error": r.error,
                "params": r.params,
                "timings": r.timings,
                "artifacts": ", ".join(sorted(r.artifacts)),
            },
        )
    )
    for split_name, m in r.metrics.items():
        flat = {k: v for k, v in m.items() if not isinstance(v, dict | list)}
        console.print(kv_table(f"{split_name} metrics", flat))


@runs_app.command("report")
def runs_report(
    run_id: str,
    workspace: Workspace,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="HTML file, or a folder to write report-<run>.html in."
        ),
    ] = None,
) -> None:
    """Write a run's HTML report to a file."""
    with _platform() as lp:
        run = lp.get_run(workspace, run_id)
        out = output or Path(f"report-{run.id[:12]}.html")
        if out.is_dir():
            out = out / f"report-{run.id[:12]}.html"
        path = lp.write_report(workspace, run.id, out)
    console.print(f"report written to [bold]{escape(str(path.resolve()))}[/bold]")


@runs_app.command("log")
def runs_log(run_id: str, workspace: Workspace) -> None:
    """Print a run's log."""
    with _platform() as lp:
        console.print(
            lp.run_artifact(workspace, run_id, "log.txt").decode("utf-8"),
            markup=False,
            highlight=False,
        )


# -- models ---------------------------------------------------------------------
@models_app.command("list")
def models_list(workspace: Workspace) -> None:
    """List models with their versions and stages."""
    with _platform() as lp:
        rows = []
        for m in lp.list_models(workspace):
            versions = lp.model_versions(workspace, m.name)
            stages = ", ".join(f"v{v.version}:{v.stage.value}" for v in versions[-5:])
            rows.append((m.name, m.task, len(versions), stages))
    console.print(table(f"Models in {workspace}", ["name", "task", "versions", "stages"], rows))


@models_app.command("show")
def models_show(
    name: str,
    workspace: Workspace,
    version: Version = None,
    card: Annotated[bool, typer.Option(help="Print the model card.")] = False,
) -> None:
    """A model version: stage, metrics, lineage and stage history."""
    with _platform() as lp:
        versions = lp.model_versions(workspace, name)
        if not versions:
            raise LeptonicError(f"model {name!r} has no versions yet")
        mv = lp.model_version(
            workspace, name, version if version is not None else versions[-1].version
        )
        history = lp.stage_history(workspace, name, mv.version)
    console.print(
        kv_table(
            f"{mv.model} v{mv.version}",
            {
                "stage": mv.stage.value,
                "task": mv.task,
                "flavor": mv.flavor,
                "run": mv.run_id,
                "dataset": mv.dataset,
                "artifact": mv.artifact_key,
                "test auc": mv.metrics.get("test", {}).get("auc"),
                "created": f"{mv.created_at} by {mv.created_by}",
            },
        )
    )
    console.print(
        table(
            "Stage history",
            ["when", "from", "to", "who", "why"],
            [
                (
                    t.at,
                    t.from_stage.value if t.from_stage else None,
                    t.to_stage.value,
                    t.actor,
                    t.reason,
                )
                for t in history
            ],
        )
    )
    if card:
        console.print(mv.model_card, markup=False, highlight=False)


@models_app.command("promote")
def models_promote(
    name: str,
    version: int,
    stage: Annotated[str, typer.Argument(help="staging, production, archived or candidate.")],
    workspace: Workspace,
    reason: Annotated[str, typer.Option(help="Why (recorded in the history).")],
) -> None:
    """Move a model version to another stage (promote or demote)."""
    with _platform() as lp:
        mv = lp.promote(workspace, name, version, stage, reason=reason)
    console.print(f"{mv.model} v{mv.version} is now [bold]{mv.stage.value}[/bold]")


@models_app.command("score")
def models_score(
    name: str,
    version: int,
    workspace: Workspace,
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="Dataset to score.")],
    dataset_version: Annotated[int | None, typer.Option(help="Its version (latest).")] = None,
    output: Annotated[str | None, typer.Option(help="Output dataset name.")] = None,
) -> None:
    """Score a dataset with a model version; the scores become a new dataset version."""
    with _platform() as lp:
        if isinstance(lp, Platform):
            dv = lp.dataset_version(workspace, dataset, dataset_version)
            with progress_bar("scoring rows", dv.num_rows) as update:
                scored, _ = lp.score(
                    workspace,
                    name,
                    version,
                    dataset,
                    dataset_version=dataset_version,
                    output=output,
                    progress=lambda done, total: update(done, total),
                )
            out, out_version = scored.dataset, scored.version
        else:
            job = lp.score(
                workspace, name, version, dataset, dataset_version=dataset_version, output=output
            )
            out, out_version = job.result["dataset"], job.result["version"]
    console.print(f"scores written to [bold]{out}[/bold] v{out_version}")


@app.command("demo")
def demo(
    home: Annotated[
        Path, typer.Option(help="Folder for the demo's stores, data and reports.")
    ] = Path("demo-output/home"),
    rows: Annotated[int, typer.Option(min=1000, help="Applicants to generate.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
) -> None:
    """Run the whole credit-scoring lifecycle on generated data."""
    from leptonic.demo import run_demo

    run_demo(home, rows=rows, seed=seed, console=console)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: domain errors become a one-line message and exit code 1.

    A file-system error (a folder given for a file, a missing folder, no permission) is
    one line and exit code 1 too. Usage errors are Typer's (exit code 2); anything else
    is a bug and keeps its traceback.
    """
    try:
        app(args=argv)
    except LeptonicError as exc:
        where = escape(f" [{exc.field}]") if exc.field else ""
        err_console.print(f"[bold red]error{where}:[/bold red] {escape(str(exc))}", highlight=False)
        sys.exit(1)
    except OSError as exc:  # a path that is a folder, not writable, missing...
        what = exc.strerror or str(exc)
        path = f": {exc.filename}" if exc.filename else ""
        err_console.print(f"[bold red]error:[/bold red] {escape(what + path)}", highlight=False)
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()

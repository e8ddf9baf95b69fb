"""``leptonic endpoint ...``: deploy, serve, route traffic, set policies, post
outcomes, monitor, recalibrate and retrain real-time decision endpoints.

The commands act on the local stores named by the environment (like
``leptonic server``); ``serve`` runs the data plane for one endpoint.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from leptonic.cli._render import console, err_console, table
from leptonic.config import Settings
from leptonic.core.endpoint import Endpoint
from leptonic.errors import DataError, InvalidInput, LeptonicError
from leptonic.governance.readers import FORMATS
from leptonic.platform import Platform

__all__ = ["endpoint_app"]

endpoint_app = typer.Typer(
    help="Real-time decision endpoints: deploy, serve, traffic, policy, monitoring.",
    no_args_is_help=True,
)

Workspace = Annotated[str, typer.Option("--workspace", "-w", help="Workspace name.")]
Reason = Annotated[str, typer.Option("--reason", "-r", help="Why (recorded in the audit log).")]
Model = Annotated[str, typer.Option(help="Model to serve.")]
Version = Annotated[int, typer.Option(help="Its version.")]


def _local() -> Platform:
    return Platform.open(Settings.from_environ())


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput(f"{what} file {path} does not exist", field=what) from None
    except OSError as exc:  # a folder, no permission
        raise InvalidInput(f"cannot read {what} file {path}: {exc.strerror}", field=what) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{what} file {path} is not valid JSON: {exc}", field=what) from None


def _show(endpoint: Endpoint) -> None:
    rows = [(r.model, r.version, f"{r.percent:g} %") for r in endpoint.routes]
    if endpoint.shadow:
        rows.append((endpoint.shadow.model, endpoint.shadow.version, "shadow"))
    console.print(
        table(
            f"endpoint {endpoint.name} (revision {endpoint.revision}, "
            f"policy v{endpoint.policy_version}, entity key {endpoint.entity_key or '-'})",
            ["model", "version", "traffic"],
            rows,
        )
    )


@endpoint_app.command("create")
def create(
    name: str,
    workspace: Workspace,
    model: Model,
    version: Version,
    policy: Annotated[
        Path | None,
        typer.Option(help="Policy spec (JSON file): decision, recommendation or text policy."),
    ] = None,
    entity_key: Annotated[
        str | None, typer.Option(help="Request field that keeps an entity on one route.")
    ] = None,
    description: Annotated[str, typer.Option(help="What it is for.")] = "",
) -> None:
    """Deploy a model version behind a new endpoint: a binary model for decisions, a
    recommendation model for recommendations, a text classifier for labels."""
    spec = _read_json(policy, "policy") if policy else None
    with _local() as lp:
        endpoint = lp.endpoints.create(
            workspace,
            name,
            model,
            version,
            policy=spec,
            entity_key=entity_key,
            description=description,
        )
    _show(endpoint)


@endpoint_app.command("list")
def list_(workspace: Workspace) -> None:
    """List the workspace's endpoints."""
    with _local() as lp:
        items = lp.endpoints.list_endpoints(workspace)
    rows = [
        (
            e.name,
            ", ".join(f"{r.model} v{r.version} {r.percent:g}%" for r in e.routes),
            f"{e.shadow.model} v{e.shadow.version}" if e.shadow else "-",
            e.policy_version,
            e.revision,
        )
        for e in items
    ]
    console.print(table("Endpoints", ["name", "routes", "shadow", "policy", "revision"], rows))


@endpoint_app.command("show")
def show(name: str, workspace: Workspace) -> None:
    """Show an endpoint's routes and active policy."""
    with _local() as lp:
        endpoint = lp.endpoints.get(workspace, name)
        policy = lp.endpoints.policy(workspace, name)
    _show(endpoint)
    console.print_json(json.dumps(policy.spec))


@endpoint_app.command("serve")
def serve(
    name: str,
    workspace: Workspace,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8100,
    auth: Annotated[
        bool, typer.Option(help="Require API tokens (--no-auth behind a trusted gateway).")
    ] = True,
    reload_interval: Annotated[
        float, typer.Option(help="Seconds between checks for a new revision.")
    ] = 2.0,
    log_process: Annotated[
        bool,
        typer.Option(help="Write the prediction log from a separate process (SQL stores)."),
    ] = True,
) -> None:
    """Serve one endpoint: decisions (POST /decide, POST /feedback); for a
    recommendation model, recommendations (POST /recommend, GET /similar, POST /events);
    for a text model, labels with micro-batching (POST /predict); GET /health."""
    import uvicorn

    from leptonic.serving.app import EndpointApp, TokenAuth

    settings = Settings.from_environ()
    lp = Platform.open(settings)
    primary = lp.metadata.get_endpoint(workspace, name).routes[0]
    task = lp.metadata.get_model_version(workspace, primary.model, primary.version).task
    token_auth = TokenAuth(lp.metadata, workspace) if auth else None
    served: dict[str, Any] = {
        "reload_interval": reload_interval,
        "spill_dir": settings.home / "spill",
        "separate_writer": log_process,
    }
    app: Any
    if task == "text-classification":
        from leptonic.serving.text import TextHost
        from leptonic.serving.text_app import TextApp

        app = TextApp(
            TextHost(lp.metadata, lp.artifacts, workspace, name, **served), auth=token_auth
        )
        routes = "POST /predict"
    elif task == "recommendation":
        from leptonic.serving.recs import RecsHost
        from leptonic.serving.recs_app import RecsApp

        app = RecsApp(
            RecsHost(lp.metadata, lp.artifacts, workspace, name, **served), auth=token_auth
        )
        routes = "POST /recommend, POST /events"
    else:
        from leptonic.serving.host import EndpointHost

        app = EndpointApp(
            EndpointHost(lp.metadata, lp.registry, workspace, name, **served), auth=token_auth
        )
        routes = "POST /decide"
    revision = app.host.runtime.revision
    err_console.print(
        f"serving endpoint {workspace}/{name} revision {revision} "
        f"on http://{host}:{port} ({routes})"
    )
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            loop="auto",
            http="auto",
            access_log=False,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=30,
            proxy_headers=False,  # no proxy in front by default: skip the middleware
            server_header=False,
        )
    finally:
        app.close()
        lp.close()


@endpoint_app.command("decide")
def decide(
    name: str,
    workspace: Workspace,
    record: Annotated[str, typer.Argument(help="One record as JSON ('-' reads stdin).")],
) -> None:
    """One decision, in this process (logged like a served one)."""
    from leptonic.serving.host import EndpointHost

    body = sys.stdin.read() if record == "-" else record
    with _local() as lp:
        endpoint_host = EndpointHost(lp.metadata, lp.registry, workspace, name, reload_interval=0)
        try:
            payload, _ = endpoint_host.runtime.decide_json(body.encode("utf-8"))
        finally:
            endpoint_host.close()
    print(payload.decode("utf-8"))


@endpoint_app.command("batch")
def batch(
    name: str,
    workspace: Workspace,
    source: Annotated[str, typer.Argument(help="A dataset name, or a CSV / Parquet file.")],
    version: Annotated[int | None, typer.Option(help="Dataset version (latest).")] = None,
    output: Annotated[str | None, typer.Option(help="Output dataset name.")] = None,
) -> None:
    """Decide every row of a dataset (or file, added as a dataset first), streamed."""
    from rich.progress import Progress

    with _local() as lp:
        dataset = source
        path = Path(source)
        if path.suffix.lower() in FORMATS or "/" in source:  # a file, not a dataset name
            if not path.is_file():
                raise DataError(f"{source}: no such file; check the path", field="source")
            added, _ = lp.add_data(workspace, path)
            dataset, version = added.dataset, added.version
        with Progress(console=err_console, transient=True) as bar:
            task = bar.add_task("deciding", total=None)
            decided, _ = lp.endpoints.decide_batch(
                workspace,
                name,
                dataset,
                dataset_version=version,
                output=output,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    console.print(
        f"wrote dataset {decided.dataset} v{decided.version}: {decided.num_rows} rows "
        "with score, decision and reasons"
    )


@endpoint_app.command("canary")
def canary(
    name: str,
    workspace: Workspace,
    model: Annotated[str, typer.Option(help="Model of the canary.")],
    version: Annotated[int, typer.Option(help="Its version.")],
    percent: Annotated[float, typer.Option(help="Share of entities sent to it (0-100).")],
    reason: Reason,
) -> None:
    """Send a share of traffic (sticky by entity) to another version."""
    with _local() as lp:
        _show(lp.endpoints.canary(workspace, name, model, version, percent, reason=reason))


@endpoint_app.command("deploy")
def deploy(
    name: str,
    workspace: Workspace,
    model: Model,
    version: Version,
    reason: Reason,
) -> None:
    """Serve a version to all traffic at once (a text or recommendation endpoint's new
    version); `rollback` undoes it."""
    with _local() as lp:
        _show(lp.endpoints.deploy(workspace, name, model, version, reason=reason))


@endpoint_app.command("prune")
def prune(
    name: str,
    workspace: Workspace,
    older_than: Annotated[
        float, typer.Option(help="Delete predictions logged more than this many days ago.")
    ],
    reason: Reason,
) -> None:
    """Delete old predictions (and their outcomes) from the endpoint's log."""
    with _local() as lp:
        deleted = lp.endpoints.prune(workspace, name, older_than_days=older_than, reason=reason)
    console.print(f"deleted {deleted:,} prediction(s) logged more than {older_than:g} days ago")


@endpoint_app.command("promote")
def promote(name: str, workspace: Workspace, reason: Reason) -> None:
    """Make the canary the primary at 100 %."""
    with _local() as lp:
        _show(lp.endpoints.promote(workspace, name, reason=reason))


@endpoint_app.command("rollback")
def rollback(name: str, workspace: Workspace, reason: Reason) -> None:
    """Drop the canary, or undo the last promotion."""
    with _local() as lp:
        _show(lp.endpoints.rollback(workspace, name, reason=reason))


@endpoint_app.command("shadow")
def shadow(
    name: str,
    workspace: Workspace,
    reason: Reason,
    model: Annotated[str | None, typer.Option(help="Model to shadow (omit to stop).")] = None,
    version: Annotated[int | None, typer.Option(help="Its version.")] = None,
) -> None:
    """Score a version in the shadow of live traffic, or stop."""
    with _local() as lp:
        _show(lp.endpoints.set_shadow(workspace, name, model, version, reason=reason))


@endpoint_app.command("policy")
def policy(
    name: str,
    workspace: Workspace,
    set_: Annotated[
        Path | None, typer.Option("--set", help="Activate a new policy from this JSON file.")
    ] = None,
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (with --set).")] = "",
) -> None:
    """Show the policy versions, or activate a new one."""
    with _local() as lp:
        if set_ is not None:
            stored = lp.endpoints.set_policy(
                workspace, name, _read_json(set_, "policy"), reason=reason
            )
            console.print(f"policy v{stored.version} is now active")
        items = lp.endpoints.policies(workspace, name)
    rows = [(p.version, p.created_by, p.created_at, p.reason, json.dumps(p.spec)) for p in items]
    console.print(table(f"Policies of {name}", ["version", "by", "at", "reason", "spec"], rows))


@endpoint_app.command("feedback")
def feedback(
    name: str,
    workspace: Workspace,
    file: Annotated[Path, typer.Argument(help="JSON list of {request_id|entity, label}.")],
) -> None:
    """Post outcomes for logged decisions."""
    with _local() as lp:
        stored = lp.endpoints.feedback(workspace, name, _read_json(file, "feedback"))
    console.print(f"recorded {len(stored)} outcome(s)")


@endpoint_app.command("predictions")
def predictions(
    name: str,
    workspace: Workspace,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    route: Annotated[str, typer.Option(help="live or shadow.")] = "live",
) -> None:
    """Show the prediction log."""
    with _local() as lp:
        items = lp.endpoints.predictions(workspace, name, route=route, limit=limit)
    rows = [
        (
            p.request_id[:12],
            p.at,
            f"{p.model} v{p.version}",
            f"{p.score:.4f}",
            p.decision,
            "; ".join(str(r.get("feature")) for r in p.reasons),
            f"{p.latency_ms:.3f}",
        )
        for p in items
    ]
    console.print(
        table(
            f"Prediction log of {name} ({route})",
            ["request", "at", "version", "score", "decision", "reasons", "ms"],
            rows,
        )
    )


@endpoint_app.command("monitor")
def monitor(
    name: str,
    workspace: Workspace,
    last: Annotated[int | None, typer.Option(help="Only the newest N decisions.")] = None,
    webhook: Annotated[str | None, typer.Option(help="POST alerts to this URL.")] = None,
    report: Annotated[Path | None, typer.Option(help="Also write the HTML report here.")] = None,
) -> None:
    """Check drift and performance on outcomes; raise alerts."""
    with _local() as lp:
        result = lp.endpoints.monitor(workspace, name, last=last, webhook=webhook)
        if report is not None:
            report.write_text(lp.endpoints.monitor_report(workspace, name), encoding="utf-8")
    psi = result.get("psi", {})
    rows = sorted(((k, f"{v:.4f}") for k, v in psi.items() if v is not None), key=lambda r: r[0])
    console.print(table(f"PSI of {name} (n={result.get('n')})", ["feature", "PSI"], rows))
    perf = result.get("performance") or {}
    console.print(
        f"labelled: {perf.get('n', 0)}  AUC: {perf.get('auc')}  KS: {perf.get('ks')}  "
        f"alerts raised: {len(result.get('alerts', []))}"
    )
    for alert in result.get("alerts", []):
        console.print(f"[bold red]alert[/bold red] {alert['message']}")


@endpoint_app.command("alerts")
def alerts(name: str, workspace: Workspace) -> None:
    """List the endpoint's alerts, newest first."""
    with _local() as lp:
        items = lp.endpoints.alerts(workspace, name)
    rows = [(a.id, a.at, a.rule, a.subject, f"{a.value:.4f}", a.status, a.message) for a in items]
    console.print(
        table(
            f"Alerts of {name}", ["id", "at", "rule", "subject", "value", "status", "message"], rows
        )
    )


@endpoint_app.command("recalibrate")
def recalibrate(
    name: str,
    workspace: Workspace,
    reason: Reason,
    approval_rate: Annotated[float | None, typer.Option(help="Target approval rate.")] = None,
    bad_rate: Annotated[float | None, typer.Option(help="Target bad rate among approved.")] = None,
    last: Annotated[int | None, typer.Option(help="Use the newest N decisions.")] = None,
) -> None:
    """Move the approve threshold to a target rate (a new policy version)."""
    with _local() as lp:
        stored = lp.endpoints.recalibrate(
            workspace,
            name,
            target_approval_rate=approval_rate,
            target_bad_rate=bad_rate,
            last=last,
            reason=reason,
        )
    console.print(f"policy v{stored.version} is now active: {json.dumps(stored.spec)}")


@endpoint_app.command("retrain")
def retrain(
    name: str,
    workspace: Workspace,
    dataset: Annotated[str | None, typer.Option(help="Default: the primary's dataset.")] = None,
    canary_percent: Annotated[
        float | None, typer.Option(help="Put the new version on canary at this percent.")
    ] = None,
    min_new_events: Annotated[
        int,
        typer.Option(help="Recommendation endpoints: retrain only after this many new events."),
    ] = 1,
    promote: Annotated[
        bool, typer.Option(help="Recommendation endpoints: serve the new version at once.")
    ] = True,
    every: Annotated[
        float | None,
        typer.Option(help="Recommendation endpoints: check again every this many seconds."),
    ] = None,
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why.")] = "retrain",
) -> None:
    """Train the primary's spec on the newest data; optionally start a canary. A
    recommendation endpoint retrains on its data plus the events it received since
    (with --every, as a scheduler: one check per period until stopped)."""
    with _local() as lp:
        primary = lp.endpoints.get(workspace, name).routes[0]
        task = lp.metadata.get_model_version(workspace, primary.model, primary.version).task
        if task != "recommendation":
            if every is not None:
                raise InvalidInput("--every is for recommendation endpoints", field="every")
            outcome = lp.endpoints.retrain(
                workspace, name, dataset=dataset, canary_percent=canary_percent, reason=reason
            )
            mv = outcome.model_version
            where = f"registered {mv.model} v{mv.version}" if mv else "not registered"
            console.print(f"run {outcome.run.id[:12]}: {where}")
            return
        if dataset is not None or canary_percent is not None:
            raise InvalidInput(
                "a recommendation endpoint retrains on its own data and events and serves one "
                "version: leave out --dataset and --canary-percent",
                field="dataset" if dataset is not None else "canary_percent",
            )
        if every is not None and not every > 0:
            raise InvalidInput(f"--every must be a positive number of seconds, got {every}")
        while True:
            try:
                done = lp.endpoints.retrain_from_events(
                    workspace, name, min_new_events=min_new_events, promote=promote, reason=reason
                )
            except LeptonicError as exc:
                if every is None:
                    raise
                # a scheduler keeps going: the next check may succeed
                err_console.print(f"retrain failed ({exc.code}): {exc}; next check in {every} s")
                time.sleep(every)
                continue
            if done.outcome is None:
                console.print(
                    f"{done.new_events} new event(s), fewer than {min_new_events}: not retrained"
                )
            else:
                mv = done.outcome.model_version
                where = f"registered {mv.model} v{mv.version}" if mv else "not registered"
                served = "; now served" if done.promoted else ""
                console.print(
                    f"run {done.outcome.run.id[:12]} on {done.new_events} new event(s) "
                    f"(dataset version {done.dataset_version}): {where}{served}"
                )
            if every is None:
                return
            time.sleep(every)

"""``leptonic endpoint ...``: deploy, serve, route traffic, set policies, post
outcomes, monitor, recalibrate and retrain real-time decision endpoints.

The commands act on the local stores named by the environment or, with
``LEPTONIC_URL`` set, on that server through its API (like the other
commands); ``serve`` runs the data plane for one endpoint from local stores.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from leptonic.cli._render import console, err_console, table
from leptonic.config import Settings
from leptonic.core.endpoint import Endpoint
from leptonic.errors import ConfigError, DataError, InvalidInput, LeptonicError
from leptonic.governance.readers import FORMATS
from leptonic.platform import Platform

if TYPE_CHECKING:
    from leptonic.sdk import Client

__all__ = ["endpoint_app"]

endpoint_app = typer.Typer(
    help="Real-time decision endpoints: deploy, serve, traffic, policy, monitoring.",
    no_args_is_help=True,
)

Workspace = Annotated[str, typer.Option("--workspace", "-w", help="Workspace name.")]
Reason = Annotated[str, typer.Option("--reason", "-r", help="Why (recorded in the audit log).")]
Model = Annotated[str, typer.Option(help="Model to serve.")]
Version = Annotated[int, typer.Option(help="Its version.")]


def _open() -> Platform | Client:
    """The local platform, or the server named by LEPTONIC_URL when it is set."""
    settings = Settings.from_environ()
    if settings.url:
        from leptonic.sdk import Client

        return Client.from_settings(settings)
    return Platform.open(settings)


def _local(command: str, instead: str) -> Platform:
    """The local platform, for a command that needs this machine's stores; refused
    with LEPTONIC_URL set (it would act on other stores than the server's)."""
    settings = Settings.from_environ()
    if settings.url:
        raise ConfigError(
            f"`leptonic endpoint {command}` works on local stores only, and LEPTONIC_URL is "
            f"set ({settings.url}); unset LEPTONIC_URL to run it on this machine's stores, "
            f"or {instead}",
            field="LEPTONIC_URL",
        )
    return Platform.open(settings)


def _wait(client: Client, workspace: str, job_id: str, what: str) -> dict[str, Any]:
    """Wait for a job on the server; its result, or the error it recorded."""
    from leptonic.sdk import _recorded_error

    job = client.wait_for_job(workspace, job_id)
    if job.status.value != "succeeded":
        raise _recorded_error(f"{what} (job {job.id})", job.status.value, job.error)
    return job.result


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput(f"{what} file {path} does not exist", field=what) from None
    except OSError as exc:  # a folder, no permission
        raise InvalidInput(f"cannot read {what} file {path}: {exc.strerror}", field=what) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{what} file {path} is not valid JSON: {exc}", field=what) from None


def _read_policy(path: Path) -> dict[str, Any]:
    """A policy spec file: a JSON object of policy fields."""
    spec = _read_json(path, "policy")
    if not isinstance(spec, dict):
        raise InvalidInput(
            f"policy file {path} holds a JSON {type(spec).__name__}; a policy is a JSON "
            'object of policy fields, e.g. {"k": 10} or {"bands": [...]}',
            field="policy",
        )
    return spec


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
    spec = _read_policy(policy) if policy else None
    with _open() as lp:
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
    with _open() as lp:
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
    with _open() as lp:
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

    lp = _local(
        "serve",
        f"let the server answer: POST /api/v1/workspaces/{workspace}/endpoints/{name}/decide "
        "(or `leptonic endpoint decide`)",
    )
    settings = lp.settings
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
    """One decision, in this process (logged like a served one, the shadow version
    scored too); with LEPTONIC_URL set, by the server."""
    import orjson

    from leptonic.serving.host import EndpointHost

    body = sys.stdin.read() if record == "-" else record
    with _open() as lp:
        if not isinstance(lp, Platform):
            try:
                fields = json.loads(body)
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"the record is not valid JSON: {exc}", field="record") from None
            if not isinstance(fields, dict):
                raise InvalidInput("the record must be a JSON object", field="record")
            print(json.dumps(lp.endpoints.decide(workspace, name, fields)))
            return
        endpoint_host = EndpointHost(lp.metadata, lp.registry, workspace, name, reload_interval=0)
        try:
            runtime = endpoint_host.runtime
            payload, fields = runtime.decide_json(body.encode("utf-8"))
            if runtime.shadow is not None:  # as the served endpoint does
                runtime.score_shadow(fields, orjson.loads(payload)["request_id"])
        finally:
            endpoint_host.close()  # writes the prediction log
    print(payload.decode("utf-8"))


@endpoint_app.command("batch")
def batch(
    name: str,
    workspace: Workspace,
    source: Annotated[str, typer.Argument(help="A dataset name, or a CSV / Parquet file.")],
    version: Annotated[int | None, typer.Option(help="Dataset version (latest).")] = None,
    output: Annotated[str | None, typer.Option(help="Output dataset name.")] = None,
    input_name: Annotated[
        str | None,
        typer.Option(
            "--input-name",
            help="Dataset a file is added to (default: <endpoint>-batch-input); naming an "
            "existing dataset adds the file as its new version.",
        ),
    ] = None,
) -> None:
    """Decide every row of a dataset (or file, added as a dataset of its own first),
    streamed."""
    from rich.progress import Progress

    dataset = source
    path = Path(source)
    is_file = path.suffix.lower() in FORMATS or "/" in source  # a file, not a dataset name
    if is_file and not path.is_file():
        raise DataError(f"{source}: no such file; check the path", field="source")
    if input_name is not None and not is_file:
        raise InvalidInput(
            "--input-name is for a file; give a file, or leave it out", field="input_name"
        )
    with _open() as lp:
        if is_file:
            # never a new version of the dataset that shares the file's name (often the
            # training data) unless --input-name asks for it
            target = input_name or f"{name[:51]}-batch-input"
            added, _ = lp.add_data(workspace, path, name=target)
            dataset, version = added.dataset, added.version
            console.print(
                f"added {escape(str(path))} as dataset {added.dataset} v{added.version} "
                f"({added.num_rows} rows)"
            )
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
    with _open() as lp:
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
    with _open() as lp:
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
    with _open() as lp:
        deleted = lp.endpoints.prune(workspace, name, older_than_days=older_than, reason=reason)
    console.print(f"deleted {deleted:,} prediction(s) logged more than {older_than:g} days ago")


@endpoint_app.command("promote")
def promote(name: str, workspace: Workspace, reason: Reason) -> None:
    """Make the canary the primary at 100 %."""
    with _open() as lp:
        _show(lp.endpoints.promote(workspace, name, reason=reason))


@endpoint_app.command("rollback")
def rollback(name: str, workspace: Workspace, reason: Reason) -> None:
    """Drop the canary, or undo the last promotion."""
    with _open() as lp:
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
    with _open() as lp:
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
    with _open() as lp:
        if set_ is not None:
            stored = lp.endpoints.set_policy(workspace, name, _read_policy(set_), reason=reason)
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
    with _open() as lp:
        stored = lp.endpoints.feedback(workspace, name, _read_json(file, "feedback"))
    count = stored if isinstance(stored, int) else len(stored)  # the server says how many
    console.print(f"recorded {count} outcome(s)")


@endpoint_app.command("predictions")
def predictions(
    name: str,
    workspace: Workspace,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    route: Annotated[str, typer.Option(help="live or shadow.")] = "live",
) -> None:
    """Show the prediction log."""
    with _open() as lp:
        items = lp.endpoints.predictions(workspace, name, route=route, limit=limit)
    rows = [
        (
            p.request_id,  # whole: feedback names a prediction by it
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
            whole=("request",),
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
    with _open() as lp:
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
        console.print(f"[bold red]alert[/bold red] {escape(str(alert['message']))}")


@endpoint_app.command("alerts")
def alerts(name: str, workspace: Workspace) -> None:
    """List the endpoint's alerts, newest first."""
    with _open() as lp:
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
    with _open() as lp:
        stored = lp.endpoints.recalibrate(
            workspace,
            name,
            target_approval_rate=approval_rate,
            target_bad_rate=bad_rate,
            last=last,
            reason=reason,
        )
    console.print(
        f"policy v{stored.version} is now active: {json.dumps(stored.spec)}", markup=False
    )


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
    (with --every, as a scheduler: one check per period until stopped). With
    LEPTONIC_URL set the server trains (a job) and this waits for it."""
    from leptonic.serving.recs_retrain import settling_note
    from leptonic.serving.service import check_canary_percent

    with _open() as lp:
        primary = lp.endpoints.get(workspace, name).routes[0]
        task = lp.model_version(workspace, primary.model, primary.version).task
        if task != "recommendation":
            if every is not None:
                raise InvalidInput("--every is for recommendation endpoints", field="every")
            if canary_percent is not None:  # checked before the training, not after it
                check_canary_percent(canary_percent, "canary_percent")
            if isinstance(lp, Platform):
                outcome = lp.endpoints.retrain(
                    workspace, name, dataset=dataset, canary_percent=canary_percent, reason=reason
                )
                mv = outcome.model_version
                run_id = outcome.run.id
                model = (mv.model, mv.version) if mv else None
            else:
                kind = lp.endpoints.policy(workspace, name).spec.get("kind")
                if canary_percent is not None and kind == "text-classification":
                    raise InvalidInput(  # as Platform.endpoints.retrain says, before training
                        f"a {kind} endpoint serves one version: retrain without a canary, then "
                        "serve the new version with `leptonic endpoint deploy`",
                        field="canary_percent",
                    )
                job = lp.endpoints.retrain(workspace, name, dataset=dataset, reason=reason)
                err_console.print(
                    f"retrain run {job.run_id} queued on the server (job {job.id})",
                    highlight=False,
                )
                result = _wait(lp, workspace, job.id, f"retrain run {job.run_id}")
                run_id = str(result["run_id"])
                model = None
                if result.get("model_version") is not None:
                    model = (str(result["model"]), int(result["model_version"]))
                if model is not None and canary_percent is not None:
                    lp.endpoints.canary(
                        workspace, name, model[0], model[1], canary_percent, reason=reason
                    )
            where = f"registered {model[0]} v{model[1]}" if model else "not registered"
            console.print(f"run {run_id[:12]}: {where}")
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
                done = _retrain_from_events(
                    lp,
                    workspace,
                    name,
                    min_new_events=min_new_events,
                    promote=promote,
                    reason=reason,
                )
            except LeptonicError as exc:
                if every is None:
                    raise
                # a scheduler keeps going: the next check may succeed
                err_console.print(
                    f"retrain failed ({exc.code}): {escape(str(exc))}; next check in {every} s"
                )
                time.sleep(every)
                continue
            note = settling_note(done)
            if done["run_id"] is None:
                console.print(
                    f"{done['new_events']} new event(s), fewer than {min_new_events}: not "
                    f"retrained{note}",
                    markup=False,
                )
            else:
                where = (
                    f"registered {done['model']} v{done['model_version']}"
                    if done["model_version"] is not None
                    else "not registered"
                )
                served = "; now served" if done["promoted"] else ""
                merged = (
                    f" ({done['merged']} merged into rows with the same user, item and time)"
                    if done.get("merged")
                    else ""
                )
                console.print(
                    f"run {str(done['run_id'])[:12]} on {done['new_events']} new event(s)"
                    f"{merged} (dataset version {done['dataset_version']}): {where}{served}"
                    f"{note}",
                    markup=False,
                )
            if every is None:
                return
            time.sleep(every)


def _retrain_from_events(
    lp: Platform | Client,
    workspace: str,
    name: str,
    *,
    min_new_events: int,
    promote: bool,
    reason: str,
) -> dict[str, Any]:
    """One retrain of a recommendation endpoint on its new events, here or on the server:
    ``new_events``, ``settling`` (left for the next retrain), ``settle_s``, ``merged``,
    ``run_id`` (None: not retrained), ``dataset_version``, ``model``, ``model_version``
    and ``promoted`` (a server of an older release may leave out the counts)."""
    if not isinstance(lp, Platform):
        job = lp.endpoints.retrain(
            workspace, name, min_new_events=min_new_events, promote=promote, reason=reason
        )
        return _wait(lp, workspace, job.id, f"retrain of endpoint {name}")
    done = lp.endpoints.retrain_from_events(
        workspace, name, min_new_events=min_new_events, promote=promote, reason=reason
    )
    return done.summary()

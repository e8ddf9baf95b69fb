"""The ``mlflow models serve`` baseline: the same Leptonic model, served by MLflow.

MLflow lives in its own virtual environment (``~/.cache/leptonic-bench/mlflow-venv``
by default) next to an editable install of this project, so the project's own
environment never gets MLflow and both servers run the same Leptonic code.

* :func:`ensure_mlflow_venv` creates that environment once (and reuses it while
  it is healthy); it refuses to install anything that would pull ``torch``.
* :func:`export_pyfunc` writes an MLflow pyfunc model ("models from code") whose
  ``load_context`` loads a Leptonic model version from the stores under
  ``LEPTONIC_HOME`` once and whose ``predict`` is ``predictor.predict_batch``.
* :func:`start_mlflow_server` / :func:`stop` run ``mlflow models serve`` with
  one worker; :func:`invocation_body` and :data:`INVOCATIONS_PATH` make requests.

Smoke check (needs a Leptonic home holding a trained model)::

    python benchmarks/_mlflow.py --home H --workspace credit --model taiwan-scorecard --version 1
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_CACHE",
    "INVOCATIONS_PATH",
    "MLFLOW_VERSION",
    "ROOT",
    "ensure_mlflow_venv",
    "example_records",
    "export_pyfunc",
    "invocation_body",
    "start_mlflow_server",
    "stop",
]

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = Path.home() / ".cache" / "leptonic-bench"
MLFLOW_VERSION = "3.17.2"
INVOCATIONS_PATH = "/invocations"
PING_PATH = "/ping"
# Distributions a Leptonic + MLflow environment must not pull (Leptonic's core has no torch).
FORBIDDEN = ("torch", "triton", "nvidia-")
_MARKER = ".leptonic-bench.json"
_MODULE = "leptonic_pyfunc.py"
_EXAMPLES = "example_records.json"


def _log(msg: str) -> None:
    print(f"[mlflow-bench] {msg}", file=sys.stderr, flush=True)


def _clean_env(**extra: str) -> dict[str, str]:
    """``os.environ`` without another virtual environment's or Leptonic's settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LEPTONIC_") and k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    }
    env.update(extra)
    return env


def _venv_env(python: Path, **extra: str) -> dict[str, str]:
    env = _clean_env(**extra)
    venv = python.parent.parent
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    return env


# -- 1. the virtual environment -------------------------------------------------------
def _healthy(venv: Path, want: dict[str, Any]) -> bool:
    python = venv / "bin" / "python"
    marker = venv / _MARKER
    if not python.exists() or not marker.exists():
        return False
    try:
        if json.loads(marker.read_text(encoding="utf-8")) != want:
            return False
    except (OSError, ValueError):
        return False
    probe = subprocess.run(
        [str(python), "-c", "import mlflow, leptonic, pandas; print(mlflow.__version__)"],
        capture_output=True,
        text=True,
        env=_venv_env(python),
        check=False,
    )
    return probe.returncode == 0 and probe.stdout.strip() == want["mlflow"]


def ensure_mlflow_venv(
    cache_dir: Path = DEFAULT_CACHE,
    project: Path = ROOT,
    *,
    mlflow_version: str = MLFLOW_VERSION,
    editable: bool = True,
    base_python: str = "python3",
) -> Path:
    """Create (once) ``cache_dir/mlflow-venv`` with MLflow and this project; return its python.

    The environment is reused while its marker (MLflow version, project path,
    editable) matches and ``import mlflow, leptonic`` works; otherwise it is
    rebuilt. Before installing, pip resolves the set (``--dry-run``); when
    anything would bring ``torch`` (or CUDA wheels) nothing is installed and a
    ``RuntimeError`` names them.
    """
    cache_dir = Path(cache_dir).expanduser().resolve()
    project = Path(project).resolve()
    venv = cache_dir / "mlflow-venv"
    python = venv / "bin" / "python"
    want = {"mlflow": mlflow_version, "project": str(project), "editable": editable}
    if _healthy(venv, want):
        _log(f"reusing {venv} (mlflow {mlflow_version})")
        return python
    if venv.exists():
        _log(f"rebuilding {venv} (missing, stale or broken)")
        shutil.rmtree(venv)
    cache_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    _log(f"creating {venv} with {base_python} -m venv")
    subprocess.run([base_python, "-m", "venv", str(venv)], check=True, env=_clean_env())
    env = _venv_env(python)
    pip = [str(python), "-m", "pip", "--disable-pip-version-check"]
    reqs = [f"mlflow=={mlflow_version}", *(["-e"] if editable else []), str(project)]

    _log(f"resolving {' '.join(reqs)} (dry run)")
    report = venv / "pip-report.json"
    subprocess.run(
        [*pip, "install", "-q", "--dry-run", "--report", str(report), *reqs],
        check=True,
        env=env,
        stdout=sys.stderr,
    )
    names = sorted(
        item["metadata"]["name"].lower()
        for item in json.loads(report.read_text(encoding="utf-8")).get("install", [])
    )
    bad = [
        n for n in names if any(n == f or (f.endswith("-") and n.startswith(f)) for f in FORBIDDEN)
    ]
    if bad:
        shutil.rmtree(venv)
        raise RuntimeError(
            f"installing {' '.join(reqs)} would pull {', '.join(bad)}; Leptonic's core and the "
            "MLflow baseline must not need torch. Nothing was installed."
        )
    _log(f"installing {len(names)} distributions (no torch)")
    subprocess.run(
        [*pip, "install", "-q", "--progress-bar", "off", *reqs],
        check=True,
        env=env,
        stdout=sys.stderr,
    )
    if not _healthy_imports(python):
        raise RuntimeError(f"{venv}: mlflow or leptonic does not import after installation")
    (venv / _MARKER).write_text(json.dumps(want), encoding="utf-8")
    _log(f"ready in {time.perf_counter() - started:.0f} s: {python}")
    return python


def _healthy_imports(python: Path) -> bool:
    probe = subprocess.run(
        [str(python), "-c", "import mlflow, leptonic"], env=_venv_env(python), check=False
    )
    return probe.returncode == 0


# -- 2. the pyfunc model --------------------------------------------------------------
MODEL_MODULE = '''\
"""An MLflow pyfunc model that serves one Leptonic model version (written by
benchmarks/_mlflow.py). The version is named in the model config; the stores
are those of LEPTONIC_HOME (the config's ``home`` when it is unset)."""

import os

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class LeptonicModel(PythonModel):
    def load_context(self, context):
        from leptonic.config import Settings
        from leptonic.platform import Platform

        config = context.model_config
        if not os.environ.get("LEPTONIC_HOME") and config.get("home"):
            os.environ["LEPTONIC_HOME"] = config["home"]
        with Platform.open(Settings.from_environ()) as lp:
            self.predictor = lp.load_model(
                config["workspace"], config["model"], int(config["version"])
            )

    def predict(self, context, model_input: pd.DataFrame, params=None):
        return self.predictor.predict_batch(model_input)


mlflow.models.set_model(LeptonicModel())
'''

_SAVE = textwrap.dedent(
    """\
    import json, sys
    from pathlib import Path

    import mlflow
    from mlflow.models import infer_signature

    from leptonic.config import Settings
    from leptonic.core.uri import ObjectRef
    from leptonic.platform import Platform

    a = json.loads(sys.argv[1])
    ws, model, version = a["workspace"], a["model"], a["version"]
    with Platform.open(Settings.from_environ()) as lp:
        predictor = lp.load_model(ws, model, version)
        mv = lp.model_version(ws, model, version)
        ref = ObjectRef.parse(mv.dataset)
        frame = lp.preview(ws, ref.name, ref.version, limit=a["rows"], raw=True).to_pandas()
    frame = frame[predictor.input_names]
    scores = predictor.predict_batch(frame)
    records = json.loads(frame.to_json(orient="records"))
    Path(a["examples"]).write_text(json.dumps(records), encoding="utf-8")
    # Leptonic reads numeric inputs as floats (missing allowed): declare them double, so
    # MLflow neither truncates 24.5 to 24 nor refuses null in a column seen as integers.
    for col in predictor.inputs:
        if col["type"] == "numeric":
            frame[col["name"]] = frame[col["name"]].astype("float64")
    mlflow.pyfunc.save_model(
        path=a["model_dir"],
        python_model=a["module"],
        model_config={"workspace": ws, "model": model, "version": version, "home": a["home"]},
        signature=infer_signature(frame, scores),
        input_example=frame.head(1),
        pip_requirements=[f"mlflow=={mlflow.__version__}", "leptonic"],
    )
    print(json.dumps({"rows": len(frame), "dataset": mv.dataset, "flavor": mv.flavor}))
    """
)


def export_pyfunc(
    python: Path,
    home: Path,
    workspace: str,
    model: str,
    version: int,
    out_dir: Path,
    *,
    example_rows: int = 200,
) -> Path:
    """Write ``out_dir/model``, an MLflow pyfunc model wrapping a Leptonic model version.

    Runs in the MLflow environment (``python``) with ``LEPTONIC_HOME=home``. The
    signature is inferred from the first ``example_rows`` rows of the model's
    training dataset version (the model's input columns only), numeric inputs
    declared ``double`` as Leptonic reads them (the server casts JSON integers and
    nulls to them; an in-process ``pyfunc.predict`` wants float columns, MLflow
    refusing int64 → float64); the first row is the input example. Those rows, as JSON records, go to
    ``out_dir/example_records.json`` (see :func:`example_records`). An existing
    ``out_dir/model`` is replaced. Returns the model directory.
    """
    out_dir = Path(out_dir).resolve()
    home = Path(home).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    module = out_dir / _MODULE
    module.write_text(MODEL_MODULE, encoding="utf-8")
    model_dir = out_dir / "model"
    if model_dir.exists():
        shutil.rmtree(model_dir)
    args = {
        "workspace": workspace,
        "model": model,
        "version": int(version),
        "home": str(home),
        "module": str(module),
        "model_dir": str(model_dir),
        "examples": str(out_dir / _EXAMPLES),
        "rows": int(example_rows),
    }
    started = time.perf_counter()
    proc = subprocess.run(
        [str(python), "-c", _SAVE, json.dumps(args)],
        capture_output=True,
        text=True,
        env=_venv_env(Path(python), LEPTONIC_HOME=str(home)),
        cwd=out_dir,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"exporting {workspace}/{model} v{version} as an MLflow pyfunc failed "
            f"(exit {proc.returncode}):\n{proc.stderr[-4000:]}"
        )
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    _log(
        f"exported {workspace}/{model} v{version} ({info['flavor']}) → {model_dir} "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return model_dir


def example_records(model_dir: Path) -> list[dict[str, Any]]:
    """The example rows :func:`export_pyfunc` saved next to ``model_dir``."""
    path = Path(model_dir).parent / _EXAMPLES
    return list(json.loads(path.read_text(encoding="utf-8")))


# -- 3. the server --------------------------------------------------------------------
def _tail(path: Path, n: int = 4000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-n:]
    except OSError:
        return ""


def start_mlflow_server(
    python: Path,
    model_dir: Path,
    port: int,
    home: Path,
    *,
    workers: int = 1,
    access_log: bool = False,
    timeout: float = 120.0,
) -> subprocess.Popen[bytes]:
    """``mlflow models serve`` of ``model_dir`` on 127.0.0.1:``port`` with ``workers`` workers.

    MLflow 3 runs ``uvicorn --workers N mlflow.pyfunc.scoring_server.app:app`` (one
    process for one worker; uvloop and httptools, as Leptonic's endpoint). Its
    access log is off unless ``access_log`` (``UVICORN_ACCESS_LOG``), as on
    ``leptonic endpoint serve``, so neither server pays for a log line per request.
    The server runs in its own process group with ``LEPTONIC_HOME=home``; its
    output goes to ``model_dir/../mlflow-serve-<port>.log`` (a pipe nobody reads
    would stall it under load). Returns once ``GET /ping`` answers 200; raises
    ``RuntimeError`` with the log's tail when the server exits or does not
    answer within ``timeout`` seconds.
    """
    model_dir = Path(model_dir).resolve()
    log_path = model_dir.parent / f"mlflow-serve-{port}.log"
    cmd = [
        str(python),
        "-m",
        "mlflow",
        "models",
        "serve",
        "-m",
        str(model_dir),
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "--env-manager",
        "local",
        "--workers",
        str(workers),
    ]
    env = _venv_env(
        Path(python),
        LEPTONIC_HOME=str(Path(home).resolve()),
        MLFLOW_MODELS_WORKERS=str(workers),
        UVICORN_ACCESS_LOG="true" if access_log else "false",
    )
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}{PING_PATH}"
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(
                f"mlflow models serve exited with {proc.returncode} before answering {url}; "
                f"log {log_path}:\n{_tail(log_path)}"
            )
        try:
            with urllib.request.urlopen(url, timeout=1.0) as resp:
                if resp.status == 200:
                    _log(f"mlflow models serve ready on :{port} (pid {proc.pid}, log {log_path})")
                    return proc
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        if time.monotonic() > deadline:
            stop(proc)
            raise RuntimeError(
                f"mlflow models serve did not answer {url} in {timeout:.0f} s; "
                f"log {log_path}:\n{_tail(log_path)}"
            )
        time.sleep(0.25)


def _group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs (zombies do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def stop(proc: subprocess.Popen[Any], timeout: float = 30.0) -> None:
    """SIGTERM the server's process group (the CLI and uvicorn) and wait until it is gone."""
    pgid = proc.pid
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        proc.poll()
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc.poll()
        if proc.returncode is not None and not _group_alive(pgid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    proc.wait()


# -- 4. requests ----------------------------------------------------------------------
def invocation_body(record: dict[str, Any]) -> bytes:
    """The ``/invocations`` JSON body for one row (MLflow 2 and 3: ``dataframe_records``).

    The answer is ``{"predictions": [p]}`` with ``p`` = P(positive).
    """
    return json.dumps({"dataframe_records": [record]}, separators=(",", ":")).encode()


# -- 5. smoke check -------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    import argparse
    import statistics
    import tempfile

    import httpx

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--version", type=int, required=True)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    t = time.perf_counter()
    python = ensure_mlflow_venv(args.cache_dir)
    print(f"venv: {python} ({time.perf_counter() - t:.1f} s)")
    with tempfile.TemporaryDirectory(prefix="mlflow-smoke-") as tmp:
        t = time.perf_counter()
        model_dir = export_pyfunc(
            python, args.home, args.workspace, args.model, args.version, Path(tmp) / "export"
        )
        print(f"export: {model_dir} ({time.perf_counter() - t:.1f} s)")
        records = example_records(model_dir)
        port = _free_port()
        t = time.perf_counter()
        proc = start_mlflow_server(python, model_dir, port, args.home)
        print(f"server: ready in {time.perf_counter() - t:.1f} s")
        try:
            url = f"http://127.0.0.1:{port}{INVOCATIONS_PATH}"
            headers = {"Content-Type": "application/json"}
            with httpx.Client(timeout=10.0) as client:
                body = invocation_body(records[0])
                resp = client.post(url, content=body, headers=headers)
                print(f"request:  POST {INVOCATIONS_PATH} {body.decode()}")
                print(f"response: {resp.status_code} {resp.text}")
                resp.raise_for_status()
                times = []
                for i in range(args.requests):
                    body = invocation_body(records[i % len(records)])
                    s = time.perf_counter()
                    r = client.post(url, content=body, headers=headers)
                    times.append((time.perf_counter() - s) * 1000)
                    r.raise_for_status()
            times.sort()
            print(
                f"{args.requests} sequential requests: p50 {statistics.median(times):.2f} ms, "
                f"p90 {times[int(0.9 * len(times))]:.2f} ms, max {times[-1]:.2f} ms"
            )
        finally:
            stop(proc)


if __name__ == "__main__":
    main()

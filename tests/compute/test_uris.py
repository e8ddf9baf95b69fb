"""Compute URIs: what each backend accepts, and the errors for what it does not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from leptonic import Platform, Settings
from leptonic.compute import open_executor
from leptonic.compute.local import LocalExecutor
from leptonic.errors import ConfigError, UnknownBackend


def test_local_uris() -> None:
    assert open_executor("local://").workers == 1
    with open_executor("local://?workers=3") as pool:
        assert isinstance(pool, LocalExecutor) and pool.workers == 3
        assert pool.uri == "local://?workers=3"
    assert open_executor("local://?workers=auto").workers == (os.cpu_count() or 1)


@pytest.mark.parametrize(
    ("uri", "match"),
    [
        ("local://?workers=0", "from 1 to 1024"),
        ("local://?workers=two", "from 1 to 1024"),
        ("local://?threads=2", "expected local://"),
        ("local://elsewhere", "expected local://"),
        ("ray://head", "expected ray://host:port"),
        ("ray://head:10001?cpus=2", "expected ray://host:port"),
        ("ray://local?workers=2", "expected ray://host:port"),
        ("ray://local?cpus=-1", "from 1 to 1024"),
        ("local://?workers=1_0", "from 1 to 1024"),
        ("local://?workers=%20%203", "from 1 to 1024"),
        ("local://#frag", "expected local://"),
        ("local://[", "expected local://"),
        ("ray://:10001", "expected ray://host:port"),
        ("ray://head:0", "expected ray://host:port"),
        ("ray://[::1", "expected ray://host:port"),
    ],
)
def test_bad_uris_are_refused(uri: str, match: str) -> None:
    if uri.startswith("ray"):
        pytest.importorskip("ray", reason="the Ray backend needs the ray extra")
    with pytest.raises(ConfigError, match=match):
        open_executor(uri)


def test_an_unknown_scheme_names_the_known_ones() -> None:
    with pytest.raises(UnknownBackend, match="known schemes: local, ray"):
        open_executor("dask://scheduler:8786")


def test_the_platform_opens_its_compute_once_on_first_use(tmp_path: Path) -> None:
    env = {"LEPTONIC_HOME": str(tmp_path), "LEPTONIC_COMPUTE": "local://?workers=2"}
    lp = Platform.open(Settings.from_environ(env))
    executor = lp.as_user("bob").compute  # a copy for another user shares it
    assert executor is lp.compute and executor.workers == 2
    lp.close()


def test_a_bad_compute_uri_fails_when_the_platform_opens(tmp_path: Path) -> None:
    env = {"LEPTONIC_HOME": str(tmp_path), "LEPTONIC_COMPUTE": "dask://scheduler:8786"}
    with pytest.raises(UnknownBackend, match="no compute backend"):
        Platform.open(Settings.from_environ(env))
    env["LEPTONIC_COMPUTE"] = "local://?workers=0"  # checked before any work, too
    with pytest.raises(ConfigError, match="from 1 to 1024"):
        Platform.open(Settings.from_environ(env))


def test_an_error_that_cannot_cross_processes_comes_back_named() -> None:
    import pickle

    from leptonic.compute.base import run_task
    from leptonic.errors import MissingExtra

    class Unpicklable(Exception):
        def __init__(self, a: int, b: int) -> None:
            super().__init__(f"{a}/{b}")

    def fail(shared: int, item: int) -> None:
        raise Unpicklable(shared, item)

    with pytest.raises(RuntimeError, match=r"^Unpicklable: 1/2$"):
        run_task(fail, 1, 2)
    again = pickle.loads(pickle.dumps(MissingExtra("ray", "ray", "the Ray backend")))
    assert type(again) is MissingExtra and again.extra == "ray" and "leptonic[ray]" in str(again)


def test_a_closed_platform_does_not_start_workers_again(tmp_path: Path) -> None:
    from leptonic.errors import StoreError

    env = {"LEPTONIC_HOME": str(tmp_path), "LEPTONIC_COMPUTE": "local://?workers=2"}
    lp = Platform.open(Settings.from_environ(env))
    lp.close()
    with pytest.raises(StoreError, match="was closed"):
        lp.compute  # noqa: B018

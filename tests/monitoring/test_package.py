"""The package's public API is what ``__all__`` says."""

from __future__ import annotations

import leptonic.monitoring as monitoring


def test_all_names_exist_and_are_sorted() -> None:
    for name in monitoring.__all__:
        assert hasattr(monitoring, name), name
    assert list(monitoring.__all__) == sorted(
        monitoring.__all__, key=lambda n: (not n.isupper(), n)
    )


def test_no_private_or_module_leaks() -> None:
    public = {n for n in dir(monitoring) if not n.startswith("_") and n != "annotations"}
    submodules = {
        "alerts",
        "baseline",
        "drift",
        "performance",
        "plots",
        "recalibrate",
        "recs",
        "text",
    }
    assert public - set(monitoring.__all__) <= submodules


def test_submodule_exports_are_reexported() -> None:
    from leptonic.monitoring import alerts, baseline, drift, performance, plots, recalibrate, text

    for module in (alerts, baseline, drift, performance, plots, recalibrate, text):
        assert set(module.__all__) <= set(monitoring.__all__), module.__name__

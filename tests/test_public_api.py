from __future__ import annotations

import leptonic


def test_all_names_exist_and_are_sorted() -> None:
    for name in leptonic.__all__:
        assert hasattr(leptonic, name), name
    names = [n for n in leptonic.__all__ if n != "__version__"]
    assert names == sorted(names)


def test_no_private_or_module_leaks() -> None:
    public = {n for n in dir(leptonic) if not n.startswith("_") and n != "annotations"}
    submodules = {
        "config",
        "core",
        "errors",
        "platform",
        "tasks",
        "storage",
        "registry",
        "features",
        "evaluation",
        "governance",
        "synthetic",
        "cli",
        "demo",
        "sdk",
        "api",
        "ui",
        "serving",
        "monitoring",
    }
    assert public - set(leptonic.__all__) <= submodules


def test_errors_inherit_builtins() -> None:
    assert issubclass(leptonic.NotFound, KeyError)
    assert issubclass(leptonic.InvalidInput, ValueError)
    assert issubclass(leptonic.MissingExtra, ImportError)
    assert str(leptonic.NotFound("no such thing")) == "no such thing"

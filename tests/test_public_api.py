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
        "compute",
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


def test_task_and_evaluation_exports_resolve() -> None:
    import leptonic.evaluation as ev
    import leptonic.tasks as tasks

    for module in (tasks, ev):
        names = list(module.__all__)
        assert names == sorted(names), module.__name__
        for name in names:
            assert getattr(module, name) is not None, f"{module.__name__}.{name}"
    assert set(tasks.__all__) <= set(dir(tasks))


def test_importing_leptonic_imports_no_heavy_extra() -> None:
    import subprocess
    import sys

    code = (
        "import sys, leptonic, leptonic.tasks, leptonic.registry, leptonic.evaluation; "
        "heavy = {'torch', 'transformers', 'implicit'} & set(sys.modules); "
        "lazy = {'leptonic.tasks.textcls', 'leptonic.tasks.recsys'} & set(sys.modules); "
        "print(sorted(heavy | lazy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout

"""Training checkpoints without pickle: safetensors for tensors, JSON for the rest.

A checkpoint folder holds, after each epoch, the trainable weights, the best
weights so far, the optimizer state (its tensors flattened into one
safetensors file, its hyperparameters in JSON) and ``state.json``. The JSON is
written last, atomically, and names the tensor files of its epoch, so a crash
mid-write leaves the previous checkpoint intact. Checkpoints are internal to a
run; the model that is registered is saved by :meth:`TextPredictor.save`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from leptonic.errors import InvalidInput

__all__ = ["checkpoint_base", "load_checkpoint", "save_checkpoint"]

STATE = "state.json"


def _optimizer_tensors(optimizer: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    sd = optimizer.state_dict()
    tensors = {}
    for idx, slots in sd["state"].items():
        for key, value in slots.items():
            tensors[f"state.{idx}.{key}"] = value.detach().cpu().contiguous()
    return tensors, sd["param_groups"]


def _restore_optimizer(
    optimizer: Any, tensors: dict[str, Any], groups: list[dict[str, Any]]
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        _, idx, key = name.split(".", 2)
        state.setdefault(int(idx), {})[key] = value
    for group in groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def _cpu(tensors: dict[str, Any]) -> dict[str, Any]:
    return {k: v.detach().cpu().contiguous() for k, v in tensors.items()}


def save_checkpoint(
    folder: str | os.PathLike[str],
    *,
    epoch: int,
    weights: dict[str, Any],
    best: dict[str, Any] | None,
    optimizer: Any,
    rng_state: Any,
    state: dict[str, Any],
    cuda_rng_state: Any = None,
) -> None:
    """Write the checkpoint of ``epoch`` (1-based) and drop the previous one's files."""
    from safetensors.torch import save_file

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    opt_tensors, groups = _optimizer_tensors(optimizer)
    opt_tensors["rng.torch"] = rng_state
    if cuda_rng_state is not None:  # a GPU's dropout draws from its own generator
        opt_tensors["rng.cuda"] = cuda_rng_state
    weights_file = f"weights-e{epoch}.safetensors"
    optimizer_file = f"optimizer-e{epoch}.safetensors"
    best_file = f"best-e{epoch}.safetensors" if best is not None else None
    save_file(_cpu(weights), str(root / weights_file))
    save_file(opt_tensors, str(root / optimizer_file))
    if best is not None and best_file is not None:
        save_file(_cpu(best), str(root / best_file))
    names = {"weights": weights_file, "optimizer": optimizer_file, "best": best_file}
    doc = {**state, "epoch": epoch, "files": names, "param_groups": groups}
    tmp = root / f"{STATE}.tmp"
    tmp.write_text(json.dumps(doc, indent=1, default=float), encoding="utf-8")
    # on disk before state.json names them, and before the previous epoch's go
    for name in (*(n for n in names.values() if n), tmp.name):
        _fsync(root / name)
    os.replace(tmp, root / STATE)
    _fsync(root)
    keep = {n for n in names.values() if n}
    for path in root.glob("*.safetensors"):
        if path.name not in keep:
            path.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unreadable(root: Path, what: str) -> InvalidInput:
    return InvalidInput(
        f"the checkpoint in {str(root)!r} is unreadable ({what}); delete the folder or set "
        "resume=False",
        field="checkpoint_dir",
    )


def load_checkpoint(
    folder: str | os.PathLike[str], fingerprint: str, *, base_digest: str | None = None
) -> dict[str, Any] | None:
    """The checkpoint in ``folder`` (``None`` when there is none).

    Returns ``state`` plus ``weights``, ``best`` (or None), ``optimizer``
    (tensors), ``rng_state`` and ``cuda_rng_state`` (None unless saved on a GPU); apply
    the optimizer part with :func:`restore_optimizer`.

    Raises
    ------
    InvalidInput
        The checkpoint was made by another spec, on other data or from other base
        weights (``base_digest``, when the checkpoint recorded one), or a file of it
        is missing or damaged.
    """
    from safetensors.torch import load_file

    root = Path(folder)
    path = root / STATE
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        files = doc["files"]
        if not isinstance(files, dict):
            raise TypeError(files)
    except (OSError, ValueError, KeyError, TypeError):
        raise _unreadable(root, f"{STATE} is not a checkpoint description") from None
    if doc.get("fingerprint") != fingerprint:
        raise InvalidInput(
            f"the checkpoint in {str(root)!r} was made by another spec or on other data; "
            "point checkpoint_dir at a new folder, delete the old checkpoint, or set resume=False",
            field="checkpoint_dir",
        )
    kept = doc.get("base_digest")
    if base_digest is not None and kept is not None and kept != base_digest:
        raise InvalidInput(
            f"the checkpoint in {str(root)!r} was fine-tuned from other base weights than "
            "the base model's folder holds now; point checkpoint_dir at a new folder, delete "
            "the old checkpoint, or set resume=False",
            field="checkpoint_dir",
        )

    def tensors(name: str | None) -> dict[str, Any]:
        if (
            not isinstance(name, str)
            or Path(name).name != name
            or not name.endswith(".safetensors")
        ):
            raise _unreadable(root, f"it names the file {name!r}")
        try:
            return dict(load_file(str(root / name)))
        except Exception as exc:  # missing, truncated or not safetensors
            raise _unreadable(root, f"{name}: {type(exc).__name__}: {exc}") from None

    opt = tensors(files.get("optimizer"))
    if "rng.torch" not in opt:
        raise _unreadable(root, "its optimizer file has no random state")
    doc["rng_state"] = opt.pop("rng.torch")
    doc["cuda_rng_state"] = opt.pop("rng.cuda", None)
    doc["optimizer"] = opt
    doc["weights"] = tensors(files.get("weights"))
    doc["best"] = tensors(files["best"]) if files.get("best") else None
    return doc


def checkpoint_base(folder: str | os.PathLike[str]) -> str | None:
    """The base model that the checkpoint in ``folder`` started from, as recorded in
    its ``state.json``; None without a checkpoint (or an older one, which did not
    record it)."""
    try:
        doc = json.loads((Path(folder) / STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # none, or unreadable: load_checkpoint says so when it gets there
    base = doc.get("base_model") if isinstance(doc, dict) else None
    return base if isinstance(base, str) else None


def restore_optimizer(optimizer: Any, checkpoint: dict[str, Any]) -> None:
    """Load the optimizer state of a checkpoint returned by :func:`load_checkpoint`."""
    _restore_optimizer(optimizer, checkpoint["optimizer"], checkpoint["param_groups"])

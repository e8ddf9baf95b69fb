"""A :class:`TextPredictor` in the content-addressed artifact store.

The predictor's folder (see :meth:`TextPredictor.save`) is stored file by
file; a JSON manifest lists each file's key and SHA-256 together with the
model's task, flavor, classes and input signature, in the shape the registry
expects of a bundle. Loading checks the manifest against the digest it was
registered with, every file against the manifest, then loads the folder
(which checks its own manifest once more).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from leptonic.errors import UnsafeArtifact
from leptonic.tasks.textcls.predictor import ALLOWED_SUFFIXES, TextPredictor

__all__ = ["TEXT_BUNDLE_FORMAT", "load_text_predictor", "save_text_predictor"]

TEXT_BUNDLE_FORMAT = "leptonic-text-bundle/1"


def _refuse(key: str, why: str) -> UnsafeArtifact:
    return UnsafeArtifact(
        f"refusing text model artifact {key}: {why}; re-register the model from its run "
        "or restore the artifact store from a backup",
        field="artifact",
    )


def save_text_predictor(predictor: TextPredictor, artifacts: Any) -> tuple[str, str]:
    """Store ``predictor``; return ``(manifest_key, manifest_sha256)``."""
    with tempfile.TemporaryDirectory(prefix="leptonic-text-") as tmp:
        folder = Path(tmp) / "model"
        folder_digest = predictor.save(folder)
        files = {}
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                data = path.read_bytes()
                files[path.relative_to(folder).as_posix()] = {
                    "key": artifacts.put_bytes(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
    manifest = {
        "format": TEXT_BUNDLE_FORMAT,
        "task": predictor.task,
        "flavor": predictor.flavor,
        "classes": predictor.classes,
        "threshold": None,
        "multi_label": predictor.multi_label,
        "label_threshold": predictor.label_threshold,
        "inputs": predictor.inputs,
        "folder_manifest_sha256": folder_digest,
        "files": files,
    }
    data = json.dumps(manifest, sort_keys=True, allow_nan=False).encode("utf-8")
    return artifacts.put_bytes(data), hashlib.sha256(data).hexdigest()


def load_text_predictor(
    artifacts: Any, manifest_key: str, manifest_sha256: str, *, device: str = "cpu"
) -> TextPredictor:
    """Load a bundle stored by :func:`save_text_predictor`, verifying every byte."""
    data = artifacts.get_bytes(manifest_key, verify=True)
    if hashlib.sha256(data).hexdigest() != manifest_sha256:
        raise _refuse(manifest_key, "the manifest does not match the registered digest")
    try:
        manifest = json.loads(data)
        if manifest["format"] != TEXT_BUNDLE_FORMAT:
            raise ValueError(manifest["format"])
        files = dict(manifest["files"])
        folder_digest = str(manifest["folder_manifest_sha256"])
    except (ValueError, KeyError, TypeError):
        raise _refuse(manifest_key, f"not a {TEXT_BUNDLE_FORMAT} manifest") from None
    tmp = Path(tempfile.mkdtemp(prefix="leptonic-text-"))
    try:
        for name, entry in files.items():
            rel = PurePosixPath(name)
            if (
                rel.is_absolute()
                or ".." in rel.parts
                or not name.endswith((*ALLOWED_SUFFIXES, ".json"))
            ):
                raise _refuse(manifest_key, f"it lists a file that is not allowed: {name!r}")
            try:
                key, digest = str(entry["key"]), str(entry["sha256"])
            except (KeyError, TypeError):
                raise _refuse(
                    manifest_key, f"its entry for {name!r} has no key and digest"
                ) from None
            blob = artifacts.get_bytes(key, verify=True)
            if hashlib.sha256(blob).hexdigest() != digest:
                raise _refuse(key, f"{name} does not match the manifest's digest")
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blob)
        return TextPredictor.load(tmp, manifest_sha256=folder_digest, device=device)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

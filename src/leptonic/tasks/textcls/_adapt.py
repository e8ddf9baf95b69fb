"""Domain adaptation of the base encoder before fine-tuning (``spec.mlm_epochs``).

Task-adaptive pre-training: a few epochs of masked-language modelling on the
run's own texts (training and validation, without their labels) teach the
encoder the domain's words before it learns the labels. The adapted encoder is
written as an ordinary local Hugging Face folder that the fine-tuning then
starts from, so every mode, soup and refit works on it unchanged. A base
folder without masked-LM head weights (sentence encoders such as MiniLM) gets
a new head, trained alone for one epoch before the encoder joins in.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from leptonic.errors import InvalidInput
from leptonic.tasks.textcls._data import Encoded, data_digest
from leptonic.tasks.textcls._finetune import decays
from leptonic.tasks.textcls._progress import LogFn, Progress, ProgressFn, format_seconds
from leptonic.tasks.textcls._runtime import (
    DEFAULT_BASE_MODEL,
    autocast,
    pick_device,
    pick_precision,
    quiet_transformers,
    resolve_base_model,
    seed_everything,
    torch_module,
    transformers_module,
)
from leptonic.tasks.textcls.spec import TextClassificationSpec

__all__ = ["MLM_HEAD_LR", "MLM_MASK_RATE", "adapt_encoder", "adaptation_fingerprint", "mask_tokens"]

#: Share of the (non-special) tokens of a text the masked LM must restore.
MLM_MASK_RATE = 0.15
#: Learning rate of the new masked-LM head while it trains alone.
MLM_HEAD_LR = 1e-3
_STAMP = "adapted.json"
#: Bumped when the adaptation changes in a way its settings do not show.
_FORMAT = 1


def mask_tokens(
    ids: np.ndarray,
    mask: np.ndarray,
    special: np.ndarray,
    mask_id: int,
    vocab_size: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """BERT's masking: ``MLM_MASK_RATE`` of the real, non-special tokens become targets;
    of those 80 % are replaced by the mask token, 10 % by a random token, 10 % kept.
    Returns (input ids, labels with -100 where nothing is to be predicted)."""
    candidates = (mask == 1) & ~np.isin(ids, special)
    chosen = candidates & (rng.random(ids.shape) < MLM_MASK_RATE)
    # every text with a candidate token predicts at least one (short texts too)
    none = ~chosen.any(axis=1) & candidates.any(axis=1)
    for row in np.flatnonzero(none):
        chosen[row, rng.choice(np.flatnonzero(candidates[row]))] = True
    labels = np.where(chosen, ids, -100)
    roll = rng.random(ids.shape)
    out = ids.copy()
    out[chosen & (roll < 0.8)] = mask_id
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    out[swap] = rng.integers(0, vocab_size, size=int(swap.sum()))
    return out, labels


def adaptation_fingerprint(spec: TextClassificationSpec, texts: list[str]) -> str:
    """What an adaptation depends on (base, texts, settings): an adapted folder made
    with the same fingerprint is reused."""
    facts = {
        "format": _FORMAT,
        "mask_rate": MLM_MASK_RATE,
        "head_lr": MLM_HEAD_LR,
        "base_model": str(resolve_base_model(spec.base_model)),
        "weight_decay": spec.weight_decay,
        "warmup": spec.warmup,
        "mlm_epochs": spec.mlm_epochs,
        "mlm_lr": spec.mlm_lr,
        "precision": spec.precision,
        "max_length": spec.max_length,
        "batch_size": spec.batch_size,
        "seed": spec.seed,
        "texts": data_digest(texts, np.zeros(0, dtype=np.int64)),
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


def adapt_encoder(
    spec: TextClassificationSpec,
    texts: list[str],
    folder: str | Path,
    *,
    progress: ProgressFn | None = None,
    log: LogFn | None = None,
) -> dict[str, Any]:
    """Masked-LM training of ``spec.base_model`` on ``texts`` for ``spec.mlm_epochs``
    epochs; the adapted encoder (with the base's tokenizer) is saved to ``folder``.

    A folder already holding the adaptation of the same base, texts and settings
    is reused (a resumed run). Returns the facts: epochs, texts, loss of the head's
    epoch and of the first and last epoch, seconds.
    """
    if spec.mlm_epochs < 1:
        raise InvalidInput("mlm_epochs must be at least 1 to adapt the encoder", field="mlm_epochs")
    torch = torch_module()
    tf = transformers_module()
    folder = Path(folder)
    base = resolve_base_model(spec.base_model)
    fingerprint = adaptation_fingerprint(spec, texts)
    stamp = folder / _STAMP
    done = _read_stamp(stamp)
    if done is not None and done["fingerprint"] == fingerprint:
        if log:
            log(f"masked-LM adaptation: reusing the adapted encoder in {folder}")
        return dict(done["facts"], reused=True)
    started = time.perf_counter()
    device = pick_device(spec.device)
    precision = pick_precision(spec.precision, device)
    seed_everything(spec.seed)
    with quiet_transformers():
        tokenizer = tf.AutoTokenizer.from_pretrained(base, local_files_only=True)
        try:
            mlm, info = tf.AutoModelForMaskedLM.from_pretrained(
                base, local_files_only=True, use_safetensors=True, output_loading_info=True
            )
        except ValueError as exc:
            raise InvalidInput(
                f"base model {base} has no masked-language-model form for mlm_epochs ({exc}); "
                "use a BERT-family encoder or set mlm_epochs to 0",
                field="mlm_epochs",
            ) from None
    if tokenizer.mask_token_id is None:
        raise InvalidInput(
            f"the tokenizer of {base} has no mask token, which mlm_epochs needs; "
            "set mlm_epochs to 0",
            field="mlm_epochs",
        )
    mlm.to(device)
    missing = set(info.get("missing_keys", []))
    head = [p for n, p in mlm.named_parameters() if n in missing]
    encoded = Encoded.from_texts(tokenizer, texts, spec.max_length)
    special = np.array(sorted(set(tokenizer.all_special_ids)), dtype=np.int64)
    vocab = int(mlm.get_output_embeddings().weight.shape[0])
    per_epoch = encoded.n_train_batches(spec.batch_size)
    head_epochs = 1 if head else 0
    bar = Progress(
        per_epoch * (head_epochs + spec.mlm_epochs), what="steps", progress=progress, log=log
    )
    if log:
        log(
            f"masked-LM adaptation of {spec.base_model or DEFAULT_BASE_MODEL} on {len(texts)} texts: "
            + (f"1 epoch for its new head ({len(head)} tensors), then " if head else "")
            + f"{spec.mlm_epochs} epoch(s) of the whole encoder ({precision})"
        )

    def run(epoch: int, optimizer: Any, lr_at: Any, params: list[Any]) -> float:
        mlm.train()
        rng = np.random.default_rng([spec.seed, 7919, epoch + 1])
        losses = []
        for rows in encoded.train_batches(spec.batch_size, rng):
            ids, mask = encoded.pad(rows)
            inputs, labels = mask_tokens(ids, mask, special, tokenizer.mask_token_id, vocab, rng)
            for group in optimizer.param_groups:
                group["lr"] = lr_at(bar.done)
            if not (labels != -100).any():  # texts of special tokens only: nothing to learn
                bar.advance()
                continue
            target = torch.from_numpy(labels).to(device)
            with autocast(precision, device):
                logits = _masked_logits(
                    mlm,
                    torch.from_numpy(inputs).to(device),
                    torch.from_numpy(mask).to(device),
                    target != -100,
                )
            loss = torch.nn.functional.cross_entropy(logits.float(), target[target != -100])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
            bar.advance(note=f"masked-LM epoch {epoch + 1} loss {np.mean(losses[-50:]):.4f}")
        return float(np.mean(losses)) if losses else float("nan")

    epoch_losses: list[float] = []
    head_loss = None
    if head:
        for p in mlm.parameters():
            p.requires_grad_(False)
        for p in head:
            p.requires_grad_(True)
        optimizer = torch.optim.AdamW(head, lr=MLM_HEAD_LR, weight_decay=0.0)
        head_loss = run(-1, optimizer, lambda step: MLM_HEAD_LR, head)
        if log:
            log(f"masked-LM head alone: loss {head_loss:.4f} · {bar.status()}")
        for p in mlm.parameters():
            p.requires_grad_(True)
    decay: list[Any] = []
    no_decay: list[Any] = []
    for name, p in mlm.named_parameters():
        (decay if decays(name, p) else no_decay).append(p)
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": spec.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=spec.mlm_lr,
    )
    first = head_epochs * per_epoch
    total = spec.mlm_epochs * per_epoch
    warm = max(1, math.ceil(spec.warmup * total))

    def lr_at(step: int) -> float:
        step -= first
        if step < warm:
            return spec.mlm_lr * (step + 1) / warm
        return spec.mlm_lr * max(0.0, (total - step) / max(1, total - warm))

    params = [p for p in mlm.parameters()]
    for epoch in range(spec.mlm_epochs):
        epoch_losses.append(run(epoch, optimizer, lr_at, params))
        if log:
            log(
                f"masked-LM epoch {epoch + 1}/{spec.mlm_epochs}: loss "
                f"{epoch_losses[-1]:.4f} · {bar.status()}"
            )
    bar.finish()
    _save(mlm, base, tokenizer, folder)
    facts = {
        "epochs": spec.mlm_epochs,
        "texts": len(texts),
        **({"head_loss": round(head_loss, 4)} if head_loss is not None else {}),
        "first_loss": round(epoch_losses[0], 4),
        "last_loss": round(epoch_losses[-1], 4),
        "seconds": round(time.perf_counter() - started, 3),
    }
    partial = stamp.with_suffix(".tmp")  # written whole, then renamed: never half a stamp
    partial.write_text(json.dumps({"fingerprint": fingerprint, "facts": facts}))
    os.replace(partial, stamp)
    if log:
        log(f"masked-LM adaptation took {format_seconds(facts['seconds'])}")
    return facts


def _read_stamp(stamp: Path) -> dict[str, Any] | None:
    """The stamp of a finished adaptation, or None (absent or unreadable: adapt again)."""
    try:
        done = json.loads(stamp.read_text())
        return (
            done
            if isinstance(done["fingerprint"], str) and isinstance(done["facts"], dict)
            else None
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


#: Masked-LM classes whose logits are ``head(encoder output)`` position by position.
_POSITION_WISE = {"BertForMaskedLM": "cls", "RobertaForMaskedLM": "lm_head"}


def _masked_logits(mlm: Any, ids: Any, mask: Any, where: Any) -> Any:
    """The vocabulary logits at the masked positions only (the vocabulary projection
    of every position would cost as much as the encoder): through the head of a
    model known to be position-wise (BERT, RoBERTa), else the full pass."""
    name = _POSITION_WISE.get(type(mlm).__name__)
    head = getattr(mlm, name, None) if name is not None else None
    if head is not None:
        hidden = mlm.base_model(input_ids=ids, attention_mask=mask).last_hidden_state
        return head(hidden[where])
    return mlm(input_ids=ids, attention_mask=mask).logits[where]


def _save(mlm: Any, base: Path, tokenizer: Any, folder: Path) -> None:
    """The adapted encoder as a Hugging Face folder: the base's own encoder class and
    config (pooler included, as the base had it) with the adapted weights."""
    tf = transformers_module()
    with quiet_transformers():
        encoder = tf.AutoModel.from_pretrained(base, local_files_only=True, use_safetensors=True)
    adapted = {k: v.detach().float().cpu() for k, v in mlm.base_model.state_dict().items()}
    missing, unexpected = encoder.load_state_dict(adapted, strict=False)
    left = [k for k in missing if not k.startswith("pooler.")]
    if unexpected or left:
        raise InvalidInput(
            f"the masked-LM form of {base} does not match its encoder "
            f"(missing {left[:3]}, unexpected {list(unexpected)[:3]}); set mlm_epochs to 0",
            field="mlm_epochs",
        )
    shutil.rmtree(folder, ignore_errors=True)  # nothing of an earlier adaptation stays
    folder.mkdir(parents=True)
    with quiet_transformers():
        encoder.save_pretrained(folder, safe_serialization=True)
        tokenizer.save_pretrained(folder)

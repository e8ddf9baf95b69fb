"""Fine-tuning a Hugging Face encoder for classification: ``full`` or ``lora`` mode.

Built for CPUs first: texts are tokenised once, batches hold texts of similar
length and are padded to their longest one, bf16 autocast is used where the
CPU runs it natively (AMX, AVX-512 BF16), the word embeddings stay fixed by
default (half of MiniLM's weights: a smaller optimizer step), evaluation runs
under ``torch.inference_mode``. The learning rate warms up linearly, then decays
linearly to zero; validation macro-F1 after each epoch drives early stopping
and the choice of the weights that are kept. Multi-label specs train one
sigmoid per label with binary cross-entropy.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from leptonic.errors import InvalidInput
from leptonic.tasks.textcls._checkpoint import load_checkpoint, restore_optimizer, save_checkpoint
from leptonic.tasks.textcls._data import Encoded, data_digest
from leptonic.tasks.textcls._progress import LogFn, Progress, ProgressFn, format_seconds
from leptonic.tasks.textcls._runtime import (
    autocast,
    check_max_length,
    peft_module,
    pick_device,
    pick_precision,
    quiet_transformers,
    resolve_base_model,
    seed_everything,
    torch_module,
    transformers_module,
)
from leptonic.tasks.textcls.spec import TextClassificationSpec

__all__ = ["FinetuneResult", "decays", "evaluate_logits", "finetune", "validation_metrics"]

_HEAD = ("classifier", "pooler")
_NO_DECAY = ("bias", "LayerNorm", "layer_norm", "norm.weight")
#: Spec fields that change what a checkpoint holds (others, e.g. epochs, may change on resume).
_FINGERPRINT_FIELDS = (
    "mode",
    "base_model",
    "max_length",
    "batch_size",
    "lr",
    "head_lr",
    "weight_decay",
    "warmup",
    "label_smoothing",
    "class_weights",
    "freeze_embeddings",
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "pooling",
    "C",
    "seed",
)
#: LoRA adapters go on the attention projections and feed-forward layers of the encoder.
_LORA_TARGETS = r".*encoder\.layer\.\d+\..*(query|key|value|dense)"


@dataclass
class FinetuneResult:
    """The fine-tuned model (LoRA merged) and how training went."""

    model: Any
    tokenizer: Any
    history: list[dict[str, Any]]
    losses: list[float]
    best_epoch: int
    stopped_early: bool
    device: str
    precision: str
    timings: dict[str, float] = field(default_factory=dict)
    #: The linear-probe head the fine-tuning started from (``mean`` pooling), as
    #: (weight, bias): a soup's next model on the same texts starts from it too.
    probe: tuple[np.ndarray, np.ndarray] | None = None
    #: Training stopped before ``spec.epochs`` because the next epoch would pass the deadline.
    stopped_for_time: bool = False


def _lora(model: Any, spec: TextClassificationSpec, task_type: str | None) -> Any:
    """``model`` with LoRA adapters on its encoder layers; the head stays fully trainable."""
    peft = peft_module()
    names = {n.split(".")[-1] for n, _ in model.named_modules()}
    config = peft.LoraConfig(
        task_type=getattr(peft.TaskType, task_type) if task_type else None,
        r=spec.lora_r,
        lora_alpha=spec.lora_alpha,
        lora_dropout=spec.lora_dropout,
        target_modules=_LORA_TARGETS,
        modules_to_save=[m for m in _HEAD if m in names] or None,
    )
    try:
        with warnings.catch_warnings():
            # peft asks transformers a deprecated question (is_gradient_checkpointing)
            warnings.simplefilter("ignore", FutureWarning)
            return peft.get_peft_model(model, config)
    except ValueError as exc:
        raise InvalidInput(
            f"LoRA found no attention or feed-forward layers to adapt in base model "
            f"{spec.base_model or 'MiniLM'} ({exc}); use mode 'full' for this architecture",
            field="mode",
        ) from None


def _mean_pool_model(
    spec: TextClassificationSpec,
    base: Any,
    train: Encoded,
    y_train: np.ndarray,
    k: int,
    device: Any,
    precision: str,
    log: LogFn | None,
    *,
    probe_head: bool = True,
    head: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[Any, tuple[np.ndarray, np.ndarray] | None]:
    """Encoder + mean pooling + a head started from a linear probe (LP-FT), and that
    probe's (weight, bias); ``head`` is a probe already fitted on these texts (a
    soup's earlier model); without ``probe_head`` (resuming: the head comes from the
    checkpoint) a zero head."""
    torch = torch_module()
    tf = transformers_module()
    from leptonic.tasks.textcls._heads import embed, probe
    from leptonic.tasks.textcls._nets import MeanPoolClassifier

    t0 = time.perf_counter()
    with quiet_transformers():
        encoder = tf.AutoModel.from_pretrained(base, local_files_only=True, use_safetensors=True)
    dim = int(encoder.config.hidden_size)
    model = MeanPoolClassifier(encoder, torch.zeros(k, dim), torch.zeros(k)).to(device)
    if probe_head:
        if head is None:
            emb = embed(model, train, spec.eval_batch_size, device, precision, None)
            head = probe(spec, y_train, emb, k)
            if log:
                log(
                    f"linear probe on frozen embeddings for the head: {time.perf_counter() - t0:.1f}s"
                )
        with torch.no_grad():
            model.head.weight.copy_(torch.from_numpy(head[0]))
            model.head.bias.copy_(torch.from_numpy(head[1]))
    else:
        head = None
    if spec.mode == "lora":
        model.encoder = _lora(encoder, spec, task_type=None)
    return model, head


def _logits(model: Any, ids: Any, mask: Any) -> Any:
    out = model(input_ids=ids, attention_mask=mask)
    return out if isinstance(out, torch_module().Tensor) else out.logits


def decays(name: str, param: Any) -> bool:
    """Whether AdamW weight decay applies to a parameter: matrices, not biases or norms."""
    return bool(param.ndim > 1 and not any(nd in name for nd in _NO_DECAY))


def _param_groups(model: Any, spec: TextClassificationSpec) -> list[dict[str, Any]]:
    groups: dict[tuple[bool, bool], list[Any]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        head = name.startswith("head.") or any(h in name for h in _HEAD)
        decay = decays(name, p)
        groups.setdefault((head, decay), []).append(p)
    out = []
    for (head, decay), params in sorted(groups.items()):
        peak = spec.classifier_lr if head else spec.encoder_lr
        out.append(
            {
                "params": params,
                "lr": peak,
                "peak_lr": peak,
                "weight_decay": spec.weight_decay if decay else 0.0,
            }
        )
    return out


def _loss(spec: TextClassificationSpec, y_train: np.ndarray, k: int, device: Any) -> Any:
    """The training loss: cross-entropy, or for ``multi_label`` binary cross-entropy per
    label (``label_smoothing`` pulls its 0/1 targets towards 1/2); ``class_weights``
    weighs classes by inverse frequency, or each label's positives by its negatives."""
    torch = torch_module()
    if spec.multi_label:
        pos_weight = None
        if spec.class_weights:
            pos = y_train.sum(axis=0)
            w = np.where(pos > 0, (len(y_train) - pos) / np.maximum(pos, 1), 1.0)
            pos_weight = torch.tensor(w, dtype=torch.float32, device=device)
        bce = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
        eps = spec.label_smoothing

        def multilabel_loss(logits: Any, target: Any) -> Any:
            return bce(logits, target * (1.0 - eps) + eps / 2)

        return multilabel_loss
    weight = None
    if spec.class_weights:
        counts = np.bincount(y_train, minlength=k).astype(np.float64)
        w = np.where(counts > 0, len(y_train) / (k * np.maximum(counts, 1)), 0.0)
        weight = torch.tensor(w, dtype=torch.float32, device=device)
    return torch.nn.CrossEntropyLoss(weight=weight, label_smoothing=spec.label_smoothing)


def _optimizer(groups: list[dict[str, Any]], device: Any) -> Any:
    torch = torch_module()
    try:
        return torch.optim.AdamW(groups, fused=True)
    except (RuntimeError, TypeError, ValueError):  # fused kernels missing for this device
        return torch.optim.AdamW(groups)


def _fingerprint(spec: TextClassificationSpec, classes: list[str], digests: list[str]) -> str:
    facts = {name: getattr(spec, name) for name in _FINGERPRINT_FIELDS}
    if spec.multi_label:  # (multi-class fingerprints stay as they were)
        facts.update(multi_label=True, threshold=spec.threshold)
    facts.update(classes=classes, data=digests)
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()


def _base_digest(base: str | Path) -> str:
    """SHA-256 over the base model's weight files (what a checkpoint was tuned from)."""
    from leptonic.storage.artifacts.base import digest_file

    h = hashlib.sha256()
    for path in sorted(Path(base).glob("*.safetensors")):
        h.update(f"{path.name}:{digest_file(path)};".encode())
    return h.hexdigest()


def _check_names(checkpoint: dict[str, Any], trainable: set[str], folder: Any) -> None:
    """Refuse a checkpoint whose weights are not exactly this model's trainable ones
    (another release of transformers or peft may name them differently)."""
    for part in ("weights", "best"):
        names = set(checkpoint[part] or trainable)
        if names != trainable:
            odd = sorted(names ^ trainable)[:3]
            raise InvalidInput(
                f"the checkpoint in {str(folder)!r} holds {part} named otherwise than this "
                f"model's trainable weights (e.g. {odd}); it was made by another release of "
                "transformers or peft: delete it, or set resume=False",
                field="checkpoint_dir",
            )


def _trainable(model: Any) -> dict[str, Any]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def evaluate_logits(
    model: Any, enc: Encoded, batch_size: int, device: Any, precision: str
) -> np.ndarray:
    """Logits of every encoded text (in input order), under inference mode."""
    torch = torch_module()
    model.eval()
    out: np.ndarray | None = None
    with torch.inference_mode(), autocast(precision, device):
        for rows in enc.eval_batches(batch_size):
            ids, mask = enc.pad(rows)
            logits = _logits(
                model, torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device)
            ).float()
            if out is None:
                out = np.empty((len(enc), logits.shape[-1]), dtype=np.float64)
            out[rows] = logits.cpu().numpy()
    return out if out is not None else np.empty((0, 0))


def validation_metrics(
    logits: np.ndarray, y: np.ndarray, classes: list[str], threshold: float = 0.5
) -> dict[str, float]:
    """Validation loss, accuracy and macro-F1 of logits; ``y`` 2-D: a multi-label 0/1
    matrix (binary cross-entropy, subset accuracy, labels from ``threshold``; micro-F1 too)."""
    from leptonic.evaluation.classification import label_metrics

    if np.ndim(y) == 2:
        from leptonic.tasks.textcls._multilabel import multilabel_validation

        return multilabel_validation(logits, y, threshold)

    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    m = label_metrics(y, np.argmax(logits, axis=1), classes)
    return {
        "valid_loss": float(-logp[np.arange(len(y)), y].mean()),
        "valid_accuracy": m["accuracy"],
        "valid_macro_f1": m["macro_f1"],
    }


def finetune(
    spec: TextClassificationSpec,
    classes: list[str],
    train_texts: list[str],
    y_train: np.ndarray,
    valid_texts: list[str],
    y_valid: np.ndarray,
    *,
    progress: ProgressFn | None = None,
    log: LogFn | None = None,
    init_seed: int | None = None,
    probe: tuple[np.ndarray, np.ndarray] | None = None,
    deadline: float | None = None,
) -> FinetuneResult:
    """Fine-tune ``spec.base_model`` on the texts; keep the best epoch by validation macro-F1.

    ``init_seed`` (the models of a soup) seeds the new weights (head, LoRA
    adapters) apart from ``spec.seed``, which then seeds only the data order
    and dropout: the soup's models start from the same point. ``probe`` is the
    linear-probe head of an earlier model on the same texts (``mean`` pooling),
    used instead of fitting it again. With ``deadline`` (a ``time.perf_counter``
    value), no epoch is started that would, at the last epoch's pace, end after it
    (the first always runs).
    """
    torch = torch_module()
    tf = transformers_module()
    started = time.perf_counter()
    device = pick_device(spec.device)
    precision = pick_precision(spec.precision, device)
    base = resolve_base_model(spec.base_model)
    check_max_length(spec.max_length, base)
    k = len(classes)
    seed_everything(spec.seed if init_seed is None else init_seed)
    t0 = time.perf_counter()
    with quiet_transformers():
        tokenizer = tf.AutoTokenizer.from_pretrained(base, local_files_only=True)
    train = Encoded.from_texts(tokenizer, train_texts, spec.max_length)
    valid = Encoded.from_texts(tokenizer, valid_texts, spec.max_length) if valid_texts else None
    tokenize_s = time.perf_counter() - t0
    if spec.pooling == "mean":
        resuming = (
            bool(spec.resume and spec.checkpoint_dir)
            and (Path(str(spec.checkpoint_dir)) / "state.json").is_file()
        )
        model, probe = _mean_pool_model(
            spec,
            base,
            train,
            y_train,
            k,
            device,
            precision,
            log,
            probe_head=not resuming,
            head=probe,
        )
    else:
        probe = None
        with quiet_transformers():
            model = tf.AutoModelForSequenceClassification.from_pretrained(
                base,
                num_labels=k,
                id2label=dict(enumerate(classes)),
                label2id={c: i for i, c in enumerate(classes)},
                **({"problem_type": "multi_label_classification"} if spec.multi_label else {}),
                local_files_only=True,
                use_safetensors=True,
            )
        if spec.mode == "lora":
            model = _lora(model, spec, task_type="SEQ_CLS")
    if spec.mode != "lora" and spec.freeze_embeddings:
        hf = model.encoder if spec.pooling == "mean" else model
        hf.get_input_embeddings().weight.requires_grad_(False)
    model.to(device)
    if init_seed is not None and init_seed != spec.seed:
        seed_everything(spec.seed)
    groups = _param_groups(model, spec)
    params = [p for g in groups for p in g["params"]]
    optimizer = _optimizer(groups, device)

    per_epoch = train.n_train_batches(spec.batch_size)
    total = per_epoch * spec.epochs
    warm = max(1, int(spec.warmup * total))

    def lr_factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total - step) / max(1, total - warm))

    loss_fn = _loss(spec, y_train, k, device)
    y_all = torch.from_numpy(
        np.asarray(y_train, dtype=np.float32 if spec.multi_label else np.int64)
    )

    digests = [data_digest(train_texts, y_train), data_digest(valid_texts, y_valid)]
    fingerprint = _fingerprint(spec, classes, digests)
    state: dict[str, Any] = {
        "step": 0,
        "best_score": None,
        "best_epoch": 0,
        "bad_epochs": 0,
        "history": [],
        "losses": [],
        "stopped_early": False,
    }
    start_epoch = 0
    best: dict[str, Any] | None = None
    base_digest = _base_digest(base) if spec.checkpoint_dir else None
    if spec.resume and spec.checkpoint_dir:
        ck = load_checkpoint(spec.checkpoint_dir, fingerprint, base_digest=base_digest)
        if ck is not None:
            _check_names(
                ck, {n for n, q in model.named_parameters() if q.requires_grad}, spec.checkpoint_dir
            )
            model.load_state_dict({n: v.to(device) for n, v in ck["weights"].items()}, strict=False)
            restore_optimizer(optimizer, ck)
            torch.set_rng_state(ck["rng_state"])
            if device.type == "cuda" and ck["cuda_rng_state"] is not None:
                torch.cuda.set_rng_state(ck["cuda_rng_state"], device)
            best = ck["best"]
            start_epoch = int(ck["epoch"])
            state.update({key: ck[key] for key in state})
            if log:
                log(f"resumed from the checkpoint of epoch {start_epoch} in {spec.checkpoint_dir}")

    bar = Progress(total, what="steps", progress=progress, log=log, done=state["step"])
    if log:
        log(
            f"{spec.mode} fine-tuning on {device.type} ({precision}, {torch.get_num_threads()} "
            f"threads): {len(train)} texts, {len(valid) if valid else 0} for validation, "
            f"{per_epoch} steps per epoch, {spec.epochs} epochs at most"
        )
    last_epoch = start_epoch if state["stopped_early"] else spec.epochs
    stopped_for_time = False
    for epoch in range(start_epoch, last_epoch):
        e0 = time.perf_counter()
        model.train()
        rng = np.random.default_rng([spec.seed, epoch])
        epoch_losses: list[float] = []
        for rows in train.train_batches(spec.batch_size, rng):
            factor = lr_factor(state["step"])
            for g in optimizer.param_groups:
                g["lr"] = g["peak_lr"] * factor
            ids, mask = train.pad(rows)
            with autocast(precision, device):
                logits = _logits(
                    model, torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device)
                )
            loss = loss_fn(logits.float(), y_all[rows].to(device))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            state["step"] += 1
            epoch_losses.append(float(loss.detach()))
            bar.advance(note=f"epoch {epoch + 1} loss {np.mean(epoch_losses[-50:]):.4f}")
        state["losses"].extend(epoch_losses)
        record: dict[str, Any] = {"epoch": epoch + 1, "train_loss": float(np.mean(epoch_losses))}
        if valid is not None:
            logits_v = evaluate_logits(model, valid, spec.eval_batch_size, device, precision)
            record.update(validation_metrics(logits_v, y_valid, classes, spec.threshold or 0.5))
            # macro-F1 first; on a tie (small validation sets) the lower loss wins
            score = [record["valid_macro_f1"], -record["valid_loss"]]
        else:
            score = [-record["train_loss"], 0.0]
        record["seconds"] = round(time.perf_counter() - e0, 2)
        state["history"].append(record)
        best_score = state["best_score"]
        if best_score is None or (round(score[0], 9), score[1]) > (
            round(best_score[0], 9),
            best_score[1],
        ):
            state.update(best_score=score, best_epoch=epoch + 1, bad_epochs=0)
            best = _trainable(model)
        else:
            state["bad_epochs"] += 1
        if log:
            shown = ", ".join(f"{k} {v:.4f}" for k, v in record.items() if isinstance(v, float))
            log(f"epoch {epoch + 1}/{spec.epochs}: {shown} · {bar.status()}")
        stop = bool(spec.patience) and state["bad_epochs"] >= spec.patience
        state["stopped_early"] = stop and epoch + 1 < spec.epochs
        if spec.checkpoint_dir:
            save_checkpoint(
                spec.checkpoint_dir,
                epoch=epoch + 1,
                weights=_trainable(model),
                best=best,
                optimizer=optimizer,
                rng_state=torch.get_rng_state(),
                cuda_rng_state=torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                state={
                    **state,
                    "fingerprint": fingerprint,
                    "base_model": str(base),
                    "base_digest": base_digest,
                },
            )
        if stop:
            if log and state["stopped_early"]:
                log(f"early stop: no better validation macro-F1 for {spec.patience} epochs")
            break
        if (
            deadline is not None
            and epoch + 1 < spec.epochs
            and time.perf_counter() + (time.perf_counter() - e0) > deadline
        ):
            stopped_for_time = True
            if log:
                log(f"time limit: epoch {epoch + 2} would end past it; training stops here")
            break
    bar.finish()
    if best is not None:
        model.load_state_dict({n: v.to(device) for n, v in best.items()}, strict=False)
    if spec.mode == "lora":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            if spec.pooling == "mean":
                model.encoder = model.encoder.merge_and_unload()
            else:
                model = model.merge_and_unload()
    model.eval()
    train_s = time.perf_counter() - started
    if log:
        log(f"kept epoch {state['best_epoch']}; fine-tuning took {format_seconds(train_s)}")
    return FinetuneResult(
        model=model,
        tokenizer=tokenizer,
        history=state["history"],
        losses=state["losses"],
        best_epoch=state["best_epoch"],
        stopped_early=state["stopped_early"],
        device=str(device),
        precision=precision,
        timings={"tokenize_s": round(tokenize_s, 3), "finetune_s": round(train_s, 3)},
        probe=probe,
        stopped_for_time=stopped_for_time,
    )

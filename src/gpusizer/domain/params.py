"""Parameter counts from the architecture, per layer and per tensor group.

Groups matter because quantization formats keep some of them in 16-bit (embeddings,
lm_head, norms, routers, biases) and tensor parallelism replicates some of them on every
rank (norms, routers, MLA's down-projections, KV heads when TP exceeds their number).

Shapes follow the Hugging Face / vLLM module layouts:
  GQA/MHA attention  q: H×(n_q·d)  k,v: H×(n_kv·d)  o: (n_q·d_v)×H
  MLA attention      q_a: H×r_q (+norm r_q), q_b: r_q×n_q(d_nope+d_rope)
                     kv_a: H×(r_kv+d_rope) (+norm r_kv), kv_b: r_kv×n_q(d_nope+d_v), o: n_q·d_v×H
  gated MLP          gate,up: H×I  down: I×H           MoE: E experts of that shape + router H×E
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gpusizer.catalog.arch import ModelArch
from gpusizer.catalog.specs import ParamGroup

__all__ = ["LayerParams", "ParamCounts", "count_params"]


@dataclass(frozen=True, kw_only=True)
class LayerParams:
    """Parameters of one decoder layer, split by group and by how TP treats them.

    ``sharded``: divided across tensor-parallel ranks. ``replicated``: a full copy on
    every rank. ``active`` counts only the experts one token routes to.
    """

    sharded: Mapping[ParamGroup, int]
    replicated: Mapping[ParamGroup, int]
    active: int

    @property
    def total(self) -> int:
        return sum(self.sharded.values()) + sum(self.replicated.values())

    def group(self, name: ParamGroup) -> int:
        return self.sharded.get(name, 0) + self.replicated.get(name, 0)


@dataclass(frozen=True, kw_only=True)
class ParamCounts:
    """Whole-model parameter counts. ``total``/``active`` exclude MTP layers (not loaded
    unless speculative decoding uses them), as DeepSeek's published 671B does."""

    embedding: int
    lm_head: int  # 0 when tied to the embedding
    final_norm: int
    layers: tuple[LayerParams, ...]
    mtp_layers: tuple[LayerParams, ...] = field(default=())

    @property
    def total(self) -> int:
        return self.embedding + self.lm_head + self.final_norm + sum(lp.total for lp in self.layers)

    @property
    def active(self) -> int:
        """Parameters a token uses: embedding, lm_head (once when tied), norms, and per layer
        the attention plus routed top-k and shared experts — the published "activated" sense."""
        return self.embedding + self.lm_head + self.final_norm + sum(lp.active for lp in self.layers)

    @property
    def mtp_total(self) -> int:
        return sum(lp.total for lp in self.mtp_layers)

    def group_total(self, name: ParamGroup) -> int:
        extra = {"embedding": self.embedding, "lm_head": self.lm_head, "norm": self.final_norm}
        return extra.get(name, 0) + sum(lp.group(name) for lp in self.layers)


def _add(d: dict[ParamGroup, int], key: ParamGroup, value: int) -> None:
    if value:
        d[key] = d.get(key, 0) + value


def _attention(a: ModelArch, sh: dict[ParamGroup, int], rep: dict[ParamGroup, int]) -> None:
    h = a.hidden_size
    nq = a.num_attention_heads
    if a.mla is not None:
        m = a.mla
        qk = m.qk_nope_head_dim + m.qk_rope_head_dim
        if m.q_lora_rank:
            _add(rep, "attention", h * m.q_lora_rank)  # q_a_proj: ReplicatedLinear in vLLM
            _add(rep, "norm", m.q_lora_rank)  # q_a_layernorm
            _add(sh, "attention", m.q_lora_rank * nq * qk)  # q_b_proj
        else:
            _add(sh, "attention", h * nq * qk)  # q_proj
        _add(rep, "attention", h * (m.kv_lora_rank + m.qk_rope_head_dim))  # kv_a_proj_with_mqa
        _add(rep, "norm", m.kv_lora_rank)  # kv_a_layernorm
        _add(sh, "attention", m.kv_lora_rank * nq * (m.qk_nope_head_dim + m.v_head_dim))
        _add(sh, "attention", nq * m.v_head_dim * h)  # o_proj
        if a.index_n_heads and m.q_lora_rank:  # DeepSeek-V3.2 lightning indexer
            ih, idim = a.index_n_heads, a.index_head_dim
            _add(rep, "indexer", m.q_lora_rank * ih * idim + h * idim + h * ih)
            _add(rep, "norm", 2 * idim)  # indexer k_norm is a LayerNorm (weight + bias)
        return
    d, dv, nkv = a.head_dim, a.v_head_dim, a.num_kv_heads
    _add(sh, "attention", h * nq * d + nq * dv * h)  # q_proj, o_proj
    _add(sh, "attention", h * nkv * (d + dv))  # k_proj, v_proj (replication handled per rank)
    if a.qkv_bias:
        _add(sh, "bias", nq * d + nkv * (d + dv))
    if a.o_bias:
        _add(rep, "bias", h)
    if a.qk_norm:
        _add(rep, "norm", 2 * d)
    if a.attention_sinks:
        _add(sh, "bias", nq)


def _mlp_matrices(a: ModelArch) -> int:
    return 3 if a.gated_mlp else 2


def _dense_mlp(a: ModelArch, width: int, sh: dict[ParamGroup, int], group: ParamGroup) -> int:
    n = _mlp_matrices(a) * a.hidden_size * width
    _add(sh, group, n)
    if a.mlp_bias:
        _add(sh, "bias", (_mlp_matrices(a) - 1) * width + a.hidden_size)
    return n


def _layer(a: ModelArch, index: int, is_moe: bool) -> LayerParams:
    sh: dict[ParamGroup, int] = {}
    rep: dict[ParamGroup, int] = {}
    _attention(a, sh, rep)
    _add(rep, "norm", a.norms_per_layer * a.hidden_size * (2 if a.layer_norm_bias else 1))
    attn_and_norms = sum(sh.values()) + sum(rep.values())
    if is_moe and a.moe is not None:
        moe = a.moe
        h = a.hidden_size
        per_expert = _mlp_matrices(a) * h * moe.expert_intermediate_size
        expert_bias = (2 * moe.expert_intermediate_size + h) if moe.expert_bias else 0
        _add(sh, "experts", moe.num_experts * per_expert)
        _add(sh, "bias", moe.num_experts * expert_bias)
        _add(rep, "router", h * moe.num_experts)
        if moe.router_bias:
            _add(rep, "bias", moe.num_experts)
        shared = 0
        if moe.num_shared_experts:
            shared = _dense_mlp(
                a, moe.num_shared_experts * moe.expert_intermediate_size, sh, "shared_experts"
            )
        if moe.shared_intermediate_size:
            shared += _dense_mlp(a, moe.shared_intermediate_size, sh, "shared_experts")
        if moe.shared_expert_gate:
            _add(rep, "router", h)
        active = (
            attn_and_norms
            + moe.experts_per_token * (per_expert + expert_bias)
            + h * moe.num_experts
            + (moe.num_experts if moe.router_bias else 0)
            + shared
            + (h if moe.shared_expert_gate else 0)
        )
    else:
        _dense_mlp(a, a.intermediate_size, sh, "mlp")
        active = sum(sh.values()) + sum(rep.values())
    return LayerParams(sharded=sh, replicated=rep, active=active)


def _mtp_layer(a: ModelArch) -> LayerParams:
    """DeepSeek-V3 MTP module: one full decoder layer (MLA + MoE) plus enorm, hnorm,
    eh_proj (2H×H) and the shared head's norm; embedding and lm_head are shared."""
    base = _layer(a, a.num_layers, is_moe=a.moe is not None)
    h = a.hidden_size
    sh = dict(base.sharded)
    rep = dict(base.replicated)
    _add(rep, "attention", 2 * h * h)  # eh_proj
    _add(rep, "norm", 3 * h)  # enorm, hnorm, shared_head.norm
    return LayerParams(sharded=sh, replicated=rep, active=base.active + 2 * h * h + 3 * h)


def count_params(a: ModelArch) -> ParamCounts:
    """Count every parameter the architecture defines."""
    moe_layers = set(a.moe_layers)
    layers = tuple(_layer(a, i, i in moe_layers) for i in range(a.num_layers))
    embedding = a.vocab_size * a.hidden_size
    return ParamCounts(
        embedding=embedding,
        lm_head=0 if a.tie_word_embeddings else embedding,
        final_norm=a.hidden_size * (2 if a.layer_norm_bias else 1),
        layers=layers,
        mtp_layers=tuple(_mtp_layer(a) for _ in range(a.mtp_layers)),
    )

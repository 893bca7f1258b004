"""Activation peak of an engine's profiling forward pass, per GPU.

vLLM sizes its KV pool after a dummy forward of ``max_num_batched_tokens`` tokens split over
``min(max_num_batched_tokens, max_num_seqs)`` requests, followed by a sampler run on that
many rows of full-vocabulary logits (engine-memory.md §1.3). So the peak is *not* a
constant: it grows with the token budget, the MLP/expert widths and the vocabulary::

    peak = T·H·2·c_hidden                     residual, normed and output copies
         + max(attention, dense MLP, MoE) temporaries of the widest layer on this rank
         + R·V·s_logit                          sampler: logits, fp32 copy, sort, probs

with T = max_num_batched_tokens, R = min(T, max_num_seqs), V = vocab, c_hidden and
s_logit named in data/engines.yaml. llama.cpp's compute buffer follows the same shape with
``n_ubatch`` tokens in f32; HF transformers prefills the whole batch.
"""

from __future__ import annotations

from collections.abc import Mapping

from gpusizer.catalog.arch import ModelArch
from gpusizer.engines import engine_spec
from gpusizer.estimate.engine_settings import EngineSettings

__all__ = ["activation_bytes"]

ACT_BYTES = 2  # bf16/fp16 activations


def _layer_peak(a: ModelArch, layers: range, tp: int, tokens: int, moe_chunk: int) -> float:
    """Largest per-layer temporary (bytes) among the layers this rank runs."""
    h = a.hidden_size
    peak = 0.0
    moe_layers = set(a.moe_layers)
    if a.mla is not None:
        m = a.mla
        heads = a.num_attention_heads / tp
        attn = tokens * heads * (2 * (m.qk_nope_head_dim + m.qk_rope_head_dim) + 2 * m.v_head_dim)
    else:
        q = a.num_attention_heads / tp * a.head_dim
        kvh = max(1, a.num_kv_heads // tp)
        attn = tokens * (2 * q + kvh * (a.head_dim + a.v_head_dim))
    peak = attn * ACT_BYTES
    mats = 3 if a.gated_mlp else 2
    if any(i not in moe_layers for i in layers):
        width = a.intermediate_size / tp
        peak = max(peak, tokens * width * mats * ACT_BYTES)  # gate_up out + act out
    if a.moe is not None and any(i in moe_layers for i in layers):
        moe = a.moe
        m_tok = min(tokens, moe_chunk)
        width = moe.expert_intermediate_size / tp
        # fused_moe caches: [M, k, 2I/tp], [M·k, I/tp], [M, k, H]
        routed = m_tok * moe.experts_per_token * ((mats - 1) * width + width + h) * ACT_BYTES
        shared_w = (moe.num_shared_experts * moe.expert_intermediate_size + moe.shared_intermediate_size) / tp
        peak = max(peak, routed + tokens * shared_w * mats * ACT_BYTES)
    return peak


def activation_bytes(
    a: ModelArch,
    layers: range,
    tp: int,
    st: EngineSettings,
    numbers: Mapping[str, float],
    *,
    with_sampler: bool,
) -> float:
    """Peak activation bytes on one GPU running ``layers`` at ``st``'s token budget."""
    model = engine_spec(st.engine).activation
    if model == "compute-buffer":  # llama.cpp: f32 buffers for n_ubatch tokens
        ub = st.max_num_batched_tokens
        hidden = ub * a.hidden_size * 4 * numbers["compute_hidden_copies"]
        ffn = ub * a.intermediate_size * 4 * 2  # f32 gate and up outputs of one FFN
        logits = ub * a.vocab_size * numbers["logit_bytes"] if with_sampler else 0.0
        return hidden + ffn + logits
    if model == "eager-batch":  # HF transformers: the whole batch in one forward
        tokens = st.max_num_batched_tokens * max(1, st.max_num_seqs)
        hidden = tokens * a.hidden_size * ACT_BYTES * numbers.get("activation_hidden_copies", 8)
        logits = st.max_num_seqs * a.vocab_size * 4 if with_sampler else 0.0
        return hidden + _layer_peak(a, layers, 1, tokens, tokens) + logits
    tokens = st.max_num_batched_tokens
    rows = st.sampler_rows or min(tokens, st.max_num_seqs)
    hidden = tokens * a.hidden_size * ACT_BYTES * numbers["act_hidden_copies"]
    chunk = int(numbers.get("fused_moe_chunk_tokens", tokens))
    sampler = rows * a.vocab_size * numbers["sampler_bytes_per_logit"] if with_sampler else 0.0
    return hidden + _layer_peak(a, layers, tp, tokens, chunk) + sampler

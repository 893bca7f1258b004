"""``ModelArch``: the architecture facts gpusizer needs, normalised from a Hugging Face
``config.json`` (see ``hf_config``). Plain frozen values; no behaviour beyond derived
properties. Every field maps to one or more config keys named in its comment."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["AttentionKind", "LayerAttention", "MlaSpec", "ModelArch", "MoeSpec"]

AttentionKind = Literal["mha", "gqa", "mqa", "mla"]
LayerAttention = Literal["full", "sliding"]


@dataclass(frozen=True, kw_only=True)
class MlaSpec:
    """Multi-head Latent Attention (DeepSeek-V2/V3): low-rank q and kv projections."""

    q_lora_rank: int | None  # q_lora_rank; None = plain q_proj (V2-Lite)
    kv_lora_rank: int  # kv_lora_rank: the cached latent width
    qk_nope_head_dim: int
    qk_rope_head_dim: int  # the decoupled RoPE key, cached beside the latent
    v_head_dim: int


@dataclass(frozen=True, kw_only=True)
class MoeSpec:
    """Mixture-of-experts layout."""

    num_experts: int  # n_routed_experts / num_local_experts / num_experts
    experts_per_token: int  # num_experts_per_tok / experts_per_token
    expert_intermediate_size: (
        int  # moe_intermediate_size (DeepSeek, Qwen-MoE) or intermediate_size (Mixtral, gpt-oss)
    )
    num_shared_experts: int = 0  # n_shared_experts (DeepSeek, each of expert_intermediate_size)
    shared_intermediate_size: int = (
        0  # shared_expert_intermediate_size (Qwen2-MoE: one shared expert this wide)
    )
    shared_expert_gate: bool = False  # Qwen2-MoE: a sigmoid gate H→1 on the shared expert
    router_bias: bool = False  # gpt-oss router bias; DeepSeek-V3 e_score_correction_bias
    expert_bias: bool = False  # gpt-oss experts carry biases


@dataclass(frozen=True, kw_only=True)
class ModelArch:
    """Normalised decoder-only transformer architecture."""

    name: str
    model_type: str
    hidden_size: int
    num_layers: int
    num_attention_heads: int
    num_kv_heads: int  # num_key_value_heads (nominal for MLA: engines cache the latent)
    head_dim: int  # head_dim, else hidden_size // num_attention_heads
    v_head_dim: int  # = head_dim except MLA
    intermediate_size: int  # dense MLP width (first_k_dense layers for DeepSeek)
    gated_mlp: bool  # SwiGLU/GeGLU (3 matrices) vs plain (2 matrices)
    vocab_size: int
    tie_word_embeddings: bool
    qkv_bias: bool
    o_bias: bool
    mlp_bias: bool
    norms_per_layer: int  # hidden-size norms per decoder layer (2, Gemma-2/3: 4)
    qk_norm: bool  # per-head q/k RMSNorm (Qwen3, Gemma-3)
    layer_norm_bias: bool  # LayerNorm with bias (2 vectors) vs RMSNorm (1)
    attention_sinks: bool  # gpt-oss per-head sink logits
    mla: MlaSpec | None = None
    moe: MoeSpec | None = None
    moe_layers: tuple[int, ...] = ()  # indices of layers whose MLP is MoE
    layer_attention: tuple[LayerAttention, ...] = ()  # per layer: full or sliding
    sliding_window: int | None = None  # tokens, only when some layer slides
    mtp_layers: int = 0  # num_nextn_predict_layers (DeepSeek-V3 MTP)
    index_n_heads: int = 0  # DeepSeek-V3.2 lightning indexer
    index_head_dim: int = 0
    index_topk: int = 0
    max_position_embeddings: int = 0
    rotary_dim: int = 0  # rotary width per head (MLA: qk_rope_head_dim)
    torch_dtype: str = "bfloat16"
    quantization_config: dict[str, Any] | None = field(default=None, compare=False, hash=False)

    @property
    def attention_kind(self) -> AttentionKind:
        if self.mla is not None:
            return "mla"
        if self.num_kv_heads == 1:
            return "mqa"
        if self.num_kv_heads == self.num_attention_heads:
            return "mha"
        return "gqa"

    @property
    def dense_layers(self) -> tuple[int, ...]:
        moe = set(self.moe_layers)
        return tuple(i for i in range(self.num_layers) if i not in moe)

    @property
    def has_sliding_layers(self) -> bool:
        return "sliding" in self.layer_attention

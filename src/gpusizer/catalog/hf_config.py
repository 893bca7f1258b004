"""Hugging Face ``config.json`` → ``ModelArch``.

Pure: takes the parsed JSON object, returns a frozen ``ModelArch`` or raises a
``BadInputError`` naming the missing or malformed field. Covers Llama/Mistral/Qwen2/
Qwen3 (dense and MoE), Mixtral, Gemma 1–3, Phi-3/4, DeepSeek V2/V3/V3.2 (MLA + MoE +
MTP + DSA indexer) and gpt-oss; other decoder-only families fall back to the Llama shape.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from gpusizer.catalog.arch import LayerAttention, MlaSpec, ModelArch, MoeSpec
from gpusizer.errors import BadInputError

__all__ = ["CONFIG_INT_LIMITS", "arch_from_hf_config", "check_config_bounds"]

# Families whose MLP is a plain two-matrix fc1/fc2 (no gate).
_PLAIN_MLP = {"phi", "gpt2", "gpt_neox", "falcon", "starcoder2", "opt", "bloom", "gpt_bigcode"}
# Families with LayerNorm (weight + bias) instead of RMSNorm.
_LAYERNORM = {"phi", "gpt2", "gpt_neox", "falcon", "starcoder2", "opt", "bloom", "gpt_bigcode"}
# Families whose q/k/v projections carry a bias regardless of `attention_bias`.
_QKV_BIAS = {"qwen2", "qwen2_moe", "qwen2_vl", "qwen2_5_vl"}
# Families that tie embeddings when the config does not say (their config class default).
_TIED_BY_DEFAULT = {"gemma", "gemma2", "gemma3", "gemma3_text"}

# --- Bounds, checked before any arithmetic -------------------------------------------------
# Every number a config.json may carry is checked here first, so a hostile or mistyped
# config (num_hidden_layers: 10000, a string, NaN, 1e11) is one line naming the field
# instead of minutes of per-layer work or an exhausted memory. The maxima sit far above
# the largest published models (2025: Llama-3.1-405B 126 layers, hidden 16384, MLP 53248;
# Kimi-K2 384 experts; Gemma-3 262,144-token vocabulary; Llama-4-Scout 10M context), so no
# real checkpoint is refused. (low, high), inclusive; 0 is allowed where the config
# classes read 0 as "absent" (``head_dim: 0`` → hidden_size / heads).
CONFIG_INT_LIMITS: dict[str, tuple[int, int]] = {
    "hidden_size": (1, 65_536),
    "num_hidden_layers": (1, 1024),
    "num_attention_heads": (1, 4096),
    "num_key_value_heads": (1, 4096),
    "head_dim": (0, 4096),
    "intermediate_size": (0, 1_048_576),
    "intermediate_size_mlp": (0, 1_048_576),
    "moe_intermediate_size": (0, 1_048_576),
    "shared_expert_intermediate_size": (0, 1_048_576),
    "vocab_size": (1, 2_000_000),
    "max_position_embeddings": (0, 134_217_728),
    "sliding_window": (0, 134_217_728),
    "sliding_window_pattern": (1, 1024),
    "n_routed_experts": (0, 4096),
    "num_local_experts": (0, 4096),
    "num_experts": (0, 4096),
    "num_experts_per_tok": (0, 4096),
    "experts_per_token": (0, 4096),
    "moe_topk": (0, 4096),
    "n_shared_experts": (0, 4096),
    "first_k_dense_replace": (0, 1024),
    "moe_layer_freq": (0, 1024),
    "decoder_sparse_step": (0, 1024),
    "interleave_moe_layer_step": (0, 1024),
    "kv_lora_rank": (0, 65_536),
    "q_lora_rank": (0, 65_536),
    "qk_nope_head_dim": (0, 4096),
    "qk_rope_head_dim": (0, 4096),
    "v_head_dim": (0, 4096),
    "num_nextn_predict_layers": (0, 64),
    "index_n_heads": (0, 4096),
    "index_head_dim": (0, 4096),
    "index_topk": (0, 1_048_576),
}
# Fractions of the head width that rotate (Phi, GPT-NeoX): (0, 1].
_FRACTIONS = ("partial_rotary_factor", "rotary_pct")
_BOOLS = ("tie_word_embeddings", "attention_bias", "mlp_bias", "use_sliding_window")
_STRINGS = ("model_type", "torch_dtype", "dtype", "_name_or_path")
_MAX_CONTEXT = CONFIG_INT_LIMITS["max_position_embeddings"][1]
_MAX_STRING = 200


def _shown(value: Any) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int past Python's 4300-digit str limit
        text = "a huge number"
    return text if len(text) <= 40 else text[:37] + "..."


def _check_int(where: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        kind = "a string" if isinstance(value, str) else type(value).__name__
        raise BadInputError(where, f"must be an integer, got {kind} {_shown(value)}", f"{lo}..{hi:,}")
    if not lo <= value <= hi:
        raise BadInputError(where, f"{_shown(value)} is out of range", f"{lo}..{hi:,}")


def _check_number(where: str, value: Any, lo: float, hi: float, *, open_low: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadInputError(where, f"must be a number, got {_shown(value)}", f"{lo:g}..{hi:g}")
    v = float(value)
    if not math.isfinite(v) or v > hi or v < lo or (open_low and v == lo):
        shown = "a number above 0" if open_low else f"{lo:g}"
        raise BadInputError(where, f"{_shown(value)} is out of range", f"{shown}..{hi:g}")
    return v


def _check_list(where: str, value: Any, item: type, max_len: int) -> list[Any]:
    if not isinstance(value, list) or len(value) > max_len:
        raise BadInputError(
            where, f"must be a list of at most {max_len} {item.__name__}s, got {_shown(value)}"
        )
    for i, x in enumerate(value):
        if isinstance(x, bool) or not isinstance(x, item):
            raise BadInputError(f"{where}[{i}]", f"must be {item.__name__}, got {_shown(x)}")
    return value


def _check_rope(where: str, rope: Any) -> None:
    if not isinstance(rope, Mapping):
        raise BadInputError(where, f"must be an object or null, got {_shown(rope)}")
    factor = rope.get("factor")
    if factor is not None:
        _check_number(f"{where}.factor", factor, 0.0, 1024.0, open_low=True)
    orig = rope.get("original_max_position_embeddings")
    if orig is not None:
        _check_int(f"{where}.original_max_position_embeddings", orig, 1, _MAX_CONTEXT)
        if factor is not None and orig * float(factor) > _MAX_CONTEXT:
            raise BadInputError(
                where, f"original_max_position_embeddings × factor is over {_MAX_CONTEXT:,} tokens"
            )
    for key in ("type", "rope_type"):
        if rope.get(key) is not None and not isinstance(rope.get(key), str):
            raise BadInputError(f"{where}.{key}", f"must be a string, got {_shown(rope.get(key))}")


def _check_quant(where: str, quant: Any) -> None:
    """The parts of ``quantization_config`` that ``domain.quant`` reads."""
    if not isinstance(quant, Mapping):
        raise BadInputError(where, f"must be an object or null, got {_shown(quant)}")
    method = quant.get("quant_method")
    if method is not None and not isinstance(method, str):
        raise BadInputError(f"{where}.quant_method", f"must be a string, got {_shown(method)}")
    for key in ("bits", "w_bit"):
        if quant.get(key) is not None:
            _check_int(f"{where}.{key}", quant[key], 1, 64)
    for key in ("group_size", "q_group_size"):  # GPTQ writes -1 for one group per row
        if quant.get(key) is not None:
            _check_int(f"{where}.{key}", quant[key], -1, 1_048_576)
    for key in ("modules_to_not_convert", "ignore", "exclude_modules"):
        if quant.get(key) is not None:
            _check_list(f"{where}.{key}", quant[key], str, 100_000)
    block = quant.get("weight_block_size")
    if block is not None:
        for i, size in enumerate(_check_list(f"{where}.weight_block_size", block, int, 4)):
            _check_int(f"{where}.weight_block_size[{i}]", size, 1, 1_048_576)
    groups = quant.get("config_groups")
    if groups is not None:
        if not isinstance(groups, Mapping):
            raise BadInputError(f"{where}.config_groups", f"must be an object, got {_shown(groups)}")
        for name, group in groups.items():
            at = f"{where}.config_groups.{name}"
            if not isinstance(group, Mapping):
                raise BadInputError(at, f"must be an object, got {_shown(group)}")
            weights = group.get("weights")
            if weights is not None and not isinstance(weights, Mapping):
                raise BadInputError(f"{at}.weights", f"must be an object or null, got {_shown(weights)}")


def _check_level(cfg: Mapping[str, Any], where: str) -> None:
    for key, (lo, hi) in CONFIG_INT_LIMITS.items():
        if cfg.get(key) is not None:
            _check_int(f"{where}.{key}", cfg[key], lo, hi)
    for key in _FRACTIONS:
        if cfg.get(key) is not None:
            _check_number(f"{where}.{key}", cfg[key], 0.0, 1.0, open_low=True)
    for key in _BOOLS:
        if cfg.get(key) is not None and not isinstance(cfg[key], bool):
            raise BadInputError(f"{where}.{key}", f"must be true or false, got {_shown(cfg[key])}")
    for key in _STRINGS:
        value = cfg.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > _MAX_STRING):
            raise BadInputError(f"{where}.{key}", f"must be a string of at most {_MAX_STRING} characters")
    layers_max = CONFIG_INT_LIMITS["num_hidden_layers"][1]
    if cfg.get("layer_types") is not None:
        _check_list(f"{where}.layer_types", cfg["layer_types"], str, layers_max)
    for key in ("mlp_only_layers", "moe_layers"):
        if cfg.get(key) is not None:
            for i, layer in enumerate(_check_list(f"{where}.{key}", cfg[key], int, layers_max)):
                _check_int(f"{where}.{key}[{i}]", layer, 0, layers_max - 1)
    if cfg.get("rope_scaling") is not None:
        _check_rope(f"{where}.rope_scaling", cfg["rope_scaling"])
    if cfg.get("quantization_config") is not None:
        _check_quant(f"{where}.quantization_config", cfg["quantization_config"])


def check_config_bounds(config: Any) -> None:
    """Refuse a config.json whose fields are of the wrong type, not finite, or beyond
    ``CONFIG_INT_LIMITS``: one ``BadInputError`` naming the first bad field and the range
    it accepts. Pure and linear in the config's size; run before any arithmetic."""
    if not isinstance(config, Mapping):
        raise BadInputError("config.json", f"must be a JSON object, got {_shown(config)}")
    _check_level(config, "config")
    text = config.get("text_config")
    if text is not None:
        if not isinstance(text, Mapping):
            raise BadInputError("config.text_config", f"must be an object or null, got {_shown(text)}")
        _check_level(text, "config.text_config")
    cfg = _text_config(config)
    n_heads = cfg.get("num_attention_heads")
    hidden = cfg.get("hidden_size")
    if isinstance(n_heads, int) and isinstance(hidden, int) and not cfg.get("head_dim") and n_heads > hidden:
        raise BadInputError(
            "config.num_attention_heads",
            f"{n_heads} heads are more than hidden_size {hidden} (no head_dim given)",
        )
    experts = cfg.get("n_routed_experts") or cfg.get("num_local_experts") or cfg.get("num_experts")
    topk = cfg.get("num_experts_per_tok") or cfg.get("experts_per_token") or cfg.get("moe_topk")
    if isinstance(experts, int) and isinstance(topk, int) and experts > 1 and topk > experts:
        raise BadInputError("config.num_experts_per_tok", f"{topk} is more than the {experts} experts")


def _int(cfg: Mapping[str, Any], key: str, where: str, default: int | None = None) -> int:
    value = cfg.get(key, default)
    if value is None:
        raise BadInputError(f"{where}.{key}", "missing", "a positive integer")
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise BadInputError(f"{where}.{key}", f"must be a positive integer, got {value!r}")
    return value


def _opt_int(cfg: Mapping[str, Any], key: str) -> int | None:
    value = cfg.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadInputError(f"config.{key}", f"must be a non-negative integer, got {value!r}")
    return value


def _text_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Multimodal wrappers (Gemma-3, Mistral-3, Qwen-VL) nest the decoder in ``text_config``."""
    text = config.get("text_config")
    if isinstance(text, Mapping) and "hidden_size" in text:
        merged = dict(text)
        for key in ("tie_word_embeddings", "torch_dtype", "quantization_config", "vocab_size"):
            if key not in merged and key in config:
                merged[key] = config[key]
        return merged
    return dict(config)


def _kind(layer_type: str) -> LayerAttention:
    return "sliding" if layer_type.startswith("sliding") else "full"


def _layer_attention(
    cfg: Mapping[str, Any], model_type: str, n_layers: int
) -> tuple[tuple[LayerAttention, ...], int | None]:
    """Which layers use a sliding window — only when the config enables it."""
    window = cfg.get("sliding_window")
    full: tuple[LayerAttention, ...] = tuple(_kind("full") for _ in range(n_layers))
    if cfg.get("use_sliding_window") is False:  # Qwen2/2.5: window present but disabled
        return full, None
    layer_types = cfg.get("layer_types")
    if isinstance(layer_types, list) and len(layer_types) == n_layers and window:
        kinds: tuple[LayerAttention, ...] = tuple(_kind(str(t)) for t in layer_types)
        return kinds, int(window) if "sliding" in kinds else None
    if not window:
        return full, None
    sliding: LayerAttention = "sliding"
    dense: LayerAttention = "full"
    if model_type == "gemma2":  # even layers slide (HF Gemma2: layer_idx % 2 == 0)
        return tuple(sliding if i % 2 == 0 else dense for i in range(n_layers)), int(window)
    if model_type in ("gemma3", "gemma3_text"):
        pattern = int(cfg.get("sliding_window_pattern", 6))
        kinds = tuple(dense if (i + 1) % pattern == 0 else sliding for i in range(n_layers))
        return kinds, int(window)
    max_pos = cfg.get("max_position_embeddings")
    if isinstance(max_pos, int) and int(window) >= max_pos:
        return full, None
    return tuple(sliding for _ in range(n_layers)), int(window)  # Mistral-7B-v0.1: every layer slides


def _moe(cfg: Mapping[str, Any], model_type: str, n_layers: int) -> tuple[MoeSpec | None, tuple[int, ...]]:
    n_routed = cfg.get("n_routed_experts") or cfg.get("num_local_experts") or cfg.get("num_experts")
    if not n_routed or int(n_routed) <= 1:
        return None, ()
    topk = cfg.get("num_experts_per_tok") or cfg.get("experts_per_token") or cfg.get("moe_topk")
    if not topk:
        raise BadInputError("config.num_experts_per_tok", "missing for a mixture-of-experts model")
    if cfg.get("moe_intermediate_size"):
        expert_width = _int(cfg, "moe_intermediate_size", "config")
    else:
        expert_width = _int(cfg, "intermediate_size", "config")
    n_shared = int(cfg.get("n_shared_experts") or 0)
    if model_type == "llama4_text":  # Llama 4: MoE on every step-th layer, one shared expert each
        listed = cfg.get("moe_layers")
        step = int(cfg.get("interleave_moe_layer_step") or 1)
        if isinstance(listed, list):
            layers = tuple(i for i in range(n_layers) if i in set(listed))
        else:  # Llama4TextConfig: range(step - 1, num_hidden_layers, step)
            layers = tuple(i for i in range(n_layers) if (i + 1) % step == 0)
        n_shared = 1
    elif "first_k_dense_replace" in cfg or "n_routed_experts" in cfg:  # DeepSeek V2/V3
        first_dense = int(cfg.get("first_k_dense_replace") or 0)
        freq = int(cfg.get("moe_layer_freq") or 1)
        layers = tuple(i for i in range(n_layers) if i >= first_dense and i % freq == 0)
    else:  # Qwen-MoE: decoder_sparse_step and mlp_only_layers; Mixtral/gpt-oss: every layer
        step = int(cfg.get("decoder_sparse_step") or 1)
        dense_only = set(cfg.get("mlp_only_layers") or [])
        layers = tuple(i for i in range(n_layers) if i not in dense_only and (i + 1) % step == 0)
    shared_width = int(cfg.get("shared_expert_intermediate_size") or 0)
    spec = MoeSpec(
        num_experts=int(n_routed),
        experts_per_token=int(topk),
        expert_intermediate_size=expert_width,
        num_shared_experts=n_shared,
        shared_intermediate_size=shared_width,
        shared_expert_gate=shared_width > 0,
        router_bias=model_type == "gpt_oss" or cfg.get("topk_method") == "noaux_tc",
        expert_bias=model_type == "gpt_oss",
    )
    return spec, layers


def arch_from_hf_config(config: Mapping[str, Any], name: str = "model") -> ModelArch:
    """Normalise a Hugging Face ``config.json`` object into a ``ModelArch``; its fields are
    checked against ``CONFIG_INT_LIMITS`` and their types first."""
    check_config_bounds(config)
    cfg = _text_config(config)
    model_type = str(cfg.get("model_type") or config.get("model_type") or "llama")
    hidden = _int(cfg, "hidden_size", "config")
    n_layers = _int(cfg, "num_hidden_layers", "config")
    n_heads = _int(cfg, "num_attention_heads", "config")
    n_kv = _int(cfg, "num_key_value_heads", "config", default=n_heads)
    vocab = _int(cfg, "vocab_size", "config")
    if n_heads % n_kv:
        raise BadInputError(
            "config.num_key_value_heads", f"{n_kv} does not divide num_attention_heads {n_heads}"
        )
    head_dim = cfg.get("head_dim") or hidden // n_heads
    mla: MlaSpec | None = None
    v_head_dim = int(head_dim)
    rotary = int(int(head_dim) * float(cfg.get("partial_rotary_factor") or cfg.get("rotary_pct") or 1.0))
    if cfg.get("kv_lora_rank"):
        q_lora = _opt_int(cfg, "q_lora_rank") or None
        mla = MlaSpec(
            q_lora_rank=q_lora,
            kv_lora_rank=_int(cfg, "kv_lora_rank", "config"),
            qk_nope_head_dim=_int(cfg, "qk_nope_head_dim", "config"),
            qk_rope_head_dim=_int(cfg, "qk_rope_head_dim", "config"),
            v_head_dim=_int(cfg, "v_head_dim", "config"),
        )
        head_dim = mla.qk_nope_head_dim + mla.qk_rope_head_dim
        v_head_dim = mla.v_head_dim
        rotary = mla.qk_rope_head_dim
    moe, moe_layers = _moe(cfg, model_type, n_layers)
    intermediate = cfg.get("intermediate_size") or 4 * hidden
    if model_type == "llama4_text" and cfg.get("intermediate_size_mlp"):
        intermediate = cfg["intermediate_size_mlp"]  # Llama 4's dense layers; intermediate_size is per expert
    layer_attn, window = _layer_attention(cfg, model_type, n_layers)
    tie = cfg.get("tie_word_embeddings")
    if tie is None:
        tie = model_type in _TIED_BY_DEFAULT
    attention_bias = bool(cfg.get("attention_bias", False))
    quant = config.get("quantization_config") or cfg.get("quantization_config")
    max_pos = int(cfg.get("max_position_embeddings") or 0)
    rope = cfg.get("rope_scaling") or {}
    if isinstance(rope, Mapping) and rope.get("type", rope.get("rope_type")) == "yarn":
        # vLLM's YaRN rotary cache spans original_max_position_embeddings × factor.
        orig = rope.get("original_max_position_embeddings")
        factor = rope.get("factor")
        if isinstance(orig, int) and isinstance(factor, int | float):
            max_pos = max(max_pos, int(orig * factor))
    return ModelArch(
        name=name,
        model_type=model_type,
        hidden_size=hidden,
        num_layers=n_layers,
        num_attention_heads=n_heads,
        num_kv_heads=n_kv,
        head_dim=int(head_dim),
        v_head_dim=v_head_dim,
        intermediate_size=int(intermediate),
        gated_mlp=model_type not in _PLAIN_MLP,
        vocab_size=vocab,
        tie_word_embeddings=bool(tie),
        qkv_bias=attention_bias or model_type in _QKV_BIAS,
        o_bias=attention_bias and model_type not in _QKV_BIAS,
        mlp_bias=bool(cfg.get("mlp_bias", False)) or model_type in _PLAIN_MLP,
        norms_per_layer=4 if model_type in ("gemma2", "gemma3", "gemma3_text") else 2,
        qk_norm=model_type in ("qwen3", "qwen3_moe", "gemma3", "gemma3_text", "olmo2"),
        layer_norm_bias=model_type in _LAYERNORM,
        attention_sinks=model_type == "gpt_oss",
        mla=mla,
        moe=moe,
        moe_layers=moe_layers,
        layer_attention=layer_attn,
        sliding_window=window,
        mtp_layers=int(cfg.get("num_nextn_predict_layers") or 0),
        index_n_heads=int(cfg.get("index_n_heads") or 0),
        index_head_dim=int(cfg.get("index_head_dim") or 0),
        index_topk=int(cfg.get("index_topk") or 0),
        max_position_embeddings=max_pos,
        rotary_dim=rotary,
        torch_dtype=str(cfg.get("torch_dtype") or cfg.get("dtype") or "bfloat16"),
        quantization_config=dict(quant) if isinstance(quant, Mapping) else None,
    )

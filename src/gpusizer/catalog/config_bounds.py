"""Bounds on a Hugging Face ``config.json``, checked before any arithmetic.

Pure: ``check_config_bounds`` takes the parsed JSON object and raises one ``BadInputError``
naming the first field of the wrong type, not finite, or beyond ``CONFIG_INT_LIMITS``.
``text_config`` picks the decoder's fields out of a multimodal wrapper. ``hf_config``
re-exports both names, so ``gpusizer.catalog.hf_config`` imports keep working.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from gpusizer.errors import BadInputError

__all__ = ["CONFIG_INT_LIMITS", "check_config_bounds", "text_config"]

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
    cfg = text_config(config)
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


def text_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Multimodal wrappers (Gemma-3, Mistral-3, Qwen-VL) nest the decoder in ``text_config``."""
    text = config.get("text_config")
    if isinstance(text, Mapping) and "hidden_size" in text:
        merged = dict(text)
        for key in ("tie_word_embeddings", "torch_dtype", "quantization_config", "vocab_size"):
            if key not in merged and key in config:
                merged[key] = config[key]
        return merged
    return dict(config)

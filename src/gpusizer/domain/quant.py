"""Quantization applied to a model: which format, with which group size, and the stored
bits per weight of each parameter group.

The native checkpoint format comes from the config's ``quantization_config`` (DeepSeek-V3
ships FP8 with 128×128 block scales; gpt-oss ships MXFP4 experts); a user choice overrides
it. Groups the format does not quantize (embeddings, lm_head, norms, routers, biases) stay
in the model dtype, which is why a 4-bit model costs more than half a byte per parameter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gpusizer.catalog.specs import ParamGroup, QuantFormat

__all__ = ["AppliedQuant", "apply_quant", "native_quant_key"]


@dataclass(frozen=True, kw_only=True)
class AppliedQuant:
    """A format bound to one model: the stored bits per weight of every group."""

    fmt: QuantFormat
    base_bits: float  # bits of an unquantized weight (16 for bf16/fp16)
    quantized: frozenset[ParamGroup]
    group_size: int | None

    def bits(self, group: ParamGroup) -> float:
        return self.fmt.linear_bits_per_weight if group in self.quantized else self.base_bits

    @property
    def label(self) -> str:
        if self.fmt.group_size and self.group_size and self.fmt.kind == "int-group":
            return f"{self.fmt.key} (g{self.group_size})"
        return self.fmt.key


def native_quant_key(quantization_config: Mapping[str, Any] | None) -> str | None:
    """The catalogue key of a checkpoint's own quantization, or None for 16-bit weights."""
    if not quantization_config:
        return None
    method = str(quantization_config.get("quant_method", "")).lower()
    bits = quantization_config.get("bits") or quantization_config.get("w_bit")
    if method == "fp8":
        return "fp8-block" if quantization_config.get("weight_block_size") else "fp8"
    if method in ("awq", "awq_marlin"):
        return "awq"
    if method in ("gptq", "gptq_marlin"):
        return "gptq-int8" if bits == 8 else "gptq"
    if method == "mxfp4":
        return "mxfp4"
    if method in ("bitsandbytes", "bnb"):
        return "bnb-int8" if quantization_config.get("load_in_8bit") else "bnb-nf4"
    if method in ("modelopt", "modelopt_fp4", "nvfp4"):
        return "nvfp4"
    if method == "compressed-tensors":
        groups = quantization_config.get("config_groups") or {}
        for group in groups.values() if isinstance(groups, Mapping) else []:
            weights = group.get("weights") or {}
            if weights.get("num_bits") == 4:
                return "gptq"
            if weights.get("num_bits") == 8:
                return "fp8" if weights.get("type") == "float" else "int8"
    return None


def _not_converted(quantization_config: Mapping[str, Any] | None) -> set[ParamGroup]:
    """Groups a checkpoint keeps unquantized by name (``modules_to_not_convert``/``ignore``)."""
    if not quantization_config:
        return set()
    names: Sequence[Any] = (
        quantization_config.get("modules_to_not_convert")
        or quantization_config.get("ignore")
        or quantization_config.get("exclude_modules")
        or []
    )
    groups: set[ParamGroup] = set()
    for raw in names:
        n = str(raw)
        if "attn" in n or "attention" in n:
            groups.add("attention")
        if "router" in n or n.endswith("mlp.gate") or n == "gate":
            groups.add("router")
        if "shared_expert" in n:
            groups.add("shared_experts")
        if "lm_head" in n:
            groups.add("lm_head")
        if "embed" in n:
            groups.add("embedding")
    return groups


def apply_quant(
    fmt: QuantFormat,
    *,
    quantization_config: Mapping[str, Any] | None = None,
    native: bool = False,
    base_bits: float = 16.0,
) -> AppliedQuant:
    """Bind ``fmt`` to a model. With ``native`` the checkpoint's own group size and
    exclusions (``modules_to_not_convert``) refine the catalogue defaults."""
    quantized: set[ParamGroup] = set(fmt.quantized_groups)
    group_size = fmt.group_size
    if native and quantization_config:
        quantized -= _not_converted(quantization_config)
        g = quantization_config.get("group_size") or quantization_config.get("q_group_size")
        if isinstance(g, int) and g > 0 and fmt.kind == "int-group":
            group_size = g
            fmt = replace_group(fmt, g)
    return AppliedQuant(fmt=fmt, base_bits=base_bits, quantized=frozenset(quantized), group_size=group_size)


def replace_group(fmt: QuantFormat, group_size: int) -> QuantFormat:
    """The same format with another group size (AWQ/GPTQ group 64 costs 4.31 bits)."""
    return fmt.model_copy(update={"group_size": group_size})

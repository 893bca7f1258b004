"""Every config.json is bounded before any arithmetic (issue 15): a field of the wrong type,
NaN/inf, or beyond its maximum is one BadInputError naming the field and what it accepts —
in the core (``arch_from_hf_config``), for uploads (``model_from_config``) and on the CLI
(exit 2, one line). No real model is refused."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gpusizer.api import model_from_config
from gpusizer.catalog.hf_config import CONFIG_INT_LIMITS, arch_from_hf_config, check_config_bounds
from gpusizer.catalog.load import model_catalogue, model_config
from gpusizer.cli.app import app
from gpusizer.domain.params import count_params
from gpusizer.errors import BadInputError
from gpusizer.readers.bounded import json_depth, parse_json
from tests.conftest import DEEPSEEK_V3, R1_QWEN_7B


def test_every_catalogue_model_is_within_the_bounds() -> None:
    for entry in model_catalogue():
        check_config_bounds(model_config(entry))


def test_the_maxima_are_far_above_the_largest_real_models() -> None:
    # Llama-3.1-405B: 126 layers, hidden 16384; Kimi-K2: 384 experts; Gemma-3: 262,144 vocab.
    assert CONFIG_INT_LIMITS["num_hidden_layers"][1] >= 8 * 126
    assert CONFIG_INT_LIMITS["hidden_size"][1] >= 4 * 16384
    assert CONFIG_INT_LIMITS["n_routed_experts"][1] >= 8 * 384
    assert CONFIG_INT_LIMITS["vocab_size"][1] >= 7 * 262_144


def test_a_config_at_the_maxima_is_accepted() -> None:
    cfg = dict(R1_QWEN_7B, num_hidden_layers=1024, hidden_size=65_536, vocab_size=2_000_000)
    cfg.update(num_attention_heads=512, num_key_value_heads=64)
    assert count_params(arch_from_hf_config(cfg)).total > 0


BAD: list[tuple[dict[str, Any], str]] = [
    ({"num_hidden_layers": 10_000}, "config.num_hidden_layers: 10000 is out of range (accepted: 1..1,024)"),
    ({"num_hidden_layers": 100_000_000_000}, "config.num_hidden_layers"),
    ({"num_hidden_layers": 1e11}, "config.num_hidden_layers: must be an integer, got float"),
    ({"num_hidden_layers": 28.0}, "config.num_hidden_layers: must be an integer"),
    ({"num_hidden_layers": "28"}, "config.num_hidden_layers: must be an integer, got a string '28'"),
    ({"num_hidden_layers": True}, "config.num_hidden_layers: must be an integer"),
    ({"num_hidden_layers": 0}, "config.num_hidden_layers: 0 is out of range"),
    ({"hidden_size": float("nan")}, "config.hidden_size: must be an integer"),
    ({"hidden_size": 65_537}, "config.hidden_size: 65537 is out of range (accepted: 1..65,536)"),
    ({"vocab_size": 2_000_001}, "config.vocab_size"),
    ({"intermediate_size": float("inf")}, "config.intermediate_size"),
    ({"intermediate_size": -1}, "config.intermediate_size"),
    ({"num_local_experts": 4097, "num_experts_per_tok": 2}, "config.num_local_experts"),
    ({"num_local_experts": 8, "num_experts_per_tok": 9}, "config.num_experts_per_tok: 9 is more than"),
    ({"num_attention_heads": 4096, "num_key_value_heads": 4}, "config.num_attention_heads"),
    ({"head_dim": "128"}, "config.head_dim"),
    ({"first_k_dense_replace": "x", "n_routed_experts": 8}, "config.first_k_dense_replace"),
    ({"sliding_window": "4096"}, "config.sliding_window"),
    ({"partial_rotary_factor": float("nan")}, "config.partial_rotary_factor"),
    ({"partial_rotary_factor": 2}, "config.partial_rotary_factor"),
    ({"rope_scaling": {"type": "yarn", "factor": float("inf")}}, "config.rope_scaling.factor"),
    (
        {"rope_scaling": {"type": "yarn", "factor": 1000, "original_max_position_embeddings": 10**6}},
        "config.rope_scaling",
    ),
    ({"rope_scaling": "yarn"}, "config.rope_scaling"),
    ({"mlp_only_layers": 5, "num_experts": 8, "num_experts_per_tok": 2}, "config.mlp_only_layers"),
    ({"mlp_only_layers": [1, "2"]}, "config.mlp_only_layers[1]"),
    ({"layer_types": ["full"] * 2000}, "config.layer_types"),
    ({"tie_word_embeddings": "yes"}, "config.tie_word_embeddings"),
    ({"model_type": ["llama"]}, "config.model_type"),
    ({"quantization_config": {"quant_method": "gptq", "bits": "4"}}, "config.quantization_config.bits"),
    ({"quantization_config": {"quant_method": 4}}, "config.quantization_config.quant_method"),
    (
        {"quantization_config": {"quant_method": "compressed-tensors", "config_groups": {"g": 1}}},
        "config.quantization_config.config_groups.g",
    ),
    (
        {"quantization_config": {"modules_to_not_convert": 7}},
        "config.quantization_config.modules_to_not_convert",
    ),
    ({"quantization_config": [1]}, "config.quantization_config"),
    ({"text_config": {"hidden_size": 64, "num_hidden_layers": 5000}}, "config.text_config.num_hidden_layers"),
    ({"text_config": 3}, "config.text_config"),
]


@pytest.mark.parametrize(
    ("change", "message"), BAD, ids=[m.split(":")[0] + f"-{i}" for i, (_, m) in enumerate(BAD)]
)
def test_a_bad_field_is_one_line_naming_it(change: dict[str, Any], message: str) -> None:
    cfg = dict(R1_QWEN_7B, **change)
    with pytest.raises(BadInputError) as exc:
        arch_from_hf_config(cfg)
    assert message in exc.value.message
    assert "\n" not in exc.value.message and len(exc.value.message) < 300
    # the upload path (model_from_config) gives the same line, not a 500-making exception
    with pytest.raises(BadInputError, match="config"):
        model_from_config(cfg)


def test_deepseek_mla_fields_are_bounded_too() -> None:
    with pytest.raises(BadInputError, match=r"config\.kv_lora_rank"):
        arch_from_hf_config(dict(DEEPSEEK_V3, kv_lora_rank=10**9))
    with pytest.raises(BadInputError, match=r"config\.n_routed_experts"):
        arch_from_hf_config(dict(DEEPSEEK_V3, n_routed_experts=100_000))


def test_the_refusal_is_immediate() -> None:
    # The bug: 10,000 layers held the server 11 s; 1e11 layers exhausted memory.
    for layers in (10_000, 10**11, 10**4000):
        start = time.perf_counter()
        with pytest.raises(BadInputError):
            model_from_config(dict(R1_QWEN_7B, num_hidden_layers=layers))
        assert time.perf_counter() - start < 0.5


def test_json_is_parsed_strictly_and_shallowly() -> None:
    assert parse_json('{"a": [1, {"b": 2}]}', "x") == {"a": [1, {"b": 2}]}
    assert json_depth(parse_json("[" * 32 + "]" * 32, "x")) == 32
    with pytest.raises(BadInputError, match="nested too deeply"):
        parse_json("[" * 33 + "]" * 33, "x")
    start = time.perf_counter()
    with pytest.raises(BadInputError, match="x: is nested too deeply"):
        parse_json("[" * 100_000 + "]" * 100_000, "x")
    assert time.perf_counter() - start < 1
    with pytest.raises(BadInputError, match="NaN is not a JSON number"):
        parse_json('{"hidden_size": NaN}', "x")
    with pytest.raises(BadInputError, match="not valid JSON"):
        parse_json('{"n": ' + "9" * 5000 + "}", "x")
    with pytest.raises(BadInputError, match="not UTF-8"):
        parse_json(b'{"a": "\xff"}', "x")


def test_json_depth_walks_without_recursion() -> None:
    deep: Any = []
    for _ in range(50_000):
        deep = [deep]
    assert json_depth(deep) == 50_001


runner = CliRunner()


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (json.dumps(dict(R1_QWEN_7B, num_hidden_layers=10_000)), "config.num_hidden_layers"),
        (json.dumps(dict(R1_QWEN_7B, hidden_size="3584")), "config.hidden_size"),
        (json.dumps(R1_QWEN_7B).replace('"vocab_size": 152064', '"vocab_size": NaN'), "NaN"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        (json.dumps(dict(R1_QWEN_7B, rope_scaling={"type": "yarn", "factor": 1e308})), "rope_scaling.factor"),
    ],
)
def test_cli_exits_2_with_one_line_naming_the_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(text)
    result = runner.invoke(app, ["fit", str(path), "--gpu", "RTX 4090"])
    assert result.exit_code == 2, result.output
    out = result.output.strip()
    assert field in out and str(path) in out.replace("\n", "")
    assert "Traceback" not in out and out.startswith("error:")

"""Optional Hub look-up through a fake transport, and custom GPUs from a YAML file."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from gpusizer.api import fit, resolve_gpu_spec
from gpusizer.errors import BadInputError
from gpusizer.readers.hub import fetch_hub_model
from tests.conftest import R1_QWEN_7B


def _hub(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/config.json"):
        return httpx.Response(200, json=R1_QWEN_7B)
    if request.url.path.endswith("/model.safetensors.index.json"):
        return httpx.Response(200, json={"metadata": {"total_size": 15_231_233_024}, "weight_map": {}})
    return httpx.Response(404)


def test_hub_reads_config_and_exact_size() -> None:
    m = fetch_hub_model("someone/some-model", transport=httpx.MockTransport(_hub))
    assert m.config["hidden_size"] == 3584
    assert m.exact_weight_bytes == 15_231_233_024


def test_hub_errors_are_one_line() -> None:
    with pytest.raises(BadInputError, match="HTTP 404"):
        fetch_hub_model("someone/missing", transport=httpx.MockTransport(lambda r: httpx.Response(404)))
    with pytest.raises(BadInputError, match="not a Hugging Face repo id"):
        fetch_hub_model("../etc/passwd", transport=httpx.MockTransport(_hub))


def test_gpu_from_yaml_file(tmp_path: Path) -> None:
    f = tmp_path / "gpu.yaml"
    f.write_text(
        json.dumps(
            {
                "key": "lab-card",
                "name": "Lab card 40G",
                "vendor": "nvidia",
                "gpu_class": "datacenter",
                "architecture": "ampere",
                "memory_bytes": 40 * 2**30,
                "memory_bandwidth_bps": 1.5e12,
            }
        )
    )
    gpu, _ = resolve_gpu_spec(None, gpu_file=str(f))
    assert gpu.key == "lab-card" and gpu.source.startswith("user file")
    f.write_text(json.dumps({"key": "x", "memory_bytes": -1}))
    with pytest.raises(BadInputError, match=r"^gpu_file: "):
        resolve_gpu_spec(None, gpu_file=str(f))


def test_gpu_memory_override_changes_capacity() -> None:
    small = fit("deepseek-r1-distill-qwen-7b", "RTX 4090", max_model_len=8192)
    big = fit("deepseek-r1-distill-qwen-7b", "RTX 4090", gpu_memory_gib=48, max_model_len=8192)
    assert big.estimate.limiting.capacity_bytes == 48 * 2**30
    assert big.estimate.kv_cache_tokens > small.estimate.kv_cache_tokens


def test_apple_unified_memory_is_capped_by_metal_working_set() -> None:
    # llama.cpp PR #2011 log on a 32 GB M1 Max: "recommendedMaxWorkingSetSize = 21845.34 MB"
    res = fit("deepseek-r1-distill-qwen-7b", "Apple M1 Max", gpu_memory_gib=32, max_model_len=4096)
    assert res.deployment.engine == "llamacpp"
    assert res.estimate.limiting.capacity_bytes / 2**20 == pytest.approx(21845.34, rel=1e-3)

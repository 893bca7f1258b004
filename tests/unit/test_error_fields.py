"""The shared validation names the field it refuses (``users``, ``tp``), the same name on
every surface: the Python API's keyword, the web API's JSON key, the CLI's error line —
never a CLI flag such as ``--users`` (issue 14)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from gpusizer.api import fit, perf
from gpusizer.domain.kv import resolve_kv_dtype
from gpusizer.domain.options import DeploymentOptions
from gpusizer.domain.topology import Layout, pp_partition
from gpusizer.engines.base import parse_version
from gpusizer.errors import BadInputError
from gpusizer.resolve import load_efficiency_file, resolve_gpu_spec

DEP = fit("qwen2.5-0.5b-instruct", "H100", max_model_len=4096).deployment


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"max_model_len": 0}, "max_model_len"),
        ({"users": 0}, "users"),
        ({"gpu_memory_utilization": 2.0}, "gpu_memory_utilization"),
        ({"max_num_seqs": 0}, "max_num_seqs"),
        ({"max_num_batched_tokens": 0}, "max_num_batched_tokens"),
        ({"block_size": 0}, "block_size"),
        ({"layout": Layout(tp=3)}, "tp"),
        ({"layout": Layout(pp=200)}, "pp"),
    ],
)
def test_deployment_errors_name_the_option_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(BadInputError) as err:
        replace(DEP, **change)
    assert err.value.field == field and err.value.message.startswith(f"{field}: ")
    assert field in DeploymentOptions.model_fields


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Layout(tp=0), "tp"),
        (lambda: Layout(pp=0), "pp"),
        (lambda: Layout(gpus_per_node=0), "gpus_per_node"),
        (lambda: Layout(tp=16, gpus_per_node=8), "tp"),
        (lambda: pp_partition(4, 8), "pp"),
        (lambda: resolve_kv_dtype("int3"), "kv_dtype"),
        (lambda: resolve_kv_dtype("q8_0", "vllm"), "kv_dtype"),
        (lambda: parse_version("x"), "engine_version"),
        (lambda: resolve_gpu_spec(None), "gpu"),
        (lambda: load_efficiency_file("no-such-profile"), "efficiency_file"),
        (lambda: perf("qwen2.5-0.5b-instruct", "H100", link="carrier-pigeon"), "link"),
    ],
)
def test_shared_checks_name_the_keyword_not_a_flag(make: Any, field: str) -> None:
    with pytest.raises(BadInputError) as err:
        make()
    assert err.value.field == field and err.value.message.startswith(f"{field}: ")
    problem = err.value.message.removeprefix(f"{field}: ").split(" (accepted: ")[0]
    assert "--" not in problem  # the accepted values may still point at a CLI command

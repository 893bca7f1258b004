"""Speculative decoding (MTP / EAGLE chains): the step model, the simulator and the inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpusizer.api import fit, perf
from gpusizer.calibrate.cases import serving_case
from gpusizer.catalog.load import efficiency_factors, model_catalogue
from gpusizer.domain.scenario import SPEC_ACCEPT_RATE, SPEC_TPOT_UNCERTAINTY, default_accept_length
from gpusizer.errors import BadInputError
from gpusizer.estimate.perf import efficiency_for
from gpusizer.estimate.roofline import Batch, build_step_model
from gpusizer.simulate.engine import run_engine
from gpusizer.simulate.run import engine_limits
from gpusizer.simulate.workload import Requests

CASES = Path(__file__).resolve().parents[1] / "golden" / "serving_cases.jsonl"


def _deployment(spec_tokens: int = 0, spec_accept: float | None = None, users: int = 8):  # type: ignore[no-untyped-def]
    res = fit(
        "deepseek-r1",
        "H200",
        gpus=8,
        engine="sglang",
        max_model_len=4096,
        users=users,
        spec_tokens=spec_tokens,
        spec_accept=spec_accept,
    )
    dep = res.deployment
    eff, _ = efficiency_for(
        efficiency_factors(), dep.engine, dep.gpu.vendor, None, gpu_class=dep.gpu.gpu_class
    )
    return res, dep, eff


def _one_request(spec_tokens: int, accept: float, out: int) -> tuple[int, float]:
    """(engine steps, time) for one 512-token prompt generating ``out`` tokens."""
    res, dep, eff = _deployment(spec_tokens, accept if spec_tokens else None)
    req = Requests(
        arrival_s=np.zeros(1), input_len=np.array([512]), output_len=np.array([out], dtype=np.int64)
    )
    trace = run_engine(build_step_model(dep, eff), req, engine_limits(dep, res.estimate))
    assert trace.output_tokens[0] == out
    return trace.steps, float(trace.finish_s[0])


def test_a_sequence_keeps_the_accept_length_per_step_on_average() -> None:
    # one prefill step (it samples the first token), then 100 tokens at 2.5 a step: 40 steps
    steps, _ = _one_request(3, 2.5, 101)
    assert steps == 1 + 40
    steps, _ = _one_request(0, 1.0, 101)
    assert steps == 1 + 100


def test_a_step_that_verifies_drafts_costs_more_than_a_plain_one_but_less_than_one_per_token() -> None:
    _, plain, eff = _deployment()
    _, spec, _ = _deployment(3, 2.5)
    for b in (1, 8, 64):
        batch = Batch(decode=(1024,) * b)
        t0 = build_step_model(plain, eff).step(batch).total_s
        t1 = build_step_model(spec, eff).step(batch).total_s
        # DeepSeek-R1 on 8×H200 decodes memory- and overhead-bound at these batches: four
        # verified tokens share one read of the weights, and three draft passes add a layer each
        assert t0 < t1 < 2 * t0, (b, t0, t1)


def test_speculation_lowers_single_user_tpot_by_less_than_the_accept_length() -> None:
    plain = perf("deepseek-r1", "H200", gpus=8, engine="sglang", batches=(1,))
    spec = perf("deepseek-r1", "H200", gpus=8, engine="sglang", batches=(1,), spec_tokens=3)
    accept = default_accept_length(3)
    assert plain.rows[0].tpot_s / accept < spec.rows[0].tpot_s < plain.rows[0].tpot_s
    # the band widens to the error measured on published speculative runs
    assert plain.uncertainty is not None and plain.uncertainty < SPEC_TPOT_UNCERTAINTY
    assert spec.uncertainty == SPEC_TPOT_UNCERTAINTY


@settings(max_examples=15, deadline=None)
@given(k=st.integers(min_value=1, max_value=6), share=st.floats(min_value=0.0, max_value=1.0))
def test_tokens_kept_over_a_run_match_the_accept_length(k: int, share: float) -> None:
    accept = 1 + share * k
    steps, _ = _one_request(k, accept, 301)
    # 300 tokens after the first, floor/ceil of the accept length each step: within one step
    assert abs((steps - 1) - 300 / accept) <= 1.0 + 1e-9


def test_default_accept_length_is_the_chain_of_per_token_acceptances() -> None:
    assert default_accept_length(0) == 1.0
    assert default_accept_length(1) == pytest.approx(1 + SPEC_ACCEPT_RATE)
    # SGLang's cookbook printed 2.46-2.61 for DeepSeek MTP with 3 drafted tokens (ShareGPT)
    assert 2.46 <= default_accept_length(3) <= 2.61


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"spec_tokens": 2, "spec_accept": 3.5}, "spec_accept"),
        ({"spec_accept": 2.0}, "spec_accept"),
        ({"spec_tokens": 17}, "spec_tokens"),
        ({"spec_tokens": -1}, "spec_tokens"),
    ],
)
def test_bad_speculation_names_the_field(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(BadInputError) as err:
        fit("deepseek-r1", "H200", gpus=8, **kwargs)  # type: ignore[arg-type]
    assert err.value.field == field


def test_speculation_on_llama_cpp_is_refused() -> None:
    with pytest.raises(BadInputError) as err:
        fit("llama-3.1-8b", "RTX 4090", engine="llamacpp", quant="q4_k_m", spec_tokens=2)
    assert err.value.field == "spec_tokens"


def test_deepseek_mtp_drafting_loads_the_mtp_layer() -> None:
    plain, _, _ = _deployment()
    spec, _, _ = _deployment(1)
    assert spec.deployment.speculative_mtp
    assert spec.estimate.kv_cache_tokens < plain.estimate.kv_cache_tokens  # its weights take KV room


def _published(case_id: str) -> dict[str, object]:
    for line in CASES.read_text().splitlines():
        row: dict[str, object] = json.loads(line)
        if row["case_id"] == case_id:
            return row
    raise AssertionError(case_id)


def test_published_runs_with_an_accept_length_are_modelled_with_it() -> None:
    known = {e.id for e in model_catalogue()}
    case = serving_case(_published("sglcookbook-dsv32-b200-tp8-mtp-sharegpt-c1"), known)
    assert not hasattr(case, "reason"), case
    assert case.fit_kwargs["spec_tokens"] == 3  # type: ignore[union-attr]
    assert case.fit_kwargs["spec_accept"] == 2.46  # type: ignore[union-attr]


def test_published_runs_without_a_usable_accept_length_are_skipped_with_the_reason() -> None:
    known = {e.id for e in model_catalogue()}
    # GPUStack's EAGLE3 runs print no accept length
    skipped = serving_case(_published("gpustack-qwen3-8b-h100-latency-sglang-tp1-mtp-L785"), known)
    assert "accept length" in skipped.reason  # type: ignore[union-attr]
    # 3.27 kept per step cannot come from a 2-token chain: the printed settings did not run
    skipped = serving_case(_published("sglcookbook-dsv32-h800-80gb-tp16-dp2-mtp-random1024-1024-c1"), known)
    assert "above num-steps" in skipped.reason  # type: ignore[union-attr]

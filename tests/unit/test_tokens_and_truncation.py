"""The one token-count reader (every surface takes ``32k``), and simulator runs that end
with requests unfinished say so instead of reporting them as lost goodput."""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest
from pydantic import BaseModel, Field, ValidationError

from gpusizer import api
from gpusizer.simulate import engine as sim_engine
from gpusizer.simulate.engine import EngineLimits, run_engine
from gpusizer.simulate.workload import Requests
from gpusizer.units import TokenCount, parse_tokens


@pytest.mark.parametrize(
    ("text", "tokens"),
    [("32k", 32768), ("128K", 131072), ("1m", 1 << 20), ("4096", 4096), (" 1.5k ", 1536), (7, 7)],
)
def test_token_forms(text: str | int, tokens: int) -> None:
    assert parse_tokens(text) == tokens


@pytest.mark.parametrize("text", ["nan", "inf", "-1", "0", "0.5", "32kk", "", "1e3", True, 2.5])
def test_token_garbage_is_a_value_error(text: object) -> None:
    with pytest.raises(ValueError):
        parse_tokens(text)  # type: ignore[arg-type]


class _Form(BaseModel):
    max_model_len: TokenCount | None = Field(default=None, ge=1, le=2_097_152)


def test_pydantic_field_takes_the_cli_forms() -> None:
    """The web API's fields use TokenCount, so '32k' means what it means on the CLI."""
    assert _Form.model_validate({"max_model_len": "32k"}).max_model_len == 32768
    assert _Form.model_validate({"max_model_len": 4096}).max_model_len == 4096
    with pytest.raises(ValidationError):
        _Form.model_validate({"max_model_len": "4m"})  # above the field's bound
    with pytest.raises(ValidationError):
        _Form.model_validate({"max_model_len": "nan"})


class _ConstantStep:
    """A step-time model: every step lasts 10 ms."""

    attn_window = 0  # dense attention

    def seconds(self, *args: float) -> float:
        return 0.01


def _requests(n: int, inp: int, out: int) -> Requests:
    return Requests(
        arrival_s=np.zeros(n),
        input_len=np.full(n, inp, dtype=np.int64),
        output_len=np.full(n, out, dtype=np.int64),
    )


def _limits(kv_blocks: int) -> EngineLimits:
    return EngineLimits(max_num_batched_tokens=512, max_num_seqs=4, block_size=16, kv_blocks=kv_blocks)


def test_run_to_completion_is_not_flagged() -> None:
    trace = run_engine(_ConstantStep(), _requests(4, 64, 8), _limits(1000))  # type: ignore[arg-type]
    assert trace.stopped is None and trace.unfinished == 0 and trace.steps > 0


def test_step_limit_is_reported() -> None:
    trace = run_engine(_ConstantStep(), _requests(8, 64, 100), _limits(1000), max_steps=50)  # type: ignore[arg-type]
    assert trace.stopped == "max_steps"
    assert trace.unfinished == 8 - int(np.count_nonzero(~np.isnan(trace.finish_s)))
    assert trace.unfinished > 0 and trace.steps == 50


def test_prompt_larger_than_the_pool_is_reported() -> None:
    trace = run_engine(_ConstantStep(), _requests(2, 4096, 8), _limits(10))  # type: ignore[arg-type]
    assert trace.stopped == "kv_pool_too_small" and trace.unfinished == 2


def test_simulate_warns_with_what_to_change(monkeypatch: pytest.MonkeyPatch) -> None:
    import gpusizer.simulate.run as sim_run

    monkeypatch.setattr(sim_run, "run_engine", partial(sim_engine.run_engine, max_steps=40))
    res = api.simulate("qwen2.5-0.5b-instruct", "H100", rates=(50.0,), requests=200)
    assert len(res.warnings) == 1
    line = res.warnings[0]
    assert "stopped after 40 engine steps" in line and "--requests" in line and "50 req/s" in line
    assert res.points[0].stats.completed < 200


def test_finished_simulation_has_no_warning() -> None:
    res = api.simulate("qwen2.5-0.5b-instruct", "H100", rates=(1.0,), requests=20)
    assert res.warnings == () and res.points[0].stats.completed == 20
    assert math.isfinite(res.points[0].stats.ttft.p50)

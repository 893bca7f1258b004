"""The guide's scenarios (shared/reference/guide.txt) as acceptance tests: what class of
hardware an engineer would sign for each, not exact numbers (the step-time model is refined
independently). Every pick must be a real box (or Mac, or cloud instance), simulated, within
the targets at the stated percentile with the default 10 % headroom."""

from __future__ import annotations

from typer.testing import CliRunner

from gpusizer.api import PlanResult, plan
from gpusizer.cli.app import app
from gpusizer.plan.pipeline import label_of
from gpusizer.units import GIB

runner = CliRunner()

MAIN_JOB = dict(
    model="deepseek-r1-distill-qwen-32b", context=32768, users=10, ttft_ms=1000, tpot_ms=1000 / 30
)


def _picks(res: PlanResult) -> list:  # type: ignore[type-arg]
    return [a for a in (res.picks.cheapest, res.picks.fastest, res.picks.best_per_token) if a is not None]


def _assert_verified(res: PlanResult, ttft_ms: float | None, tpot_ms: float | None) -> None:
    """Every pick: simulated, within target × (1 − headroom) at the percentile, KV room for
    (1 + headroom) × its users, in a real box, $/M tokens from the simulated throughput."""
    pct = f"p{res.percentile}"
    keep = 1 - res.headroom
    for a in _picks(res):
        assert a.sim is not None, label_of(a)
        if ttft_ms:
            assert getattr(a.sim.ttft, pct) <= ttft_ms / 1e3 * keep
        if tpot_ms:
            assert getattr(a.sim.tpot, pct) <= tpot_ms / 1e3 * keep
        assert a.memory.max_concurrency >= (1 + res.headroom) * a.dep.users
        assert a.placement is not None and a.capex_usd is not None
        per_m = a.usd_per_hour / (a.sim.output_tokens_per_s * a.replicas * 3600) * 1e6
        assert abs(a.usd_per_million_output_tokens - per_m) < 1e-9


def _never_a_consumer_rig(res: PlanResult) -> None:
    for a in _picks(res):
        if a.dep.gpu.gpu_class == "consumer":
            assert (
                a.gpus <= 4
                and a.placement is not None
                and a.placement.system.kind in ("desktop", "workstation")
            )


def test_readme_main_job_picks_one_box_of_at_most_four_cards() -> None:
    # 32B × 10 users × 32K, TTFT 1 s, 30 tok/s: the guide's "single high-VRAM GPU … or a
    # dual-GPU setup to split the batch load", never 8 GeForce cards at TP 8 priced without a host.
    # Under the cross-validated serving factors (benchmarks/cv_serving.py) one or two 96 GB
    # cards miss p95 TTFT with 10 % headroom: ten users' 2K-token prefills queue on one card's
    # compute (the guide's "TTFT over target ⇒ add compute"). So: one desktop/workstation box of
    # at most four cards with ≥ 32 GB each — a 48–96 GB workstation card or a 32 GB RTX 5090.
    res = plan(**MAIN_JOB)  # type: ignore[arg-type]
    c = res.picks.cheapest
    assert c is not None and c.placement is not None
    assert c.placement.boxes == 1 and c.gpus <= 4
    assert 30 * GIB <= c.dep.gpu.memory_bytes <= 100 * GIB
    assert c.placement.system.kind in ("desktop", "workstation")
    assert c.capex_usd is not None and c.capex_usd > c.gpus * (c.dep.gpu.list_price_usd or 0)  # host priced
    _assert_verified(res, 1000, 1000 / 30)
    _never_a_consumer_rig(res)


def test_32b_awq_for_10_users_at_32k_is_one_workstation_card_with_fp8_kv() -> None:
    res = plan("deepseek-r1-distill-qwen-32b", context=32768, users=10, quants=["awq"])
    c = res.picks.cheapest
    assert c is not None and c.placement is not None and c.placement.boxes == 1
    if c.gpus == 1:  # one 48–96 GB card holds 18 GB of AWQ weights + 10 × 32K of KV only at FP8
        assert 40 * GIB <= c.dep.gpu.memory_bytes <= 100 * GIB
        assert c.dep.gpu.gpu_class == "workstation" and c.dep.kv_dtype == "fp8"
    else:
        assert c.gpus == 2
    _assert_verified(res, None, None)
    _never_a_consumer_rig(res)


def test_7b_for_10_users_on_a_4090_splits_over_two_cards_in_one_box() -> None:
    # The guide: 10 users on one RTX 4090 get slow per token; "moving to a dual-GPU setup to
    # split the batch load is more effective than a card with more VRAM". Set the TPOT target
    # just under what one 4090 delivers to 10 users in simulation; the plan must then split.
    base = dict(model="deepseek-r1-distill-qwen-7b", context=16384, users=10, gpus=["rtx-4090"], max_gpus=2)
    one = plan(**base, ttft_ms=2000)  # type: ignore[arg-type]
    single = [a for a in _picks(one) if a.gpus == 1]
    assert single, "one 4090 serves 10 users of a 7B model at a loose target"
    tpot_one = max(a.sim.tpot.p95 for a in single)
    target_ms = tpot_one * 1e3 * 0.97  # one card misses it even before the headroom
    res = plan(**base, ttft_ms=2000, tpot_ms=target_ms)  # type: ignore[arg-type]
    c = res.picks.cheapest
    assert c is not None, [r.detail for r in res.rejected][:5]
    assert c.gpus == 2 and c.placement is not None and c.placement.boxes == 1
    assert c.replicas == 2 or c.dep.layout.tp == 2
    assert any(r.label.startswith("1× rtx-4090") and r.stage == "slo" for r in res.rejected)
    _assert_verified(res, 2000, target_ms)


def test_deepseek_r1_for_16_users_at_32k_is_one_8_gpu_platform() -> None:
    # DeepSeek's own FP8 weights (671 GB) with 16 users × 32K: one 8-GPU H200/B200/MI300X node.
    res = plan("deepseek-r1", context=32768, users=16, quants=["fp8-block"], ttft_ms=2000, tpot_ms=50)
    c = res.picks.cheapest
    assert c is not None and c.placement is not None
    assert c.placement.system.kind in ("hgx", "oam-platform") and c.placement.gpus_per_box == 8
    assert c.placement.boxes == 1 and c.dep.gpu.key in ("h200-sxm", "b200", "mi300x", "mi325x")
    _assert_verified(res, 2000, 50)
    # and with the default 4-bit search: still one 8-GPU server, never a desktop or consumer cards
    awq = plan("deepseek-r1", context=32768, users=16, ttft_ms=2000, tpot_ms=50)
    for a in _picks(awq):
        assert a.placement is not None and a.placement.gpus_per_box == 8 and a.placement.boxes <= 2
        assert a.dep.gpu.gpu_class != "consumer"


def test_module_gpus_only_come_in_their_platforms() -> None:
    res = plan(
        "deepseek-r1-distill-qwen-32b", context=32768, users=10, gpus=["mi300x", "h100-sxm"], max_gpus=4
    )
    assert res.picks.cheapest is None and not res.accepted
    assert any("bought with all 8 GPUs" in r.reason for r in res.rejected)
    res = plan("deepseek-r1-distill-qwen-32b", context=32768, users=10, gpus=["mi300x"], verify=False)
    assert res.accepted and all(
        a.placement is not None and a.placement.system.key == "mi300x-platform-8gpu" and a.gpus == 8
        for a in res.accepted
    )


def test_a_mac_answers() -> None:
    res = plan("deepseek-r1-distill-qwen-32b", context=8192, users=2, classes=["apple"], tpot_ms=100)
    c = res.picks.cheapest
    assert c is not None and c.placement is not None and c.placement.system.kind == "mac"
    assert c.dep.engine == "llamacpp" and c.capex_usd == c.placement.system.price_usd * c.placement.boxes
    assert "llama-server" in res.launch
    _assert_verified(res, None, 100)
    big = plan("deepseek-r1", context=8192, users=1, classes=["apple"])
    assert big.picks.cheapest is not None and big.picks.cheapest.dep.gpu.key == "mac-studio-m3-ultra-512gb"


def test_cloud_plans_name_instances() -> None:
    res = plan(**MAIN_JOB, rank_by="cloud", gpus=["l40s", "h100-sxm", "rtx-pro-6000"])  # type: ignore[arg-type]
    c = res.picks.cheapest
    assert c is not None and c.cloud is not None
    assert c.cloud.label.split("× ", 1)[0].isdigit() and c.cloud.instance.date and c.cloud.instance.source
    assert c.usd_per_hour == c.cloud.usd_per_hour


def test_headroom_is_kept() -> None:
    strict = plan(**MAIN_JOB, headroom=0.3, gpus=["rtx-pro-6000-max-q", "rtx-6000-ada", "l40s"])  # type: ignore[arg-type]
    loose = plan(**MAIN_JOB, headroom=0.0, gpus=["rtx-pro-6000-max-q", "rtx-6000-ada", "l40s"])  # type: ignore[arg-type]
    assert loose.picks.cheapest is not None
    if strict.picks.cheapest is not None:
        assert strict.picks.cheapest.usd_per_hour >= loose.picks.cheapest.usd_per_hour
        _assert_verified(strict, 1000, 1000 / 30)


def test_plan_help_documents_headroom_kv_search_and_systems() -> None:
    out = runner.invoke(app, ["plan", "--help"], env={"COLUMNS": "200"}).output
    for needle in ("--headroom", "--kv-dtype", "search", "--system", "workstation", "boxes", "--percentile"):
        assert needle in out, needle

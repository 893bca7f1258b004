"""Published online-serving runs (``serving_cases.jsonl``) as gpusizer inputs.

Each row of the calibration file is one ``bench_serving`` / ``vllm bench serve`` result: a
model, an engine, a GPU box and its parallel layout, a load (a concurrency cap, or every
request sent at once) and the measured TTFT, TPOT and output tokens/s. ``serving_case``
reads a row into a :class:`ServingCase`: the ``fit`` arguments of the deployment, the load
to simulate, the measured figures and the keys the cross-validation groups by (the page the
numbers were published on, the model family). A row gpusizer cannot model yet is returned
as a :class:`Skipped` with the reason, never silently dropped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from gpusizer.engines import engine_spec
from gpusizer.engines.base import parse_version
from gpusizer.errors import BadInputError

__all__ = [
    "INFERENCEX",
    "STALL_GROWTH",
    "Measured",
    "ServingCase",
    "Skipped",
    "campaign",
    "load_rows",
    "serving_case",
    "serving_cases",
    "throughput_stalls",
]

# Checkpoints published under another name than the catalogue's entry for the same weights.
MODEL_ALIASES = {
    "Qwen/Qwen3-235B-A22B-Instruct-2507": "Qwen/Qwen3-235B-A22B",
    "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8": "Qwen/Qwen3-235B-A22B-FP8",
    "Qwen/Qwen3-32B-FP8": "Qwen/Qwen3-32B",
    "Qwen/Qwen3-32B-AWQ": "Qwen/Qwen3-32B",
    "Qwen/Qwen3-8B-FP8": "Qwen/Qwen3-8B",
    "zai-org/GLM-4.5-Air-FP8": "zai-org/GLM-4.5-Air",
    "zai-org/GLM-4.6-FP8": "zai-org/GLM-4.6",
    # DeepSeek-Math-V2 is a DeepSeek-V3.2-Exp-Base derivative (the row's own note)
    "deepseek-ai/DeepSeek-Math-V2": "deepseek-ai/DeepSeek-V3.2-Exp",
    "meta-llama/Llama-3.1-70B": "meta-llama/Llama-3.1-70B-Instruct",
}

# gpu_key of the calibration file → catalogue GPU name. "a100" (memory not stated on the
# SGLang cookbook page) is taken as the 80 GB SXM part, the one an 8-GPU HGX A100 carries.
GPUS = {
    "h100-sxm-80gb": "H100 SXM",
    "a100-sxm-80gb": "A100 SXM 80GB",
    "a100": "A100 SXM 80GB",
    "h200-141gb": "H200",
    "b200": "B200",
    "h800-80gb": "H800",
    "mi300x": "MI300X",
    "mi325x": "MI325X",
    "mi350x": "MI350X",
    "mi355x": "MI355X",
}

# The engine releases the efficiency factors describe: every run of the calibration file that
# states its build is on one (SGLang 0.5.3–0.5.9, vLLM 0.10.2–0.13, TensorRT-LLM 1.0–1.2), mid-2025
# on. Engines sped DeepSeek up severalfold over 2025 (DeepGEMM, DP attention, FlashMLA, overlap
# scheduling: dstack's February 2025 DeepSeek-R1 runs on 8×H200 step at 4 users in 43 ms on
# SGLang 0.4.3 and 55 ms on TensorRT-LLM 0.17, where current builds' factors give 17 ms), so a
# run on an older build, or one whose page does not state its build, is scored in a slice of
# its own and never fitted on: its gap is the release's, not the step model's.
CURRENT_RELEASES = {"sglang": (0, 5, 0), "vllm": (0, 10, 0), "tensorrt-llm": (1, 0, 0)}


# InferenceX (SemiAnalysis) publishes its runs through its API; the app's test fixture snapshots
# it. Other pages republish some of those runs: InferenceX PR 3318 quotes the API's 2026-09-10
# baseline, and aiconfigurator's silicon_sample.csv holds InferenceX's DeepSeek runs on 8×H200
# (its rows name an InferenceX workflow run, and all 15 SGLang 0.5.9 TPOTs of 2026-03-25 equal
# the API's to 0.01 ms). Cross-validation leaves a campaign out with every copy of its runs.
INFERENCEX = "SemiAnalysisAI/InferenceX-app:packages/app/cypress/fixtures/api/benchmarks.json"
SAME_CAMPAIGN = {"https://github.com/SemiAnalysisAI/InferenceX/pull/3318": INFERENCEX}


def campaign(page: str) -> str:
    """The cross-validation group of a page: the campaign whose runs it publishes."""
    return SAME_CAMPAIGN.get(page, page)


def _quant(precision: str) -> tuple[str | None, str | None]:
    """(weight format key or None for the checkpoint's own, reason to skip)."""
    p = precision.lower()
    if p.startswith("nvfp4"):
        return None, "NVFP4 experts with FP8 attention: the mix is not in the format catalogue"
    if p.startswith("bf16"):
        return "bf16", None
    if p.startswith("fp8"):
        return "fp8-block", None
    if p.startswith("mxfp4") and "activations" in p:
        return None, "MXFP4 weights and activations (AMD Quark repack): not in the format catalogue"
    if p.startswith("mxfp4"):
        return None, None  # gpt-oss ships MXFP4 experts: the checkpoint's own format
    if p.startswith("int4 (awq"):
        return "awq", None
    if p.startswith("native"):
        return None, None
    return None, f"weight precision {precision!r} not mapped"


@dataclass(frozen=True, kw_only=True)
class Measured:
    tpot_ms: float | None
    ttft_ms: float | None
    output_tps: float | None


@dataclass(frozen=True, kw_only=True)
class ServingCase:
    """One published run as gpusizer inputs. ``users`` None: every request sent at once."""

    case_id: str
    source: str  # the published page, or the campaign it republishes (cases.campaign): the LOSO group
    publisher: str  # source_group: gpustack-performance-lab, sgl-cookbook, …
    family: str  # model_family (LOFO group)
    engine: str
    vendor: str
    deepseek: bool
    fit_kwargs: dict[str, Any] = field(default_factory=dict)
    users: int | None
    requests: int
    input_len: int
    output_len: int
    dataset: Literal["random", "sharegpt", "fixed"]
    measured: Measured
    source_url: str
    warmup: int = 0  # the first requests sent, left out of the figures (the client's warm-up)
    # the server ran the engine's own CUDA-graph settings (EngineSpec.default_graph_batches),
    # not the every-batch graphs gpusizer's commands print
    default_graphs: bool = False
    # False: the measured TTFT is scored but not fitted on (it holds a wait outside the engine;
    # calibrate/aic.py TTFT_NOT_FITTED)
    ttft_fitted: bool = True
    # False: scored, never fitted on — the server's throughput stalls as users are added
    # (throughput_stalls): its bottleneck is not an engine step gpusizer's factors describe
    fitted: bool = True
    # False: the engine build is older than CURRENT_RELEASES or not stated: scored in its own
    # slice, never fitted on
    current_release: bool = True

    @property
    def band(self) -> str:
        """Concurrency band of the issue's bias check."""
        c = self.users
        if c is None or c >= 128:
            return "≥128"
        return "1–8" if c <= 8 else "16–64" if c <= 64 else "65–127"


@dataclass(frozen=True, kw_only=True)
class Skipped:
    case_id: str
    reason: str


def load_rows(path: str | Path) -> list[dict[str, Any]]:
    text = Path(path).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# A setup whose output tokens/s grows less than STALL_GROWTH× when its concurrency is raised
# STALL_USERS× or more, from at least STALL_FROM users at similar lengths, is bound by
# something outside the engine step (a per-request cost that grows with the batch): every
# other published setup grows ≥ 2× over such a step. It is scored, never fitted on.
STALL_GROWTH = 1.5
STALL_USERS = 4
STALL_FROM = 4
_SIMILAR_LENGTHS = 1.5  # two runs' mean input and output lengths within this factor


def _setup(row: dict[str, Any]) -> tuple[str, ...]:
    """One server setup of a page: engine, version, model, GPUs, layout, speculation."""
    keys = (
        "engine",
        "engine_version",
        "model_id",
        "gpu_key",
        "gpu_count",
        "tensor_parallel",
        "pipeline_parallel",
        "expert_parallel",
        "data_parallel",
        "parallel_notes",
        "speculative_decoding",
        "weight_precision",
    )
    return (_page(str(row["source_url"])), *(str(row.get(k)) for k in keys))


def throughput_stalls(rows: list[dict[str, Any]]) -> dict[tuple[str, ...], str]:
    """Setups (``_setup``) whose online output tokens/s stalls as users are added, with the
    evidence: measured figures only."""
    runs: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for r in rows:
        if r.get("scenario") == "online_serving" and r.get("concurrency") and r.get("output_tps"):
            runs.setdefault(_setup(r), []).append(r)
    out: dict[tuple[str, ...], str] = {}
    for setup, items in runs.items():
        items.sort(key=lambda r: int(r["concurrency"]))
        for i, lo in enumerate(items):
            for hi in items[i + 1 :]:
                c_lo, c_hi = int(lo["concurrency"]), int(hi["concurrency"])
                similar = all(
                    max(lo[k], hi[k]) <= _SIMILAR_LENGTHS * min(lo[k], hi[k])
                    for k in ("input_tokens", "output_tokens")
                    if lo.get(k) and hi.get(k)
                )
                growth = float(hi["output_tps"]) / float(lo["output_tps"])
                if c_lo >= STALL_FROM and c_hi >= STALL_USERS * c_lo and similar and growth < STALL_GROWTH:
                    out.setdefault(
                        setup,
                        f"output tokens/s {float(lo['output_tps']):.0f} at {c_lo} users, "
                        f"{float(hi['output_tps']):.0f} at {c_hi} ({growth:.2f}x)",
                    )
    return out


def serving_cases(rows: list[dict[str, Any]], known_models: set[str]) -> list[ServingCase | Skipped]:
    """Every row read (``serving_case``), the runs of a setup whose throughput stalls marked
    scored-not-fitted (``throughput_stalls``)."""
    stalls = throughput_stalls(rows)
    out: list[ServingCase | Skipped] = []
    for row in rows:
        case = serving_case(row, known_models)
        if isinstance(case, ServingCase) and _setup(row) in stalls:
            case = replace(case, fitted=False)
        out.append(case)
    return out


def _launch(notes: str) -> str:
    """The server command a row's notes quote (``Launch: …``), or ''."""
    m = re.search(r"Launch: (.*)$", notes)
    return m.group(1) if m else ""


def _page(url: str) -> str:
    """The page a row was read from, without the pinned commit: ``repo:path``."""
    m = re.match(r"https://github\.com/([^/]+/[^/]+)/blob/[0-9a-f]+/(.+)$", url)
    return f"{m.group(1)}:{m.group(2)}" if m else url


class _Unmodelled(Exception):
    """A row gpusizer cannot model yet; the message is the reason ``Skipped`` gives."""


@dataclass(frozen=True, kw_only=True)
class _Layout:
    tp: int
    pp: int
    ep: bool
    dp_attention: bool


_ENGINES = {"sglang": "sglang", "vllm": "vllm", "tensorrt-llm": "tensorrt-llm"}


def serving_case(row: dict[str, Any], known_models: set[str]) -> ServingCase | Skipped:
    """Read one calibration row; ``known_models`` are the catalogue's model ids."""
    cid = str(row["case_id"])
    try:
        return _serving_case(cid, row, known_models)
    except _Unmodelled as why:
        return Skipped(case_id=cid, reason=str(why))


def _serving_case(cid: str, row: dict[str, Any], known_models: set[str]) -> ServingCase:
    """The row as a case; raises _Unmodelled with the first reason it cannot be one."""
    spec = _speculation(str(row.get("speculative_decoding") or ""))
    engine = _engine(row)
    model = _catalogue_model(row, known_models)
    gpu = _catalogue_gpu(row)
    quant = _weight_format(row)
    layout = _layout(row)
    launch = _launch(str(row.get("notes") or ""))
    replicas = re.search(r"(?:^|\s)--(?:dp|dp-size|data-parallel-size)[ =](\d+)", launch)
    if replicas and int(replicas.group(1)) > 1 and not layout.dp_attention:
        raise _Unmodelled("data-parallel replicas without DP attention not mapped")
    users = _users(row)
    if "shared-prefix" in str(row.get("dataset") or "").lower():
        raise _Unmodelled("shared-prefix prompts (prefix caching) not mapped")
    if not row.get("input_tokens") or not row.get("output_tokens"):
        raise _Unmodelled("no mean input/output length")
    measured = _measured(row)
    inp, out = int(row["input_tokens"]), int(row["output_tokens"])
    kwargs = _fit_kwargs(row, engine, quant, layout, launch)
    kwargs["model"] = model
    kwargs["gpu"] = gpu
    kwargs.update(spec)
    return ServingCase(
        case_id=cid,
        source=campaign(_page(str(row["source_url"]))),
        publisher=str(row["source_group"]),
        family=str(row["model_family"]),
        engine=engine,
        vendor="amd" if str(gpu).startswith("MI") else "nvidia",
        deepseek=bool(row.get("is_deepseek")),
        fit_kwargs=kwargs,
        users=users,
        requests=int(row.get("num_requests") or 1000),
        input_len=inp,
        output_len=out,
        dataset=_dataset(row),
        measured=measured,
        source_url=str(row["source_url"]),
        default_graphs=not re.search(r"cuda_graph|padding", launch + str(row.get("evidence") or "")),
        current_release=current_release(engine, row.get("engine_version")),
    )


def current_release(engine: str, version: object) -> bool:
    """Whether ``version`` (as the page printed it) is one of CURRENT_RELEASES; a version the
    page does not state, or states unreadably, is not."""
    try:
        parsed = parse_version(str(version)) if version else None
    except BadInputError:  # "not printed", a commit hash
        parsed = None
    return parsed is not None and parsed >= CURRENT_RELEASES[engine]


def _speculation(text: str) -> dict[str, Any]:
    """fit() options for the row's speculative decoding: a draft chain of ``num-steps``
    tokens, verified ``num-draft-tokens`` at a time, with the accept length the server
    printed. A run without a published accept length is not modelled (the tokens kept per
    step would be a guess), nor one whose draft is a tree (EAGLE top-k > 1)."""
    if not text:
        return {}
    steps = re.search(r"num-steps (\d+)", text)
    draft = re.search(r"num-draft-tokens (\d+)", text)
    accept = re.search(r"accept length ([\d.]+)", text)
    if not (steps and accept):
        raise _Unmodelled("speculative decoding without a published accept length")
    k = int(steps.group(1))
    if draft and int(draft.group(1)) != k + 1:
        raise _Unmodelled("speculative decoding with a draft tree (num-draft-tokens ≠ num-steps + 1)")
    kept = float(accept.group(1))
    if kept > k + 1:  # more than a k-token chain can keep: the settings printed are not what ran
        raise _Unmodelled(f"accept length {kept} above num-steps {k} + 1")
    return {"spec_tokens": k, "spec_accept": kept}


def _engine(row: dict[str, Any]) -> str:
    engine = _ENGINES.get(str(row["engine"]))
    if engine is None:
        raise _Unmodelled(f"engine {row['engine']!r}")
    return engine


def _catalogue_model(row: dict[str, Any], known_models: set[str]) -> str:
    """The catalogue's id for the row's checkpoint (MODEL_ALIASES)."""
    model: str = MODEL_ALIASES.get(row["model_id"], row["model_id"])
    if model not in known_models:
        raise _Unmodelled(f"{row['model_id']} not in the model catalogue")
    return model


def _catalogue_gpu(row: dict[str, Any]) -> str:
    gpu = GPUS.get(str(row.get("gpu_key")))
    if gpu is None:
        raise _Unmodelled(f"GPU {row.get('gpu_key')!r} not mapped")
    return gpu


def _weight_format(row: dict[str, Any]) -> str | None:
    """The weight format key to fit with; None: the checkpoint's own."""
    quant, why = _quant(str(row.get("weight_precision") or ""))
    if why:
        raise _Unmodelled(why)
    if "-FP8" in row["model_id"] and quant is None:
        quant = "fp8-block"
    return quant


def _layout(row: dict[str, Any]) -> _Layout:
    tp = int(row.get("tensor_parallel") or 1)
    notes = str(row.get("parallel_notes") or "").lower()
    dp_attention = "dp attention" in notes or "dp-attention" in notes or "attention_dp" in notes
    ep = bool(row.get("expert_parallel") and int(row["expert_parallel"]) > 1) or "expert-parallel" in notes
    pp = int(row.get("pipeline_parallel") or 1)
    return _Layout(tp=tp, pp=pp, ep=ep, dp_attention=dp_attention)


def _users(row: dict[str, Any]) -> int | None:
    """The concurrency cap of an online run; None: every request sent at once."""
    scenario = row["scenario"]
    users = int(row["concurrency"]) if scenario == "online_serving" and row.get("concurrency") else None
    if scenario == "online_serving" and users is None:
        raise _Unmodelled("online run without a concurrency cap")
    return users


def _measured(row: dict[str, Any]) -> Measured:
    measured = Measured(
        tpot_ms=row.get("tpot_ms_median") or row.get("tpot_ms_mean"),
        ttft_ms=row.get("ttft_ms_median") or row.get("ttft_ms_mean"),
        output_tps=row.get("output_tps"),
    )
    if measured.tpot_ms is None and measured.output_tps is None:
        raise _Unmodelled("neither TPOT nor output tokens/s measured")
    return measured


def _fit_kwargs(
    row: dict[str, Any], engine: str, quant: str | None, layout: _Layout, launch: str
) -> dict[str, Any]:
    """The ``fit`` arguments of the run's deployment, less the model and GPU."""
    # gpu_count is the box; a single server launched at -tp N (-pp M) uses N × M of its GPUs
    # (the GPUStack pages run one instance on part of an 8-GPU node)
    gpus = layout.tp * layout.pp
    kwargs: dict[str, Any] = {
        "gpus": gpus,
        "tp": layout.tp,
        "pp": layout.pp,
        "engine": engine,
        "ep": layout.ep,
        "dp_attention": layout.dp_attention and layout.tp > 1,
        "gpus_per_node": max(1, gpus // int(row.get("nodes") or 1)),
        "suggest": False,
    }
    if quant:
        kwargs["quant"] = quant
    # vLLM's batch token budget; TensorRT-LLM's is --max_num_tokens (SGLang's chunk: below)
    m = re.search(r"--max[-_]num[-_]batched[-_]tokens[ =](\d+)", launch)
    if m is None and engine == "tensorrt-llm":
        m = re.search(r"--max_num_tokens[ =](\d+)", launch)
    if m:
        kwargs["max_num_batched_tokens"] = int(m.group(1))
    m = re.search(r"--chunked-prefill-size[ =](\d+)", launch)
    if m and engine == "sglang":
        kwargs["max_num_batched_tokens"] = int(m.group(1))
    m = re.search(r"--(?:mem-fraction-static|gpu-memory-utilization)[ =]([\d.]+)", launch)
    if m:
        kwargs["gpu_memory_utilization"] = float(m.group(1))
    # the flag (vLLM, SGLang), or TensorRT-LLM's extra_llm_api_options kv_cache_config dtype
    if re.search(r"--kv[-_]cache[-_]dtype[ =]fp8|kv_cache_config: \{[^}]*dtype: fp8", launch):
        kwargs["kv_dtype"] = "fp8"
    if row.get("engine_version") and engine_spec(engine).versioned:
        kwargs["engine_version"] = str(row["engine_version"])
    return kwargs


def _dataset(row: dict[str, Any]) -> Literal["random", "sharegpt", "fixed"]:
    ds = str(row.get("dataset") or "").lower()
    return "fixed" if "fixed length" in ds else "sharegpt" if "sharegpt" in ds else "random"

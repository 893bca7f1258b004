"""What a web request computes, as plain functions of plain arguments, run in a worker
process by ``web.worker`` (never in the server's event loop).

    JOBS[name](args: dict) -> a JSON-ready dict (the API) or an HTML string (the page)

Arguments and results cross a process boundary, so they are plain values: a model is a
catalogue name or an uploaded config dict, never a path. A model name is resolved only
against the catalogue (``catalogue_model``): nothing a request sends is tried as a folder
of the server's working directory or fetched from the Hub.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gpusizer.api import ResolvedModel, catalogue_model, fit, model_from_config, perf, plan, simulate
from gpusizer.report.fit import fit_to_dict
from gpusizer.report.perf import perf_to_dict
from gpusizer.report.plan import plan_to_dict
from gpusizer.report.simulate import sim_to_dict
from gpusizer.simulate.workload import LengthDist
from gpusizer.web.page import PageInputs, plan_page

__all__ = ["JOBS", "Job", "prime"]

Job = Callable[[dict[str, Any]], Any]

# Options every model-on-a-GPU body shares (FitBody's fields but model, gpu and users).
_DEPLOYMENT = ("gpus", "quant", "kv_dtype", "engine", "allow_long_context")
_SPEC = ("spec_tokens", "spec_accept")  # perf and simulate


def _model(args: dict[str, Any]) -> ResolvedModel:
    """The request's model: an uploaded config (already bounded by the app) or a catalogue name."""
    if args.get("config") is not None:
        return model_from_config(args["config"], name=args.get("filename") or "uploaded config.json")
    return catalogue_model(args["model"])


def _fit(args: dict[str, Any]) -> dict[str, Any]:
    res = fit(
        _model(args),
        args["gpu"],
        max_model_len=args["max_model_len"],
        users=args["users"],
        **{k: args[k] for k in _DEPLOYMENT},
    )
    return fit_to_dict(res)


def _perf(args: dict[str, Any]) -> dict[str, Any]:
    res = perf(
        _model(args),
        args["gpu"],
        input_len=args["input_len"],
        output_len=args["output_len"],
        batches=tuple(args["batches"]) if args["batches"] else None,
        **{k: args[k] for k in _SPEC},
        **{k: args[k] for k in _DEPLOYMENT},
    )
    return perf_to_dict(res)


def _simulate(args: dict[str, Any]) -> dict[str, Any]:
    res = simulate(
        _model(args),
        args["gpu"],
        rates=(args["rate"],) if args["rate"] else (),
        users=(args["concurrency"],) if args["concurrency"] else (),
        input_len=LengthDist(mean=args["input_len"]),
        output_len=LengthDist(mean=args["output_len"]),
        requests=args["requests"],
        seed=args["seed"],
        slo_ttft_ms=args["slo_ttft_ms"],
        slo_tpot_ms=args["slo_tpot_ms"],
        prefix_tokens=args["prefix_tokens"],
        **({"max_model_len": args["max_model_len"]} if args["max_model_len"] else {}),  # else as the CLI
        **{k: args[k] for k in _SPEC},
        **{k: args[k] for k in _DEPLOYMENT},
    )
    return sim_to_dict(res)


def _plan(args: dict[str, Any]) -> dict[str, Any]:
    res = plan(
        _model(args),
        context=args["context"],
        users=args["users"],
        ttft_ms=args["ttft_ms"],
        tpot_ms=args["tpot_ms"],
        classes=args["classes"],
        max_gpus=args["max_gpus"],
        input_len=args["input_len"],
        output_len=args["output_len"],
        quants=args["quants"],
        precision=args["precision"],
        engine=list(args["engine"]),
        max_cost_per_hour=args["max_cost_per_hour"],
        max_capex=args["capex"],
        rank_by=args["rank_by"],
    )
    return plan_to_dict(res)


def _page(args: dict[str, Any]) -> str:
    """The planner page; a model that cannot be resolved is shown on the page, as a plan is."""
    inputs = PageInputs(**args["inputs"])
    return plan_page(inputs, lambda: _model(args), uploaded=args.get("config") is not None)


JOBS: dict[str, Job] = {"fit": _fit, "perf": _perf, "simulate": _simulate, "plan": _plan, "page": _page}


def prime() -> None:
    """Load and validate the catalogues once, in the fork server, by planning a small model,
    so every child starts with them in memory (a cold child spends ~150 ms reading YAML)."""
    from gpusizer.catalog.load import model_catalogue

    name = model_catalogue()[0].id
    plan(catalogue_model(name), context=4096, users=1, classes=["consumer"], max_gpus=1)

"""FastAPI app: a JSON API over the same functions as the CLI, and a planner page.

The page is server-rendered HTML with inline SVG (no CDN, no JavaScript needed); its URL
carries every input, so a plan can be shared as a link. Request bodies are pydantic models
with bounds; errors come back as 422 naming the field. Nothing a request sends is used as
a file path: models must be catalogue names here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import Any, Literal
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from gpusizer import __version__
from gpusizer.api import fit, model_from_config, perf, simulate
from gpusizer.catalog.load import gpu_catalogue, model_catalogue
from gpusizer.catalog.resolve import resolve_model
from gpusizer.errors import BadInputError, GpusizerError
from gpusizer.planning import plan
from gpusizer.report.fit import fit_to_dict
from gpusizer.report.html import document, plan_sections
from gpusizer.report.perf import perf_to_dict
from gpusizer.report.plan import plan_to_dict
from gpusizer.report.simulate import sim_to_dict
from gpusizer.simulate.workload import LengthDist
from gpusizer.units import GIB

__all__ = ["create_app"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FitBody(_Body):
    model: str = Field(min_length=1, max_length=200, description="Catalogue model name or HF id")
    gpu: str = Field(min_length=1, max_length=100)
    gpus: int | None = Field(default=None, ge=1, le=64)
    quant: str | None = Field(default=None, max_length=40)
    kv_dtype: str = Field(default="auto", max_length=20)
    engine: Literal["vllm", "sglang", "tensorrt-llm", "llamacpp", "transformers"] | None = None
    max_model_len: int | None = Field(default=None, ge=1, le=2_097_152)
    users: int = Field(default=1, ge=1, le=100_000)


class PerfBody(FitBody):
    input_len: int = Field(default=1024, ge=1, le=1_048_576)
    output_len: int = Field(default=256, ge=1, le=1_048_576)
    batches: list[int] | None = Field(default=None, max_length=16)


class SimulateBody(FitBody):
    rate: float | None = Field(default=None, gt=0, le=10_000, description="Open loop: requests/s")
    concurrency: int | None = Field(default=None, ge=1, le=4096, description="Closed loop: users")
    input_len: int = Field(default=1024, ge=1, le=262_144)
    output_len: int = Field(default=256, ge=1, le=65_536)
    requests: int = Field(default=500, ge=1, le=5000)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    slo_ttft_ms: float | None = Field(default=None, gt=0, le=600_000)
    slo_tpot_ms: float | None = Field(default=None, gt=0, le=60_000)
    prefix_tokens: int = Field(default=0, ge=0, le=262_144)


class PlanBody(_Body):
    model: str = Field(min_length=1, max_length=200)
    context: int = Field(default=8192, ge=256, le=2_097_152)
    users: int = Field(default=1, ge=1, le=10_000)
    ttft_ms: float | None = Field(default=None, gt=0, le=600_000)
    tpot_ms: float | None = Field(default=None, gt=0, le=60_000)
    classes: list[Literal["consumer", "workstation", "datacenter", "apple"]] | None = None
    max_gpus: int = Field(default=8, ge=1, le=16)
    input_len: int | None = Field(default=None, ge=1, le=2_097_152, description="typical prompt tokens")
    output_len: int = Field(default=512, ge=1, le=1_048_576)
    quants: list[str] | None = Field(default=None, max_length=8, description="weight formats to consider")
    precision: Literal["default", "high"] = "default"
    engine: list[Literal["vllm", "sglang", "tensorrt-llm", "llamacpp", "auto"]] = Field(
        default=["vllm"], min_length=1, max_length=4
    )
    max_cost_per_hour: float | None = Field(default=None, gt=0, le=100_000)
    capex: float | None = Field(default=None, gt=0, le=1e9, description="hardware budget, USD")
    rank_by: Literal["owned", "cloud"] = "owned"


def _catalogue_model(name: str) -> str:
    """Only catalogue names: a request never names a path on this machine."""
    return resolve_model(name, model_catalogue()).id


def create_app() -> FastAPI:
    app = FastAPI(
        title="gpusizer",
        version=__version__,
        description="Right-size GPU hardware for self-hosted LLM inference.",
        responses={400: {"description": "The request body could not be read as JSON"}},
    )

    @app.exception_handler(GpusizerError)
    async def _expected(_: Request, exc: GpusizerError) -> JSONResponse:
        field = getattr(exc, "field", None) or getattr(exc, "kind", None)
        return JSONResponse(
            status_code=422,
            content={
                "detail": [{"loc": ["body", str(field or "body")], "msg": exc.message, "type": "value_error"}]
            },
        )

    @app.get("/api/models")
    def models() -> list[dict[str, Any]]:
        return [
            {"id": e.id, "aliases": list(e.aliases), "context_length": e.context_length}
            for e in model_catalogue()
        ]

    @app.get("/api/gpus")
    def gpus() -> list[dict[str, Any]]:
        return [
            {
                "key": g.key,
                "name": g.name,
                "class": g.gpu_class,
                "memory_gib": round(g.memory_bytes / GIB, 1),
                "bandwidth_tbps": g.memory_bandwidth_bps / 1e12,
                "list_price_usd": g.list_price_usd,
            }
            for g in gpu_catalogue()
        ]

    @app.post("/api/fit")
    def api_fit(body: FitBody) -> dict[str, Any]:
        res = fit(
            _catalogue_model(body.model),
            body.gpu,
            gpus=body.gpus,
            quant=body.quant,
            kv_dtype=body.kv_dtype,
            engine=body.engine,
            max_model_len=body.max_model_len,
            users=body.users,
        )
        return fit_to_dict(res)

    @app.post("/api/perf")
    def api_perf(body: PerfBody) -> dict[str, Any]:
        res = perf(
            _catalogue_model(body.model),
            body.gpu,
            input_len=body.input_len,
            output_len=body.output_len,
            batches=tuple(body.batches) if body.batches else None,
            gpus=body.gpus,
            quant=body.quant,
            kv_dtype=body.kv_dtype,
            engine=body.engine,
        )
        return perf_to_dict(res)

    @app.post("/api/simulate")
    def api_simulate(body: SimulateBody) -> dict[str, Any]:
        if (body.rate is None) == (body.concurrency is None):
            raise BadInputError("rate", "give a request rate or a concurrency (one of them)")
        res = simulate(
            _catalogue_model(body.model),
            body.gpu,
            rates=(body.rate,) if body.rate else (),
            users=(body.concurrency,) if body.concurrency else (),
            input_len=LengthDist(mean=body.input_len),
            output_len=LengthDist(mean=body.output_len),
            requests=body.requests,
            seed=body.seed,
            slo_ttft_ms=body.slo_ttft_ms,
            slo_tpot_ms=body.slo_tpot_ms,
            prefix_tokens=body.prefix_tokens,
            gpus=body.gpus,
            quant=body.quant,
            kv_dtype=body.kv_dtype,
            engine=body.engine,
            max_model_len=body.max_model_len,
        )
        return sim_to_dict(res)

    @app.post("/api/plan")
    def api_plan(body: PlanBody) -> dict[str, Any]:
        res = plan(
            _catalogue_model(body.model),
            context=body.context,
            users=body.users,
            ttft_ms=body.ttft_ms,
            tpot_ms=body.tpot_ms,
            classes=body.classes,
            max_gpus=body.max_gpus,
            input_len=body.input_len,
            output_len=body.output_len,
            quants=body.quants,
            precision=body.precision,
            engine=list(body.engine),
            max_cost_per_hour=body.max_cost_per_hour,
            max_capex=body.capex,
            rank_by=body.rank_by,
        )
        return plan_to_dict(res)

    @app.get("/", response_class=HTMLResponse)
    def page(request: Request) -> HTMLResponse:
        """The planner page. Its query string carries the inputs (model, context, users,
        ttft_ms, tpot_ms, gpu_class, quant, engine, max_gpus, max_cost_per_hour); a field left
        empty means "no constraint", a bad one is shown on the page naming the field."""
        query = {k: v for k, v in request.query_params.items() if len(v) <= 200}
        if not query:
            query = dict(FIRST_VISIT)
        try:
            inputs = PageInputs.from_form(query)
        except GpusizerError as exc:
            return HTMLResponse(_error_page(exc.message), 422)
        return HTMLResponse(_plan_page(inputs, lambda: _catalogue_model(inputs.model)))

    @app.post(
        "/upload",
        response_class=HTMLResponse,
        responses={
            413: {"description": "config.json over the size limit"},
            422: {"description": "config.json or a field could not be read"},
        },
    )
    async def upload(request: Request) -> HTMLResponse:
        """The planner for a model given as its config.json (read in the browser and posted
        as a form field; bounded; parsed, never stored, never used as a path)."""
        raw = await request.body()
        if len(raw) > MAX_UPLOAD_BYTES:
            return HTMLResponse(
                _error_page(f"config.json is larger than {MAX_UPLOAD_BYTES // 1024} KiB"), 413
            )
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", errors="replace")).items()}
        try:
            inputs = PageInputs.from_form(form)
            config = json.loads(form.get("config", ""))
            resolved = model_from_config(
                config, name=str(form.get("filename") or "uploaded config.json")[:100]
            )
        except (ValueError, GpusizerError) as exc:
            msg = exc.message if isinstance(exc, GpusizerError) else f"config.json is not JSON ({exc})"
            return HTMLResponse(_error_page(msg), 422)
        return HTMLResponse(_plan_page(inputs, lambda: resolved, uploaded=True))

    return app


MAX_UPLOAD_BYTES = 256 * 1024
# What the page plans on a first visit: the README's example.
FIRST_VISIT = {
    "model": "deepseek-r1-distill-qwen-32b",
    "context": "32768",
    "users": "10",
    "ttft_ms": "1000",
    "tpot_ms": "33.3",
    "gpu_class": "consumer,workstation,datacenter",
}
_ENGINES = ("vllm", "sglang", "tensorrt-llm", "llamacpp", "auto")


@dataclass(frozen=True)
class PageInputs:
    model: str
    context: int
    users: int
    ttft_ms: float | None
    tpot_ms: float | None
    gpu_class: str
    quant: str = ""
    engine: str = "vllm"
    max_gpus: int = 8
    max_cost_per_hour: float | None = None

    @classmethod
    def from_form(cls, form: dict[str, str]) -> PageInputs:
        """The upload form's fields, checked with the same bounds as the page's query."""

        def num(key: str, lo: float, hi: float, default: float | None) -> float | None:
            text = (form.get(key) or "").strip()
            if not text:
                return default
            try:
                v = float(text)
            except ValueError as exc:
                raise BadInputError(key, f"cannot read {text!r} as a number") from exc
            if not lo <= v <= hi:
                raise BadInputError(key, f"must be {lo:g}..{hi:g}, got {v:g}")
            return v

        return cls(
            model=(form.get("model") or "").strip()[:200],
            context=int(num("context", 256, 2_097_152, 32768) or 32768),
            users=int(num("users", 1, 10_000, 10) or 10),
            ttft_ms=num("ttft_ms", 0.001, 600_000, None),
            tpot_ms=num("tpot_ms", 0.001, 60_000, None),
            gpu_class=(form.get("gpu_class") or "consumer,workstation,datacenter")[:60],
            quant=(form.get("quant") or "")[:60],
            engine=(form.get("engine") or "vllm")[:40],
            max_gpus=int(num("max_gpus", 1, 16, 8) or 8),
            max_cost_per_hour=num("max_cost_per_hour", 0.001, 100_000, None),
        )


def _split(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _plan_page(inputs: PageInputs, model: Callable[[], Any], *, uploaded: bool = False) -> str:
    try:
        engines = _split(inputs.engine) or ["vllm"]
        bad = [e for e in engines if e not in _ENGINES]
        if bad:
            raise BadInputError("engine", f"unknown engine {bad[0]!r}", ", ".join(_ENGINES))
        result = plan_to_dict(
            plan(
                model(),
                context=inputs.context,
                users=inputs.users,
                ttft_ms=inputs.ttft_ms,
                tpot_ms=inputs.tpot_ms,
                classes=_split(inputs.gpu_class),
                quants=_split(inputs.quant) or None,
                engine=engines,
                max_gpus=inputs.max_gpus,
                max_cost_per_hour=inputs.max_cost_per_hour,
            )
        )
        error = None
    except GpusizerError as exc:
        result, error = None, exc.message
    return _render_page(inputs, result, error, uploaded=uploaded)


def _error_page(message: str) -> str:
    return document(
        "gpusizer plan",
        f'<h1>gpusizer — plan</h1><p class="error">{escape(message)}</p><p><a href="/">back</a></p>',
    )


_LIVE_SCRIPT = """<script>
(function () {
  var form = document.getElementById('planner'); var timer = null;
  form.addEventListener('input', function (e) {
    if (e.target.type === 'file') return;
    clearTimeout(timer);
    timer = setTimeout(function () { document.getElementById('status').textContent = 'planning…'; form.submit(); }, 800);
  });
  form.addEventListener('submit', function () {
    clearTimeout(timer);
    document.getElementById('status').textContent = 'planning…';
  });
  var file = document.getElementById('config-file');
  file.addEventListener('change', function () {
    var f = file.files[0]; if (!f) return;
    if (f.size > 262144) { document.getElementById('status').textContent = 'config.json over 256 KiB'; return; }
    var reader = new FileReader();
    reader.onload = function () {
      var up = document.getElementById('upload');
      up.querySelector('[name=config]').value = reader.result;
      up.querySelector('[name=filename]').value = f.name;
      ['context', 'users', 'ttft_ms', 'tpot_ms', 'gpu_class', 'quant', 'engine', 'max_gpus', 'max_cost_per_hour'].forEach(function (k) {
        up.querySelector('[name=' + k + ']').value = form.querySelector('[name=' + k + ']').value;
      });
      document.getElementById('status').textContent = 'planning…';
      up.submit();
    };
    reader.readAsText(f);
  });
})();
</script>"""


def _render_page(
    inputs: PageInputs, result: dict[str, Any] | None, error: str | None, *, uploaded: bool = False
) -> str:
    def val(v: Any) -> str:
        return escape("" if v is None else str(v))

    i = inputs
    options = "".join(f'<option value="{escape(e.id.split("/")[-1].lower())}">' for e in model_catalogue())
    hidden = "".join(
        f'<input type="hidden" name="{k}">'
        for k in (
            "config",
            "filename",
            "context",
            "users",
            "ttft_ms",
            "tpot_ms",
            "gpu_class",
            "quant",
            "engine",
            "max_gpus",
            "max_cost_per_hour",
        )
    )
    form = f"""
<form id="planner" method="get" action="/">
  <label>model <input name="model" list="models" value="{
        val(i.model)
    }" size="32" placeholder="catalogue name"></label>
  <datalist id="models">{options}</datalist>
  <label>or its config.json <input id="config-file" type="file" accept=".json,application/json"></label><br>
  <label>context <input name="context" type="number" min="256" value="{val(i.context)}"></label>
  <label>users <input name="users" type="number" min="1" value="{val(i.users)}"></label>
  <label>TTFT ms <input name="ttft_ms" type="number" step="any" value="{val(i.ttft_ms)}"></label>
  <label>TPOT ms <input name="tpot_ms" type="number" step="any" value="{val(i.tpot_ms)}"></label><br>
  <label>GPU classes <input name="gpu_class" value="{val(i.gpu_class)}"></label>
  <label>weights <input name="quant" value="{
        val(i.quant)
    }" placeholder="awq,fp8 (default: guide's order)" size="22"></label>
  <label>engine <input name="engine" value="{
        val(i.engine)
    }" size="10" title="vllm, sglang, tensorrt-llm, llamacpp or auto"></label>
  <label>max GPUs <input name="max_gpus" type="number" min="1" max="16" value="{val(i.max_gpus)}"></label>
  <label>budget $/h <input name="max_cost_per_hour" type="number" step="any" value="{
        val(i.max_cost_per_hour)
    }"></label>
  <button type="submit">Plan</button> <span id="status" class="muted"></span>
</form>
<form id="upload" method="post" action="/upload" style="display:none">{hidden}</form>
<p class="muted">The page re-plans as you type; its address carries the inputs, so the link shares this plan{
        " — except an uploaded config.json, which is planned once and not kept" if uploaded else ""
    }.</p>"""
    body = f'<p class="error">{escape(error)}</p>' if error else plan_sections(result) if result else ""
    return document("gpusizer plan", f"<h1>gpusizer — plan</h1>{form}{body}{_LIVE_SCRIPT}")

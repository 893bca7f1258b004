"""FastAPI app: a JSON API over the same functions as the CLI, and a planner page.

The page is server-rendered HTML with inline SVG (no CDN, no JavaScript needed); its URL
carries every input, so a plan can be shared as a link. Request bodies are pydantic models
with bounds; errors come back as 422 naming the field. Nothing a request sends is used as
a file path: models must be catalogue names here.
"""

from __future__ import annotations

from html import escape
from typing import Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from gpusizer import __version__
from gpusizer.api import fit, perf
from gpusizer.catalog.load import gpu_catalogue, model_catalogue
from gpusizer.catalog.resolve import resolve_model
from gpusizer.errors import GpusizerError
from gpusizer.planning import plan
from gpusizer.report.fit import fit_to_dict
from gpusizer.report.perf import perf_to_dict
from gpusizer.report.plan import plan_to_dict
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


class PlanBody(_Body):
    model: str = Field(min_length=1, max_length=200)
    context: int = Field(default=8192, ge=256, le=2_097_152)
    users: int = Field(default=1, ge=1, le=10_000)
    ttft_ms: float | None = Field(default=None, gt=0, le=600_000)
    tpot_ms: float | None = Field(default=None, gt=0, le=60_000)
    classes: list[Literal["consumer", "workstation", "datacenter", "apple"]] | None = None
    max_gpus: int = Field(default=8, ge=1, le=16)


def _catalogue_model(name: str) -> str:
    """Only catalogue names: a request never names a path on this machine."""
    return resolve_model(name, model_catalogue()).id


def create_app() -> FastAPI:
    app = FastAPI(
        title="gpusizer",
        version=__version__,
        description="Right-size GPU hardware for self-hosted LLM inference.",
    )

    @app.exception_handler(GpusizerError)
    async def _expected(_: Request, exc: GpusizerError) -> JSONResponse:
        field = getattr(exc, "field", None) or getattr(exc, "kind", None)
        return JSONResponse(
            status_code=422, content={"detail": [{"loc": ["body", field], "msg": exc.message}]}
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
        )
        return plan_to_dict(res)

    @app.get("/", response_class=HTMLResponse)
    def page(
        model: str = Query(default="deepseek-r1-distill-qwen-32b", max_length=200),
        context: int = Query(default=32768, ge=256, le=2_097_152),
        users: int = Query(default=10, ge=1, le=10_000),
        ttft_ms: float | None = Query(default=1000, gt=0, le=600_000),
        tpot_ms: float | None = Query(default=33.3, gt=0, le=60_000),
        gpu_class: str = Query(default="consumer,workstation,datacenter", max_length=60),
    ) -> HTMLResponse:
        classes = [c for c in gpu_class.split(",") if c]
        try:
            result = plan_to_dict(
                plan(
                    _catalogue_model(model),
                    context=context,
                    users=users,
                    ttft_ms=ttft_ms,
                    tpot_ms=tpot_ms,
                    classes=classes,
                )
            )
            error = None
        except GpusizerError as exc:
            result, error = None, exc.message
        return HTMLResponse(_render_page(model, context, users, ttft_ms, tpot_ms, gpu_class, result, error))

    return app


def _vram_bar(pick: dict[str, Any]) -> str:
    """A stacked bar of one GPU's memory: weights, KV for the users, activations, free."""
    g = pick["per_gpu_gib"]
    parts = [
        ("weights", g["weights"], "#1f77b4"),
        ("KV (users)", g["kv_needed"], "#2ca02c"),
        ("KV pool spare", max(g["kv_pool"] - g["kv_needed"], 0), "#98df8a"),
        ("activations", g["activation"], "#9467bd"),
        ("free", max(g["free"], 0), "#dddddd"),
    ]
    total = max(g["capacity"], 1e-9)
    x = 0.0
    rects, legend = [], []
    for i, (name, gib, colour) in enumerate(parts):
        w = 600 * gib / total
        rects.append(
            f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="28" fill="{colour}"><title>{name}: {gib:.1f} GiB</title></rect>'
        )
        legend.append(
            f'<text x="{i * 138}" y="46" font-size="12" fill="{colour}">■ {name} {gib:.1f} GiB</text>'
        )
        x += w
    return f'<svg class="vram" width="700" height="54" xmlns="http://www.w3.org/2000/svg">{"".join(rects)}{"".join(legend)}</svg>'


def _render_page(
    model: str,
    context: int,
    users: int,
    ttft_ms: float | None,
    tpot_ms: float | None,
    gpu_class: str,
    result: dict[str, Any] | None,
    error: str | None,
) -> str:
    def val(v: Any) -> str:
        return escape("" if v is None else str(v))

    options = "".join(f'<option value="{escape(e.id.split("/")[-1].lower())}">' for e in model_catalogue())
    form = f"""
<form method="get" action="/">
  <label>model <input name="model" list="models" value="{val(model)}" size="36"></label>
  <datalist id="models">{options}</datalist>
  <label>context <input name="context" type="number" value="{val(context)}"></label>
  <label>users <input name="users" type="number" value="{val(users)}"></label>
  <label>TTFT ms <input name="ttft_ms" type="number" step="any" value="{val(ttft_ms)}"></label>
  <label>TPOT ms <input name="tpot_ms" type="number" step="any" value="{val(tpot_ms)}"></label>
  <label>GPU classes <input name="gpu_class" value="{val(gpu_class)}"></label>
  <button type="submit">Plan</button>
</form>"""
    body = ""
    if error:
        body = f'<p class="error">{escape(error)}</p>'
    elif result:
        rows = []
        for name, p in result["picks"].items():
            if not p:
                continue
            hw = (
                f"{p['replicas']} × " if p["replicas"] > 1 else ""
            ) + f"{p['gpus_per_replica']}× {p['gpu_name']}"
            rows.append(
                f"<tr><td>{escape(name)}</td><td>{escape(hw)}</td><td>{escape(p['quant'])}</td>"
                f"<td>{p['usd_per_hour']:.2f}</td><td>{p['ttft_ms']:.0f}</td><td>{p['tpot_ms']:.1f}</td></tr>"
            )
        cheapest = result["picks"]["cheapest"]
        body = (
            "<h2>Top picks</h2><table><tr><th>pick</th><th>hardware</th><th>weights</th><th>$/hour</th>"
            "<th>TTFT ms</th><th>TPOT ms</th></tr>" + "".join(rows) + "</table>"
        )
        if cheapest:
            body += "<h2>Cheapest plan: memory per GPU</h2>" + _vram_bar(cheapest)
        body += (
            "<h2>The guide's rules</h2><ul>"
            + "".join(
                f"<li>{'✓' if f['holds'] else '!'} <b>{escape(f['rule'])}</b>: {escape(f['evidence'])}</li>"
                for f in result["findings"]
            )
            + "</ul>"
        )
        if result["launch"].get("vllm"):
            body += (
                '<h2>Launch</h2><pre id="launch">' + escape(result["launch"]["vllm"]) + "</pre>"
                "<button onclick=\"navigator.clipboard.writeText(document.getElementById('launch').innerText)\">"
                "Copy</button>"
            )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>gpusizer plan</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}} td:first-child,td:nth-child(2),td:nth-child(3){{text-align:left}}
label{{margin-right:1em}} .error{{color:#b00}} pre{{background:#f4f4f4;padding:8px;white-space:pre-wrap}}</style>
</head><body><h1>gpusizer — plan</h1>{form}{body}</body></html>"""

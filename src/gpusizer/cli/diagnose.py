"""``gpusizer diagnose``: read a live server's Prometheus metrics and apply the guide's rules."""

from __future__ import annotations

import json
from typing import Annotated

import httpx
import typer

from gpusizer.bench.prometheus import parse_metrics
from gpusizer.cli.common import console, guarded
from gpusizer.errors import BadInputError
from gpusizer.plan.diagnosis import diagnose

__all__ = ["diagnose_command"]


@guarded
def diagnose_command(
    url: Annotated[
        str, typer.Argument(help="Server base URL; its /metrics is read (vLLM, SGLang, llama.cpp --metrics)")
    ],
    slo_ttft_ms: Annotated[float | None, typer.Option()] = None,
    slo_itl_ms: Annotated[float | None, typer.Option()] = None,
    timeout_s: Annotated[float, typer.Option(min=1, max=300)] = 10.0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Snapshot of running/waiting requests, KV use, preemptions and latency, with what to do."""
    if not url.startswith(("http://", "https://")):
        raise BadInputError("URL", f"{url!r} is not an http(s) URL")
    try:
        resp = httpx.get(url.rstrip("/") + "/metrics", timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise BadInputError("URL", f"cannot reach {url} ({exc.__class__.__name__})") from exc
    if resp.status_code != 200:
        raise BadInputError(
            "URL",
            f"{url}/metrics answered HTTP {resp.status_code}",
            "start the server with metrics on (llama.cpp: --metrics)",
        )
    try:
        snap = parse_metrics(resp.text)
    except ValueError as exc:
        raise BadInputError("URL", f"{url}/metrics is not Prometheus text") from exc
    found = diagnose(
        running=snap.running,
        waiting=snap.waiting,
        kv_usage=snap.kv_usage,
        preemptions=snap.preemptions,
        ttft_s=snap.ttft_mean_s,
        itl_s=snap.itl_mean_s,
        slo_ttft_s=slo_ttft_ms / 1e3 if slo_ttft_ms else None,
        slo_itl_s=slo_itl_ms / 1e3 if slo_itl_ms else None,
    )
    if as_json:
        typer.echo(
            json.dumps({"snapshot": snap.__dict__, "diagnosis": [d.__dict__ for d in found]}, indent=2)
        )
        return
    console.print(
        f"[bold]{url}[/] ({snap.engine or 'unknown engine'}): running {snap.running}, waiting {snap.waiting}, "
        f"KV used {snap.kv_usage}, preemptions {snap.preemptions}"
    )
    for d in found:
        console.print(f"[bold]{d.verdict}[/]: {d.rule} — {d.evidence}", highlight=False)

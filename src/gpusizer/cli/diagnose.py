"""``gpusizer diagnose``: apply the guide's operating rules to stored bench runs (one run or
a sweep) or to a live server's Prometheus metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from gpusizer.bench.client import server_base
from gpusizer.bench.lifecycle import open_runs, summarize
from gpusizer.bench.prometheus import parse_metrics
from gpusizer.cli.bench import DEFAULT_DB
from gpusizer.cli.common import console, guarded
from gpusizer.cli.options import number
from gpusizer.errors import BadInputError
from gpusizer.plan.diagnosis import Diagnosis, RunEvidence, diagnose, diagnose_runs
from gpusizer.store.runs import RunStore

__all__ = ["diagnose_command"]


def _s(d: dict[str, Any] | None, key: str) -> float | None:
    v = (d or {}).get(key)
    return None if v is None else float(v) / 1e3


def _evidence(run: dict[str, Any], store: RunStore) -> RunEvidence:
    try:
        summary = json.loads(run["summary"]) if run["summary"] else None
        settings = json.loads(run["settings"])
    except ValueError as exc:
        raise BadInputError("--db", f"run {run['id']} has damaged settings or summary ({exc})") from exc
    if not isinstance(summary, dict) or "completed" not in summary:  # still running: what it stored
        summary = {**(summary or {}), **summarize(store, int(run["id"]))}
    settings = settings if isinstance(settings, dict) else {}
    srv = summary.get("server") or {}
    return RunEvidence(
        run_id=int(run["id"]),
        status=str(run["status"] or "complete"),
        cancelled=int(summary.get("cancelled") or 0),
        concurrency=settings.get("concurrency"),
        rate=settings.get("rate"),
        completed=int(summary.get("completed") or 0),
        failed=int(summary.get("failed") or 0),
        failures=dict(summary.get("failures") or {}),
        requests_per_s=float(summary.get("requests_per_s") or 0.0),
        output_tokens_per_s=float(summary.get("output_tokens_per_s") or 0.0),
        ttft_p50_s=_s(summary.get("ttft_ms"), "p50"),
        ttft_p95_s=_s(summary.get("ttft_ms"), "p95"),
        tpot_p50_s=_s(summary.get("tpot_ms"), "p50"),
        tpot_p95_s=_s(summary.get("tpot_ms"), "p95"),
        max_running=srv.get("max_running"),
        max_waiting=srv.get("max_waiting"),
        max_kv_usage=srv.get("max_kv_usage"),
        preemptions=srv.get("preemptions"),
        send_p50_s=_s(summary.get("client_send_ms"), "p50"),
        e2e_p50_s=_s(summary.get("e2e_ms"), "p50"),
        server_ttft_mean_s=_s(srv, "ttft_mean_ms"),
        server_queue_mean_s=_s(srv, "queue_mean_ms"),
    )


def _from_runs(targets: list[str], db: str | None) -> list[RunEvidence]:
    try:
        ids = [int(t) for t in targets]
    except ValueError as exc:
        raise BadInputError(
            "TARGET", f"{targets!r}: give one server URL or stored run ids", "e.g. 3 4 5"
        ) from exc
    path = Path(db) if db else DEFAULT_DB
    store = open_runs(path, write=False)  # read-only; runs whose bench died are closed as abandoned
    try:
        evidence = []
        for i in ids:
            run = store.run(i)
            if run is None:
                raise BadInputError("TARGET", f"no run {i} in {path}", "`gpusizer runs` lists them")
            evidence.append(_evidence(run, store))
    finally:
        store.close()
    return evidence


def _live(
    url: str, field: str, timeout_s: float, slo_ttft_ms: float | None, slo_itl_ms: float | None
) -> tuple[dict[str, Any], list[Diagnosis]]:
    base = server_base(url, field)
    try:
        resp = httpx.get(base + "/metrics", timeout=timeout_s)
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
    return snap.__dict__, found


@guarded
def diagnose_command(
    targets: Annotated[
        list[str],
        typer.Argument(
            metavar="TARGET...",
            help="Stored run ids (one run or a sweep), or a live server's base URL (its /metrics is read)",
        ),
    ],
    db: Annotated[str | None, typer.Option(help=f"SQLite file of bench runs (default {DEFAULT_DB})")] = None,
    metrics_url: Annotated[
        str | None, typer.Option(help="A live server's base URL (the same as giving it as TARGET)")
    ] = None,
    slo_ttft_ms: Annotated[
        float | None, typer.Option(help="TTFT target, ms", parser=number("--slo-ttft-ms", 0, 1e8, above=True))
    ] = None,
    slo_tpot_ms: Annotated[
        float | None,
        typer.Option(
            help="Also used as the ITL target for a live server",
            parser=number("--slo-tpot-ms", 0, 1e8, above=True),
        ),
    ] = None,
    slo_itl_ms: Annotated[
        float | None, typer.Option(hidden=True, parser=number("--slo-itl-ms", 0, 1e8, above=True))
    ] = None,
    timeout_s: Annotated[float, typer.Option(help="Seconds", parser=number("--timeout-s", 1, 300))] = 10.0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Apply the guide's rules to measured runs or a live server: compute- vs memory-bound, KV
    saturation, queueing, batch too small or too large, client-side limits — with what to do."""
    url = metrics_url or (
        targets[0] if len(targets) == 1 and targets[0].startswith(("http://", "https://")) else None
    )
    if url is not None:
        field = "--metrics-url" if metrics_url else "TARGET"
        snapshot, found = _live(url, field, timeout_s, slo_ttft_ms, slo_itl_ms or slo_tpot_ms)
        if as_json:
            typer.echo(json.dumps({"snapshot": snapshot, "diagnosis": [d.__dict__ for d in found]}, indent=2))
            return
        console.print(
            f"[bold]{url}[/] ({snapshot['engine'] or 'unknown engine'}): running {snapshot['running']}, "
            f"waiting {snapshot['waiting']}, KV used {snapshot['kv_usage']}, preemptions {snapshot['preemptions']}"
        )
    else:
        evidence = _from_runs(targets, db)
        found = diagnose_runs(
            evidence,
            slo_ttft_s=slo_ttft_ms / 1e3 if slo_ttft_ms else None,
            slo_tpot_s=slo_tpot_ms / 1e3 if slo_tpot_ms else None,
        )
        if as_json:
            typer.echo(
                json.dumps(
                    {"runs": [e.__dict__ for e in evidence], "diagnosis": [d.__dict__ for d in found]},
                    indent=2,
                )
            )
            return
    for d in found:
        console.print(f"[bold]{d.verdict}[/]: {d.rule} — {d.evidence}", highlight=False)

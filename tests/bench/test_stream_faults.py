"""What a hostile or broken server can stream, over real sockets (issue 15): in-stream error
events, non-streamed answers, keep-alive comments and trickles that must not outlive the
per-request deadline, and a 64 MiB line that must neither stall the client nor cost it
quadratic time. And the OpenAI base-URL habit (``…/v1``), with a 404 that says what was hit."""

from __future__ import annotations

import json
import time
from pathlib import Path

from typer.testing import CliRunner

from gpusizer.bench.client import BenchSettings, run_load
from gpusizer.bench.metrics import bench_metrics
from gpusizer.bench.sse import DONE, MAX_LINE_BYTES, OVERSIZED, SseDecoder
from gpusizer.bench.stub import StubConfig
from gpusizer.cli.app import app
from gpusizer.store.runs import RunStore
from tests.bench.stubserver import running_stub


def _run(cfg: StubConfig, **kw: object) -> list:  # type: ignore[type-arg]
    with running_stub(cfg) as url:
        args = {"url": url, "model": "stub", "warmup": 0, "output_len": 6, **kw}
        return run_load(BenchSettings(**args))  # type: ignore[arg-type]


def test_an_error_event_before_done_is_a_failure_with_the_servers_words() -> None:
    recs = _run(StubConfig(faults={1: "error_event"}), requests=3, concurrency=1)
    by = {r.idx: r for r in recs}
    assert by[1].error == "stream error: injected: CUDA out of memory"
    assert by[0].error is None and by[2].error is None
    m = bench_metrics(recs)
    assert m.completed == 2 and m.failed == 1 and m.failures == {"stream error": 1}


def test_the_error_event_forms_servers_use_are_all_recognised() -> None:
    d = SseDecoder()
    raw = (
        b'data: {"error": {"message": "vllm says no"}}\n\n'
        b'data: {"object": "error", "message": "top-level"}\n\n'
        b'event: error\ndata: {"message": "typed event"}\n\n'
        b'error: {"code": 500, "message": "bare field"}\n\n'
        b'data: {"choices": [{"text": "a"}]}\n\n'
        b"data: [DONE]\n\n"
    )
    events = d.feed(raw)
    assert events[0] == {"error": {"message": "vllm says no"}}
    assert events[1] == {"object": "error", "message": "top-level"}
    assert events[2] == {"error": {"message": "typed event"}}
    assert events[3] == {"error": {"code": 500, "message": "bare field"}}
    assert events[4] == {"choices": [{"text": "a"}]} and events[5] is DONE  # the event type reset


def test_an_empty_error_member_in_healthy_chunks_is_not_a_failure() -> None:
    from gpusizer.bench.request import _Stream

    st = _Stream()
    st.take(
        [
            {"choices": [{"text": "a"}], "error": None},
            {"choices": [{"text": "b", "finish_reason": "length"}], "error": ""},
        ],
        1.0,
    )
    assert st.problem(True) is None and st.chunks == 2


def test_a_non_streamed_answer_is_a_clear_failure_that_keeps_its_usage() -> None:
    recs = _run(StubConfig(faults={0: "json200"}), requests=2, concurrency=1)
    bad = recs[0]
    assert bad.error is not None and bad.error.startswith("not streamed:")
    assert "dropped connection" not in bad.error and "6 output tokens" in bad.error
    assert bad.output_tokens == 6 and bad.prompt_tokens is not None  # the server's usage is kept
    assert recs[1].error is None
    assert bench_metrics(recs).failures == {"not streamed": 1}


def test_keep_alive_comments_cannot_hold_a_request_past_its_deadline() -> None:
    # The stub sends a comment every 50 ms and never a token: a per-read timeout would wait
    # forever. The deadline is on the whole request.
    t = time.monotonic()
    recs = _run(StubConfig(faults={0: "keepalive"}), requests=1, concurrency=1, timeout_s=1.0)
    took = time.monotonic() - t
    (r,) = recs
    assert r.error is not None and r.error.startswith("Timeout") and "--timeout-s 1" in r.error
    assert r.end_s is not None and 1.0 <= r.end_s - r.start_s < 5.0  # 40 s+ before the fix
    assert took < 20.0  # stub start and stop included


def test_a_trickle_of_bytes_cannot_hold_a_request_past_its_deadline() -> None:
    recs = _run(StubConfig(faults={0: "trickle"}, trickle_s=0.02), requests=1, concurrency=1, timeout_s=1.0)
    (r,) = recs
    assert r.error is not None and r.error.startswith("Timeout")
    assert r.end_s is not None and r.end_s - r.start_s < 5.0
    assert r.first_token_s is not None  # it had begun: the deadline is not only for the first byte


def test_a_64_mib_line_fails_its_request_fast_and_leaves_the_others_alone() -> None:
    cfg = StubConfig(faults={0: "hugeline"}, itl_s=0.002)
    recs = _run(cfg, requests=5, concurrency=2, output_len=20, timeout_s=30.0)
    by = {r.idx: r for r in recs}
    assert by[0].error is not None and by[0].error.startswith("SSE line over 1 MiB")
    assert by[0].end_s is not None and by[0].end_s - by[0].start_s < 10.0  # stopped at the cap, not at 64 MiB
    assert all(by[i].error is None and by[i].output_tokens == 20 for i in range(1, 5))
    # the event loop that times them was never held by the long line (the quadratic decoder
    # held it for seconds): their first tokens came as fast as the stub sent them
    assert max(by[i].first_token_s - by[i].origin_s for i in range(1, 5)) < 2.0  # type: ignore[operator]


def test_sse_decoding_is_linear_in_the_bytes_and_capped() -> None:
    # 64 MiB with no line end, fed as a socket delivers it (64 KiB reads). The quadratic
    # decoder this replaces took 36 s here; a linear one takes milliseconds, so even a
    # loaded CI machine stays far under the bound.
    piece = b"x" * (64 << 10)
    d = SseDecoder()
    t = time.perf_counter()
    events = d.feed(b'data: {"t": "')
    for _ in range(1024):
        events += d.feed(piece)
    events += d.feed(b'"}\n\ndata: {"after": 1}\n\ndata: [DONE]\n\n')
    took = time.perf_counter() - t
    assert took < 5.0, took
    assert events[0] is OVERSIZED and events[1:] == [{"after": 1}, DONE]  # reported once, then back in step
    assert len(d._tail) == 0  # nothing of the long line is held

    # and a long line that fits is decoded whole, however it was cut
    body = b'data: {"t": "' + b"y" * (MAX_LINE_BYTES - 100) + b'"}\r\n\r\n'
    d2 = SseDecoder()
    got = [e for i in range(0, len(body), 7919) for e in d2.feed(body[i : i + 7919])]
    assert len(got) == 1 and len(got[0]["t"]) == MAX_LINE_BYTES - 100


def test_a_cr_lf_split_across_reads_ends_one_line_only() -> None:
    d = SseDecoder()
    events = d.feed(b'data: {"a": 1}\r') + d.feed(b'\ndata: {"b": 2}\r\n\r\n')
    assert events == [{"a": 1}, {"b": 2}]
    d = SseDecoder()
    events = d.feed(b'data: {"a": 1}\rda') + d.feed(b'ta: {"b": 2}\n')  # a tail after the CR
    assert events == [{"a": 1}, {"b": 2}]


def test_a_base_url_with_v1_is_accepted_and_a_404_names_the_url_and_the_fix(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    args = ["--model", "stub", "--concurrency", "1", "--requests", "2", "--warmup", "0", "--output-len", "4"]
    with running_stub(StubConfig()) as url:
        ok = CliRunner().invoke(app, ["bench", f"{url}/v1/", *args, "--db", str(db), "--json"])
        wrong = CliRunner().invoke(app, ["bench", f"{url}/api", *args, "--db", str(db), "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["points"][0]["completed"] == 2  # not sent to /v1/v1/completions
    assert wrong.exit_code == 1  # nothing succeeded there; stored all the same
    store = RunStore(db)
    err = store.requests(2)[0].error
    store.close()
    assert err is not None and err.startswith("HTTP 404: POST ")
    assert f"{url}/api/v1/completions" in err and "with or without /v1" in err
    assert json.loads(wrong.stdout)["points"][0]["failures"] == {"HTTP 404": 2}  # grouped by status

"""The web app against a hostile or careless client (issue 15), one test per finding: the
220-byte upload that froze the server, bodies read before their size check, deep JSON,
DNS rebinding (Host), cross-site form posts (Origin), missing CSP/frame headers, work with
no time budget that ran on after the client left, and catalogue names tried as folders.

Servers here are real (uvicorn on 127.0.0.1 in a thread) where the finding was about the
network: a frozen event loop, a half-sent body, a client that hangs up."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gpusizer.web.app import MAX_BODY_BYTES, MAX_UPLOAD_FORM_BYTES, FitBody, create_app
from gpusizer.web.jobs import JOBS
from tests.bench.stubserver import free_port
from tests.conftest import R1_QWEN_7B

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# The report's 220-byte config: a plausible model but for its 10,000 layers.
HOSTILE = {
    "config": json.dumps(
        {"hidden_size": 4096, "num_hidden_layers": 10000, "num_attention_heads": 32, "vocab_size": 32000}
    ),
    "filename": "config.json",
}
# A simulation that computes for several seconds (5,000 requests, 4,096 users).
SLOW_SIM = {
    "model": "deepseek-r1-distill-qwen-7b",
    "gpu": "H100",
    "concurrency": 4096,
    "requests": 5000,
    "output_len": 2048,
}


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(400):
        try:
            httpx.get(f"{url}/api/gpus", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app(job_budget_s=120)


@pytest.fixture(scope="module")
def base_url(app: FastAPI) -> Iterator[str]:
    with serving(app) as url:
        yield url


def _timed(fn: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def test_the_hostile_upload_is_refused_fast_and_the_server_stays_responsive(base_url: str) -> None:
    body = urlencode(HOSTILE)
    assert len(json.dumps(json.loads(HOSTILE["config"]))) < 220
    # A legitimate upload that plans for seconds (1,024 layers, the maximum) runs meanwhile.
    heavy = urlencode({"config": json.dumps(dict(R1_QWEN_7B, num_hidden_layers=1024)), "users": "10"})
    done: list[httpx.Response] = []
    worker = threading.Thread(
        target=lambda: done.append(httpx.post(f"{base_url}/upload", content=heavy, headers=FORM, timeout=120))
    )
    worker.start()
    time.sleep(0.3)
    refused, refused_s = _timed(
        lambda: httpx.post(f"{base_url}/upload", content=body, headers=FORM, timeout=30)
    )
    other, other_s = _timed(lambda: httpx.get(f"{base_url}/api/gpus", timeout=30))
    worker.join(timeout=120)
    print(
        f"hostile upload refused in {refused_s * 1000:.0f} ms; /api/gpus meanwhile in {other_s * 1000:.0f} ms"
    )
    assert refused.status_code == 422
    assert "config.num_hidden_layers: 10000 is out of range (accepted: 1..1,024)" in refused.text
    assert refused_s < 2.0  # the bug: 11 s, with every other request frozen
    assert other.status_code == 200 and other_s < 1.0
    assert done and done[0].status_code == 200 and "Top picks" in done[0].text


def test_a_body_over_the_limit_is_refused_from_its_length_alone(base_url: str) -> None:
    port = int(base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        start = time.perf_counter()
        sock.sendall(
            b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 300000000\r\n\r\nconfig="
        )
        reply = sock.recv(65536).decode(errors="replace")
        assert time.perf_counter() - start < 2.0  # answered without waiting for 300 MB
    assert reply.startswith("HTTP/1.1 413")


def test_a_streamed_body_is_never_buffered_past_the_limit() -> None:
    """A chunked body with no Content-Length: the guard stops reading at the limit."""
    chunk = b"x" * 65536
    sent = {"chunks": 0}

    async def receive() -> dict[str, Any]:
        sent["chunks"] += 1
        return {"type": "http.request", "body": chunk, "more_body": sent["chunks"] < 4800}  # 300 MiB

    replies: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        replies.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/fit",
        "raw_path": b"/api/fit",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"localhost"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    import anyio

    anyio.run(create_app(), scope, receive, send)
    assert replies[0]["status"] == 413
    # Read until the app's largest limit (the upload form's); the 300 MiB never arrive.
    assert sent["chunks"] * len(chunk) <= MAX_UPLOAD_FORM_BYTES + len(chunk)


@pytest.mark.parametrize("depth", [33, 990, 100_000])
def test_deep_json_is_422_not_500(base_url: str, depth: int) -> None:
    deep = "[" * depth + "]" * depth
    body = '{"model": "deepseek-r1-distill-qwen-7b", "gpu": "RTX 4090", "users": ' + deep + "}"
    r = httpx.post(f"{base_url}/api/fit", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert "body: is nested too deeply (more than 32 levels)" in r.json()["detail"][0]["msg"]


def test_an_api_body_over_its_route_limit_is_413(base_url: str) -> None:
    body = json.dumps(
        {"model": "deepseek-r1-distill-qwen-7b", "gpu": "RTX 4090", "pad": "x" * MAX_BODY_BYTES}
    )
    r = httpx.post(f"{base_url}/api/fit", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 413


def test_nan_and_oversized_inputs_are_refused(base_url: str) -> None:
    api = f"{base_url}/api"
    nan = httpx.post(
        f"{api}/simulate",
        content='{"model": "deepseek-r1-distill-qwen-7b", "gpu": "H100", "rate": NaN}',
        headers={"Content-Type": "application/json"},
    )
    assert nan.status_code == 422 and "NaN" in nan.text
    base = {"model": "deepseek-r1-distill-qwen-7b", "gpu": "RTX 4090"}
    many_users, took = _timed(lambda: httpx.post(f"{api}/fit", json={**base, "users": 100_000}, timeout=30))
    assert many_users.status_code == 422 and "users" in many_users.text and took < 2.0  # was 25 s
    batches = httpx.post(f"{api}/perf", json={**base, "batches": [10**9]})
    assert batches.status_code == 422 and "batches" in batches.text


def test_only_this_servers_host_names_are_answered(app: FastAPI) -> None:
    for host, status in [
        ("localhost", 200),
        ("127.0.0.1:8000", 200),
        ("[::1]:8000", 200),
        ("evil.example", 400),
        ("127.0.0.1.nip.io", 400),
        ("localhost.evil.example", 400),
    ]:
        r = TestClient(app, base_url=f"http://{host}").get("/api/gpus")
        assert r.status_code == status, host
    named = create_app(allowed_hosts=["gpu-box.lan"])
    assert TestClient(named, base_url="http://gpu-box.lan:8000").get("/api/gpus").status_code == 200
    assert TestClient(named, base_url="http://other.lan").get("/api/gpus").status_code == 400


def test_cross_site_posts_are_refused(app: FastAPI) -> None:
    client = TestClient(app, base_url="http://127.0.0.1:8000")
    body = urlencode(HOSTILE)
    for headers in (
        {"Origin": "http://evil.example"},
        {"Origin": "http://127.0.0.1:9999"},  # same site, other port: another origin
        {"Origin": "https://127.0.0.1:8000"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ):
        r = client.post("/upload", content=body, headers={**FORM, **headers})
        assert r.status_code == 403 and "cross-site request refused" in r.text, headers
        api = client.post("/api/fit", json={"model": "x", "gpu": "y"}, headers=headers)
        assert api.status_code == 403, headers
    same = client.post("/upload", content=body, headers={**FORM, "Origin": "http://127.0.0.1:8000"})
    assert same.status_code == 422  # past the guard: the config's own error
    fetch = client.post("/upload", content=body, headers={**FORM, "Sec-Fetch-Site": "same-origin"})
    assert fetch.status_code == 422


def test_security_headers_and_a_csp_that_lets_only_our_scripts_run(app: FastAPI) -> None:
    client = TestClient(app, base_url="http://localhost")
    page = client.get("/", params={"model": "nope"})
    for r in (page, client.get("/api/gpus"), client.get("/", headers={"Host": "evil.example"})):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    csp = page.headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "default-src 'none'" in csp
    scripts = re.findall(r"<script>(.*?)</script>", page.text, re.S)
    styles = re.findall(r"<style>(.*?)</style>", page.text, re.S)
    assert len(scripts) == 2 and len(styles) == 1
    for body in scripts + styles:
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    assert client.get("/docs").status_code == 404  # Swagger UI would load a CDN's script


def test_work_over_its_budget_is_stopped() -> None:
    app = create_app(job_budget_s=1.0)
    client = TestClient(app, base_url="http://localhost")
    client.post("/api/fit", json={"model": "deepseek-r1-distill-qwen-7b", "gpu": "RTX 4090"})  # warm
    r, took = _timed(lambda: client.post("/api/simulate", json=SLOW_SIM))
    assert r.status_code == 503 and "budget" in r.json()["detail"]
    assert took < 5.0
    assert app.state.jobs.running_pids() == []


def _pid_gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except (FileNotFoundError, ProcessLookupError):  # gone, or going while read
        return True
    return state == "Z"


def test_work_stops_when_the_client_leaves(app: FastAPI, base_url: str) -> None:
    port = int(base_url.rsplit(":", 1)[1])
    body = json.dumps(SLOW_SIM).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        b"POST /api/simulate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    pids: list[int] = []
    for _ in range(200):
        pids = app.state.jobs.running_pids()
        if pids:
            break
        time.sleep(0.05)
    assert pids, "the simulation never started"
    sock.close()  # the client leaves
    start = time.perf_counter()
    while not _pid_gone(pids[0]) and time.perf_counter() - start < 5:
        time.sleep(0.05)
    print(f"simulation stopped {1000 * (time.perf_counter() - start):.0f} ms after the client left")
    assert _pid_gone(pids[0])
    assert app.state.jobs.running_pids() == []


def test_catalogue_names_are_never_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A folder in the server's working directory named like a catalogue id, holding a
    # different model: the API must plan the catalogue's model, not read the folder.
    decoy = tmp_path / "deepseek-ai" / "DeepSeek-R1-Distill-Qwen-7B"
    decoy.mkdir(parents=True)
    (decoy / "config.json").write_text(json.dumps(dict(R1_QWEN_7B, num_hidden_layers=2)))
    monkeypatch.chdir(tmp_path)
    args = FitBody(
        model="deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", gpu="RTX 4090", max_model_len=8192
    ).model_dump()
    assert JOBS["fit"](args)["kv_bytes_per_token"] == 57344  # 28 layers, not the decoy's 2
    from gpusizer.errors import NotInCatalogueError

    with pytest.raises(NotInCatalogueError):
        JOBS["fit"]({**args, "model": str(decoy)})
    with pytest.raises(NotInCatalogueError):
        JOBS["fit"]({**args, "model": "./deepseek-ai/DeepSeek-R1-Distill-Qwen-7B/config.json"})


def test_serve_prints_its_url_and_sets_uvicorn_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from gpusizer.cli.app import app as cli
    from gpusizer.web.server import HeaderDeadlineH11

    seen: list[uvicorn.Config] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: seen.append(self.config))
    out = CliRunner().invoke(cli, ["serve", "--port", "8123", "--allowed-host", "gpu-box.lan"])
    assert out.exit_code == 0, out.output
    assert "http://127.0.0.1:8123/" in out.output
    config = seen[0]
    assert config.timeout_keep_alive == 5 and config.h11_max_incomplete_event_size == 16 * 1024
    assert config.http is HeaderDeadlineH11 and config.limit_concurrency == 256
    served = TestClient(config.app, base_url="http://gpu-box.lan:8123")
    assert served.get("/api/gpus").status_code == 200
    assert TestClient(config.app, base_url="http://evil.example").get("/api/gpus").status_code == 400


def _recv_until_closed(sock: socket.socket, limit_s: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection (or ``limit_s`` passes)."""
    sock.settimeout(limit_s)
    start = time.perf_counter()
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        pass
    return data, time.perf_counter() - start


def test_a_body_that_trickles_in_is_refused() -> None:
    with serving(create_app(body_timeout_s=0.5)) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                b"POST /api/fit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b'Content-Length: 100\r\n\r\n{"model": '
            )
            data, took = _recv_until_closed(sock, 10)
    assert data.startswith(b"HTTP/1.1 408") and b"not received within 0.5 s" in data
    assert took < 5


def test_headers_that_trickle_in_are_cut_off() -> None:
    from gpusizer.web.server import HeaderDeadlineH11, server_config

    class Quick(HeaderDeadlineH11):
        header_timeout_s = 0.5

    port = free_port()
    config = server_config(create_app(), host="127.0.0.1", port=port)
    config.http = Quick
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(400):
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/gpus", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
            slow.sendall(b"GET /api/gpus HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and then nothing
            data, took = _recv_until_closed(slow, 10)
        assert data == b"" and took < 5  # closed by the server, not by our 10 s wait
        # a prompt client is unaffected, before and after an idle pause
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            assert client.get("/api/gpus").status_code == 200
            time.sleep(0.8)
            assert client.get("/api/models").status_code == 200
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_an_upload_form_with_too_many_fields_is_one_line(app: FastAPI) -> None:
    client = TestClient(app, base_url="http://localhost")
    r = client.post("/upload", content="&".join(f"f{i}=1" for i in range(100)), headers=FORM)
    assert r.status_code == 422 and "form: more than 32 fields" in r.text


def test_without_fork_jobs_run_in_threads_within_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    from gpusizer.web import worker

    monkeypatch.setattr(worker, "CAN_FORK", False)
    client = TestClient(create_app(job_budget_s=30), base_url="http://localhost")
    body = {"model": "deepseek-r1-distill-qwen-7b", "gpu": "RTX 4090", "max_model_len": 8192}
    r = client.post("/api/fit", json=body)
    assert r.status_code == 200 and r.json()["kv_bytes_per_token"] == 57344
    bad = client.post("/api/fit", json={**body, "model": "nope-7b"})
    assert bad.status_code == 422 and "unknown model" in bad.text
    hurried = TestClient(create_app(job_budget_s=0.05), base_url="http://localhost")
    plan = {"model": "deepseek-r1-distill-qwen-7b", "users": 4, "classes": ["consumer"], "max_gpus": 2}
    slow, took = _timed(lambda: hurried.post("/api/plan", json=plan))  # a plan takes ~1 s
    assert slow.status_code == 503 and "budget" in slow.text and took < 1.0

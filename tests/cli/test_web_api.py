"""The JSON API and the planner page, through FastAPI's test client (same functions as the CLI)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from gpusizer.web.app import create_app

client = TestClient(create_app(), base_url="http://localhost")


def test_fit_api_matches_the_cli_fields() -> None:
    r = client.post(
        "/api/fit",
        json={"model": "deepseek-r1-distill-qwen-7b", "gpu": "RTX 4090", "max_model_len": 8192, "users": 2},
    )
    assert r.status_code == 200
    data = r.json()
    assert data["kv_bytes_per_token"] == 57344 and data["fits"] is True


def test_validation_errors_are_422_naming_the_field() -> None:
    r = client.post("/api/fit", json={"model": "deepseek-r1-distill-qwen-7b", "gpu": "RTX 4090", "users": 0})
    assert r.status_code == 422 and "users" in r.text
    r = client.post("/api/fit", json={"model": "deepseek-r1-distil-qwen-7b", "gpu": "RTX 4090"})
    assert r.status_code == 422 and "did you mean" in r.text
    r = client.post("/api/fit", json={"model": "/etc/passwd", "gpu": "RTX 4090"})
    assert r.status_code == 422  # never read as a path
    # the deployment's own check (5 GPUs → TP 5 against 8 KV heads) names the field, not --tp
    r = client.post("/api/fit", json={"model": "qwen2.5-14b-instruct", "gpu": "H100", "gpus": 5})
    assert r.status_code == 422
    assert r.json()["detail"][0]["msg"].startswith("tp: 5 neither divides the 8 KV heads")


def test_plan_and_catalogue_endpoints() -> None:
    r = client.post(
        "/api/plan",
        json={
            "model": "deepseek-r1-distill-qwen-7b",
            "context": 8192,
            "users": 4,
            "ttft_ms": 1000,
            "tpot_ms": 50,
            "classes": ["consumer"],
            "max_gpus": 2,
        },
    )
    assert r.status_code == 200 and r.json()["picks"]["cheapest"] is not None
    assert len(client.get("/api/models").json()) >= 60
    assert len(client.get("/api/gpus").json()) >= 45
    assert "/api/plan" in client.get("/openapi.json").json()["paths"]


def test_planner_page_renders_plan_from_the_url() -> None:
    r = client.get(
        "/",
        params={
            "model": "deepseek-r1-distill-qwen-7b",
            "context": 8192,
            "users": 4,
            "ttft_ms": 1000,
            "tpot_ms": 50,
            "gpu_class": "consumer",
        },
    )
    assert r.status_code == 200
    html = r.text
    assert "Top picks" in html and '<svg class="vram"' in html and "vllm serve" in html
    assert 'value="deepseek-r1-distill-qwen-7b"' in html  # the URL's inputs fill the form


def test_upload_plans_a_config_and_refuses_bad_ones() -> None:
    import json
    from urllib.parse import urlencode

    from tests.conftest import R1_QWEN_7B

    form = {
        "config": json.dumps(R1_QWEN_7B),
        "filename": "config.json",
        "context": "8192",
        "users": "4",
        "tpot_ms": "50",
        "gpu_class": "consumer",
    }
    headers = {"content-type": "application/x-www-form-urlencoded"}
    r = client.post("/upload", content=urlencode(form), headers=headers)
    assert r.status_code == 200 and "Top picks" in r.text and "not kept" in r.text
    bad = client.post("/upload", content=urlencode({**form, "config": "{not json"}), headers=headers)
    assert bad.status_code == 422 and "not valid JSON" in bad.text
    odd = client.post(
        "/upload", content=urlencode({**form, "config": '{"hidden_size": "x"}'}), headers=headers
    )
    assert odd.status_code == 422 and "config" in odd.text
    big = client.post("/upload", content=b"config=" + b"x" * 300_000, headers=headers)
    assert big.status_code == 413
    users = client.post("/upload", content=urlencode({**form, "users": "0"}), headers=headers)
    assert users.status_code == 422 and "users" in users.text


def test_page_takes_weights_engine_gpus_and_budget() -> None:
    r = client.get(
        "/",
        params={
            "model": "deepseek-r1-distill-qwen-7b",
            "context": 8192,
            "users": 4,
            "tpot_ms": 50,
            "gpu_class": "consumer",
            "quant": "awq",
            "max_gpus": 2,
            "max_cost_per_hour": 0.2,
            "engine": "vllm",
        },
    )
    assert (
        r.status_code == 200
        and "Top picks" in r.text
        and "fp8" not in r.text.split("Top picks")[1].split("</table>")[0]
    )
    bad = client.get("/", params={"engine": "tgi"})
    assert bad.status_code == 200 and "unknown engine" in bad.text


def test_plan_api_takes_the_cli_search_options() -> None:
    body = {
        "model": "deepseek-r1-distill-qwen-7b",
        "context": 8192,
        "users": 4,
        "tpot_ms": 50,
        "classes": ["consumer"],
        "max_gpus": 2,
        "engine": ["auto"],
        "capex": 1600,
        "quants": ["awq", "q4_k_m"],
    }
    r = client.post("/api/plan", json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    assert all(p["capex_usd"] <= 1600 for p in data["pareto"])
    assert {p["quant"].split(" ")[0] for p in data["pareto"]} <= {"awq", "q4_k_m"}
    bad = client.post("/api/plan", json={**body, "engine": ["tgi"]})
    assert bad.status_code == 422 and "engine" in bad.text


def test_token_counts_take_the_cli_forms() -> None:
    """`32k` is accepted wherever the CLI takes it (issue 14); a bad form is a 422 naming it."""
    body = {"model": "deepseek-r1-distill-qwen-7b", "gpu": "RTX 4090", "max_model_len": "32k"}
    r = client.post("/api/fit", json=body)
    assert r.status_code == 200, r.text
    plain = client.post("/api/fit", json={**body, "max_model_len": 32768}).json()
    assert r.json()["kv_cache_tokens"] == plain["kv_cache_tokens"]
    r = client.post("/api/fit", json={**body, "max_model_len": "32kk"})
    assert r.status_code == 422 and "max_model_len" in r.text


def test_perf_and_simulate_take_speculative_decoding() -> None:
    body = {"model": "deepseek-r1", "gpu": "H200", "gpus": 8, "engine": "sglang", "batches": [1]}
    plain = client.post("/api/perf", json=body)
    spec = client.post("/api/perf", json={**body, "spec_tokens": 3, "spec_accept": 2.5})
    assert plain.status_code == spec.status_code == 200, spec.text
    assert spec.json()["spec_tokens"] == 3 and spec.json()["spec_accept"] == 2.5
    assert spec.json()["rows"][0]["tpot_ms"] < plain.json()["rows"][0]["tpot_ms"]
    bad = client.post("/api/perf", json={**body, "spec_tokens": 1, "spec_accept": 2.5})
    assert bad.status_code == 422 and "spec_accept" in bad.text
    sim = client.post(
        "/api/simulate",
        json={
            "model": "deepseek-r1",
            "gpu": "H200",
            "gpus": 8,
            "spec_tokens": 2,
            "concurrency": 2,
            "requests": 8,
        },
    )
    assert sim.status_code == 200 and sim.json()["spec_tokens"] == 2, sim.text

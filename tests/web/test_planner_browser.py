"""The planner page in a real browser: Debian's Chromium driven by Playwright against the app
served by uvicorn on 127.0.0.1. Fill the form, get plans, check the charts drew, the copy
button copies the launch command, and the shared link reproduces the plan."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from gpusizer.web.app import create_app
from tests.bench.stubserver import free_port
from tests.conftest import R1_QWEN_7B

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(f"{url}/api/gpus", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    yield url
    server.should_exit = True
    thread.join(timeout=10)


def _artifacts(tmp_path: Path) -> Path:
    out = Path(os.environ.get("GPUSIZER_ARTIFACTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out


def test_plan_in_the_browser(base_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
        page = context.new_page()
        page.goto(base_url + "/")
        page.fill("input[name=model]", "deepseek-r1-distill-qwen-7b")
        page.fill("input[name=context]", "8192")
        page.fill("input[name=users]", "4")
        page.fill("input[name=ttft_ms]", "1000")
        page.fill("input[name=tpot_ms]", "50")
        page.fill("input[name=gpu_class]", "consumer")
        with page.expect_navigation():
            page.click("button[type=submit]")
        page.wait_for_selector("table.picks")

        # the picks, for the inputs typed
        picks = page.inner_text("table.picks")
        assert "cheapest" in picks and "awq" in picks
        assert "DeepSeek-R1-Distill-Qwen-7B" in page.inner_text("body")
        # the charts drew: VRAM bar, both latency curves with their SLO lines, the scatter with its legend
        assert page.locator("svg.vram rect").count() == 5
        assert "SLO 1,000 ms" in page.inner_text("#ttft-curve")
        assert "SLO 50.0 ms" in page.inner_text("#tpot-curve")
        assert page.locator("#ttft-curve polyline").count() >= 1
        assert page.locator("#pareto circle").count() >= 3
        assert "Pareto front" in page.inner_text("#pareto")
        box = page.locator("#pareto svg").bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 200

        # the copy button copies the launch command
        command = page.inner_text("#launch-0")
        assert command.startswith("vllm serve")
        page.click("button.copy[data-target=launch-0]")
        # (a locator, not wait_for_function: the page's CSP forbids eval, as it should)
        page.wait_for_selector("button.copy:text-is('Copied')")
        assert page.evaluate("navigator.clipboard.readText()") == command

        page.screenshot(path=str(_artifacts(tmp_path) / "planner.png"), full_page=True)

        # the shared link reproduces the same plan in a fresh page
        shared = page.url
        assert "users=4" in shared and "gpu_class=consumer" in shared
        other = context.new_page()
        other.goto(shared)
        assert other.inner_text("table.picks") == picks
        assert other.input_value("input[name=tpot_ms]") == "50.0"

        # the page re-plans as an input changes
        with other.expect_navigation(timeout=20_000):
            other.fill("input[name=users]", "6")
        assert "users=6" in other.url
        other.wait_for_selector("table.picks")

        # a model given as its config.json, read in the browser and planned by the server
        cfg = tmp_path / "config.json"
        cfg.write_text(json.dumps({**R1_QWEN_7B, "_name_or_path": "my-org/my-7b"}))
        with other.expect_navigation(timeout=30_000):
            other.set_input_files("#config-file", str(cfg))
        assert other.url.endswith("/upload")
        other.wait_for_selector("table.picks")
        assert "my-org/my-7b" in other.inner_text("body") and "not kept" in other.inner_text("body")
        browser.close()

"""--report PATH.html on plan, fit, perf and simulate: one self-contained file each, with the
charts inline; an existing file gpusizer did not write is never overwritten."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from gpusizer.cli.app import app

runner = CliRunner()
M = "deepseek-r1-distill-qwen-7b"


def _external_refs(html: str) -> list[str]:
    # anything fetched from elsewhere: src/href attributes pointing off the page
    return [u for u in re.findall(r'(?:src|href)="([^"]+)"', html) if not u.startswith("#")]


def test_every_command_writes_a_self_contained_report(tmp_path: Path) -> None:
    cases = {
        "plan": ["plan", M, "--context", "8k", "--users", "4", "--tpot-ms", "50", "--class", "consumer"],
        "fit": ["fit", M, "--gpu", "H100", "--users", "4"],
        "perf": ["perf", M, "--gpu", "H100"],
        "simulate": ["simulate", M, "--gpu", "H100", "--rate", "2,4", "--requests", "200"],
    }
    for name, args in cases.items():
        out = tmp_path / f"{name}.html"
        r = runner.invoke(app, [*args, "--report", str(out)])
        assert r.exit_code == 0, (name, r.output)
        html = out.read_text()
        assert html.startswith("<!doctype html>") and f"gpusizer {name}" in html
        assert "<svg" in html, name
        assert _external_refs(html) == [], name
    plan = (tmp_path / "plan.html").read_text()
    assert 'id="pareto"' in plan and 'id="tpot-curve"' in plan and "SLO 50.0 ms" in plan
    # a second run replaces its own report
    assert runner.invoke(app, [*cases["perf"], "--report", str(tmp_path / "perf.html")]).exit_code == 0


def test_report_refuses_to_clobber_or_guess(tmp_path: Path) -> None:
    mine = tmp_path / "mine.html"
    mine.write_text("<html>my own page</html>")
    r = runner.invoke(app, ["perf", M, "--gpu", "H100", "--report", str(mine)])
    assert r.exit_code == 2 and "--report" in r.output and mine.read_text() == "<html>my own page</html>"
    r = runner.invoke(app, ["perf", M, "--gpu", "H100", "--report", str(tmp_path / "x.pdf")])
    assert r.exit_code == 2 and ".html" in r.output
    r = runner.invoke(app, ["perf", M, "--gpu", "H100", "--report", str(tmp_path / "no" / "x.html")])
    assert r.exit_code == 2 and "does not exist" in r.output


def test_plan_plot_writes_the_charts_for_slides(tmp_path: Path) -> None:
    r = runner.invoke(
        app,
        [
            "plan",
            M,
            "--context",
            "8k",
            "--users",
            "4",
            "--tpot-ms",
            "50",
            "--class",
            "consumer",
            "--plot",
            str(tmp_path / "charts"),
        ],
    )
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in (tmp_path / "charts").iterdir())
    assert names == ["cost_vs_tpot.svg", "tpot_vs_users.svg", "ttft_vs_users.svg", "vram_cheapest.svg"]
    for p in (tmp_path / "charts").iterdir():
        assert p.read_text().startswith("<svg") and "</svg>" in p.read_text()

"""The ``gpusizer`` command line: one typer app, one module per command."""

from __future__ import annotations

import importlib
from typing import Annotated, Any

import typer

from gpusizer import __version__
from gpusizer.cli.bench import bench_command
from gpusizer.cli.calibrate import calibrate_command
from gpusizer.cli.catalog import engines_command, gpus_command, models_command, quants_command
from gpusizer.cli.common import DEBUG
from gpusizer.cli.diagnose import diagnose_command
from gpusizer.cli.fit import fit_command
from gpusizer.cli.perf import perf_command
from gpusizer.cli.plan import plan_command
from gpusizer.cli.runs import compare_command, runs_command
from gpusizer.cli.serve import serve_command
from gpusizer.cli.simulate import simulate_command

app = typer.Typer(
    name="gpusizer",
    help="Right-size GPU hardware for self-hosted LLM inference (DeepSeek first, any HF model too).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gpusizer {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True)] = False,
) -> None:
    DEBUG["on"] = debug


app.command("plan")(plan_command)
app.command("fit")(fit_command)
app.command("perf")(perf_command)
app.command("simulate")(simulate_command)
app.command("bench")(bench_command)
app.command("runs")(runs_command)
app.command("compare")(compare_command)
app.command("calibrate")(calibrate_command)
app.command("diagnose")(diagnose_command)
app.command("serve")(serve_command)
app.command("models")(models_command)
app.command("gpus")(gpus_command)
app.command("quants")(quants_command)
app.command("engines")(engines_command)


def _click_exceptions() -> Any:
    """The exception classes of the click that typer runs on (recent typer vendors its own)."""
    try:
        return importlib.import_module("typer._click.exceptions")
    except ImportError:
        return importlib.import_module("click.exceptions")


def main() -> None:
    """The console script: click's own parse errors (an unknown option, a missing value) are
    one line naming the option and where to look, not a usage box."""
    cx = _click_exceptions()
    no_args: type[BaseException] = getattr(cx, "NoArgsIsHelpError", None) or type("_Never", (Exception,), {})
    try:
        code = app(standalone_mode=False)
    except no_args as exc:  # a command given no arguments: its help, as click would
        ctx = getattr(exc, "ctx", None)
        typer.echo(ctx.get_help() if ctx else str(exc))
        raise SystemExit(0) from None
    except cx.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "gpusizer"
        typer.echo(f"error: {exc.format_message()} (see `{where} --help`)", err=True)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        typer.echo("aborted", err=True)
        raise SystemExit(130) from None
    raise SystemExit(code if isinstance(code, int) else 0)

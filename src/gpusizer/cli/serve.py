"""``gpusizer serve``: the planner page and JSON API on a local port."""

from __future__ import annotations

from typing import Annotated

import typer

from gpusizer.cli.common import console, guarded

__all__ = ["serve_command"]


@guarded
def serve_command(
    host: Annotated[str, typer.Option(help="Interface to bind; loopback by default")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
) -> None:
    """Serve the planner page (/) and the JSON API (/api/…, schema at /openapi.json)."""
    import uvicorn

    from gpusizer.web.app import create_app

    if host == "127.0.0.1":
        console.print("[dim]bound to 127.0.0.1 (this machine only); pass --host 0.0.0.0 to expose it[/]")
    uvicorn.run(create_app(), host=host, port=port, log_level="warning")

"""``gpusizer serve``: the planner page and JSON API on a local port."""

from __future__ import annotations

from typing import Annotated

import typer

from gpusizer.cli.common import console, guarded

__all__ = ["serve_command"]


def _url_host(host: str) -> str:
    """How ``host`` appears in a URL and in a Host header: IPv6 addresses in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


@guarded
def serve_command(
    host: Annotated[str, typer.Option(help="Interface to bind; loopback by default")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            help="Another name the Host header may carry (repeatable), e.g. this machine's DNS name "
            "when bound to 0.0.0.0. localhost, 127.0.0.1, [::1] and --host are always accepted.",
        ),
    ] = None,
) -> None:
    """Serve the planner page (/) and the JSON API (/api/…, schema at /openapi.json)."""
    import uvicorn

    from gpusizer.web.app import create_app
    from gpusizer.web.server import server_config

    extra = [_url_host(h.strip()) for h in allowed_host or [] if h.strip()]
    wildcard = host in ("0.0.0.0", "::")
    if not wildcard:
        extra.append(_url_host(host))
    app = create_app(allowed_hosts=extra)
    config = server_config(app, host=host, port=port)  # timeouts and limits: web.server
    shown = "127.0.0.1" if wildcard else _url_host(host)
    console.print(f"gpusizer: serving on http://{shown}:{port}/  (API schema at /openapi.json; Ctrl-C stops)")
    if host == "127.0.0.1":
        console.print("[dim]bound to 127.0.0.1 (this machine only); pass --host 0.0.0.0 to expose it[/]")
    elif wildcard and not allowed_host:
        console.print(
            "[dim]other machines must reach it by a name given with --allowed-host "
            "(requests naming another Host are refused, against DNS rebinding)[/]"
        )
    uvicorn.Server(config).run()

"""How ``gpusizer serve`` runs the app under uvicorn: its limits and timeouts, in one place.

    connection ─▶ request line + headers within HEADER_TIMEOUT_S, at most MAX_HEADER_BYTES
               ─▶ body within the app's BODY_TIMEOUT_S, at most the route's max_body_size
               ─▶ response; idle keep-alive closed after KEEP_ALIVE_S

uvicorn bounds the header size (h11) and idle keep-alive time but has no deadline for the
headers themselves, so a client trickling one header byte a second would hold its connection
forever (slowloris). ``HeaderDeadlineH11`` adds that deadline to uvicorn's h11 protocol.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = [
    "HEADER_TIMEOUT_S",
    "KEEP_ALIVE_S",
    "MAX_CONNECTIONS",
    "MAX_HEADER_BYTES",
    "HeaderDeadlineH11",
    "server_config",
]

KEEP_ALIVE_S = 5  # an idle keep-alive connection is closed after this
HEADER_TIMEOUT_S = 10.0  # a request's line and headers must arrive within this
MAX_HEADER_BYTES = 16 * 1024  # request line + headers (the page's longest URL is under 2 KiB)
MAX_CONNECTIONS = 256  # connections + requests at once; more are answered 503 by uvicorn
GRACEFUL_SHUTDOWN_S = 5


class HeaderDeadlineH11(H11Protocol):
    """uvicorn's h11 protocol, plus: a connection with no request in progress whose next
    request line and headers have not all arrived ``header_timeout_s`` after it connected
    (or after its last response) is closed."""

    header_timeout_s = HEADER_TIMEOUT_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._header_deadline = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _waiting_for_headers(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _headers_late(self) -> None:
        self._header_deadline = None
        if self._waiting_for_headers() and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def handle_events(self) -> None:
        super().handle_events()
        if not self._waiting_for_headers():
            self._disarm()  # the headers are in; the body has the app's own deadline

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def server_config(app: Any, *, host: str, port: int) -> uvicorn.Config:
    """The uvicorn configuration ``serve`` runs ``app`` with."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        http=HeaderDeadlineH11,
        timeout_keep_alive=KEEP_ALIVE_S,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        limit_concurrency=MAX_CONNECTIONS,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        server_header=False,
    )

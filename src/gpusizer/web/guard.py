"""ASGI middleware that stands between the network and the app (outermost first):

    SecurityHeaders  every response: CSP (only gpusizer's own inline script and style run),
                     frame-ancestors 'none', nosniff, referrer only to this origin
    TrustedHost      (Starlette) the Host header must name this server: DNS rebinding refused
    OriginGuard      a POST from another site (Origin / Sec-Fetch-Site) is refused: no CSRF
    BodyGuard        a body that trickles in slower than ``timeout_s`` is refused (408); JSON
                     nested deeper than ``MAX_JSON_DEPTH`` is a 422 before FastAPI parses it
    (FastAPI's own ``max_body_size``, outside all of these, refuses a body over its route's
    size from Content-Length or as soon as the bytes read pass it: never buffered whole)

Each refusal is one line, as JSON (``{"detail": ...}``) or, for the page's own routes, a
small HTML page — the ``respond`` callable given by the app decides.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

import anyio
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gpusizer.errors import BadInputError
from gpusizer.readers.bounded import parse_json

__all__ = ["BodyGuard", "OriginGuard", "Respond", "SecurityHeaders", "content_security_policy"]

# (path, status, one line) → the response to send.
Respond = Callable[[str, int, str], Response]

_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.S)


def content_security_policy(pages: Iterable[str]) -> str:
    """A CSP allowing exactly the inline scripts and styles found in ``pages`` — gpusizer's
    own templates rendered without user data — by their SHA-256, and nothing from elsewhere."""
    hashes: dict[str, set[str]] = {"script": set(), "style": set()}
    for html in pages:
        for tag, body in _INLINE.findall(html):
            digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
            hashes[tag].add(f"'sha256-{digest}'")
    return "; ".join(
        [
            "default-src 'none'",
            "script-src " + (" ".join(sorted(hashes["script"])) or "'none'"),
            "style-src " + (" ".join(sorted(hashes["style"])) or "'none'"),
            "img-src 'self' data:",
            "connect-src 'self'",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ]
    )


class SecurityHeaders:
    """Adds the security headers to every HTTP response."""

    def __init__(self, app: ASGIApp, *, csp: str) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", csp.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"same-origin"),  # no-referrer would make a browser send "Origin: null"
            (b"cross-origin-opener-policy", b"same-origin"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.headers if k not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)


class OriginGuard:
    """Refuses a state-changing request another site's page made the browser send.

    Browsers send ``Origin`` on every cross-origin POST (and ``Sec-Fetch-Site``); it must be
    this server's own scheme://host[:port] as the (already checked) Host header names it. A
    request with neither header is not from a browser page (curl, scripts) and passes."""

    def __init__(self, app: ASGIApp, *, respond: Respond) -> None:
        self.app = app
        self.respond = respond

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _UNSAFE:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        problem = _cross_site(scope, headers)
        if problem:
            await self.respond(scope["path"], 403, f"cross-site request refused: {problem}")(
                scope, receive, send
            )
            return
        await self.app(scope, receive, send)


def _cross_site(scope: Scope, headers: Headers) -> str | None:
    origin = headers.get("origin")
    if origin is not None:
        if origin == "null":
            return "Origin null (a sandboxed or file:// page)"
        parts = urlsplit(origin)
        own_scheme = scope.get("scheme", "http")
        host = (headers.get("host") or "").lower()
        if parts.scheme != own_scheme or parts.netloc.lower() != host:
            return f"Origin {origin[:100]!r} is not this server ({own_scheme}://{host[:100]})"
        return None
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return f"Sec-Fetch-Site: {site[:40]}"
    return None


class BodyGuard:
    """Bounds how long a request body may take to arrive and how deeply a JSON body nests.

    Its size is bounded by FastAPI's ``max_body_size`` (the app's, then each route's), which
    wraps ``receive`` outside this middleware: reading past the limit raises its 413 here,
    so at most the app's limit is ever buffered."""

    def __init__(self, app: ASGIApp, *, respond: Respond, timeout_s: float) -> None:
        self.app = app
        self.respond = respond
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        body = bytearray()
        more = True
        with anyio.move_on_after(self.timeout_s) as timer:
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                body += message.get("body", b"")
                more = bool(message.get("more_body", False))
        if timer.cancelled_caught:
            late = self.respond(path, 408, f"request body not received within {self.timeout_s:g} s")
            late.headers["connection"] = "close"  # the rest of the body is not worth waiting for
            await late(scope, receive, send)
            return
        if body and "json" in Headers(scope=scope).get("content-type", ""):
            try:
                parse_json(bytes(body), "body")
            except BadInputError as exc:
                await self.respond(path, 422, exc.message)(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

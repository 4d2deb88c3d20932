"""Safe defaults on every response: security headers and request size limits.

A pure ASGI middleware (cheaper than Starlette's ``BaseHTTPMiddleware`` and
safe with streaming bodies). Bodies over the limit are refused with 413
before they are read: from ``Content-Length`` when it is sent, else while
the body streams in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from starlette.exceptions import HTTPException as StarletteHTTPException

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

__all__ = ["API_HEADERS", "Hardening", "page_headers"]

#: Headers of every API answer: no sniffing, no framing, no caching, no referrer.
API_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"geolocation=(), camera=(), microphone=()"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"cache-control", b"no-store"),
]


def page_headers(tile_origins: list[str] | tuple[str, ...] = ()) -> list[tuple[bytes, bytes]]:
    """Headers of the docs and the web map.

    They load scripts, styles and images from this server only (no CDN:
    intranets have no internet); MapLibre runs its workers from blobs. An
    external basemap configured by the operator (``TONGGE_BASEMAP_URL``) adds
    its tile servers' origins to ``img-src`` and ``connect-src``, nothing more.
    """
    extra = "".join(f" {origin}" for origin in tile_origins).encode("ascii")
    return [
        *(h for h in API_HEADERS if h[0] not in (b"content-security-policy", b"cache-control")),
        (
            b"content-security-policy",
            b"default-src 'self'; script-src 'self' 'unsafe-inline'; "
            b"style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:" + extra + b"; "
            b"font-src 'self' data:; connect-src 'self'" + extra + b"; "
            b"worker-src 'self' blob:; child-src blob:; frame-ancestors 'none'",
        ),
        (b"cache-control", b"no-cache"),
    ]


_PAGES = ("/docs", "/redoc", "/static/", "/glyphs/")


class Hardening:
    """ASGI middleware adding security headers and enforcing body size limits.

    Parameters
    ----------
    app : ASGI application
        The wrapped application.
    max_body_bytes : int
        Limit of JSON and form bodies.
    max_upload_bytes : int
        Limit of ``multipart/form-data`` uploads.
    tile_origins : list of str
        Origins of an external basemap's tiles the web map may load.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_upload_bytes: int,
        tile_origins: list[str] | tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes
        self._page_headers = page_headers(tile_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Wrap one request."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        path = scope["path"]
        limit = (
            self.max_upload_bytes
            if headers.get(b"content-type", b"").startswith(b"multipart/form-data")
            else self.max_body_bytes
        )
        extra = (
            self._page_headers
            if scope["path"] == "/" or scope["path"].startswith(_PAGES)
            else API_HEADERS
        )
        if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b"").lower():
            await send_problem(
                send, 400, "Unusable input", "the URL contains a NUL character", path=path
            )
            return
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await send_problem(
                send, 413, "Too large", f"request body over {limit} bytes", path=path
            )
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise _TooLarge(limit)
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *(h for h in extra if h[0] not in present),
                ]
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except _TooLarge as error:
            if started:  # pragma: no cover - the app answered before reading it all
                raise
            await send_problem(
                send, 413, "Too large", f"request body over {error.limit} bytes", path=path
            )


class _TooLarge(StarletteHTTPException):
    # An HTTP exception, so that FastAPI's body parsing passes it on as is.
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit} bytes")
        self.limit = limit


async def send_problem(
    send: Send,
    status: int,
    title: str,
    detail: str,
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
    path: str = "",
) -> None:
    """Send a complete problem+json response with the security headers.

    Under ``/open311/`` (``path``), the answer is Open311's error list instead.
    """
    media = b"application/problem+json"
    if path.startswith("/open311/"):
        from api.errors import open311_error_body

        body, text = open311_error_body(path, status, [detail])
        media = text.encode()
    else:
        body = orjson.dumps(
            {"type": "about:blank", "title": title, "status": status, "detail": detail}
        )
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", media),
                (b"content-length", str(len(body)).encode()),
                *API_HEADERS,
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})

"""Security headers on every HTTP response of the web app (an ASGI middleware, so nothing can forget them).

- Content-Security-Policy: scripts, styles and connections from this origin only, never inline (pages load their
  scripts from /static), no plugins, forms post only here; `frame-ancestors 'none'` and X-Frame-Options DENY,
  so no other site (nor another app on this host) can frame the dashboard.
- The widget's pages (the demo page) may be framed by the sites in `web.widget_origins`, and only by them.
- The REST API answers with `default-src 'none'`: JSON never runs anything.
- The API docs page (Swagger UI, not ours) gets its CDN and the hash of its one inline script, nothing broader.
- X-Content-Type-Options nosniff, Referrer-Policy same-origin, Cross-Origin-Opener-Policy same-origin, and HSTS
  when the request came over https (directly or as a proxy's X-Forwarded-Proto says).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'"
)
API_POLICY = "default-src 'none'; base-uri 'none'; form-action 'none'"
DOCS_CDN = "https://cdn.jsdelivr.net"
DOCS_POLICY = (
    f"default-src 'self'; script-src 'self' {DOCS_CDN} {{hashes}}; style-src 'self' {DOCS_CDN} 'unsafe-inline'; "
    "img-src 'self' data: https://fastapi.tiangolo.com; connect-src 'self'; object-src 'none'; base-uri 'none'"
)
WIDGET_PAGES = ("/demo",)
DOCS_PAGES = ("/api/docs",)
HSTS = "max-age=31536000; includeSubDomains"
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.S)


def _origins(widget_origins: Iterable[str]) -> str:
    """The configured sites as CSP sources; anything that is not a plain http(s) origin is dropped."""
    valid = [o.strip().rstrip("/") for o in widget_origins
             if re.fullmatch(r"https?://[A-Za-z0-9.\-]+(:\d{1,5})?/?", o.strip())]
    return " ".join(valid)


def _is_https(scope: Scope) -> bool:
    proto = Headers(scope=scope).get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return scope.get("scheme") == "https" or proto == "https"


def script_hashes(body: bytes) -> str:
    """CSP sources for the inline scripts of a page we do not write (Swagger UI's bootstrap)."""
    return " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(m.group(1)).digest()).decode() + "'"
        for m in _INLINE_SCRIPT.finditer(body)
    )


class SecurityHeaders:
    """Adds the headers to each response start; headers a route set itself are left as they are."""

    def __init__(self, app: ASGIApp, *, widget_origins: Iterable[str] = ()) -> None:
        self.app = app
        self.widget_ancestors = _origins(widget_origins)

    def headers_for(self, path: str, https: bool) -> dict[str, str]:
        """What a response to `path` carries (the CSP of the docs page is completed from its body)."""
        headers = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}
        if https:
            headers["Strict-Transport-Security"] = HSTS
        if path in WIDGET_PAGES and self.widget_ancestors:
            headers["Content-Security-Policy"] = f"{PAGE_POLICY}; frame-ancestors 'self' {self.widget_ancestors}"
            return headers
        headers["X-Frame-Options"] = "DENY"
        headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if (path.startswith("/api/") or path == "/openapi.json") and path not in DOCS_PAGES:
            policy = API_POLICY
        else:
            policy = DOCS_POLICY if path in DOCS_PAGES else PAGE_POLICY
        headers["Content-Security-Policy"] = f"{policy}; frame-ancestors 'none'"
        return headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        extra = self.headers_for(path, _is_https(scope))
        if path in DOCS_PAGES:
            await self.app(scope, receive, _DocsSend(send, extra))
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                _add(message, extra)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _add(message: Message, extra: dict[str, str]) -> None:
    headers = MutableHeaders(scope=message)
    for name, value in extra.items():
        if name not in headers:
            headers[name] = value


class _DocsSend:
    """Holds the docs page's response start until its body is known, to name its inline script by hash."""

    def __init__(self, send: Send, extra: dict[str, str]) -> None:
        self.send, self.extra = send, extra
        self.start: Message | None = None
        self.body = b""

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
            return
        if message["type"] != "http.response.body" or self.start is None:
            await self.send(message)
            return
        self.body += message.get("body", b"")
        if message.get("more_body"):
            return
        extra: dict[str, Any] = dict(self.extra)
        extra["Content-Security-Policy"] = extra["Content-Security-Policy"].replace(
            "{hashes}", script_hashes(self.body))
        _add(self.start, extra)
        await self.send(self.start)
        await self.send({"type": "http.response.body", "body": self.body})

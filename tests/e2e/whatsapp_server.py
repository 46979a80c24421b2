"""A WhatsApp Cloud API stand-in on loopback: the Graph API's messages and media endpoints, and Meta's side of
the webhook (deliveries signed with the app secret).

It keeps each person's customer-service window (opened when they write, 24 hours long): free text outside it is
refused with 131047 like the real API, templates are not. Tests play the customers (`customer_says`), move time
(`close_window`), script failures (`fail_next(130429)`) and read what the business sent (`sent_to`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

WINDOW_S = 24 * 3600
ERRORS = {
    131047: (400, "Re-engagement message"),
    130429: (400, "Rate limit hit"),
    131026: (400, "Message undeliverable"),
    190: (401, "Invalid OAuth access token"),
}


class GraphServer:
    """Use as ``async with GraphServer(app_secret, webhook_url) as graph:``; point the channel at `graph.url`."""

    def __init__(
        self,
        app_secret: str = "app-secret",
        webhook_url: str = "",
        *,
        token: str = "wa-token",
        phone_number_id: str = "1055501",
        version: str = "v21.0",
    ) -> None:
        self.app_secret, self.webhook_url, self.token = app_secret, webhook_url, token
        self.phone_number_id, self.version = phone_number_id, version
        self.port = 0
        self.sent: list[dict[str, Any]] = []
        """Every message the business sent and the API accepted, with its "id" (wamid)."""
        self.refused: list[tuple[int, dict[str, Any]]] = []
        self.read: list[str] = []
        self.media: dict[str, tuple[bytes, str]] = {}
        self.media_fetches = 0
        self.last_wrote: dict[str, float] = {}
        self._failures: deque[int] = deque()
        self._wamids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> GraphServer:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post("/{version}/{number}/messages", self._messages)
        app.router.add_get("/{version}/{media_id}", self._media_meta)
        app.router.add_get("/files/{media_id}", self._media_file)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._client = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client:
            await self._client.close()
        if self._runner:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- scripting -------------------------------------------------------------------------------------------
    def fail_next(self, code: int, times: int = 1) -> None:
        self._failures.extend([code] * times)

    def close_window(self, wa_id: str) -> None:
        """As if the person last wrote 25 hours ago."""
        self.last_wrote[wa_id] = time.time() - WINDOW_S - 3600

    def add_media(self, media_id: str, content: bytes, mime: str) -> None:
        self.media[media_id] = (content, mime)

    def sent_to(self, wa_id: str) -> list[dict[str, Any]]:
        return [m for m in self.sent if m.get("to") == wa_id]

    def texts_to(self, wa_id: str) -> list[str]:
        return [text_of(m) for m in self.sent_to(wa_id)]

    async def wait_for(self, predicate: Callable[[], Any], within: float = 8.0) -> Any:
        deadline = time.monotonic() + within
        while not (value := predicate()):
            if time.monotonic() > deadline:
                raise TimeoutError("condition not met in time")
            await asyncio.sleep(0.02)
        return value

    # -- Meta's side of the webhook --------------------------------------------------------------------------
    def message_payload(
        self,
        wa_id: str,
        text: str = "",
        *,
        name: str = "Customer",
        wamid: str = "",
        kind: str = "text",
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "from": wa_id,
            "id": wamid or f"wamid.in.{wa_id}.{next(self._wamids)}",
            "timestamp": str(int(time.time())),
            "type": kind,
        }
        message[kind] = body if body is not None else {"body": text}
        return self._envelope({"contacts": [{"profile": {"name": name}, "wa_id": wa_id}], "messages": [message]})

    def status_payload(self, wamid: str, status: str, recipient: str, *, error: int = 0) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": wamid,
            "status": status,
            "timestamp": str(int(time.time())),
            "recipient_id": recipient,
        }
        if error:
            item["errors"] = [{"code": error, "title": ERRORS.get(error, (400, "error"))[1]}]
        return self._envelope({"statuses": [item]})

    def _envelope(self, value: dict[str, Any]) -> dict[str, Any]:
        value = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": self.phone_number_id},
            **value,
        }
        return {
            "object": "whatsapp_business_account",
            "entry": [{"id": "WABA-1", "changes": [{"field": "messages", "value": value}]}],
        }

    async def deliver(self, payload: dict[str, Any] | bytes, *, signature: str | None = None) -> int:
        """POST one delivery to the webhook, signed with the app secret unless `signature` says otherwise; the
        HTTP status it got. A customer's message opens their window once it was accepted."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        sig = signature if signature is not None else sign(self.app_secret, body)
        headers = {"Content-Type": "application/json", **({"X-Hub-Signature-256": sig} if sig else {})}
        assert self._client is not None
        async with self._client.post(self.webhook_url, data=body, headers=headers) as response:
            status = response.status
        if status == 200 and isinstance(payload, dict):
            for change in payload["entry"][0]["changes"]:
                for message in change["value"].get("messages", []):
                    self.last_wrote[message["from"]] = time.time()
        return status

    async def customer_says(self, wa_id: str, text: str, **kwargs: Any) -> dict[str, Any]:
        payload = self.message_payload(wa_id, text, **kwargs)
        status = await self.deliver(payload)
        assert status == 200, f"webhook answered {status}"
        return payload

    # -- the Graph API ---------------------------------------------------------------------------------------
    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization", "") == f"Bearer {self.token}"

    async def _messages(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _error(190)
        if request.match_info["number"] != self.phone_number_id:
            return _error(100, "Unsupported post request")
        payload = await request.json()
        if payload.get("status") == "read":
            self.read.append(payload.get("message_id", ""))
            return web.json_response({"success": True})
        if self._failures:
            code = self._failures.popleft()
            self.refused.append((code, payload))
            return _error(code)
        to = payload.get("to", "")
        if len(payload.get("text", {}).get("body", "")) > 4096:
            return _error(100, "Param text['body'] must be at most 4096 characters long")
        if payload.get("type") == "text" and time.time() - self.last_wrote.get(to, 0) > WINDOW_S:
            self.refused.append((131047, payload))
            return _error(131047)
        wamid = f"wamid.out.{next(self._wamids)}"
        self.sent.append({**payload, "id": wamid})
        return web.json_response(
            {"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}], "messages": [{"id": wamid}]}
        )

    async def _media_meta(self, request: web.Request) -> web.Response:
        media_id = request.match_info["media_id"]
        if not self._authorized(request):
            return _error(190)
        if media_id == self.phone_number_id:
            return web.json_response(
                {
                    "id": media_id,
                    "display_phone_number": "+1 555-000-1111",
                    "verified_name": "tierdesk test",
                    "quality_rating": "GREEN",
                }
            )
        if media_id not in self.media:
            return _error(100, "Unsupported get request")
        content, mime = self.media[media_id]
        return web.json_response(
            {
                "url": f"{self.url}/files/{media_id}",
                "mime_type": mime,
                "file_size": len(content),
                "sha256": hashlib.sha256(content).hexdigest(),
                "id": media_id,
                "messaging_product": "whatsapp",
            }
        )

    async def _media_file(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.Response(status=401)
        content, mime = self.media[request.match_info["media_id"]]
        self.media_fetches += 1
        return web.Response(body=content, content_type=mime)


def sign(app_secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def text_of(message: dict[str, Any]) -> str:
    """A sent message's text: the text body, or a template's body parameter."""
    if message.get("type") == "template":
        params = message["template"]["components"][0]["parameters"]
        return " ".join(p.get("text", "") for p in params)
    return message.get("text", {}).get("body", "")


def _error(code: int, message: str = "") -> web.Response:
    status, title = ERRORS.get(code, (400, message or "error"))
    body = {
        "error": {
            "message": f"({code}) {message or title}",
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": title},
            "fbtrace_id": "A1",
        }
    }
    return web.json_response(body, status=status)

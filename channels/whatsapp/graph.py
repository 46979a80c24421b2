"""The WhatsApp Cloud API calls the channel makes, and what its error codes mean for the outbox."""

from __future__ import annotations

import re
from typing import Any

import httpx

from bot.core.messages import DeliveryError

OUTSIDE_WINDOW = 131047
"""More than 24 hours since the customer last wrote: only an approved template may be sent."""
RATE_LIMITED = (130429, 131056, 80007, 4, 613)
"""Throughput of the number, pair rate (too many to one person), account limits: wait and retry."""
PERMANENT = (131026, 131051, 131052, 131053, 100, 190, 132000, 132001, 133010, 470)
"""Undeliverable, unsupported, bad parameters, bad token, unknown template, unregistered number: retrying will
not help."""
MAX_TEXT = 4096
MAX_TEMPLATE_PARAM = 1024


class GraphError(Exception):
    """An error answer of the Graph API: HTTP status, Meta's error code, its message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(status, code, message)
        self.status, self.code, self.message = status, code, message

    def __str__(self) -> str:
        return f"HTTP {self.status}, error {self.code}: {self.message}"


def delivery_error(exc: GraphError, retry_after: float | None = None) -> DeliveryError:
    """The outbox's view of a Graph error: retry rate limits and server trouble, give up on the rest."""
    reason = f"whatsapp: {exc}"
    if exc.code == OUTSIDE_WINDOW:
        return DeliveryError(
            f"{reason} (outside the 24-hour window: set whatsapp.template_name to send a template)", permanent=True
        )
    if exc.code in RATE_LIMITED or exc.status == 429:
        return DeliveryError(reason, retry_after=retry_after or 1.0)
    if exc.code in PERMANENT or (400 <= exc.status < 500 and exc.status not in (408, 425)):
        return DeliveryError(reason, permanent=True)
    return DeliveryError(reason, retry_after=retry_after)


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Parts of at most `limit` characters, cut after a newline, else after a space, else anywhere."""
    parts, rest = [], text
    while len(rest) > limit:
        window = rest[:limit]
        cut = next((at + 1 for at in (window.rfind("\n"), window.rfind(" ")) if at > 0), limit)
        parts.append(rest[:cut])
        rest = rest[cut:]
    return [*parts, rest] if rest or not parts else parts


def text_payload(to: str, text: str, reply_to: str = "") -> dict[str, Any]:
    payload: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": {"body": text[:MAX_TEXT], "preview_url": False},
    }
    if reply_to:
        payload["context"] = {"message_id": reply_to}
    return payload


def template_payload(to: str, name: str, language: str, text: str) -> dict[str, Any]:
    """The configured template with the reply as its one body parameter (parameters hold no line breaks)."""
    param = re.sub(r"\s+", " ", text).strip()[:MAX_TEMPLATE_PARAM]
    return {
        "messaging_product": "whatsapp",
        "to": to,
        "type": "template",
        "template": {
            "name": name,
            "language": {"code": language},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": param}]}],
        },
    }


class GraphApi:
    """One business number's calls: send, mark read, fetch media."""

    def __init__(
        self, client: httpx.AsyncClient, base_url: str, version: str, phone_number_id: str, token: str
    ) -> None:
        self._client = client
        self._base = f"{base_url.rstrip('/')}/{version}"
        self._number = phone_number_id
        self._auth = {"Authorization": f"Bearer {token}"}

    async def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._client.request(method, url, headers=self._auth, **kwargs)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"whatsapp: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise _graph_error(response)
        return response

    async def send(self, payload: dict[str, Any]) -> str:
        """POST one message; the wamid it was given."""
        response = await self._call("POST", f"{self._base}/{self._number}/messages", json=payload)
        try:
            return str(response.json()["messages"][0]["id"])
        except (ValueError, KeyError, IndexError, TypeError):
            raise GraphError(response.status_code, 0, "no message id in the answer") from None

    async def mark_read(self, message_id: str) -> None:
        await self._call(
            "POST",
            f"{self._base}/{self._number}/messages",
            json={"messaging_product": "whatsapp", "status": "read", "message_id": message_id},
        )

    async def number(self) -> dict[str, Any]:
        """What the API knows of the business number (its display number, verified name): a cheap credentials check."""
        return (await self._call("GET", f"{self._base}/{self._number}")).json()

    async def media(self, media_id: str, max_bytes: int) -> tuple[bytes, str]:
        """The bytes and MIME type of a customer's media (its URL first, then the file, both with our token)."""
        meta = (await self._call("GET", f"{self._base}/{media_id}")).json()
        size = meta.get("file_size")
        if isinstance(size, int) and size > max_bytes:
            raise GraphError(413, 0, f"media {media_id} is {size} bytes, more than {max_bytes}")
        response = await self._call("GET", str(meta["url"]))
        if len(response.content) > max_bytes:
            raise GraphError(413, 0, f"media {media_id} is larger than {max_bytes} bytes")
        return response.content, str(meta.get("mime_type", ""))


def _graph_error(response: httpx.Response) -> GraphError:
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    code = error.get("code") if isinstance(error, dict) and isinstance(error.get("code"), int) else 0
    message = str(error.get("message", "")) if isinstance(error, dict) else ""
    return GraphError(response.status_code, code, message[:300] or response.reason_phrase)

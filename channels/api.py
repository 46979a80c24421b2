"""API channels: a business's own app, an SMS or voice gateway or a form posts messages in and gets replies back.

Several may be configured (`api_channel.endpoints.<name>`); they share the channel "api", and an address on it
is "<endpoint>:<sender>", so each endpoint's customers, replies and tokens stay apart.

In: `POST /api/v1/channels/<name>/messages` with `Authorization: Bearer <token>` and a JSON body
`{"id": "<the caller's message id>", "sender": "...", "text": "...", "sender_name": "...",
"attachments": [{"kind", "name", "mime", "size", "url"}]}`; the id is the idempotency key, so a retried post is
stored once. Out: each reply is POSTed to the endpoint's callback URL, signed like outbound webhooks
(`X-Tierdesk-Signature` over `X-Tierdesk-Timestamp` and the body); 2xx delivers it, 408/429/5xx and network
errors retry through the outbox, 410 and other 4xx fail it for good. An endpoint without a callback URL is
pulled: `GET /api/v1/channels/<name>/replies?after=<cursor>` lists what was sent since.
"""

from __future__ import annotations

import hmac
import json
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx

from bot.core.messages import (
    Attachment,
    Deliver,
    DeliveryError,
    InboundMessage,
    InvalidMessage,
    OutboundMessage,
    clean_text,
)
from channels.base import ChannelTraits
from channels.webhook import _retry_after, sign

NAME = re.compile(r"[A-Za-z0-9_-]{1,40}")
MAX_BODY = 1_000_000
MAX_ATTACHMENTS = 20
RETRY_STATUSES = (408, 425, 429)


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    token: str
    callback_url: str = ""
    secret: str = ""
    timeout_s: float = 10.0

    @property
    def pulled(self) -> bool:
        return not self.callback_url


class Refused(Exception):
    """A request the channel answers with an HTTP error: `status` and a reason the caller can act on."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def address_of(endpoint: str, sender: str) -> str:
    return f"{endpoint}:{sender}"


def split_address(address: str) -> tuple[str, str]:
    """(endpoint, sender) of an address on the channel."""
    endpoint, sep, sender = address.partition(":")
    if not sep:
        raise ValueError(f"{address!r} is not an API channel address (<endpoint>:<sender>)")
    return endpoint, sender


def parse_message(endpoint: str, body: bytes, *, max_text_chars: int) -> InboundMessage:
    """The message a caller posted, or `Refused(400/422)` saying what is wrong with it."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Refused(400, f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise Refused(400, "the body must be a JSON object")
    msg_id, sender, text = data.get("id"), data.get("sender"), data.get("text", "")
    if isinstance(msg_id, int) and not isinstance(msg_id, bool):
        msg_id = str(msg_id)
    if not isinstance(msg_id, str) or not isinstance(sender, str):
        raise Refused(422, "id and sender are required strings")
    # cleaned before the endpoint's prefix, so that an id or sender of control characters alone is no id at all
    msg_id, sender = clean_text(msg_id)[0].strip(), clean_text(sender)[0].strip()
    if not msg_id or not sender:
        raise Refused(422, "id and sender must hold printable text")
    if not isinstance(text, str):
        raise Refused(422, "text must be a string")
    if len(text) > max_text_chars:
        raise Refused(422, f"text is longer than {max_text_chars} characters")
    name = data.get("sender_name", "")
    attachments = _attachments(data.get("attachments", []))
    if not text.strip() and not attachments:
        raise Refused(422, "a message needs text or attachments")
    try:
        return InboundMessage.build(
            channel="api",
            external_id=address_of(endpoint, msg_id),
            sender=address_of(endpoint, sender),
            text=text,
            sender_name=name if isinstance(name, str) else "",
            attachments=attachments,
            meta={"api_channel": endpoint},
        )
    except InvalidMessage as exc:
        raise Refused(422, str(exc)) from None


def _attachments(raw: Any) -> tuple[Attachment, ...]:
    if not isinstance(raw, list) or len(raw) > MAX_ATTACHMENTS:
        raise Refused(422, f"attachments must be a list of at most {MAX_ATTACHMENTS} objects")
    found = []
    for item in raw:
        if not isinstance(item, dict):
            raise Refused(422, "each attachment must be an object")
        size = item.get("size", 0)
        fields = {k: item.get(k, "") for k in ("kind", "name", "mime", "url")}
        if not all(isinstance(v, str) for v in fields.values()) or not isinstance(size, int):
            raise Refused(422, "attachment kind, name, mime and url are strings, size an integer")
        found.append(
            Attachment(
                kind=fields["kind"] or "file", name=fields["name"], mime=fields["mime"], size=size, ref=fields["url"]
            )
        )
    return tuple(found)


def callback_body(endpoint: str, message: OutboundMessage) -> str:
    """The JSON a callback receives for one reply. Pure: a retry carries the same bytes but its timestamp."""
    _, recipient = split_address(message.recipient)
    reply_to = message.reply_to.partition(":")[2] if message.reply_to.startswith(f"{endpoint}:") else ""
    body = {
        "id": message.idempotency_key,
        "channel": endpoint,
        "recipient": recipient,
        "text": message.text_with_buttons(),
        "ticket": f"T-{message.ticket_id}" if message.ticket_id else None,
        "reply_to": reply_to or None,
    }
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def outcome_of(status: int) -> str:
    """What the callback's answer means for the reply: delivered, retry or failed."""
    if 200 <= status < 300:
        return "delivered"
    if status >= 500 or status in RETRY_STATUSES:
        return "retry"
    return "failed"


class ApiChannel(ChannelTraits):
    """Channel "api": receives what callers post, sends replies to their callbacks (or keeps them to pull)."""

    name = "api"
    section = "api_channel"

    @classmethod
    def from_settings(cls, section: Any, *, send_only: bool = False) -> ApiChannel:
        endpoints = [
            Endpoint(name, e.token, e.callback_url, e.secret, e.timeout_s)
            for name, e in (section.endpoints.items() if section is not None else ())
        ]
        return cls(endpoints, max_text_chars=section.max_text_chars if section is not None else 20000)

    def __init__(
        self, endpoints: list[Endpoint], *, max_text_chars: int = 20000, client: httpx.AsyncClient | None = None
    ) -> None:
        if not endpoints:
            raise ValueError("no API channel is configured (api_channel.endpoints.<name>)")
        for e in endpoints:
            if not NAME.fullmatch(e.name):
                raise ValueError(f"API channel name {e.name!r}: use 1-40 letters, digits, - or _")
            if not e.token:
                raise ValueError(f"API channel {e.name!r} has no token")
            if e.callback_url and not e.secret:
                raise ValueError(f"API channel {e.name!r} has a callback URL but no signing secret")
        self.endpoints = {e.name: e for e in endpoints}
        self.max_text_chars = max_text_chars
        self._client = client
        self._own_client = client is None
        self._deliver: Deliver | None = None

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False)

    async def stop(self) -> None:
        self._deliver = None
        if self._client is not None and self._own_client:
            await self._client.aclose()
            self._client = None

    def authorize(self, endpoint: str, headers: dict[str, str]) -> Endpoint:
        """The endpoint a request is for, when it carries that endpoint's token; else `Refused(404/401)`."""
        found = self.endpoints.get(endpoint)
        if found is None:
            raise Refused(404, "no such API channel")
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), found.token.encode()):
            raise Refused(401, "a valid bearer token for this API channel is required")
        return found

    async def receive(self, endpoint: str, headers: dict[str, str], body: bytes) -> tuple[InboundMessage, Any]:
        """Check, parse and store one posted message: (the message, the dispatcher's result)."""
        self.authorize(endpoint, headers)
        if len(body) > MAX_BODY:
            raise Refused(413, f"the body is larger than {MAX_BODY} bytes")
        msg = parse_message(endpoint, body, max_text_chars=self.max_text_chars)
        if self._deliver is None:
            raise Refused(503, "the API channel is not receiving")
        return msg, await self._deliver(msg)

    async def send(self, message: OutboundMessage) -> str:
        try:
            endpoint = self.endpoints[split_address(message.recipient)[0]]
        except (ValueError, KeyError):
            raise DeliveryError(f"api: no API channel for {message.recipient!r}", permanent=True) from None
        key = message.idempotency_key or f"api-{time.time_ns()}"
        if endpoint.pulled:
            return key  # logged as sent; the caller pulls it from the replies list
        if self._client is None:
            await self.start(None)  # type: ignore[arg-type]  # a send-only process
        assert self._client is not None
        body = callback_body(endpoint.name, message)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "tierdesk-api-channel/1",
            "X-Tierdesk-Timestamp": timestamp,
            "X-Tierdesk-Signature": sign(endpoint.secret, timestamp, body),
            "X-Tierdesk-Delivery": key,
        }
        where = f"api {endpoint.name} callback"
        try:
            response = await self._client.post(
                endpoint.callback_url, content=body.encode(), headers=headers, timeout=endpoint.timeout_s
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{where}: {type(exc).__name__}: {exc}") from exc
        outcome = outcome_of(response.status_code)
        if outcome == "delivered":
            return key
        raise DeliveryError(
            f"{where}: HTTP {response.status_code}",
            permanent=outcome == "failed",
            retry_after=_retry_after(response.headers.get("Retry-After")),
        )

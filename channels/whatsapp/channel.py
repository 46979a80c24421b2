"""Channel "whatsapp": the WhatsApp Cloud API. Meta POSTs webhook deliveries (signed with the app secret) to
`/whatsapp/webhook`; replies go out through the Graph API from the configured business number.

A WhatsApp number is an identity WhatsApp vouches for: every message carries it as `vouched_phone`, so it links
to the customer whose Telegram contact shared the same number. Outside the 24-hour customer-service window the
Graph API refuses free text (131047): the configured template is sent instead, or the outbox fails the reply and
its agent is told why.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import mimetypes
from pathlib import Path
from typing import Any

import httpx

from bot.core.messages import Attachment, Deliver, DeliveryError, InboundMessage, InvalidMessage, OutboundMessage
from channels.base import ChannelTraits
from channels.send_limits import Rate, SendLimits
from channels.whatsapp import graph, webhook

log = logging.getLogger(__name__)
MAX_BODY = 3_000_000


class Refused(Exception):
    """A webhook delivery answered with an HTTP error (`status`) and stored nothing."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class WhatsAppChannel(ChannelTraits):
    name = "whatsapp"

    @classmethod
    def from_settings(cls, section: Any, *, send_only: bool = False) -> WhatsAppChannel:
        if section is None:
            raise ValueError("no whatsapp settings")
        return cls(
            section.access_token,
            section.phone_number_id,
            app_secret=section.app_secret,
            verify_token=section.verify_token,
            graph_url=section.graph_url,
            api_version=section.api_version,
            template_name=section.template_name,
            template_language=section.template_language,
            sends_per_second=section.sends_per_second,
            sends_per_recipient_per_minute=section.sends_per_recipient_per_minute,
            media_dir=section.media_dir,
            media_max_bytes=section.media_max_bytes,
            send_only=send_only,
        )

    def __init__(
        self,
        access_token: str,
        phone_number_id: str,
        *,
        app_secret: str,
        verify_token: str = "",
        graph_url: str = "https://graph.facebook.com",
        api_version: str = "v21.0",
        template_name: str = "",
        template_language: str = "en",
        sends_per_second: float = 20.0,
        sends_per_recipient_per_minute: int = 10,
        media_dir: str = ".tierdesk/attachments/whatsapp",
        media_max_bytes: int = 16_000_000,
        send_only: bool = False,
        timeout_s: float = 15.0,
    ) -> None:
        if not access_token or not phone_number_id:
            raise ValueError(
                "WhatsApp needs an access token and a phone number id (whatsapp.access_token, whatsapp.phone_number_id)"
            )
        if not app_secret and not send_only:
            raise ValueError("WhatsApp webhooks need the app secret to check signatures (whatsapp.app_secret)")
        self.app_secret, self.verify_token = app_secret, verify_token
        self.template_name, self.template_language = template_name, template_language
        self.limits = SendLimits()
        self.number_rate, self.recipient_rate = send_rates(sends_per_second, sends_per_recipient_per_minute)
        self.media_dir, self.media_max_bytes = Path(media_dir), media_max_bytes
        self._settings = (graph_url, api_version, phone_number_id, access_token, timeout_s)
        self._client: httpx.AsyncClient | None = None
        self.api: graph.GraphApi | None = None
        self._deliver: Deliver | None = None

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver
        if self._client is None:
            graph_url, version, number, token, timeout_s = self._settings
            self._client = httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)
            self.api = graph.GraphApi(self._client, graph_url, version, number, token)

    def use_limits(self, limits: SendLimits) -> None:
        """Keep to the number's limits together with every other process (limits shared through Redis)."""
        self.limits = limits

    def buckets(self, to: str) -> tuple[tuple[str, Rate], tuple[str, Rate]]:
        """The turns a message to `to` takes: one of the business number's, one of that person's."""
        number = self._settings[2]
        return (f"whatsapp:{number}", self.number_rate), (f"whatsapp:{number}:{to}", self.recipient_rate)

    async def stop(self) -> None:
        self._deliver = None
        if self._client is not None:
            await self._client.aclose()
            self._client, self.api = None, None

    async def probe(self) -> str | None:
        """`tierdesk doctor`: None when the token reaches the business number, else why not."""
        started = self.api is None
        if started:
            await self.start(None)  # type: ignore[arg-type]
        assert self.api is not None
        try:
            await self.api.number()
        except (graph.GraphError, DeliveryError) as exc:
            return f"the Graph API refused the number: {exc}"
        finally:
            if started:
                await self.stop()
        return None

    # -- receiving -------------------------------------------------------------------------------------------
    def verification(self, params: dict[str, str]) -> str | None:
        return webhook.challenge(params, self.verify_token)

    def read_delivery(self, headers: dict[str, str], body: bytes) -> webhook.Delivery:
        """A delivery whose signature holds, parsed; `Refused` (401 unsigned, 413, 400 not JSON) otherwise."""
        if len(body) > MAX_BODY:
            raise Refused(413, "too large")
        if not webhook.signed(self.app_secret, body, headers.get("x-hub-signature-256", "")):
            raise Refused(401, "bad or missing X-Hub-Signature-256")
        try:
            return webhook.parse(body)
        except webhook.BadDelivery as exc:
            raise Refused(400, str(exc)) from None

    async def store(self, delivery: webhook.Delivery) -> int:
        """Hand every readable message to the dispatcher (awaiting = stored), then mark it read; how many."""
        if self._deliver is None:
            raise Refused(503, "the WhatsApp channel is not receiving")
        stored = 0
        for incoming in delivery.messages:
            try:
                msg = await self.inbound(incoming)
            except InvalidMessage as exc:
                log.warning("whatsapp: unreadable message skipped: %s", exc)
                continue
            await self._deliver(msg)
            stored += 1
            await self._mark_read(incoming.external_id)
        return stored

    async def inbound(self, incoming: webhook.Incoming) -> InboundMessage:
        attachments = [await self._attachment(m) for m in incoming.media]
        meta = {"vouched_phone": f"+{incoming.sender.lstrip('+')}", "whatsapp_type": incoming.kind}
        return InboundMessage.build(
            channel=self.name,
            external_id=incoming.external_id,
            sender=incoming.sender,
            text=incoming.text,
            sender_name=incoming.sender_name,
            attachments=attachments,
            thread_ref=incoming.context_id,
            received_at=incoming.at,
            meta=meta,
        )

    async def _attachment(self, media: dict[str, str]) -> Attachment:
        """The media's metadata, with the file downloaded into the media folder; only its id when it cannot be
        fetched (the message is stored all the same)."""
        ref, size, mime = f"whatsapp-media:{media['id']}", 0, media["mime"]
        if self.api is not None and media["id"]:
            try:
                content, mime = await self.api.media(media["id"], self.media_max_bytes)
                ref, size = await asyncio.to_thread(self._keep, content, mime or media["mime"]), len(content)
            except (graph.GraphError, DeliveryError, KeyError, ValueError, OSError) as exc:
                log.warning("whatsapp: media %s not downloaded: %s", media["id"][:80], exc)
        return Attachment(kind=media["kind"], name=media["name"], mime=mime or media["mime"], size=size, ref=ref)

    def _keep(self, content: bytes, mime: str) -> str:
        digest = hashlib.sha256(content).hexdigest()
        path = self.media_dir / f"{digest}{mimetypes.guess_extension(mime.split(';')[0].strip()) or '.bin'}"
        self.media_dir.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.write_bytes(content)
        return str(path)

    async def _mark_read(self, message_id: str) -> None:
        """The customer sees two blue ticks; a failure here loses nothing."""
        if self.api is None:
            return
        try:
            await self.api.mark_read(message_id)
        except (graph.GraphError, DeliveryError) as exc:
            log.info("whatsapp: marking %s read failed: %s", message_id[:80], exc)

    # -- sending ---------------------------------------------------------------------------------------------
    async def send(self, message: OutboundMessage) -> str:
        if self.api is None:
            await self.start(None)  # type: ignore[arg-type]  # a send-only process
        assert self.api is not None
        to = message.recipient.lstrip("+")
        await self.limits.wait(*self.buckets(to))
        text = message.text_with_buttons()
        try:
            if message.meta_value("whatsapp_template") == "1" and self.template_name:
                return await self._send_template(to, text)
            return await self._send_text(to, text)
        except graph.GraphError as exc:
            if exc.code == graph.OUTSIDE_WINDOW and self.template_name:
                try:
                    return await self._send_template(to, text)
                except graph.GraphError as again:
                    raise graph.delivery_error(again) from again
            raise graph.delivery_error(exc) from exc

    async def _send_text(self, to: str, text: str) -> str:
        """A long reply goes in parts of the API's 4096 characters, in order; the first part's id stands for all
        (a part refused later is retried with the parts before it)."""
        assert self.api is not None
        ids = []
        for i, part in enumerate(graph.split_text(text)):
            if i:
                await self.limits.wait(*self.buckets(to))
            ids.append(await self.api.send(graph.text_payload(to, part)))
        return ids[0]

    async def _send_template(self, to: str, text: str) -> str:
        assert self.api is not None
        return await self.api.send(graph.template_payload(to, self.template_name, self.template_language, text))


def send_rates(per_second: float, per_recipient_per_minute: int) -> tuple[Rate, Rate]:
    """The number's throughput (bursts of a second's worth) and each person's share (a minute's worth at once,
    then one every 60/n seconds)."""
    per_second = max(per_second, 0.01)
    per_minute = max(per_recipient_per_minute, 1)
    return Rate(per_second, burst=max(per_second, 1.0)), Rate(per_minute / 60.0, burst=float(per_minute))

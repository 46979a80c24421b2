"""The web chat channel: visitors' WebSockets in, replies pushed out to every tab a visitor has open.

The web app authenticates the visitor (a signed id) and hands each WebSocket to `serve`. A reply for a visitor
with no open tab is still "delivered": it is in the contact log, and the widget fetches it on reconnect.

A website that knows who its visitor is passes the user id and HMAC-SHA256(`web.identity_secret`, id) to the
widget; the widget sends both in its hello frame and, when the signature holds, the dispatcher gets a vouched
identity ("webuser", id). A wrong signature is logged and the visitor stays anonymous.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from bot.core.messages import Attachment, Deliver, InboundMessage, InvalidMessage, OutboundMessage
from bot.identity.codes import signs
from channels.base import ChannelTraits
from channels.webchat.frames import BadFrame, Frame, dump, parse_frame

log = logging.getLogger(__name__)
PHOTO_TYPES = frozenset({"image/jpeg", "image/png"})
"""A visitor's file of these types reaches agents as a photo; any other as a document."""


VISITOR_ID = re.compile(r"v[0-9a-f]{32}")
"""A visitor id as the web app hands them out ("v" and a random UUID's hex)."""


def visitor_name(visitor_id: str, place: str = "") -> str:
    """What agents call an anonymous visitor: "Visitor 4821, Berlin" (a number that stays with the visitor
    id, and the city their browser's time zone names), never the id itself."""
    number = int(hashlib.sha256(visitor_id.encode()).hexdigest()[:8], 16) % 9000 + 1000
    return f"Visitor {number}" + (f", {place}" if place else "")


class Socket(Protocol):
    """What the channel needs of a WebSocket (Starlette's fits)."""

    async def send_text(self, data: str) -> None: ...

    async def receive_text(self) -> str: ...

    async def close(self, code: int = 1000) -> None: ...


class _Conn:
    """One open socket; sends are serialised because replies and acks come from different tasks."""

    def __init__(self, socket: Socket) -> None:
        self.socket = socket
        self.lock = asyncio.Lock()

    async def send(self, frame: dict[str, Any]) -> bool:
        try:
            async with self.lock:
                await self.socket.send_text(dump(frame))
            return True
        except Exception:  # a closed or broken socket: the caller forgets it
            return False


class WebChatChannel(ChannelTraits):
    """Channel "webchat": one visitor id, any number of open sockets. What a visitor may send is bounded by
    `max_message_chars` (a longer message gets a "too_long" error frame, never a cut); replies go out whole in
    one frame, whatever their length: the widget shows them as they are."""

    name = "webchat"
    section = "web"
    can_send_only = False  # the visitors' sockets are held by the receiving process

    @staticmethod
    def readable(address: str, display_name: str = "") -> str:
        """A visitor by the name the web pages use ("Visitor 4821, Berlin"), never by the id."""
        return display_name or (visitor_name(address) if VISITOR_ID.fullmatch(address) else address)
    takes_files = "link"  # a file is kept by the web app and named by a link in the text (the widget opens it)

    def __init__(self, *, max_message_chars: int = 4000, identity_secret: str = "") -> None:
        self.max_message_chars = max_message_chars
        self.identity_secret = identity_secret
        self._deliver: Deliver | None = None
        self._conns: dict[str, set[_Conn]] = {}

    @classmethod
    def from_settings(cls, section: Any, *, send_only: bool = False) -> WebChatChannel:
        return cls(max_message_chars=section.max_message_chars,
                   identity_secret=getattr(section, "identity_secret", "") or "")

    # --- Channel protocol -------------------------------------------------------------------------------------
    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver

    async def stop(self) -> None:
        self._deliver = None
        conns = [c for group in self._conns.values() for c in group]
        self._conns.clear()
        for conn in conns:
            with contextlib.suppress(Exception):
                await conn.socket.close(1001)

    async def send(self, message: OutboundMessage) -> str:
        """Push to the visitor's open sockets. The returned id is also the contact's external id, which the
        widget uses to drop a message it already has when history is replayed."""
        ext_id = "out-" + (message.idempotency_key or uuid.uuid4().hex)
        frame = {
            "type": "message",
            "from": message.meta_value("author", "bot") if message.meta_value("author") in ("agent", "bot") else "bot",
            "text": message.text,
            "id": ext_id,
        }
        if message.buttons:  # the widget shows them as buttons; a press sends the button's data as a message
            frame["buttons"] = [{"label": b.label, "data": b.data} for b in message.buttons]
        await self.push(message.recipient, frame)
        return ext_id

    # --- what the web app calls -------------------------------------------------------------------------------
    def is_online(self, visitor_id: str) -> bool:
        return bool(self._conns.get(visitor_id))

    async def push(self, visitor_id: str, frame: dict[str, Any]) -> int:
        """Send a frame to every open socket of a visitor; returns how many got it."""
        sent = 0
        for conn in list(self._conns.get(visitor_id, ())):
            if await conn.send(frame):
                sent += 1
            else:
                self._forget(visitor_id, conn)
        return sent

    async def typing(self, visitor_id: str, *, who: str = "agent", on: bool = True) -> None:
        """Show (or hide) "... is typing" in the visitor's widget."""
        await self.push(visitor_id, {"type": "typing", "from": who, "on": on})

    async def serve(
        self, socket: Socket, visitor_id: str, *, on_open: Callable[[Callable[[dict[str, Any]], Awaitable[bool]]],
                                                                     Awaitable[None]] | None = None,
    ) -> None:
        """Own one accepted socket until it closes. `on_open(send)` runs once the socket is registered (the web
        app sends the greeting and the missed history there, so nothing pushed meanwhile is lost)."""
        conn = _Conn(socket)
        self._conns.setdefault(visitor_id, set()).add(conn)
        try:
            if on_open is not None:
                await on_open(conn.send)
            while True:
                try:
                    raw = await socket.receive_text()
                except Exception:
                    return  # disconnect (or a binary frame, which we do not speak)
                reply = await self._handle(visitor_id, raw)
                if reply is not None and not await conn.send(reply):
                    return
        finally:
            self._forget(visitor_id, conn)

    # --- inside -----------------------------------------------------------------------------------------------
    def _forget(self, visitor_id: str, conn: _Conn) -> None:
        group = self._conns.get(visitor_id)
        if group is not None:
            group.discard(conn)
            if not group:
                self._conns.pop(visitor_id, None)

    async def _handle(self, visitor_id: str, raw: str) -> dict[str, Any] | None:
        try:
            frame = parse_frame(raw, max_message_chars=self.max_message_chars)
        except BadFrame as bad:
            return {"type": "error", "code": bad.code, "reason": bad.reason, "client_id": bad.client_id}
        if frame.type == "ping":
            return {"type": "pong"}
        if frame.type == "typing":
            return None
        if frame.type == "email":
            return await self._store(visitor_id, frame, self._email_message(visitor_id, frame), "email_ok")
        if frame.type == "hello":
            if not signs(self.identity_secret, frame.user, frame.user_hash):
                log.warning("webchat: visitor %s sent a user id with a wrong signature; kept anonymous", visitor_id)
                return None
            return await self._store(visitor_id, frame, self._user_message(visitor_id, frame), "user_ok")
        return await self._store(visitor_id, frame, self._text_message(visitor_id, frame), "ack")

    def _text_message(self, visitor_id: str, frame: Frame) -> InboundMessage:
        files = tuple(
            Attachment(kind="photo" if f["mime"] in PHOTO_TYPES else "document", name=f["name"], mime=f["mime"],
                       size=f["size"], ref=f["ref"])
            for f in frame.files
        )
        return InboundMessage.build(
            channel=self.name, external_id=f"{visitor_id}:{frame.client_id}", sender=visitor_id, text=frame.text,
            sender_name=visitor_name(visitor_id, frame.place), attachments=files,
        )

    def _email_message(self, visitor_id: str, frame: Frame) -> InboundMessage:
        digest = hashlib.sha256(frame.email.encode()).hexdigest()[:16]
        return InboundMessage.build(
            channel=self.name,
            external_id=f"{visitor_id}:email-{digest}",
            sender=visitor_id,
            text="",
            sender_name=visitor_name(visitor_id, frame.place),
            meta={"claimed_email": frame.email},
        )

    def _user_message(self, visitor_id: str, frame: Frame) -> InboundMessage:
        """The site's signed user: one contact per visitor and user (a reconnect's hello is a repeat)."""
        digest = hashlib.sha256(frame.user.encode()).hexdigest()[:16]
        return InboundMessage.build(
            channel=self.name, external_id=f"{visitor_id}:user-{digest}", sender=visitor_id, text="",
            sender_name=visitor_name(visitor_id, frame.place), meta={"vouched_user": frame.user},
        )

    async def _store(self, visitor_id: str, frame: Frame, message: InboundMessage | None, ok: str) -> dict[str, Any]:
        if self._deliver is None:
            return {"type": "error", "code": "retry", "reason": "Not connected yet, retrying.",
                    "client_id": frame.client_id}
        try:
            await self._deliver(message)
        except InvalidMessage as exc:
            return {"type": "error", "code": "invalid", "reason": str(exc), "client_id": frame.client_id}
        except Exception:
            log.exception("webchat: could not store a message from %s", visitor_id)
            return {"type": "error", "code": "retry", "reason": "Not saved yet, retrying.",
                    "client_id": frame.client_id}
        reply: dict[str, Any] = {"type": ok, "client_id": frame.client_id}
        if ok == "email_ok":
            reply["email"] = frame.email
        elif ok == "user_ok":
            reply["user"] = frame.user
        else:
            reply["id"] = message.external_id
        return reply

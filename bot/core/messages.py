"""The two message shapes every channel speaks, validated at the edge.

A channel adapter builds an `InboundMessage` from whatever arrived and hands it to the dispatcher; the
dispatcher writes `OutboundMessage`s to the outbox and the outbox worker gives them to the channel's `send`.
Validation lives here so that every channel refuses bad input the same way.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

MAX_ID_CHARS = 255
MAX_META_CHARS = 4000
"""A channel fact (a username, a phone, a subject) longer than this is cut: nobody's username is a megabyte."""
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
"""Control characters (Unicode category Cc) but tab, newline and carriage return: one pass, any length."""


class InvalidMessage(ValueError):
    """Raised when inbound input cannot become a message at all (no channel, no id, no sender)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def clean_text(text: str | bytes | None, limit: int | None = None) -> tuple[str, bool]:
    """Make any text storable: decode bytes leniently, drop NULs, control characters and lone surrogates.

    A customer's message is kept whole, whatever its length (each channel bounds what it accepts at its own
    edge, with a clear error); `limit` is for short fields (a name, a form field). Returns the cleaned text and
    whether it was cut to `limit`. Never raises: a message with broken text is still a contact worth logging.
    """
    if text is None:
        return "", False
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8", errors="replace")
    # Lone surrogates cannot be encoded to UTF-8 (PostgreSQL and SQLite both refuse them).
    text = text.encode("utf-8", errors="replace").decode("utf-8")
    text = _CONTROL.sub("", text)
    if limit is not None and len(text) > limit:
        return text[:limit], True
    return text, False


@dataclass(frozen=True, slots=True)
class Attachment:
    """Metadata of a file that came with a message; the content stays where the channel keeps it."""

    kind: str  # photo, document, voice, file, contact, ...
    name: str = ""
    mime: str = ""
    size: int = 0
    ref: str = ""  # a channel file id, a storage path, ...

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "mime": self.mime, "size": self.size, "ref": self.ref}


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One thing a person sent us, on any channel. `external_id` is the idempotency key on its channel."""

    channel: str
    external_id: str
    sender: str
    text: str = ""
    sender_name: str = ""
    thread_ref: str = ""
    attachments: tuple[Attachment, ...] = ()
    received_at: datetime = field(default_factory=utcnow)
    raw_ref: str = ""
    truncated: bool = False
    """The channel had to cut the text (the core never does)."""
    edit_of: str = ""
    """External id of the message this one edits (Telegram edits); empty for a new message."""
    meta: tuple[tuple[str, str], ...] = ()
    """Channel facts the dispatcher may use (e.g. ("auto_submitted", "1") for email auto-replies)."""

    @classmethod
    def build(
        cls,
        *,
        channel: str,
        external_id: str,
        sender: str,
        text: str | bytes | None = "",
        **kwargs: Any,
    ) -> InboundMessage:
        """Validate and normalise what a channel received; raise `InvalidMessage` only if it has no identity."""
        channel, external_id, sender = (_clean_id(v) for v in (channel, external_id, sender))
        if not channel:
            raise InvalidMessage("message has no channel")
        if not external_id:
            raise InvalidMessage(f"{channel}: message has no external id")
        if not sender:
            raise InvalidMessage(f"{channel}: message {external_id} has no sender")
        if len(external_id) > MAX_ID_CHARS or len(sender) > MAX_ID_CHARS:
            raise InvalidMessage(f"{channel}: external id or sender longer than {MAX_ID_CHARS} characters")
        cleaned, truncated = clean_text(text)
        received_at = kwargs.pop("received_at", None) or utcnow()
        if received_at.tzinfo is None:
            received_at = received_at.replace(tzinfo=UTC)
        name, _ = clean_text(kwargs.pop("sender_name", ""), 255)
        meta = kwargs.pop("meta", ())
        meta = tuple(sorted(meta.items())) if isinstance(meta, dict) else tuple(meta)
        # Every stored string is cleaned here, not only the text: a NUL in a username or a reference is refused
        # by the database, and a channel that retries until stored would be stuck on it forever.
        meta = tuple((clean_text(str(k), 100)[0], clean_text(str(v), MAX_META_CHARS)[0]) for k, v in meta)
        for key in ("thread_ref", "raw_ref", "edit_of"):
            if key in kwargs:
                kwargs[key] = _clean_id(kwargs[key])
        return cls(
            channel=channel,
            external_id=external_id,
            sender=sender,
            text=cleaned,
            sender_name=name,
            received_at=received_at,
            truncated=truncated or kwargs.pop("truncated", False),
            attachments=tuple(_clean_attachment(a) for a in kwargs.pop("attachments", ())),
            meta=meta,
            **kwargs,
        )

    def meta_value(self, key: str, default: str = "") -> str:
        return dict(self.meta).get(key, default)


def _clean_id(value: Any) -> str:
    """An id or reference as it can be stored and compared: control characters and lone surrogates dropped."""
    if not isinstance(value, str):
        return ""
    return clean_text(value)[0].strip()


def _clean_attachment(a: Attachment) -> Attachment:
    name, mime, ref, kind = (clean_text(v, 1000)[0] for v in (a.name, a.mime, a.ref, a.kind))
    size = a.size if isinstance(a.size, int) and 0 <= a.size < 2**63 else 0
    return Attachment(kind=kind, name=name, mime=mime, size=size, ref=ref)


@dataclass(frozen=True, slots=True)
class Button:
    """A choice offered with a reply; channels without buttons show them as a numbered list."""

    label: str
    data: str


@dataclass(frozen=True, slots=True)
class OutboundFile:
    """A file that goes with an outbound message, its bytes loaded by the outbox just before the send."""

    name: str
    mime: str
    data: bytes
    kind: str = "document"  # photo or document

    @property
    def is_photo(self) -> bool:
        return self.kind == "photo" or self.mime in ("image/jpeg", "image/png")


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One thing we send. `idempotency_key` makes a retried delivery recognisable on both sides."""

    channel: str
    recipient: str
    text: str
    reply_to: str = ""
    ticket_id: int | None = None
    idempotency_key: str = ""
    buttons: tuple[Button, ...] = ()
    subject: str = ""
    meta: tuple[tuple[str, str], ...] = ()
    """Channel-specific extras (email threading headers, Telegram parse mode, ...)."""
    files: tuple[OutboundFile, ...] = ()
    """Files to send with the text (a channel whose traits say it `takes_files`)."""

    def meta_value(self, key: str, default: str = "") -> str:
        return dict(self.meta).get(key, default)

    def text_with_buttons(self) -> str:
        """The text plus buttons as a numbered list, for channels that cannot show buttons."""
        if not self.buttons:
            return self.text
        lines = [self.text, ""] + [f"{i}. {b.label}" for i, b in enumerate(self.buttons, 1)]
        return "\n".join(lines)


class DeliveryError(Exception):
    """A channel could not deliver. `permanent` means retrying will not help (blocked bot, 5xx mail)."""

    def __init__(self, reason: str, *, permanent: bool = False, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after


Deliver = Callable[[InboundMessage], Awaitable[Any]]
"""The dispatcher's callback a channel gets in `start`; awaiting it means the message is stored."""

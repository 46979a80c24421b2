"""Raw mail bytes → `InboundMessage`, for any real-world MIME, or a rejection with a reason — never a crash.

Decisions worth knowing:
- `external_id` is the Message-ID (normalised to `<...>`); a message without one gets a stable hash of its bytes,
  so the same file imported twice is still recognised.
- `sender` is the From address (lower-cased): the customer is the author. Reply-To is kept in meta ("reply_to")
  for answering, and only stands in as sender when From has no usable address (then Sender, then Return-Path).
- The text is the new part only (quotes and signatures stripped); the raw message is kept by reference.
- RFC 3834: mail that must never get an automatic answer carries meta ("no_auto_reply", "1") and the reason.
"""

from __future__ import annotations

import logging
from datetime import datetime

from bot.core.messages import InboundMessage, InvalidMessage

from .headers import MailHeaders, hashed_message_id, load_message
from .loops import find_bounce, no_auto_reply_reason
from .mimeparts import Body, body_text, walk
from .store import ContentStore

log = logging.getLogger(__name__)

CHANNEL = "email"
MAX_MESSAGE_BYTES = 50_000_000


class MailRejected(ValueError):
    """The bytes cannot become a contact; `reason` says why (it is logged, and shown by the importer)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_mail(
    raw: bytes,
    *,
    store: ContentStore | None = None,
    attachment_max_bytes: int = 10_000_000,
    received_at: datetime | None = None,
    channel: str = CHANNEL,
    extra_meta: tuple[tuple[str, str], ...] = (),
) -> InboundMessage:
    """Parse one message; raise `MailRejected` (and log it) when it cannot be a contact. Nothing else escapes."""
    try:
        return _parse(raw, store, attachment_max_bytes, received_at, channel, extra_meta)
    except MailRejected as exc:
        log.warning("email rejected: %s", exc.reason)
        raise
    except InvalidMessage as exc:
        log.warning("email rejected: %s", exc)
        raise MailRejected(str(exc)) from exc
    except RecursionError as exc:
        log.warning("email rejected: MIME structure too deep to parse")
        raise MailRejected("MIME structure too deep to parse") from exc
    except Exception as exc:  # the last line of defence: a parser bug must not stop the mailbox
        log.exception("email rejected: parser error")
        raise MailRejected(f"unparseable: {type(exc).__name__}: {exc}"[:300]) from exc


def _parse(
    raw: bytes,
    store: ContentStore | None,
    attachment_max_bytes: int,
    received_at: datetime | None,
    channel: str,
    extra_meta: tuple[tuple[str, str], ...],
) -> InboundMessage:
    if not isinstance(raw, bytes | bytearray):
        raise MailRejected(f"not bytes but {type(raw).__name__}")
    raw = bytes(raw)
    if not raw.strip():
        raise MailRejected("empty message")
    if len(raw) > MAX_MESSAGE_BYTES:
        raise MailRejected(f"message of {len(raw)} bytes is over the {MAX_MESSAGE_BYTES} byte limit")
    msg, headers_only = load_message(raw)
    headers = MailHeaders(msg, raw)

    sender, sender_name = headers.sender()
    if not sender:
        raise MailRejected(f"no sender address (From: {headers.text('From')[:100]!r})")

    body = Body(too_deep=headers_only)
    if not headers_only:
        try:
            walk(msg, 0, body, store, attachment_max_bytes)
        except RecursionError:
            body.too_deep = True
    text, stripped = body_text(body, msg, raw, headers_only)

    meta: dict[str, str] = {}
    subject = headers.text("Subject")
    if subject:
        meta["subject"] = subject[:255]
    reply_to = headers.first_address("Reply-To")
    if reply_to and reply_to != sender:
        meta["reply_to"] = reply_to
    reason = no_auto_reply_reason(msg, headers, sender)
    if reason:
        meta["no_auto_reply"] = "1"
        meta["no_auto_reply_reason"] = reason[:200]
    bounce_of, status = find_bounce(msg, headers, sender, text)
    if bounce_of:
        meta["bounce_of"] = bounce_of
        if status:
            meta["bounce_status"] = status
    if stripped:
        meta["quotes_stripped"] = "1"
    if body.too_deep:
        meta["mime_too_deep"] = "1"
    if body.skipped_attachments:
        meta["attachments_not_stored"] = str(body.skipped_attachments)
    meta.update(dict(extra_meta))

    return InboundMessage.build(
        channel=channel,
        external_id=headers.message_id() or hashed_message_id(raw),
        sender=sender,
        sender_name=sender_name,
        text=text,
        thread_ref=" ".join(headers.thread_ids()),
        attachments=tuple(body.attachments),
        received_at=received_at or headers.date(),
        raw_ref=store.put(raw, ".eml") if store else "",
        meta=meta,
    )

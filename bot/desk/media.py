"""Attachments on the desk: how one reads in a line of text, and the Telegram copy that shows it as media.

A customer's photo, document, voice note or sticker reaches an agent on Telegram as the media itself: the outbox
row of the notice names the customer's message (``copy_of``) and the Telegram sender copies it
(``copyMessage``: no download, no upload, the bot's own file ids). An agent's photo or document reaches a
Telegram customer the same way; other channels get the line of text (`attachment_label`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bot.core.messages import Attachment
from channels.base import traits_of

COPY_OF = "copy_of"
"""Outbox meta: the ``m{chat}:{message_id}`` of a Telegram message to copy to the recipient with this row."""
COPY_ONLY = "copy_only"
"""Outbox meta "1": the copy is the message (its caption is the text); the row's text is not sent as well."""
MEDIA_KINDS = frozenset({"photo", "document", "voice", "audio", "video", "video_note", "animation", "sticker"})


def size_label(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / 1024 / 1024:.1f} MB"


def attachment_label(a: Attachment | Mapping[str, Any]) -> str:
    """ "[photo: receipt.jpg, 120 KB]", "[voice: 9 KB]", "[sticker: 😀]": what an attachment is, in a line."""
    get = a.get if isinstance(a, Mapping) else lambda key, default=None: getattr(a, key, default)
    kind = str(get("kind", "") or "file")
    name = str(get("name", "") or "")
    size = get("size", 0)
    details = [name] if name and kind not in ("location",) else []
    if isinstance(size, int) and size > 0:
        details.append(size_label(size))
    if kind == "location" and get("ref"):
        details = [str(get("ref"))]
    return f"[{kind}: {', '.join(details)}]" if details else f"[{kind}]"


def said(text: str, attachments: Iterable[Attachment | Mapping[str, Any]]) -> str:
    """The text of a message with its attachments named after it; "(no text)" only when there is nothing."""
    labels = " ".join(attachment_label(a) for a in attachments)
    return " ".join(part for part in (text.strip(), labels) if part) or "(no text)"


def has_media(attachments: Iterable[Attachment]) -> bool:
    return any(a.kind in MEDIA_KINDS and a.ref for a in attachments)


def copy_media(
    rows: Iterable[dict[str, Any]], key_prefix: str, channel: str, source: str, *, only: bool = False
) -> int:
    """Mark the outbox rows on `channel` whose key starts with `key_prefix` to carry a copy of its message
    `source` (a channel whose traits say it `copies_media`)."""
    if not traits_of(channel).copies_media:
        return 0
    marked = 0
    for row in rows:
        if row["channel"] == channel and row["idempotency_key"].startswith(key_prefix):
            row["meta"][COPY_OF] = source
            if only:
                row["meta"][COPY_ONLY] = "1"
            marked += 1
    return marked

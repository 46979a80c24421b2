"""Walking a MIME tree for what people read (text) and what they attached, bounded against hostile nesting."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import Message

from bot.core.messages import Attachment

from .decode import decode_bytes, decode_rfc2047, html_to_text
from .quotes import strip_quotes_and_signature
from .store import ContentStore

MAX_DEPTH = 12
"""Deeper MIME nesting is not walked: its parts are neither text nor attachments we keep."""
MAX_PARTS = 200
# The text is never cut: a mail is bounded by its size (parse.MAX_MESSAGE_BYTES), and a customer's message is
# stored whole, however long.


@dataclass
class Body:
    """What the MIME walk collects."""

    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    parts: int = 0
    too_deep: bool = False
    skipped_attachments: int = 0


def iter_parts(msg: Message, limit: int = MAX_PARTS):
    """Every part, depth first, without recursion (the stdlib's walk() recurses and deep mail overflows it)."""
    stack, count = [msg], 0
    while stack and count < limit:
        part = stack.pop()
        count += 1
        yield part
        try:
            payload = part.get_payload()
        except Exception:
            continue
        if isinstance(payload, list):
            stack.extend(reversed([p for p in payload if isinstance(p, Message)]))


def walk(part: Message, depth: int, body: Body, store: ContentStore | None, max_bytes: int) -> None:
    """Collect text and attachments; bounded in depth and part count (hostile mail nests thousands deep)."""
    body.parts += 1
    if depth > MAX_DEPTH or body.parts > MAX_PARTS:
        body.too_deep = True
        return
    ctype = content_type(part)
    if part.is_multipart():
        children = [p for p in (part.get_payload() or []) if isinstance(p, Message)]
        if ctype == "multipart/alternative":
            walk_alternative(children, depth, body, store, max_bytes)
            return
        for child in children:
            walk(child, depth + 1, body, store, max_bytes)
        return
    disposition = _disposition(part)
    filename = _filename(part)
    if ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename:
        text = _part_text(part)
        (body.plain if ctype == "text/plain" else body.html).append(text)
        return
    if ctype in ("message/delivery-status", "text/rfc822-headers"):
        return  # read by the bounce detector; not something an agent reads as text
    _add_attachment(part, ctype, filename, body, store, max_bytes)


def walk_alternative(children: list[Message], depth: int, body: Body, store, max_bytes: int) -> None:
    """Of the alternatives, take the first with plain text, else the first with HTML, else the last."""
    walked = []
    for child in children:
        sub = Body(parts=body.parts)
        walk(child, depth + 1, sub, store, max_bytes)
        body.parts = sub.parts
        body.too_deep = body.too_deep or sub.too_deep
        walked.append(sub)
    chosen = next((b for b in walked if any(t.strip() for t in b.plain)), None)
    chosen = chosen or next((b for b in walked if any(t.strip() for t in b.html)), None)
    chosen = chosen or (walked[-1] if walked else None)
    if chosen:
        body.plain += chosen.plain
        body.html += chosen.html
        body.attachments += chosen.attachments
        body.skipped_attachments += chosen.skipped_attachments


def _add_attachment(part: Message, ctype: str, filename: str, body: Body, store, max_bytes: int) -> None:
    data = payload_bytes(part)
    if ctype == "message/rfc822" and not data:
        try:
            data = part.as_bytes()
        except Exception:
            data = b""
    ref = ""
    if store is not None and len(data) <= max_bytes:
        ref = store.put(data)
    elif store is not None:
        body.skipped_attachments += 1
    kind = "photo" if ctype.startswith("image/") else "file"
    name = filename or ("message.eml" if ctype == "message/rfc822" else "")
    body.attachments.append(Attachment(kind=kind, name=name[:255], mime=ctype[:100], size=len(data), ref=ref))


def content_type(part: Message) -> str:
    try:
        return part.get_content_type().lower()
    except Exception:
        return "application/octet-stream"


def _disposition(part: Message) -> str:
    try:
        return (part.get_content_disposition() or "").lower()
    except Exception:
        return ""


def _filename(part: Message) -> str:
    try:
        name = part.get_filename() or ""
    except Exception:
        try:
            name = str(part.get_param("filename", "", header="content-disposition") or "")
        except Exception:
            name = ""
    if isinstance(name, tuple):  # compat32 returns RFC 2231 values undecoded
        name = decode_bytes(str(name[2]).encode("latin-1", "replace"), name[0])[0]
    return " ".join(decode_rfc2047(str(name)).split())


def payload_bytes(part: Message) -> bytes:
    """The decoded payload; broken base64/quoted-printable decode as far as they go."""
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data
    try:
        payload = part.get_payload()
    except Exception:
        return b""
    if isinstance(payload, str):
        return payload.encode("utf-8", errors="surrogateescape")
    return b""


def _part_text(part: Message) -> str:
    data = payload_bytes(part)
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    return decode_bytes(data, charset)[0]


def body_text(body: Body, msg: Message, raw: bytes, headers_only: bool) -> tuple[str, bool]:
    """The text people read: plain parts, else HTML converted, quotes stripped; empty stays empty."""
    text = "\n\n".join(t.strip() for t in body.plain if t.strip())
    if not text:
        html = "\n".join(h for h in body.html if h.strip())
        text = html_to_text(html) if html else ""
    if not text and body.too_deep:
        text = _deep_text(msg, raw, headers_only)
    return strip_quotes_and_signature(text)


_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_MIME_NOISE = re.compile(r"^(--\S*|[A-Za-z][A-Za-z0-9-]{0,40}:.*|\s+\S.*=.*)$")


def _deep_text(msg: Message, raw: bytes, headers_only: bool) -> str:
    """Text from mail nested deeper than the walk goes: plain parts found without recursion, else the body's
    readable lines with MIME boundaries and part headers dropped."""
    if not headers_only:
        found = [_part_text(p).strip() for p in iter_parts(msg, MAX_PARTS * 5)
                 if not p.is_multipart() and content_type(p) == "text/plain"]
        text = "\n\n".join(t for t in found if t)
        if text:
            return text
    parts = _BLANK_LINE.split(raw, maxsplit=1)
    rest = decode_bytes(parts[1], None)[0] if len(parts) > 1 else ""
    lines = [line for line in rest.splitlines() if line.strip() and not _MIME_NOISE.match(line)]
    return "\n".join(lines)

"""Mail loops and bounces: which messages must never get an automatic answer (RFC 3834), and which are bounces
of our own mail (and of which message)."""

from __future__ import annotations

import re
from email.message import Message
from email.parser import HeaderParser

from .decode import decode_bytes
from .headers import MailHeaders, normalise_msgid
from .mimeparts import content_type, iter_parts, payload_bytes

_BOUNCE_SENDERS = ("mailer-daemon", "postmaster")
_BOUNCE_SUBJECT = re.compile(
    r"(undeliver|delivery (status|failure)|returned mail|failure notice|mail delivery failed)", re.I
)


def no_auto_reply_reason(msg: Message, headers: MailHeaders, sender: str) -> str:
    """Why RFC 3834 (and common practice) forbids answering this automatically; empty when allowed."""
    auto = headers.text("Auto-Submitted").lower()
    if auto and auto.split(";")[0].strip() != "no":
        return f"auto-submitted: {auto}"
    precedence = headers.text("Precedence").lower()
    if precedence in ("bulk", "list", "junk"):
        return f"precedence: {precedence}"
    for name in ("List-Id", "List-Unsubscribe", "List-Post", "List-Help", "List-Subscribe", "List-Owner"):
        if msg.get(name) is not None:
            return f"mailing list ({name.lower()})"
    return_path = headers.text("Return-Path")
    if msg.get("Return-Path") is not None and return_path.replace(" ", "") in ("<>", ""):
        return "empty return-path"
    if content_type(msg) == "multipart/report":
        return "delivery or read report"
    suppress = headers.text("X-Auto-Response-Suppress").lower()
    if any(word in suppress for word in ("all", "autoreply", "oof")):
        return f"x-auto-response-suppress: {suppress}"
    if msg.get("X-Autoreply") is not None or msg.get("X-Autorespond") is not None:
        return "x-autoreply"
    if sender.split("@")[0] in _BOUNCE_SENDERS:
        return f"sent by {sender.split('@')[0]}"
    return ""


def find_bounce(msg: Message, headers: MailHeaders, sender: str, text: str) -> tuple[str, str]:
    """For a bounce: the Message-ID of the mail that bounced, and the DSN status; else empty strings."""
    is_report = content_type(msg) == "multipart/report"
    looks_like = sender.split("@")[0] in _BOUNCE_SENDERS and bool(_BOUNCE_SUBJECT.search(headers.text("Subject")))
    if not (is_report or looks_like):
        return "", ""
    original, status = "", ""
    for part in iter_parts(msg):
        ctype = content_type(part)
        if ctype == "message/delivery-status" and not status:
            status = _dsn_status(part)
        elif ctype == "message/rfc822" and not original:
            original = _msgid_in_embedded(part)
        elif ctype == "text/rfc822-headers" and not original:
            data = payload_bytes(part)
            try:
                embedded = HeaderParser().parsestr(decode_bytes(data, None)[0])
                original = normalise_msgid(str(embedded.get("Message-ID", "")))
            except Exception:
                original = ""
    if not original:
        # Old-style bounces quote the original headers in the text.
        match = re.search(r"^\s*Message-ID:\s*(<[^<>\s]+>)", _all_text(msg), re.I | re.M)
        original = match.group(1) if match else ""
    return original, status


def _msgid_in_embedded(part: Message) -> str:
    try:
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if isinstance(inner, Message):
            return normalise_msgid(str(inner.get("Message-ID", "") or ""))
    except Exception:
        pass
    return ""


def _dsn_status(part: Message) -> str:
    try:
        raw = part.as_bytes()
    except Exception:
        return ""
    match = re.search(rb"^Status:\s*([245]\.\d{1,3}\.\d{1,3})", raw, re.I | re.M)
    return match.group(1).decode("ascii") if match else ""


def _all_text(msg: Message) -> str:
    chunks = []
    for part in iter_parts(msg):
        if not part.is_multipart():
            chunks.append(decode_bytes(payload_bytes(part)[:200_000], None)[0])
    return "\n".join(chunks)

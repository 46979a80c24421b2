"""OutboundMessage → an RFC 5322 message that threads on the customer's side and never starts a mail loop.

Our Message-ID is derived from the outbox idempotency key when there is one, so a retried send after a lost
answer carries the same id and the customer's mail client (and our own threading) sees one message.
"""

from __future__ import annotations

import hashlib
import re
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid

from bot.core.messages import OutboundMessage
from channels.base import ChannelTraits, ReplyFields

MAX_REFERENCES = 20
_MSGID = re.compile(r"<[^<>\s]{1,250}>")
_MIME_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}")
_ADDRESS = re.compile(r"^[^@\s<>\"(),;:]{1,200}@[^@\s<>\"(),;:]{1,200}$")


class BadOutboundMail(ValueError):
    """The message cannot be sent as mail at all (no valid recipient or sender); retrying will not help."""


def ticket_tag(ticket_id: int) -> str:
    return f"[#T-{ticket_id}]"


class EmailTraits(ChannelTraits):
    """Mail threads: a reply is "Re: <subject> [#T-n]", In-Reply-To the customer's last mail, References the
    conversation's earlier Message-IDs (so the customer's client, and our own threading, keep one thread)."""

    threads = True
    takes_files = "attach"

    @staticmethod
    def reply_fields(ticket_id: int, subject: str, last_ext: str, refs: list[str]) -> ReplyFields:
        base = subject or "Your request"
        base = base if base.lower().startswith("re:") else f"Re: {base}"
        tag = ticket_tag(ticket_id)
        subject = base if tag in base else f"{base} {tag}"
        reply_to = last_ext or (refs[-1] if refs else "")
        return ReplyFields(subject, reply_to, (("references", " ".join(dict.fromkeys(refs))),))


def subject_for(message: OutboundMessage) -> str:
    """The subject as given (one line), with the ticket tag added when the message belongs to a ticket."""
    subject = " ".join((message.subject or "").split())
    if message.ticket_id is not None:
        tag = ticket_tag(message.ticket_id)
        if tag not in subject:
            subject = f"{subject} {tag}" if subject else f"Your request {tag}"
    return subject[:900] or "Your request"


def message_id_for(message: OutboundMessage, domain: str) -> str:
    """Stable for one outbox entry (same idempotency key, same id); random otherwise."""
    if message.idempotency_key:
        digest = hashlib.sha256(message.idempotency_key.encode()).hexdigest()[:32]
        return f"<td.{digest}@{domain}>"
    return make_msgid(idstring="td", domain=domain)


def thread_ids(message: OutboundMessage) -> tuple[str, list[str]]:
    """In-Reply-To and References: the message we answer, after the earlier ids of the thread."""
    in_reply_to = next(iter(_MSGID.findall(message.reply_to or "")), "")
    refs: list[str] = []
    for mid in _MSGID.findall(message.meta_value("references")) + ([in_reply_to] if in_reply_to else []):
        if mid in refs:
            refs.remove(mid)
        refs.append(mid)
    # RFC 5322 keeps the first and the most recent ids when the list grows long.
    if len(refs) > MAX_REFERENCES:
        refs = refs[:1] + refs[-(MAX_REFERENCES - 1) :]
    return in_reply_to, refs


def build_email(message: OutboundMessage, *, from_address: str, from_name: str = "") -> EmailMessage:
    """The mail for one outbound message; raise `BadOutboundMail` when it has no valid address to go to."""
    recipient = (message.recipient or "").strip()
    if not _ADDRESS.match(recipient):
        raise BadOutboundMail(f"not a mail address: {recipient[:100]!r}")
    if not _ADDRESS.match(from_address or ""):
        raise BadOutboundMail(f"the desk's own address is not set or invalid: {from_address!r}")
    domain = from_address.rsplit("@", 1)[1]
    mail = EmailMessage()
    mail["From"] = formataddr((" ".join(from_name.split()), from_address))
    mail["To"] = recipient
    mail["Subject"] = subject_for(message)
    mail["Date"] = formatdate(localtime=False, usegmt=True)
    mail["Message-ID"] = message_id_for(message, domain)
    in_reply_to, refs = thread_ids(message)
    if in_reply_to:
        mail["In-Reply-To"] = in_reply_to
    if refs:
        mail["References"] = " ".join(refs)
    if message.meta_value("author") == "bot":
        # RFC 3834: mark automatic answers so other robots (and out-of-office replies) leave them alone.
        mail["Auto-Submitted"] = "auto-replied"
        mail["X-Auto-Response-Suppress"] = "All"
    if message.ticket_id is not None:
        mail["X-Tierdesk-Ticket"] = str(message.ticket_id)
    mail.set_content(message.text_with_buttons() or " ", subtype="plain", charset="utf-8")
    for file in message.files:
        maintype, _, subtype = file.mime.partition("/")
        if not (_MIME_PART.fullmatch(maintype) and _MIME_PART.fullmatch(subtype)):
            maintype, subtype = "application", "octet-stream"
        mail.add_attachment(file.data, maintype=maintype, subtype=subtype, filename=file.name or "file")
    return mail

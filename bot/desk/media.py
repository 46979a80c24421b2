"""An agent's photo or document for a customer, on whatever channel the customer writes from.

To a customer on the agent's own channel (Telegram) the agent's message is copied (``copyMessage``). To a mail
customer the file goes as a MIME attachment, to a web chat visitor as a link in the reply (the web inbox's
way): the outbox row names the file (its Telegram file id) and the outbox fetches it when it sends
(`bot.core.attachments.OutboxFiles`). Anything else is refused before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.core.attachments import (
    MAX_FILE_BYTES,
    attach_files,
    copy_media,
    file_link,
    file_name,
    file_spec,
    has_media,
    new_token,
    said,
)
from bot.desk.router import DeskCall, DeskError
from channels.base import traits_of
from crm_store.models import Ticket
from crm_store.repositories import contacts as contacts_repo

MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
"""The largest file a bot may fetch from Telegram: an agent's attachment over it is refused, not cut."""


@dataclass
class AgentFiles:
    """How the agent's media goes to the customer: copied (same channel) or as files named in the rows."""

    source: str
    """The agent's message (``m{chat}:{id}``), copied as it is."""
    channel: str
    copy: bool
    specs: list[dict[str, Any]] = field(default_factory=list)
    links: list[str] = field(default_factory=list)

    def text(self, text: str, attachments: Any) -> str:
        """The reply's text: the agent's words (or the files' labels), and the links a web chat visitor opens."""
        return "\n".join(filter(None, [text or said("", attachments), *self.links]))

    def mark(self, rows: list[dict[str, Any]], prefix: str, from_channel: str) -> None:
        rows = [r for r in rows if r["audience"] == "customer"]
        if self.copy:
            copy_media(rows, prefix, from_channel, self.source, only=True)
        else:
            attach_files(rows, prefix, self.specs)


async def agent_files(call: DeskCall, ticket: Ticket) -> AgentFiles | None:
    """The agent's media for the customer of `ticket`, None when the message has none; a `DeskError` (nothing
    written) when it cannot reach them: too big, not from a channel that keeps files, a channel without files."""
    media = [a for a in call.msg.attachments if a.kind not in ("contact", "location")]
    if not media:
        return None
    too_big = [a for a in media if a.size > MAX_ATTACHMENT_BYTES]
    if too_big:
        raise DeskError(
            f"{said('', too_big)} is over {MAX_ATTACHMENT_BYTES // 1024 // 1024} MB; nothing was sent to T-{ticket.id}."
        )
    origin = call.msg.channel
    if not traits_of(origin).copies_media or not has_media(media):
        raise DeskError("Attachments can be sent from Telegram only; nothing was sent.")
    last = await contacts_repo.last_inbound(call.ctx.session, ticket.id)
    channel = last.channel if last else ticket.channel
    if channel == origin:
        return AgentFiles(call.msg.external_id, channel, copy=True)
    how = traits_of(channel).takes_files
    if not how:
        raise DeskError(
            f"The customer of T-{ticket.id} writes via {channel}, which takes no files; nothing was sent. "
            f"/reply {ticket.id} <text> sends words."
        )
    too_big = [a for a in media if a.size > MAX_FILE_BYTES]
    if too_big:
        raise DeskError(
            f"{said('', too_big)} is over {MAX_FILE_BYTES // 1024 // 1024} MB, the largest file sent on by "
            f"{channel}; nothing was sent to T-{ticket.id}."
        )
    files = AgentFiles(call.msg.external_id, channel, copy=False)
    base = call.ctx.settings.web.public_url or ""
    for a in media:
        token = new_token() if how == "link" else ""
        files.specs.append(file_spec(a, origin, token))
        if token:
            files.links.append(file_link(base, token, file_name(a), a.size))
    return files

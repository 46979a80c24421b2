"""`EmailChannel`: IMAP and an optional LMTP/SMTP listener in, SMTP out, behind the `Channel` protocol.

Built from plain keyword arguments (channels import nothing of ours but `bot.core.messages`);
`EmailChannel.from_settings(section)` reads any object with the fields of the email settings section.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import fields
from email.message import EmailMessage
from typing import Any

import aiosmtplib
from aiosmtplib.email import flatten_message

from bot.core.messages import Deliver, DeliveryError, InboundMessage, OutboundMessage
from channels.base import cancel_and_wait
from channels.send_limits import SendLimits

from .imap import ImapAccount, ImapInbox
from .listener import DeliveringHandler, start_listener
from .outbound import BadOutboundMail, EmailTraits, build_email
from .parse import parse_mail
from .store import ContentStore

log = logging.getLogger(__name__)


class EmailChannel(EmailTraits):
    def __init__(
        self,
        *,
        address: str,
        from_name: str = "",
        imap_host: str = "",
        imap_port: int = 993,
        imap_ssl: bool = True,
        imap_user: str = "",
        imap_password: str = "",
        imap_mailbox: str = "INBOX",
        imap_poll_s: float = 30.0,
        imap_idle: bool = True,
        rejected_mailbox: str = "tierdesk-rejected",
        smtp_host: str = "",
        smtp_port: int = 587,
        smtp_starttls: bool = True,
        smtp_tls: bool = False,
        smtp_user: str = "",
        smtp_password: str = "",
        smtp_timeout_s: float = 30.0,
        smtp_concurrency: int = 4,
        lmtp_listen: str = "",
        attachment_dir: str = ".tierdesk/attachments",
        attachment_max_bytes: int = 10_000_000,
        name: str = "email",
        **_ignored: Any,
    ) -> None:
        self.name = name
        self.address = address
        self.smtp_concurrency = smtp_concurrency
        self.limits = SendLimits()
        self.from_name = from_name
        self.store = ContentStore(attachment_dir)
        self.attachment_max_bytes = attachment_max_bytes
        self.imap_account = (
            ImapAccount(
                host=imap_host, port=imap_port, ssl=imap_ssl, user=imap_user, password=imap_password,
                mailbox=imap_mailbox, rejected_mailbox=rejected_mailbox, poll_s=imap_poll_s, use_idle=imap_idle,
            )
            if imap_host
            else None
        )
        self.smtp = {
            "hostname": smtp_host, "port": smtp_port, "username": smtp_user or None,
            "password": smtp_password or None, "use_tls": smtp_tls, "start_tls": smtp_starttls and not smtp_tls,
            "timeout": smtp_timeout_s,
        }
        self.lmtp_listen = lmtp_listen
        self.inbox: ImapInbox | None = None
        self.listener_handler: DeliveringHandler | None = None
        self._imap_task: asyncio.Task | None = None
        self._server: asyncio.Server | None = None

    @classmethod
    def from_settings(cls, section: Any, *, send_only: bool = False, **overrides: Any) -> EmailChannel:
        """From the email settings section (or any object/dict with the same field names); `send_only` sends by
        SMTP without IMAP or the listener."""
        if hasattr(section, "model_dump"):
            values = section.model_dump()
        elif isinstance(section, dict):
            values = dict(section)
        else:
            values = {f.name: getattr(section, f.name) for f in fields(section)}
        if send_only:
            values.update(imap_host="", lmtp_listen="")
        values.update(overrides)
        return cls(**values)

    def parse(self, raw: bytes) -> InboundMessage:
        """Raw bytes → message with raw and attachments stored; raises `MailRejected`."""
        return parse_mail(raw, store=self.store, attachment_max_bytes=self.attachment_max_bytes, channel=self.name)

    async def start(self, deliver: Deliver) -> None:
        if self.imap_account is not None:
            self.inbox = ImapInbox(self.imap_account, self.parse, deliver)
            self._imap_task = asyncio.create_task(self.inbox.run(), name=f"{self.name}-imap")
        if self.lmtp_listen:
            self.listener_handler = DeliveringHandler(self.parse, deliver)
            self._server = await start_listener(self.lmtp_listen, self.listener_handler)

    async def stop(self) -> None:
        if self._imap_task is not None:
            if not await cancel_and_wait(self._imap_task):
                log.warning("%s: the IMAP loop did not stop within 10 s; going on without it", self.name)
            self._imap_task = None
        if self.inbox is not None:
            await self.inbox.close()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    def poll_now(self) -> None:
        """Look at the mailbox now (tests, and a hint after an operator action)."""
        if self.inbox is not None:
            self.inbox.wake()

    def use_limits(self, limits: SendLimits) -> None:
        """Share the relay's concurrency with every other process (limits kept in Redis)."""
        self.limits = limits

    async def _mail(self, message: OutboundMessage) -> tuple[EmailMessage | bytes, str]:
        """The mail; with files, built and encoded in a thread (a 10 MB attachment takes seconds to encode, which
        would stall every other conversation on the event loop) and handed over as its bytes."""
        if not message.files:
            mail = build_email(message, from_address=self.address, from_name=self.from_name)
            return mail, str(mail["Message-ID"])

        def encoded() -> tuple[bytes, str]:
            mail = build_email(message, from_address=self.address, from_name=self.from_name)
            return flatten_message(mail, utf8=False, cte_type="8bit"), str(mail["Message-ID"])

        return await asyncio.to_thread(encoded)

    async def send(self, message: OutboundMessage) -> str:
        """Send by SMTP; return our Message-ID. 4xx and network trouble retry, 5xx and bad addresses do not."""
        if not self.smtp["hostname"]:
            raise DeliveryError("no SMTP relay configured", permanent=True)
        try:
            mail, message_id = await self._mail(message)
        except BadOutboundMail as exc:
            raise DeliveryError(str(exc), permanent=True) from exc
        try:
            async with self.limits.slot(f"smtp:{self.smtp['hostname']}", self.smtp_concurrency):
                if isinstance(mail, bytes):
                    await aiosmtplib.send(mail, sender=self.address, recipients=[message.recipient.strip()],
                                          **self.smtp)
                else:
                    await aiosmtplib.send(mail, **self.smtp)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            raise _by_code(min(codes) if codes else 550, "; ".join(r.message for r in exc.recipients)) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise _by_code(exc.code, exc.message) from exc
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP relay unreachable: {type(exc).__name__}: {exc}", permanent=False) from exc
        return message_id


def _by_code(code: int, text: str) -> DeliveryError:
    """RFC 5321: 4xx is transient (retry with backoff), 5xx is permanent."""
    reason = f"SMTP {code}: {' '.join(str(text).split())[:300]}"
    return DeliveryError(reason, permanent=500 <= code < 600)

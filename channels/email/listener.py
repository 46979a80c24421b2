"""Direct delivery: an LMTP (or SMTP) listener whose "250" means the contact is committed.

The MTA keeps a message queued until we answer 250, so awaiting `deliver` before answering gives the same
no-loss guarantee as IMAP's mark-after-commit: a failure answers 451 and the MTA retries later. Mail that can
never become a contact is refused with 550 and the reason (the MTA bounces it to the sender).

`listen` is "host:port" (LMTP, as from Postfix's lmtp transport) or "smtp://host:port".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP

from bot.core.messages import InboundMessage

from .parse import MAX_MESSAGE_BYTES, MailRejected

log = logging.getLogger(__name__)


def parse_listen(listen: str) -> tuple[str, str, int]:
    """("lmtp"|"smtp", host, port) from "host:port", "lmtp://host:port" or "smtp://host:port"."""
    scheme, sep, rest = listen.partition("://")
    if not sep:
        scheme, rest = "lmtp", listen
    scheme = scheme.lower()
    host, _, port = rest.rpartition(":")
    if scheme not in ("lmtp", "smtp") or not host or not port.isdigit():
        raise ValueError(f"listen address must be host:port or lmtp://host:port or smtp://host:port, not {listen!r}")
    return scheme, host.strip("[]"), int(port)


class DeliveringHandler:
    """aiosmtpd handler: parse, await deliver, then answer."""

    def __init__(self, parse: Callable[[bytes], InboundMessage], deliver: Callable[[InboundMessage], Awaitable]):
        self.parse = parse
        self.deliver = deliver
        self.delivered = 0

    async def handle_DATA(self, server, session, envelope) -> str:
        recipients = max(len(envelope.rcpt_tos), 1)
        status = await self._status(envelope.original_content or b"")
        # LMTP answers once per recipient; the contact is logged once whatever the recipient count.
        return "\r\n".join([status] * recipients) if isinstance(server, LMTP) else status

    async def _status(self, raw: bytes) -> str:
        try:
            message = self.parse(raw)
        except MailRejected as exc:
            return f"550 5.6.0 rejected: {' '.join(exc.reason.split())[:200]}"
        try:
            await self.deliver(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("listener: %s not delivered (%s: %s); answering 451", message.external_id,
                        type(exc).__name__, exc)
            return "451 4.3.0 temporarily unable to store the message, try again later"
        self.delivered += 1
        return "250 2.0.0 OK stored"


async def start_listener(listen: str, handler: DeliveringHandler) -> asyncio.Server:
    scheme, host, port = parse_listen(listen)
    protocol = LMTP if scheme == "lmtp" else SMTP
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: protocol(handler, data_size_limit=MAX_MESSAGE_BYTES, enable_SMTPUTF8=True, loop=loop),
        host=host,
        port=port,
    )
    log.info("email listener (%s) on %s:%s", scheme, host, port)
    return server

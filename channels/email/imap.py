"""IMAP inbound: fetch new mail by UID, hand each to `deliver`, and mark it handled only after deliver returned.

Why in that order: `deliver` returns once the contact is committed, so a crash between fetch and commit leaves
the mail unseen on the server and the next run fetches it again; the dispatcher's Message-ID idempotency makes
that second delivery a no-op if the commit did happen. A message that cannot be parsed is moved to a
"rejected" folder (or flagged when the server cannot move) so one bad mail never blocks the mailbox.

A fetched batch reaches the dispatcher side by side, each sender's mails one after the other in mailbox order:
the dispatcher stores them together (one transaction instead of one per mail) and a sender's mails keep their
order. One mail that is not stored does not hold back the next; it stays unseen for the next round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aioimaplib

from bot.core.messages import InboundMessage

from .parse import MailRejected

log = logging.getLogger(__name__)

FETCH_BATCH = 20
_UID_IN_FETCH = re.compile(rb"\bUID (\d+)")


class ImapError(RuntimeError):
    """The server refused a command we rely on (login, select); the loop reconnects with backoff."""


@dataclass(frozen=True)
class ImapAccount:
    host: str
    port: int
    ssl: bool
    user: str
    password: str
    mailbox: str = "INBOX"
    rejected_mailbox: str = "tierdesk-rejected"
    poll_s: float = 30.0
    use_idle: bool = True
    timeout_s: float = 30.0


Parse = Callable[[bytes], InboundMessage]
Deliver = Callable[[InboundMessage], Awaitable[object]]


class ImapInbox:
    """One IMAP connection working through a mailbox: process what is unseen, then wait (IDLE or poll)."""

    def __init__(self, account: ImapAccount, parse: Parse, deliver: Deliver) -> None:
        self.account = account
        self.parse = parse
        self.deliver = deliver
        self.client: aioimaplib.IMAP4 | None = None
        self.delivered = 0
        self.rejected = 0
        self.failed = 0
        self._wake = asyncio.Event()
        self._rejected_folder_ready = False

    async def run(self) -> None:
        """Forever: connect, drain the mailbox, wait for more; reconnect with backoff on any failure."""
        backoff = 1.0
        while True:
            try:
                await self._connect()
                backoff = 1.0
                while True:
                    await self.process_unseen()
                    await self._wait_for_mail()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # network drops, server restarts, protocol surprises: reconnect
                log.warning("imap %s:%s: %s: %s; reconnecting in %.0fs", self.account.host, self.account.port,
                            type(exc).__name__, exc, backoff)
                await self.close()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)

    def wake(self) -> None:
        """Process the mailbox now instead of waiting for the next poll."""
        self._wake.set()

    async def close(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        with contextlib.suppress(Exception):
            if client.has_pending_idle():
                client.idle_done()
            await asyncio.wait_for(client.logout(), 5)

    async def _connect(self) -> None:
        acc = self.account
        cls = aioimaplib.IMAP4_SSL if acc.ssl else aioimaplib.IMAP4
        client = cls(host=acc.host, port=acc.port, timeout=acc.timeout_s)
        self.client = client
        await client.wait_hello_from_server()
        response = await client.login(acc.user, acc.password)
        if response.result != "OK":
            raise ImapError(f"login as {acc.user!r} refused: {response.lines[-1:]!r}")
        response = await client.select(acc.mailbox)
        if response.result != "OK":
            raise ImapError(f"cannot select {acc.mailbox!r}: {response.lines[-1:]!r}")

    async def process_unseen(self) -> int:
        """Deliver every unseen message once; returns how many were handled (delivered or rejected)."""
        client = self._client()
        await client.noop()  # servers (dovecot among them) show mail that arrived meanwhile only after a sync
        response = await client.uid_search("UNSEEN", charset=None)
        if response.result != "OK":
            raise ImapError(f"search failed: {response.lines[-1:]!r}")
        uids = [int(u) for u in bytes(response.lines[0]).split() if u.isdigit()] if response.lines else []
        handled = 0
        for start in range(0, len(uids), FETCH_BATCH):
            handled += await self._handle_batch(await self._fetch(uids[start : start + FETCH_BATCH]))
        return handled

    async def _handle_batch(self, fetched: list[tuple[int, bytes]]) -> int:
        """Deliver a fetched batch (senders side by side); returns how many were delivered or set aside."""
        by_sender: dict[str, list[tuple[int, InboundMessage]]] = defaultdict(list)
        handled = 0
        for uid, raw in fetched:
            try:
                message = self.parse(raw)
            except MailRejected as exc:
                log.warning("imap uid %s rejected: %s", uid, exc.reason)
                await self._set_aside(uid)
                self.rejected += 1
                handled += 1
                continue
            by_sender[message.sender].append((uid, message))
        delivered: list[int] = []
        failures: list[tuple[int, InboundMessage, Exception]] = []

        async def sender(mails: list[tuple[int, InboundMessage]]) -> None:
            for uid, message in mails:
                try:
                    await self.deliver(message)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the store is down or the dispatcher failed: unseen, retried next round
                    failures.append((uid, message, exc))
                else:
                    delivered.append(uid)

        await asyncio.gather(*(sender(mails) for mails in by_sender.values()))
        if failures:
            uid, message, exc = failures[0]
            log.warning("imap: %d of %d mails not delivered, they stay unseen (first: uid %s, %s: %s: %s)",
                        len(failures), len(fetched), uid, message.external_id, type(exc).__name__, exc)
            self.failed += len(failures)
        await self._mark_seen(sorted(delivered))
        self.delivered += len(delivered)
        return handled + len(delivered)

    async def _fetch(self, uids: list[int]) -> list[tuple[int, bytes]]:
        client = self._client()
        response = await client.uid("fetch", ",".join(map(str, uids)), "(UID BODY.PEEK[])")
        if response.result != "OK":
            raise ImapError(f"fetch failed: {response.lines[-1:]!r}")
        out: list[tuple[int, bytes]] = []
        lines = response.lines
        for i, line in enumerate(lines):
            if isinstance(line, bytes) and b" FETCH " in line and i + 1 < len(lines):
                match = _UID_IN_FETCH.search(line)
                literal = lines[i + 1]
                if match and isinstance(literal, bytearray | bytes) and not line.rstrip().endswith(b")"):
                    out.append((int(match.group(1)), bytes(literal)))
        return out

    async def _mark_seen(self, uids: list[int]) -> None:
        if not uids:
            return
        response = await self._client().uid("store", ",".join(map(str, uids)), "+FLAGS.SILENT", r"(\Seen)")
        if response.result != "OK":
            # Delivered but not marked: the next round delivers them again and the dispatcher sees duplicates.
            log.warning("imap uids %s delivered but could not be marked seen: %r", uids, response.lines[-1:])

    async def _set_aside(self, uid: int) -> None:
        """Move a rejected mail out of the way; flag it when the server cannot move."""
        client = self._client()
        folder = self.account.rejected_mailbox
        if folder and client.has_capability("MOVE"):
            if not self._rejected_folder_ready:
                await client.create(folder)  # "already exists" is fine
                self._rejected_folder_ready = True
            response = await client.uid("move", str(uid), folder)
            if response.result == "OK":
                return
            log.info("imap uid %s: move to %s failed (%r); flagging instead", uid, folder, response.lines[-1:])
        await client.uid("store", str(uid), "+FLAGS.SILENT", r"(\Seen \Flagged)")

    async def _wait_for_mail(self) -> None:
        client = self._client()
        if self.account.use_idle and client.has_capability("IDLE"):
            idle = await client.idle_start(timeout=max(self.account.poll_s, 1.0))
            wake = asyncio.ensure_future(self._wake.wait())
            push = asyncio.ensure_future(client.wait_server_push(timeout=self.account.poll_s + 5))
            try:
                await asyncio.wait({wake, push}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (wake, push):
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError):
                    await push
                client.idle_done()
                await asyncio.wait_for(idle, self.account.timeout_s)
        else:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.account.poll_s)
        self._wake.clear()

    def _client(self) -> aioimaplib.IMAP4:
        if self.client is None:
            raise ImapError("not connected")
        return self.client

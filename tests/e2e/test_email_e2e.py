"""Email end to end: the real App on the test database, mail in through dovecot (IMAP), mail out through an
aiosmtpd relay; the agent answers from the console desk."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import func, select

from bot.app import App
from bot.core.messages import InboundMessage
from bot.settings import DispatchSettings, EmailSettings, NluSettings, OutboxSettings, Settings
from channels.email import EmailChannel
from channels.memory import MemoryChannel
from crm_store.models import Contact
from crm_store.repositories import agents as agents_repo
from tests.e2e.mailservers import (  # noqa: F401 (fixtures "dovecot", "smtp_relay")
    Dovecot,
    SmtpRelay,
    dovecot_fixture,
    smtp_relay_fixture,
)

DESK = "support@desk.test"


def customer_mail(mid: str, text: str, *, subject: str = "Broken kettle", reply_to: str = "", extra: str = "",
                  sender: str = "Mei Chen <mei@example.org>") -> bytes:
    head = f"From: {sender}\r\nTo: {DESK}\r\nSubject: {subject}\r\nMessage-ID: {mid}\r\n"
    head += "Date: Mon, 03 Mar 2025 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
    if reply_to:
        head += f"In-Reply-To: {reply_to}\r\nReferences: {reply_to}\r\n"
    return (head + extra + "\r\n" + text + "\r\n").encode()


def email_channel(tmp_path: Path, dovecot: Dovecot, relay: SmtpRelay) -> EmailChannel:
    return EmailChannel(address=DESK, from_name="Example Support", attachment_dir=str(tmp_path / "files"),
                        **dovecot.settings(), **relay.settings())


def settings_for(db, tmp_path: Path) -> Settings:
    return Settings(
        database_url=db.url, database_schema=db.schema, nlu=NluSettings(enabled=False),
        outbox=OutboxSettings(backoff_base_s=0.0, poll_interval_s=0.05), dispatch=DispatchSettings(batch_wait_ms=1.0),
        email=EmailSettings(address=DESK, attachment_dir=str(tmp_path / "files")),
    )


async def contact(app: App, external_id: str, within: float = 15.0) -> Contact:
    """The inbound contact with this Message-ID, once the channel has delivered it."""
    for _ in range(int(within / 0.1)):
        async with app.sessions() as s:
            found = await s.scalar(select(Contact).where(Contact.external_id == external_id,
                                                         Contact.direction == "in"))
        if found is not None:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"{external_id} was never logged")


async def count_in(app: App, external_id: str) -> int:
    async with app.sessions() as s:
        return int(await s.scalar(select(func.count(Contact.id)).where(Contact.external_id == external_id,
                                                                         Contact.direction == "in")) or 0)


async def mail_to(relay: SmtpRelay, predicate, within: float = 15.0) -> EmailMessage:
    for _ in range(int(within / 0.05)):
        for m in relay.handler.received:
            if predicate(m):
                return m
        await asyncio.sleep(0.05)
    raise AssertionError(f"no such mail among {[m['Subject'] for m in relay.handler.received]}")


async def test_mail_ticket_agent_reply_customer_reply_threads(db, tmp_path: Path, dovecot: Dovecot,
                                                              smtp_relay: SmtpRelay) -> None:
    console = MemoryChannel("console")
    app = App(settings_for(db, tmp_path), channels=[email_channel(tmp_path, dovecot, smtp_relay), console])
    await app.start()
    try:
        async with app.sessions() as s, s.begin():
            await agents_repo.add_agent(s, name="Alice", addresses={"console": "alice"})

        await dovecot.append(customer_mail("<m1@example.org>", "My kettle stopped working after a week."))
        first = await contact(app, "<m1@example.org>")
        ticket_id = first.ticket_id
        assert ticket_id is not None and first.address == "mei@example.org"

        # The agent answers from the console desk; the answer leaves as mail that threads on the customer's side.
        await console.receive("alice", f"/reply {ticket_id} Sorry about that, a replacement is on its way.")
        answer = await mail_to(smtp_relay, lambda m: "replacement" in m.get_content())
        assert answer["To"] == "mei@example.org"
        assert answer["From"] == f"Example Support <{DESK}>"
        assert answer["In-Reply-To"] == "<m1@example.org>"
        assert "<m1@example.org>" in answer["References"].split()
        assert f"[#T-{ticket_id}]" in answer["Subject"]
        assert answer["Auto-Submitted"] is None  # a person wrote it
        ours = answer["Message-ID"]
        assert ours.endswith("@desk.test>")
        # Anything the bot itself sent (e.g. the ticket acknowledgement) is marked as automatic.
        for m in smtp_relay.handler.received:
            if m is not answer:
                assert m["Auto-Submitted"] == "auto-replied"

        # The customer replies to our mail: it joins the same ticket, by In-Reply-To alone.
        await dovecot.append(customer_mail("<m2@example.org>", "Thanks! When will it arrive?\r\n\r\n> Sorry about that",
                                           subject="Re: something else entirely", reply_to=ours))
        reply = await contact(app, "<m2@example.org>")
        assert reply.ticket_id == ticket_id
        assert reply.text == "Thanks! When will it arrive?"

        # A reply that lost its headers still threads by the tag in the subject.
        await dovecot.append(customer_mail("<m3@example.org>", "Also the lid is cracked.",
                                           subject=f"Re: Broken kettle [#T-{ticket_id}]"))
        assert (await contact(app, "<m3@example.org>")).ticket_id == ticket_id

        # The same mail delivered twice is logged once.
        await dovecot.append(customer_mail("<m1@example.org>", "My kettle stopped working after a week."))
        await dovecot.append(customer_mail("<m4@example.org>", "Marker after the duplicate."))
        await contact(app, "<m4@example.org>")
        assert await count_in(app, "<m1@example.org>") == 1

        # A new customer's mail gets the bot's acknowledgement; an out-of-office or a list mail from a new sender
        # is logged on its own ticket but never answered (no mail loop, RFC 3834).
        await dovecot.append(customer_mail("<n1@example.org>", "Hello?", sender="Lee <lee@example.org>"))
        ack = await mail_to(smtp_relay, lambda m: m["To"] == "lee@example.org")
        assert ack["Auto-Submitted"] == "auto-replied" and ack["In-Reply-To"] == "<n1@example.org>"
        await dovecot.append(customer_mail("<ooo@example.org>", "I am away until Monday.", subject="Automatic reply",
                                           sender="Kim <kim@example.org>", extra="Auto-Submitted: auto-replied\r\n"))
        await dovecot.append(customer_mail("<list@example.org>", "Monthly digest.", subject="[news] digest",
                                           sender="News <news@lists.example.org>",
                                           extra="List-Id: <news.lists.example.org>\r\nPrecedence: list\r\n"))
        assert (await contact(app, "<ooo@example.org>")).ticket_id is not None
        await contact(app, "<list@example.org>")
        await app.outbox.drain()
        await asyncio.sleep(0.3)
        assert not [m for m in smtp_relay.handler.received if m["To"] in ("kim@example.org", "news@lists.example.org")]
        assert "\\Seen" in (await dovecot.flags())["<ooo@example.org>"]
    finally:
        await app.stop()


async def test_crash_between_fetch_and_commit_loses_nothing(db, tmp_path: Path, dovecot: Dovecot,
                                                            smtp_relay: SmtpRelay) -> None:
    await dovecot.append(customer_mail("<c1@example.org>", "Is anyone there?"))

    # First process: fetches the mail, then dies inside the commit (deliver never returns).
    entered = asyncio.Event()

    async def dies_in_commit(msg: InboundMessage) -> None:
        entered.set()
        await asyncio.Event().wait()

    doomed = email_channel(tmp_path, dovecot, smtp_relay)
    await doomed.start(dies_in_commit)
    await asyncio.wait_for(entered.wait(), 15)
    await doomed.stop()
    assert await dovecot.flags() == {"<c1@example.org>": set()}  # still unseen on the server

    # The restarted app picks it up and logs it once.
    app = App(settings_for(db, tmp_path), channels=[email_channel(tmp_path, dovecot, smtp_relay)])
    await app.start()
    try:
        logged = await contact(app, "<c1@example.org>")
        assert logged.ticket_id is not None
        for _ in range(100):
            if "\\Seen" in (await dovecot.flags())["<c1@example.org>"]:
                break
            await asyncio.sleep(0.05)
        assert "\\Seen" in (await dovecot.flags())["<c1@example.org>"]
    finally:
        await app.stop()

    # A second restart sees nothing new and logs nothing twice.
    app = App(settings_for(db, tmp_path), channels=[email_channel(tmp_path, dovecot, smtp_relay)])
    await app.start()
    try:
        await asyncio.sleep(1.0)
        assert await count_in(app, "<c1@example.org>") == 1
    finally:
        await app.stop()

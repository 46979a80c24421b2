"""An agent's photo or document from Telegram reaches a mail customer as a real MIME attachment: the real App with
aiogram against the loopback Bot API server (getFile and the file download), mail in through dovecot (IMAP), mail
out through an aiosmtpd relay. The outbox row keeps the file's id, so a mail the relay refused is sent by the
next process, file and all; a file over the limit is refused to the agent and nothing is sent."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import App
from bot.core.attachments import files_of
from channels.email import EmailChannel
from channels.telegram import RateLimiter, TelegramChannel
from crm_store.models import OutboxItem
from crm_store.repositories import agents as agents_repo
from tests.e2e.botapi_files import FileBotApiServer
from tests.e2e.mailservers import (  # noqa: F401 (fixtures "dovecot", "smtp_relay")
    Dovecot,
    SmtpRelay,
    dovecot_fixture,
    smtp_relay_fixture,
)
from tests.e2e.test_email_e2e import DESK, customer_mail, mail_to, settings_for

FAST = RateLimiter(per_chat=1000, overall=1000, chat_burst=1000, overall_burst=1000)
ANA = 9001
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(200, 256)) * 300 + b"\xff\xd9"


def _app(db, tmp_path: Path, api: FileBotApiServer, dovecot: Dovecot, relay: SmtpRelay, backoff_s: float = 0.0) -> App:
    settings = settings_for(db, tmp_path)
    settings.state_dir = str(tmp_path / "state")
    settings.outbox.backoff_base_s = settings.outbox.backoff_max_s = backoff_s
    mail = EmailChannel(
        address=DESK,
        from_name="Support",
        attachment_dir=str(tmp_path / "files"),
        **dovecot.settings(),
        **relay.settings(),
    )
    telegram = TelegramChannel(api.token, api_server=api.base_url, polling_timeout=1, limiter=FAST)
    return App(settings, channels=[telegram, mail])


async def _to_ana(api: FileBotApiServer, before: int, pattern: str, within: float = 15.0) -> dict:
    rx = re.compile(pattern, re.S)
    try:
        return await api.wait_for(
            lambda: next((m for m in api.sent_to(ANA)[before:] if rx.search(m.get("text", ""))), None), within
        )
    except TimeoutError:
        raise AssertionError(f"no {pattern!r} to Ana; got {api.texts_to(ANA)[before:]}") from None


def _files(mail) -> list[tuple[str, str, bytes]]:
    return [(p.get_filename(), p.get_content_type(), p.get_content()) for p in mail.iter_attachments()]


async def _attempted(app: App, recipient: str, within: float = 15.0) -> None:
    """Until the outbox has tried (and failed) the reply with a file once."""
    for _ in range(int(within / 0.05)):
        async with app.sessions() as s:
            rows = (await s.scalars(select(OutboxItem).where(OutboxItem.recipient == recipient))).all()
        if any(r.attempts >= 1 and r.status == "pending" and files_of(r.meta or {}) for r in rows):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the reply with a file was never tried")


@pytest.fixture
async def api():
    async with FileBotApiServer() as server:
        yield server


async def test_an_agents_document_and_photo_reach_a_mail_customer_as_attachments_threaded(
    db, tmp_path: Path, api: FileBotApiServer, dovecot: Dovecot, smtp_relay: SmtpRelay
) -> None:
    app = await _app(db, tmp_path, api, dovecot, smtp_relay).start()
    try:
        async with app.sessions() as s, s.begin():
            await agents_repo.add_agent(s, name="Ana", capacity=3, addresses={"telegram": str(ANA)})
        ana = api.user(ANA, "Ana")
        await dovecot.append(customer_mail("<m1@example.org>", "Please send me the invoice for order 77."))
        notice = await _to_ana(api, 0, r"New ticket T-\d+")
        tid = int(re.search(r"T-(\d+)", notice["text"]).group(1))
        ack = await mail_to(smtp_relay, lambda m: m["To"] == "mei@example.org")  # the bot's acknowledgement

        before = len(api.sent_to(ANA))
        api.file_message(
            ana,
            "document",
            PDF,
            file_name="invoice 77.pdf",
            mime_type="application/pdf",
            caption="Here is your invoice.",
            reply_to=notice["message_id"],
        )
        await _to_ana(api, before, rf"Queued for Mei Chen on T-{tid}")
        mail = await mail_to(smtp_relay, lambda m: "Here is your invoice." in m.get_body(("plain",)).get_content())
        assert _files(mail) == [("invoice 77.pdf", "application/pdf", PDF)]
        assert mail["In-Reply-To"] == "<m1@example.org>"
        assert mail["References"].split()[-1] == "<m1@example.org>" and f"[#T-{tid}]" in mail["Subject"]
        await _to_ana(api, before, r"delivered", within=15)

        # A photo without a caption: the attachment is named after its kind, the body names it.
        api.file_message(ana, "photo", JPEG, reply_to=notice["message_id"])
        photo_mail = await mail_to(
            smtp_relay, lambda m: m is not mail and m is not ack and _files(m) and _files(m)[0][1] == "image/jpeg"
        )
        assert _files(photo_mail) == [("photo.jpg", "image/jpeg", JPEG)]
        assert "[photo:" in photo_mail.get_body(("plain",)).get_content()
        assert photo_mail["In-Reply-To"] == "<m1@example.org>"
        assert api.downloads == ["document-1", "photo-2"]

        # Over the limit: a clear answer to the agent, nothing fetched, nothing mailed.
        mails = len(smtp_relay.handler.received)
        before = len(api.sent_to(ANA))
        api.file_message(
            ana, "document", b"x", file_name="scan.tiff", size=11 * 1024 * 1024, reply_to=notice["message_id"]
        )
        refused = await _to_ana(api, before, r"over 10 MB")
        assert refused["text"] == (
            f"[document: scan.tiff, 11.0 MB] is over 10 MB, the largest file sent on by email; nothing was sent "
            f"to T-{tid}."
        )
        await app.outbox.drain()
        assert len(smtp_relay.handler.received) == mails and api.downloads == ["document-1", "photo-2"]
    finally:
        await app.stop()


async def test_a_file_waiting_in_the_outbox_is_sent_by_the_next_process(
    db, tmp_path: Path, api: FileBotApiServer, dovecot: Dovecot, smtp_relay: SmtpRelay
) -> None:
    first = await _app(db, tmp_path, api, dovecot, smtp_relay, backoff_s=1.0).start()
    try:
        async with first.sessions() as s, s.begin():
            await agents_repo.add_agent(s, name="Ana", capacity=3, addresses={"telegram": str(ANA)})
        await dovecot.append(customer_mail("<k1@example.org>", "Where is the manual?"))
        notice = await _to_ana(api, 0, r"New ticket T-\d+")
        await mail_to(smtp_relay, lambda m: m["To"] == "mei@example.org")
        # The relay refuses the reply once; the process stops while the row waits for its next try.
        smtp_relay.handler.answers.append("451 4.3.0 try later")
        before = len(api.sent_to(ANA))
        api.file_message(
            api.user(ANA, "Ana"),
            "document",
            PDF,
            file_name="manual.pdf",
            mime_type="application/pdf",
            reply_to=notice["message_id"],
        )
        await _to_ana(api, before, r"Queued for")
        await api.wait_for(lambda: api.downloads, 15)
        await _attempted(first, "mei@example.org")
    finally:
        await first.stop()
    assert not [m for m in smtp_relay.handler.received if _files(m)]
    smtp_relay.handler.answers.clear()
    second = await _app(db, tmp_path, api, dovecot, smtp_relay).start()
    try:
        mail = await mail_to(smtp_relay, lambda m: bool(_files(m)), within=20)
        assert _files(mail) == [("manual.pdf", "application/pdf", PDF)]
        assert mail["In-Reply-To"] == "<k1@example.org>"
    finally:
        await second.stop()
    assert len(api.downloads) >= 2, "the next process fetched the file again by the id its row kept"

"""`tierdesk import mail`: .eml, mbox and Maildir archives into the real App on the test database."""

from __future__ import annotations

import json
import logging
import mailbox
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bot.cli.mail import run_import
from bot.settings import DispatchSettings, EmailSettings, NluSettings, OutboxSettings, Settings
from channels.email.store import ContentStore
from crm_store.models import Contact, OutboxItem, Ticket
from crm_store.repositories.agents import add_agent

MIME = Path(__file__).parent.parent / "channels" / "mime"


def mail(mid: str, text: str, *, sender: str = "ann@example.org", reply_to: str = "", subject: str = "Order",
         date: str = "Mon, 03 Mar 2025 10:00:00 +0000") -> bytes:
    head = f"From: Ann <{sender}>\nTo: support@desk.test\nSubject: {subject}\nMessage-ID: <{mid}>\n"
    head += f"Date: {date}\n"
    if reply_to:
        head += f"In-Reply-To: <{reply_to}>\nReferences: <{reply_to}>\n"
    return (head + "\n" + text + "\n").encode()


def archive(tmp_path: Path) -> list[Path]:
    """An mbox with a thread, a Maildir with one more reply and a stranger, and loose .eml files."""
    mbox_path = tmp_path / "support.mbox"
    box = mailbox.mbox(mbox_path)
    box.add(mail("t1@example.org", "My order 77 is late."))
    box.add(mail("t2@example.org", "Any news on order 77?", reply_to="t1@example.org", subject="Re: Order",
                 date="Tue, 04 Mar 2025 09:30:00 +0100"))
    box.add(b"Subject: no sender\n\nlost\n")
    box.flush()
    box.close()
    md = mailbox.Maildir(tmp_path / "Maildir", create=True)
    md.add(mail("t3@example.org", "Still waiting.", reply_to="t2@example.org", subject="Re: Order",
                date="Wed, 05 Mar 2025 08:00:00 +0000"))
    md.add(mail("b1@example.org", "Hello, a new question.", sender="bob@example.org", subject="Hi",
                date="Thu, 06 Mar 2025 12:30:00 -0500"))
    md.close()
    eml = tmp_path / "loose"
    eml.mkdir()
    (eml / "koi8r.eml").write_bytes((MIME / "koi8r.eml").read_bytes())
    (eml / "dsn.eml").write_bytes((MIME / "dsn_bounce.eml").read_bytes())
    return [mbox_path, tmp_path / "Maildir", eml, tmp_path / "missing.mbox"]


def settings_for(db, tmp_path: Path) -> Settings:
    return Settings(
        database_url=db.url, database_schema=db.schema, nlu=NluSettings(enabled=False),
        outbox=OutboxSettings(poll_interval_s=0.05), dispatch=DispatchSettings(batch_wait_ms=1.0),
        email=EmailSettings(address="support@desk.test", attachment_dir=str(tmp_path / "files")),
    )


async def test_import_threads_and_is_idempotent(db, tmp_path: Path) -> None:
    paths = archive(tmp_path)
    settings = settings_for(db, tmp_path)
    first = await run_import(settings, paths)
    # t1 opens a ticket; t2 and t3 join it; b1 and the koi8-r mail open their own; the DSN bounces nothing of ours
    # (its original was never sent by us), so it is logged as a mail from mailer-daemon.
    assert first.imported == 6
    assert first.threaded == 2
    assert first.duplicates == 0
    assert [r["reason"] for r in first.rejected] == ["no sender address (From: '')"]
    assert first.rejected[0]["source"].endswith("support.mbox#3")
    assert first.errors == [{"source": str(paths[-1]), "error": "no such file or folder"}]

    again = await run_import(settings, paths)
    assert (again.imported, again.threaded, again.duplicates) == (0, 0, 6)

    async with db.sessions() as s:
        contacts = {c.external_id: c for c in (await s.scalars(select(Contact).where(Contact.direction == "in")))}
        outbox = list(await s.scalars(select(OutboxItem).where(OutboxItem.channel == "email")))
        tickets = list(await s.scalars(select(Ticket)))
    assert len(contacts) == 6
    thread = {contacts[f"<t{i}@example.org>"].ticket_id for i in (1, 2, 3)}
    assert len(thread) == 1 and None not in thread
    assert contacts["<b1@example.org>"].ticket_id not in thread
    assert contacts["<koi8r-1@mail.example.org>"].text.startswith("Здравствуйте!")
    assert ContentStore.get(contacts["<t1@example.org>"].raw_ref).startswith(b"From: Ann")
    assert outbox == []  # imported mail never gets a bot answer
    assert len(tickets) >= 3


async def test_imported_mail_is_history_filed_on_its_own_date(db, tmp_path: Path) -> None:
    """Imported mail is history: each ticket is dated by the Date header of the mail that opened it, starts no
    SLA clock and pages nobody, now or when the SLA clock runs afterwards."""
    from bot.app import load_policy
    from bot.routing.sla_worker import escalation_pass, pickup_pass

    async with db.sessions() as s, s.begin():
        await add_agent(s, name="Ann", capacity=50, addresses={"telegram": "500"})
        await add_agent(s, name="Root", role="admin", auto_assign=True, capacity=50, addresses={"telegram": "501"})
    settings = settings_for(db, tmp_path)
    await run_import(settings, archive(tmp_path))
    async with db.sessions() as s:
        tickets = {t.id: t for t in await s.scalars(select(Ticket))}
        opened_by = {c.external_id: c.ticket_id for c in await s.scalars(select(Contact).where(
            Contact.direction == "in"))}
    assert tickets and {t.source for t in tickets.values()} == {"imported"}
    for t in tickets.values():
        assert (t.first_response_due, t.resolution_due, t.assignee_id, t.escalation_level) == (None, None, None, 0)
    # the thread's ticket is as old as its first mail, not as the later replies or the import
    assert tickets[opened_by["<t1@example.org>"]].created_at == datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
    assert tickets[opened_by["<b1@example.org>"]].created_at == datetime(2025, 3, 6, 17, 30, tzinfo=UTC)
    assert tickets[opened_by["<koi8r-1@mail.example.org>"]].created_at == datetime(2025, 3, 3, 7, 0, tzinfo=UTC)

    policy = load_policy(settings)
    assert await escalation_pass(db.sessions, policy, settings=settings) == []
    assert await pickup_pass(db.sessions, settings=settings, policy=policy) == []
    async with db.sessions() as s:
        assert list(await s.scalars(select(OutboxItem))) == []
        assert {t.assignee_id for t in await s.scalars(select(Ticket))} == {None}


def test_cli_json_summary(sqlite_db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot import settings as settings_module
    from bot.cli.main import app

    paths = archive(tmp_path)[:3]
    monkeypatch.setenv("TIERDESK_DATABASE_URL", sqlite_db.url)
    monkeypatch.setenv("TIERDESK_NLU__ENABLED", "false")
    monkeypatch.setenv("TIERDESK_EMAIL__ATTACHMENT_DIR", str(tmp_path / "files"))
    settings_module.get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["import", "mail", *map(str, paths), "--json"])
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        assert (summary["imported"], summary["threaded"], len(summary["rejected"]), summary["errors"]) == (6, 2, 1, [])
        again = CliRunner().invoke(app, ["import", "mail", *map(str, paths)])
        assert again.exit_code == 0, again.output
        assert "imported 0" in again.stdout and "already there 6" in again.stdout
        missing = CliRunner().invoke(app, ["import", "mail", str(tmp_path / "nope.mbox"), "--json"])
        assert missing.exit_code == 1
        assert json.loads(missing.stdout.strip().splitlines()[-1])["errors"][0]["error"] == "no such file or folder"
        # the import quiets the email channel's warnings while it runs, and only then (a process running it
        # in-process, as here, logs the channel's rejections again afterwards)
        assert logging.getLogger("channels.email").level == logging.NOTSET
    finally:
        settings_module.get_settings.cache_clear()

"""The desk's decision for an agent's file, on both databases: the outbox row to a mail customer names the file by
its Telegram id, the reply to a web chat visitor carries the link the outbox will keep the file under, a channel
that takes no files is refused with nothing written, and a file the outbox cannot load fails with the reason told
to the agent."""

from __future__ import annotations

import re

from bot.core.attachments import files_of
from bot.core.messages import Attachment
from crm_store.repositories import agents as agents_repo
from tests.bot.test_desk_support import customer_writes, outbox

DOC = Attachment(kind="document", name="form 2.pdf", mime="application/pdf", size=2048, ref="tg-file-1")


async def _telegram_agent(h) -> None:
    async with h.app.writer_sessions() as s, s.begin():
        await agents_repo.add_agent(s, name="Tia", addresses={"telegram": "777"})


async def _agent_says(h, text: str, *attachments: Attachment) -> str:
    before = len(h.ch["telegram"].sent_to("777"))
    await h.ch["telegram"].receive("777", text, attachments=attachments)
    await h.settle()
    answers = h.ch["telegram"].sent_to("777")
    assert len(answers) > before, f"no answer for {text!r}"
    return answers[before]


async def test_a_file_for_a_mail_customer_is_named_by_its_id_and_a_failed_load_is_told(h):
    await _telegram_agent(h)
    tid = await customer_writes(h, "ann@example.org", "send me the form", channel="email")
    assert (await _agent_says(h, f"/reply {tid}", DOC)).startswith(f"Queued for ann@example.org on T-{tid}")
    [row] = [r for r in await outbox(h, ticket_id=tid, author="agent")]
    assert row.text == "[document: form 2.pdf, 2 KB]"
    assert files_of(row.meta) == [
        {
            "kind": "document",
            "name": "form 2.pdf",
            "mime": "application/pdf",
            "size": 2048,
            "source": "telegram",
            "ref": "tg-file-1",
            "token": "",
        }
    ]
    # The stand-in Telegram channel here cannot fetch files: the send fails for good and the agent hears why.
    assert row.status == "failed" and "form 2.pdf: files cannot be fetched from telegram" in row.last_error
    told = h.ch["telegram"].sent_to("777")[-1]
    assert told.startswith(f"Your reply on T-{tid} could not be delivered via email: form 2.pdf")
    assert not [m for m in h.ch["email"].sent if m.ticket_id == tid and m.meta_value("author") == "agent"]


async def test_a_file_for_a_web_chat_visitor_goes_as_a_link_and_other_channels_refuse(h):
    await _telegram_agent(h)
    tid = await customer_writes(h, "v" + "1" * 32, "need the form", channel="webchat")
    await _agent_says(h, f"/reply {tid} Here it is", DOC)
    [row] = [r for r in await outbox(h, ticket_id=tid, author="agent")]
    first, link = row.text.split("\n")
    assert first == "Here it is"
    token = re.fullmatch(r"form 2\.pdf \(2 KB\): /files/([0-9a-f]{32})/form%202\.pdf", link).group(1)
    assert files_of(row.meta)[0]["token"] == token

    console_tid = await customer_writes(h, "walk-in", "hello", channel="console")
    refused = await _agent_says(h, f"/reply {console_tid} here", DOC)
    assert refused == (
        f"The customer of T-{console_tid} writes via console, which takes no files; nothing was sent. "
        f"/reply {console_tid} <text> sends words."
    )
    big = Attachment(kind="document", name="scan.zip", size=11 * 1024 * 1024, ref="tg-2")
    assert (await _agent_says(h, f"/reply {tid}", big)) == (
        "[document: scan.zip, 11.0 MB] is over 10 MB, the largest file sent on by webchat; "
        f"nothing was sent to T-{tid}."
    )
    assert await outbox(h, ticket_id=console_tid, author="agent") == []
    assert len(await outbox(h, ticket_id=tid, author="agent")) == 1

"""The desk's workspace commands on both databases: /canned in the customer's language, /mine, /find within the
tiers one serves, attachment labels, and the refusals that send nothing."""

from __future__ import annotations

from sqlalchemy import update

from bot.core.attachments import attachment_label, said, size_label
from bot.core.messages import Attachment
from crm_store.models import Customer
from crm_store.repositories import canned as canned_repo
from tests.bot.test_desk_support import customer_writes, say, to_customer


def test_attachment_labels():
    assert size_label(512) == "512 B" and size_label(2048) == "2 KB" and size_label(3 * 1024 * 1024) == "3.0 MB"
    assert attachment_label(Attachment(kind="photo", size=120_000)) == "[photo: 117 KB]"
    assert attachment_label({"kind": "document", "name": "a.pdf", "size": 1536}) == "[document: a.pdf, 2 KB]"
    assert attachment_label({"kind": "voice"}) == "[voice]"
    assert attachment_label({"kind": "location", "ref": "52.5,13.4"}) == "[location: 52.5,13.4]"
    assert said("  ", []) == "(no text)"
    assert said("see this", [{"kind": "sticker", "name": "😀"}]) == "see this [sticker: 😀]"


async def test_canned_lists_and_sends_in_the_customers_language(h):
    await h.agent("Alice")
    listed = await say(h, "alice", "/canned")
    assert listed.text.startswith("No canned responses yet")
    async with h.app.writer_sessions() as s, s.begin():
        await canned_repo.put(s, "thanks", "Thank you!")
        await canned_repo.put(s, "thanks", "Merci !", language="fr")
    tid = await customer_writes(h, "801", "where is my order?")
    async with h.app.writer_sessions() as s, s.begin():
        await s.execute(update(Customer).values(language="fr"))
    assert "thanks (default, fr): Thank you!" in (await say(h, "alice", "/canned")).text
    done = await say(h, "alice", f"/canned thanks {tid}")
    assert done.text == f"Delivered to 801 on T-{tid} via telegram."
    assert (await to_customer(h, tid))[-1] == "Merci !"
    assert (await say(h, "alice", f"/canned nope {tid}")).text == "No canned response 'nope'; /canned lists them."
    assert (await say(h, "alice", "/canned thanks")).text.startswith("Which ticket?")
    assert (await say(h, "alice", "/canned thanks 99999")).text == (
        "Ticket T-99999 does not exist or is not in your queues."
    )


async def test_mine_and_find_within_ones_tiers(h):
    await h.agent("Alice")
    await h.agent("Vic", tiers=["VIP"])
    assert (await say(h, "alice", "/mine")).text.startswith("You have no open tickets.")
    tid = await customer_writes(h, "802", "parcel 4411 is lost")
    await say(h, "alice", f"/take {tid}")
    mine = await say(h, "alice", "/mine")
    assert mine.text.startswith("Your tickets (1):") and f"T-{tid} · open" in mine.text
    found = await say(h, "alice", "/find 4411")
    assert f"T-{tid}" in found.text and "parcel 4411 is lost" in found.text
    assert (await say(h, "vic", "/find 4411")).text == "Nothing found for '4411'."
    assert (await say(h, "alice", "/find x")).text.startswith("Usage: /find <words>")


async def test_attachments_from_outside_telegram_are_refused_and_nothing_is_sent(h):
    await h.agent("Alice")
    tid = await customer_writes(h, "803", "need the form")
    before = await to_customer(h, tid)
    photo = Attachment(kind="document", name="form.pdf", size=1000, ref="file-1")
    refused = await say(h, "alice", f"/reply {tid} here", attachments=(photo,))
    assert refused.text == "Attachments can be sent from Telegram only; nothing was sent."
    huge = Attachment(kind="document", name="big.zip", size=25 * 1024 * 1024, ref="file-2")
    refused = await say(h, "alice", f"/reply {tid} here", attachments=(huge,))
    assert refused.text == f"[document: big.zip, 25.0 MB] is over 20 MB; nothing was sent to T-{tid}."
    assert await to_customer(h, tid) == before

"""A customer's message of any length is stored whole; agents see that it was long; the NLU reads a bounded
prefix; a long reply goes out whole to the channel, which splits it where it must."""

from __future__ import annotations

from sqlalchemy import select

from bot.assistant.responder import BotTurn
from bot.settings import NluSettings
from crm_store.models import Contact, OutboxItem

LONG = 200_000


def long_text(n: int = LONG) -> str:
    """Numbered lines, so a cut anywhere (start, middle or end) changes the text."""
    out, i = [], 0
    while sum(map(len, out)) < n:
        out.append(f"line {i:06d} of a very long complaint\n")
        i += 1
    return "".join(out)[:n]


class Recording:
    """A responder that remembers what it was asked and always hands off."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def respond(self, text: str, *, customer_language: str | None = None) -> BotTurn:
        self.seen.append(text)
        return BotTurn(answer=None, handoff_reason="long message")


async def test_a_200000_character_message_is_stored_whole_and_the_agent_is_told_its_length(harness_factory):
    bot = Recording()
    h = await harness_factory(responder=bot, nlu=NluSettings(enabled=False, max_chars=2000))
    await h.agent("Alice")
    text = long_text()
    assert len(text) == LONG
    r = await h.ch["telegram"].receive("4242", text, external_id="long-1")
    await h.settle()
    async with h.app.sessions() as s:
        stored = await s.scalar(select(Contact).where(Contact.external_id == "long-1"))
    assert stored.text == text and len(stored.text) == LONG and stored.truncated is False
    assert bot.seen == [text[:2000]]  # the NLU reads only the first nlu.max_chars
    notice = h.ch["console"].sent_to("alice")
    assert len(notice) == 1 and f"T-{r.ticket_id}" in notice[0]
    assert "200,000 characters in all" in notice[0]
    assert text[:700] in notice[0] and text[700:1400] not in notice[0]  # the start only, and how much there is


async def test_a_long_follow_up_is_stored_whole_and_its_notice_says_how_long(harness_factory):
    h = await harness_factory(responder=Recording())
    await h.agent("Alice")
    first = await h.ch["telegram"].receive("4243", "my parcel is lost", external_id="short-1")
    await h.ch["console"].receive("alice", f"/take {first.ticket_id}")
    await h.settle()
    follow_up = long_text(150_000)
    again = await h.ch["telegram"].receive("4243", follow_up, external_id="long-2")
    await h.settle()
    assert again.ticket_id == first.ticket_id
    async with h.app.sessions() as s:
        stored = await s.scalar(select(Contact).where(Contact.external_id == "long-2"))
    assert stored.text == follow_up
    forwarded = [t for t in h.ch["console"].sent_to("alice") if "150,000 characters in all" in t]
    assert len(forwarded) == 1 and forwarded[0].startswith(f"T-{first.ticket_id} · ")


async def test_an_agents_long_reply_is_queued_whole(harness_factory):
    h = await harness_factory(responder=Recording())
    await h.agent("Alice")
    r = await h.ch["telegram"].receive("4244", "help", external_id="q-1")
    reply = long_text(10_000).replace("\n", " ")
    await h.ch["console"].receive("alice", f"/reply {r.ticket_id} {reply}")
    await h.settle()
    async with h.app.sessions() as s:
        item = await s.scalar(select(OutboxItem).where(OutboxItem.author == "agent"))
    assert item.text == reply.strip() and item.status == "sent"
    assert h.ch["telegram"].sent[-1].text == reply.strip()  # the channel gets it whole; Telegram's sender splits

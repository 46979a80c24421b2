"""Agents never see a web chat visitor's id: notices, /queue, /take, /customer and /history name the visitor the
way the web pages do ("Visitor 4821, Berlin"); on both databases."""

from __future__ import annotations

from bot.core.names import readable_name
from channels.base import traits_of
from channels.webchat.channel import WebChatChannel, visitor_name
from channels.webchat.frames import Frame
from tests.bot.test_desk_support import say

VISITOR = "v" + "3f" * 16


def test_a_visitor_id_reads_as_the_visitors_name_and_other_names_stay():
    assert traits_of("webchat").readable(VISITOR) == visitor_name(VISITOR)
    assert traits_of("webchat").readable(VISITOR, "Visitor 1234, Berlin") == "Visitor 1234, Berlin"
    assert readable_name(VISITOR, ["telegram", "webchat"]) == visitor_name(VISITOR)
    assert readable_name("Anna", "webchat") == "Anna" and readable_name("", "webchat") == "customer"
    assert traits_of("telegram").readable("12345") == "12345"


def test_a_visitors_email_or_signed_user_comes_with_their_name():
    channel = WebChatChannel()
    claim = channel._email_message(VISITOR, Frame("email", "c1", email="a@example.com"))
    user = channel._user_message(VISITOR, Frame("hello", "", user="u1"))
    assert claim.sender_name == user.sender_name == visitor_name(VISITOR)


async def test_agents_see_the_visitor_by_name_everywhere_in_the_desk(h):
    await h.agent("Alice", capacity=1)
    name = visitor_name(VISITOR)
    await h.ch["telegram"].receive("555", "first one, keeps Alice busy")
    reply = await h.ch["webchat"].receive(VISITOR, "my order never came")  # no name given: named by the id
    await h.settle()
    tid = reply.ticket_id
    notice = [m.text for m in h.ch["console"].sent if m.recipient == "alice" and f"T-{tid}" in m.text]
    assert notice and all(VISITOR not in t for t in notice) and name in notice[0]
    queue = await say(h, "alice", "/queue")
    assert name in queue.text and VISITOR not in queue.text
    taken = await say(h, "alice", f"/take {tid}")
    assert name in taken.text and VISITOR not in taken.text
    await h.ch["webchat"].receive(VISITOR, "hello?")
    await h.settle()
    forwarded = [m.text for m in h.ch["console"].sent if m.recipient == "alice" and "hello?" in m.text]
    assert forwarded and name in forwarded[-1] and VISITOR not in forwarded[-1]
    async with h.app.sessions() as s:
        from crm_store.models import Ticket

        customer_id = (await s.get(Ticket, tid)).customer_id
    card = await say(h, "alice", f"/customer C-{customer_id}")
    assert f"webchat:{name}" in card.text and VISITOR not in card.text and card.text.startswith(name)
    history = await say(h, "alice", f"/history C-{customer_id}")
    assert history.text.startswith(f"History of {name}") and VISITOR not in history.text
    mine = await say(h, "alice", "/mine")
    assert name in mine.text and VISITOR not in mine.text
    found = await say(h, "alice", "/find order never came")
    assert name in found.text and VISITOR not in found.text

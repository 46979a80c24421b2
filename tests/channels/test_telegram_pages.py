"""A page of polled updates: the chats side by side, each chat in order, and what failed retried in page order
until it is stored (with the rest of its chat behind it); refused messages are dropped, presses answered."""

from __future__ import annotations

import asyncio

from bot.core.messages import InboundMessage, InvalidMessage
from channels.telegram import pages
from channels.telegram.pages import feed_page


def update(update_id: int, chat: int, text: str) -> dict:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 1717000000,
            "chat": {"id": chat, "type": "private", "first_name": f"C{chat}"},
            "from": {"id": chat, "is_bot": False, "first_name": f"C{chat}"},
            "text": text,
        },
    }


def press(update_id: int, chat: int, data: str) -> dict:
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"q{update_id}",
            "from": {"id": chat, "is_bot": False, "first_name": f"C{chat}"},
            "message": {"message_id": 1, "date": 1717000000, "chat": {"id": chat, "type": "private"}, "text": "?"},
            "data": data,
        },
    }


class Dispatcher:
    """Stores what it is given; the texts in `fail_once` fail the first time, those in `refuse` are invalid."""

    def __init__(self, fail_once: set[str] = frozenset(), refuse: set[str] = frozenset()) -> None:
        self.stored: list[str] = []
        self.in_flight = self.most_in_flight = 0
        self.fail_once, self.refuse = set(fail_once), refuse

    async def deliver(self, msg: InboundMessage) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.01)  # a batch commit
            if msg.text in self.refuse:
                raise InvalidMessage("refused")
            if msg.text in self.fail_once:
                self.fail_once.discard(msg.text)
                raise ConnectionError("database restarting")
            self.stored.append(msg.text)
        finally:
            self.in_flight -= 1


async def test_chats_go_side_by_side_and_each_chat_in_order():
    d = Dispatcher()
    page = [update(1, 7, "a1"), update(2, 8, "b1"), update(3, 7, "a2"), update(4, 9, "c1"), update(5, 8, "b2")]
    assert await feed_page(page, d.deliver) == 5
    assert d.most_in_flight == 3  # one per chat
    assert [t for t in d.stored if t[0] == "a"] == ["a1", "a2"] and [t for t in d.stored if t[0] == "b"] == ["b1", "b2"]


async def test_a_failed_update_is_retried_in_page_order_with_its_chat_behind_it(monkeypatch):
    d = Dispatcher(fail_once={"a1"}, refuse={"c1"})
    answered: list[str] = []

    async def answer(query_id: str) -> None:
        answered.append(query_id)

    monkeypatch.setattr(pages.log, "warning", lambda *a, **k: answered.append("warned"))
    page = [update(1, 7, "a1"), update(2, 8, "b1"), press(3, 7, "/take 4"), update(4, 9, "c1")]
    await feed_page(page, d.deliver, answer_callback=answer)
    assert d.stored[:1] == ["b1"] and d.stored[1:] == ["a1", "/take 4"]  # a1 failed: the press waited behind it
    assert "c1" not in d.stored  # refused as invalid: dropped, not retried
    assert answered.count("warned") == 2 and answered[-1] == "q3"  # the failure said once; the press answered

"""What a batch reads once for all its messages instead of once per message: the bot's recent answers to each
sender (the cap against reply storms) and the languages it learns. The rules stay those of one message at a time,
inside a batch and across batches."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from bot.assistant.responder import BotTurn
from bot.settings import DispatchSettings
from crm_store.models import Customer, OutboxItem
from crm_store.repositories import customers as customers_repo


class AlwaysAnswers:
    """A bot that answers everything, in the language the text is written in."""

    def respond(self, text, *, customer_language=None):
        language = "ru" if text.startswith("где") else "en"
        return BotTurn(answer=f"answer to {text}", intent="faq", language=language, nlu={"intent": "faq"})


async def bot_answers(h, recipient: str) -> int:
    async with h.app.sessions() as s:
        return int(
            await s.scalar(
                select(func.count())
                .select_from(OutboxItem)
                .where(OutboxItem.recipient == recipient, OutboxItem.text.startswith("answer to"))
            )
        )


async def test_the_bot_answers_a_sender_at_most_cap_times_within_a_batch_and_across_batches(harness_factory):
    h = await harness_factory(
        responder=AlwaysAnswers(), dispatch=DispatchSettings(batch_wait_ms=50.0, bot_replies_per_sender_per_hour=3)
    )
    # one batch: five messages from one sender, two from another
    await asyncio.gather(
        *(h.ch["telegram"].receive("s1", f"question {i}", external_id=f"a{i}") for i in range(5)),
        *(h.ch["telegram"].receive("s2", f"question {i}", external_id=f"b{i}") for i in range(2)),
    )
    assert h.app.dispatcher.batches == 1
    assert await bot_answers(h, "s1") == 3 and await bot_answers(h, "s2") == 2
    # later batches read what earlier ones wrote (the acknowledgement of s1's ticket counts towards the cap too):
    # s1 is capped, s2 has one answer left
    await h.ch["telegram"].receive("s1", "question 9", external_id="a9")
    await h.ch["telegram"].receive("s2", "question 8", external_id="b8")
    await h.ch["telegram"].receive("s2", "question 9", external_id="b9")
    assert await bot_answers(h, "s1") == 3 and await bot_answers(h, "s2") == 3
    await h.settle()
    assert len(h.ch["telegram"].sent_to("s1")) == 3 + 1  # three answers, then one acknowledgement of a ticket


async def test_a_learned_language_is_stored_once_and_never_overwrites_a_known_one(harness_factory):
    h = await harness_factory(responder=AlwaysAnswers(), dispatch=DispatchSettings(batch_wait_ms=50.0))
    async with h.app.writer_sessions() as s, s.begin():
        known = await customers_repo.create_customer(s, name="Vera", identities={"telegram": "known"})
        known.language = "zh"
    await asyncio.gather(
        h.ch["telegram"].receive("new", "где мой заказ", external_id="n1"),
        h.ch["telegram"].receive("new", "where is it", external_id="n2"),
        h.ch["telegram"].receive("known", "где мой заказ", external_id="k1"),
    )
    async with h.app.sessions() as s:
        languages = dict((await s.execute(select(Customer.name, Customer.language))).all())
    assert languages == {"new": "ru", "Vera": "zh"}

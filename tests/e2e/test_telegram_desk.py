"""The agent desk end to end: the real App on the test database, the Telegram channel driven by the loopback Bot
API server, customers and agents playing their parts as Telegram users."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from bot.app import App
from bot.settings import DispatchSettings, NluSettings, OutboxSettings, Settings
from channels.memory import MemoryChannel
from channels.telegram import RateLimiter, TelegramChannel
from crm_store.models import Customer, Note, Ticket, TicketEvent
from crm_store.repositories import agents as agents_repo
from tests.e2e.botapi_server import BotApiServer

FAST = RateLimiter(per_chat=1000, overall=1000, chat_burst=1000, overall_burst=1000)
ANA, VIC, SAM = 9001, 9002, 9100  # agent (all tiers, capacity 1), agent (VIP only), supervisor
MEI, BOB = 5001, 5002


@dataclass
class Desk:
    app: App
    api: BotApiServer
    email: MemoryChannel

    def user(self, uid: int) -> dict:
        names = {ANA: "Ana", VIC: "Vic", SAM: "Sam", MEI: "Mei", BOB: "Bob"}
        return self.api.user(uid, names.get(uid, "User"))

    def says(self, uid: int, text: str, **kwargs) -> dict:
        return self.api.user_message(self.user(uid), text, **kwargs)

    async def answer(self, chat: int, pattern: str, within: float = 8.0) -> dict:
        """The first message sent to `chat` whose text matches `pattern` (waits for it)."""
        rx = re.compile(pattern, re.S)
        return await self.api.wait_for(lambda: next((m for m in self.api.sent_to(chat) if rx.search(m["text"])),
                                                    None), within)

    async def reply_to(self, uid: int, text: str, pattern: str) -> dict:
        """Send `text` and wait for the next answer matching `pattern` that arrived after it."""
        before = len(self.api.sent_to(uid))
        self.says(uid, text)
        rx = re.compile(pattern, re.S)
        return await self.api.wait_for(
            lambda: next((m for m in self.api.sent_to(uid)[before:] if rx.search(m["text"])), None), 8.0)

    async def ticket(self, ticket_id: int) -> Ticket:
        async with self.app.sessions() as s:
            return await s.get(Ticket, ticket_id)


@pytest.fixture
async def desk(db):
    async with BotApiServer() as api:
        settings = Settings(
            database_url=db.url, database_schema=db.schema, nlu=NluSettings(enabled=False),
            outbox=OutboxSettings(backoff_base_s=0.0, poll_interval_s=0.05),
            dispatch=DispatchSettings(batch_wait_ms=1.0),
        )
        telegram = TelegramChannel(api.token, api_server=api.base_url, polling_timeout=1, limiter=FAST)
        email = MemoryChannel("email")
        app = App(settings, channels=[telegram, email])
        await app.start()
        async with app.sessions() as s, s.begin():
            await agents_repo.add_agent(s, name="Ana", role="agent", capacity=1, addresses={"telegram": str(ANA)})
            await agents_repo.add_agent(s, name="Vic", role="agent", tiers=["VIP"], addresses={"telegram": str(VIC)})
            await agents_repo.add_agent(s, name="Sam", role="supervisor", status="away",
                                        addresses={"telegram": str(SAM)})
        try:
            yield Desk(app, api, email)
        finally:
            await app.stop()


def ticket_of(message: dict) -> int:
    return int(re.search(r"T-(\d+)", message["text"]).group(1))


async def test_customer_to_agent_and_back(desk):
    api = desk.api
    # Bob's ticket fills Ana's only slot; Mei's then waits in the queue and Ana is told, with buttons.
    desk.says(BOB, "Invoice 77 is wrong")
    bob_note = await desk.answer(ANA, r"New ticket T-\d+ .*Invoice 77")
    desk.says(MEI, "My parcel 8812 never arrived")
    mei_note = await desk.answer(ANA, r"New ticket T-\d+ .*parcel 8812.*Waiting in queue")
    ticket_id = ticket_of(mei_note)
    assert [b["callback_data"] for b in mei_note["reply_markup"]["inline_keyboard"][0]] == [
        f"/take {ticket_id}", f"/close {ticket_id}", f"/history T-{ticket_id}"]
    await desk.answer(MEI, rf"ticket is T-{ticket_id}")

    # Take (the button), then a plain Telegram reply to the notification goes to Mei.
    api.press_button(desk.user(ANA), mei_note, f"/take {ticket_id}")
    await desk.answer(ANA, rf"T-{ticket_id} is yours")
    assert (await desk.ticket(ticket_id)).assignee_id is not None
    desk.says(ANA, "Your parcel left the depot this morning.", reply_to=mei_note["message_id"])
    await desk.answer(MEI, "left the depot")
    await desk.reply_to(ANA, f"/reply {ticket_id} Tracking number: ZX81", r"Queued for Mei")
    await desk.answer(MEI, "Tracking number: ZX81")
    assert api.calls_of("answerCallbackQuery"), "the button press was answered"

    # /history shows both sides of the conversation (outbound contacts are logged once delivery is recorded).
    await desk.app.outbox.drain()
    history = await desk.reply_to(ANA, f"/history T-{ticket_id}", r"History of Mei")
    assert "parcel 8812 never arrived" in history["text"]
    assert "Tracking number: ZX81" in history["text"] and "left the depot" in history["text"]
    assert "→ telegram" in history["text"] and "← telegram" in history["text"]

    # A customer typing /history is a customer: logged on their ticket, shown nothing of anyone.
    before = len(api.sent_to(MEI))
    desk.says(MEI, "/history")
    await desk.answer(ANA, rf"T-{ticket_id} · Mei: /history")
    assert not any("Invoice 77" in m["text"] or "History of" in m["text"] for m in api.sent_to(MEI)[before:])

    # Vic serves VIP only: Bob's ticket is none of his business, and says so without leaking it.
    bob_ticket = ticket_of(bob_note)
    refused = await desk.reply_to(VIC, f"/take {bob_ticket}", r"does not exist or is not in your queues")
    assert "Invoice" not in refused["text"]
    await desk.reply_to(VIC, f"/history T-{bob_ticket}", r"does not exist or is not in your queues")
    await desk.reply_to(ANA, "/frobnicate 3", r"Unknown command /frobnicate\. /help")

    # Closing asks Mei for a rating with 1-5 buttons; her press is stored on the ticket.
    await desk.reply_to(ANA, f"/close {ticket_id} parcel found", rf"T-{ticket_id} closed")
    csat = await desk.answer(MEI, r"How satisfied")
    assert [b["callback_data"] for b in csat["reply_markup"]["inline_keyboard"][0]] == [
        f"/csat {ticket_id} {n}" for n in range(1, 6)]
    api.press_button(desk.user(MEI), csat, f"/csat {ticket_id} 4")
    await desk.answer(MEI, "Thank you for your rating")
    closed = await desk.ticket(ticket_id)
    assert (closed.status, closed.csat, closed.resolution) == ("closed", 4, "parcel found")
    async with desk.app.sessions() as s:
        kinds = list(await s.scalars(select(TicketEvent.kind).where(TicketEvent.ticket_id == ticket_id)
                                     .order_by(TicketEvent.id)))
    assert {"assigned", "replied", "closed", "csat"} <= set(kinds)


async def test_queue_next_note_transfer_status(desk):
    api = desk.api
    desk.says(BOB, "first problem")
    await desk.answer(ANA, r"New ticket T-\d+ .*first problem")
    desk.says(MEI, "second problem")
    waiting = ticket_of(await desk.answer(ANA, r"New ticket T-\d+ .*second problem"))

    queue = await desk.reply_to(ANA, "/queue", r"Waiting \(1\)")
    assert f"T-{waiting} · potential" in queue["text"] and "Mei" in queue["text"]
    assert queue["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == f"/take {waiting}"
    # Ana is full (capacity 1): /next says so instead of overloading her.
    await desk.reply_to(ANA, "/next", r"capacity 1")
    await desk.reply_to(ANA, "/status sideways", r"Usage: /status online\|away")
    await desk.reply_to(ANA, "/status away", r"You are away")
    async with desk.app.sessions() as s:
        assert (await agents_repo.find_agent(s, "Ana")).status == "away"

    # The supervisor takes the next ticket, notes it privately, and transfers it to the VIP queue.
    await desk.reply_to(SAM, "/status online", r"You are online")
    await desk.reply_to(SAM, "/next", rf"T-{waiting} is yours")
    await desk.reply_to(SAM, f"/note {waiting} customer sounds upset", r"Note saved")
    await desk.reply_to(SAM, "/note", r"Usage: /note")
    await desk.reply_to(SAM, f"/transfer {waiting} nowhere", r"No agent or queue named 'nowhere'")
    await desk.reply_to(SAM, f"/transfer {waiting} Vic", r"Vic does not serve potential/general tickets")
    await desk.reply_to(SAM, f"/transfer {waiting} vip", rf"T-{waiting} transferred to queue vip")
    assert (await desk.ticket(waiting)).assignee_id is None
    await desk.reply_to(SAM, f"/transfer {waiting} Ana", rf"T-{waiting} transferred to Ana")
    await desk.answer(ANA, rf"T-{waiting} was transferred to you by Sam")
    ticket = await desk.ticket(waiting)
    async with desk.app.sessions() as s:
        ana = await agents_repo.find_agent(s, "Ana")
        notes = list(await s.scalars(select(Note.text).where(Note.ticket_id == waiting)))
        kinds = list(await s.scalars(select(TicketEvent.kind).where(TicketEvent.ticket_id == waiting)))
    assert (ticket.assignee_id, ticket.queue) == (ana.id, "vip")
    assert kinds.count("transferred") == 2 and "note" in kinds
    assert notes == ["customer sounds upset"]
    assert not any("upset" in m["text"] for m in api.sent_to(MEI)), "notes are never sent to the customer"


async def test_help_and_supervisor_commands(desk):
    agent_help = await desk.reply_to(ANA, "/help", r"Commands for agents")
    sup_help = await desk.reply_to(SAM, "/help", r"Commands for supervisors")
    for command in ("/queue", "/next", "/take", "/reply", "/note", "/transfer", "/close", "/status", "/history",
                    "/customer"):
        assert command in agent_help["text"] and command in sup_help["text"]
    for command in ("/tier", "/sla", "/report"):
        assert command not in agent_help["text"] and command in sup_help["text"]
    await desk.reply_to(ANA, "/report", r"/report is for supervisors and admins only")

    desk.says(MEI, "Where is my refund?")
    ticket_id = ticket_of(await desk.answer(ANA, r"New ticket T-\d+ .*refund"))
    async with desk.app.sessions() as s:
        mei = await s.scalar(select(Customer).where(Customer.name == "Mei"))

    card = await desk.reply_to(ANA, f"/customer {mei.id}", r"Tier: potential")
    assert f"telegram:{MEI}" in card["text"] and f"T-{ticket_id}" in card["text"]
    await desk.reply_to(SAM, f"/tier {mei.id} platinum", r"'platinum' is not a tier")
    await desk.reply_to(SAM, f"/tier {mei.id} VIP", r"is now VIP")
    async with desk.app.sessions() as s:
        assert (await s.get(Customer, mei.id)).manual_tier == "VIP"
    sla = await desk.reply_to(SAM, "/sla", r"No SLA breaches|Breached")
    assert "Breached (0)" in sla["text"] or "No SLA breaches" in sla["text"]
    report = await desk.reply_to(SAM, "/report today", r"Report for today")
    assert "potential: 1 ·" in report["text"] and "Ana:" in report["text"]
    await desk.reply_to(SAM, "/report decade", r"Usage: /report \[today\|week\]")


async def test_blocked_bot_is_reported_on_the_ticket_not_retried(desk):
    api = desk.api
    desk.says(MEI, "Please call me back")
    ticket_id = ticket_of(await desk.answer(ANA, r"New ticket T-\d+ .*call me back"))
    await desk.answer(MEI, rf"ticket is T-{ticket_id}")
    api.block(MEI)
    tries_before = len(api.calls_of("sendMessage"))
    await desk.reply_to(ANA, f"/reply {ticket_id} We tried to call you", r"Queued for Mei")
    failed = await desk.answer(ANA, rf"reply on T-{ticket_id} could not be delivered via telegram")
    assert "blocked" in failed["text"]
    to_mei = [c for c in api.calls_of("sendMessage")[tries_before:] if c.params.get("chat_id") == MEI]
    assert [c.status for c in to_mei] == [403]
    async with desk.app.sessions() as s:
        kinds = list(await s.scalars(select(TicketEvent.kind).where(TicketEvent.ticket_id == ticket_id)))
    assert "delivery_failed" in kinds

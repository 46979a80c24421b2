"""A whole agent day in Telegram: the real App and aiogram client against the loopback Bot API server. Every
command /help lists is typed and every kind of button the bot sends is pressed; media goes both ways; replies are
confirmed after delivery; bad input (forged buttons, unknown commands, others' tickets, oversize files) changes
nothing."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select, update

from bot.app import App
from channels.memory import MemoryChannel
from crm_store.models import Customer, Ticket, TicketEvent
from crm_store.repositories import agents as agents_repo
from crm_store.repositories import canned as canned_repo
from tests.e2e.botapi_files import FileBotApiServer
from tests.e2e.polling import polling_channel, polling_settings

ANA, VIC, SAM = 9001, 9002, 9100  # agent (all tiers), agent (VIP only), supervisor
MEI, BOB = 5001, 5002
NAMES = {ANA: "Ana", VIC: "Vic", SAM: "Sam", MEI: "Mei", BOB: "Bob"}
USERNAMES = {MEI: "mei_k"}


class Day:
    def __init__(self, app: App, api: FileBotApiServer, email: MemoryChannel) -> None:
        self.app, self.api, self.email = app, api, email
        self.typed: set[str] = set()
        self.pressed: set[str] = set()

    def user(self, uid: int) -> dict:
        return self.api.user(uid, NAMES[uid], USERNAMES.get(uid, ""))

    def says(self, uid: int, text: str, **kwargs) -> dict:
        if text.startswith("/"):
            self.typed.add(text.split()[0])
        return self.api.user_message(self.user(uid), text, **kwargs)

    async def next_to(self, uid: int, before: int, pattern: str, within: float = 10.0) -> dict:
        rx = re.compile(pattern, re.S)
        try:
            return await self.api.wait_for(
                lambda: next((m for m in self.api.sent_to(uid)[before:] if rx.search(m["text"])), None), within
            )
        except TimeoutError:
            raise AssertionError(f"no {pattern!r} to {NAMES[uid]}; got {self.api.texts_to(uid)[before:]}") from None

    async def ask(self, uid: int, text: str, pattern: str, **kwargs) -> dict:
        before = len(self.api.sent_to(uid))
        self.says(uid, text, **kwargs)
        return await self.next_to(uid, before, pattern)

    async def press(self, uid: int, message: dict, label: str, pattern: str) -> dict:
        """Press the button labelled `label` under `message` and wait for the answer matching `pattern`."""
        data = button(message, label)
        self.pressed.add(re.sub(r"[\s\d-]+$", "", label))
        before = len(self.api.sent_to(uid))
        self.api.press_button(self.user(uid), message, data)
        return await self.next_to(uid, before, pattern)

    async def ticket(self, ticket_id: int) -> Ticket:
        async with self.app.sessions() as s:
            return await s.get(Ticket, ticket_id)


def buttons(message: dict) -> dict[str, str]:
    return {
        b["text"]: b["callback_data"] for row in message.get("reply_markup", {}).get("inline_keyboard", []) for b in row
    }


def button(message: dict, label: str) -> str:
    found = buttons(message)
    assert label in found, f"no button {label!r} in {found}"
    return found[label]


def ticket_of(message: dict) -> int:
    return int(re.search(r"T-(\d+)", message["text"]).group(1))


@pytest.fixture
async def day(db):
    async with FileBotApiServer() as api:
        settings = polling_settings(db.url, db.schema)
        telegram = polling_channel(api)
        email = MemoryChannel("email")
        app = App(settings, channels=[telegram, email])
        await app.start()
        async with app.sessions() as s, s.begin():
            await agents_repo.add_agent(s, name="Ana", role="agent", capacity=3, addresses={"telegram": str(ANA)})
            await agents_repo.add_agent(s, name="Vic", role="agent", tiers=["VIP"], addresses={"telegram": str(VIC)})
            await agents_repo.add_agent(
                s, name="Sam", role="supervisor", status="away", addresses={"telegram": str(SAM)}
            )
            await canned_repo.put(s, "hours", "We are open 9-17.")
            await canned_repo.put(s, "hours", "Wir haben von 9 bis 17 Uhr geöffnet.", language="de")
        try:
            yield Day(app, api, email)
        finally:
            await app.stop()


async def morning(d: Day) -> tuple[int, dict]:
    """Mei writes and sends media; Ana, who has the ticket, sees each as media and reads the history."""
    api = d.api
    d.says(MEI, "My parcel 8812 never arrived")
    notice = await d.next_to(ANA, 0, r"New ticket T-\d+ .*parcel 8812")
    tid = ticket_of(notice)
    assert list(buttons(notice)) == ["Close", "History"], "no Take for a ticket that is already hers"
    async with d.app.sessions() as s, s.begin():
        await s.execute(update(Customer).where(Customer.name == "Mei").values(language="de"))

    before = len(api.sent_to(ANA))
    api.media_message(d.user(MEI), "photo", "ph-label", file_size=120_000)
    await d.next_to(ANA, before, rf"T-{tid} · Mei: \[photo: 117 KB\]")
    api.media_message(
        d.user(MEI), "document", "doc-receipt", file_name="receipt.pdf", file_size=2048, caption="the receipt"
    )
    await d.next_to(ANA, before, rf"T-{tid} · Mei: the receipt \[document: receipt.pdf, 2 KB\]")
    api.media_message(d.user(MEI), "voice", "voice-1", file_size=9000)
    await d.next_to(ANA, before, r"\[voice: 9 KB\]")
    api.media_message(d.user(MEI), "sticker", "stk-1", emoji="😀")
    await d.next_to(ANA, before, r"\[sticker: 😀\]")
    copies = await api.wait_for(lambda: len(api.copies_to(ANA)) >= 4 and api.copies_to(ANA))
    assert copies[0]["photo"][-1]["file_id"] == "ph-label"
    assert copies[1]["document"]["file_name"] == "receipt.pdf" and copies[1]["caption"] == "the receipt"
    assert [next(k for k in ("photo", "document", "voice", "sticker") if k in c) for c in copies] == [
        "photo",
        "document",
        "voice",
        "sticker",
    ]

    # History from the notice's button, newest first, pages both ways; attachments named, never "(no text)".
    # (The bot's acknowledgements to Mei are logged when sent, so they may sort among her media: the pages are
    # checked against each other, not against a fixed order.)
    history = await d.press(ANA, notice, "History", r"History of Mei")
    for label in ("[photo: 117 KB]", "[sticker: 😀]", "[voice: 9 KB]", "receipt.pdf, 2 KB"):
        assert label in history["text"], label
    assert "(no text)" not in history["text"]
    page1 = await d.ask(ANA, f"/history T-{tid} 2", r"History of Mei .*page 1")
    assert list(buttons(page1)) == ["Older"]
    page2 = await d.press(ANA, page1, "Older", r"page 2")
    lines1, lines2 = page1["text"].splitlines(), page2["text"].splitlines()
    assert len(lines1) == 3 and len(lines2) == 3 and not set(lines2[1:]) & set(lines1)
    assert list(buttons(page2)) == ["Newer", "Older"]
    back = await d.press(ANA, page2, "Newer", r"page 1")
    assert back["text"].splitlines()[1:] == lines1[1:]
    return tid, notice


async def lookups(d: Day, tid: int) -> None:
    """The customer card by every handle, and its History button."""
    d.says(MEI, "", contact={"phone_number": "4915123456789", "user_id": MEI, "first_name": "Mei"})
    async with d.app.sessions() as s:
        mei = await s.scalar(select(Customer).where(Customer.name == "Mei"))
    card = None
    for ref in ("@mei_k", "@MEI_K", f"C-{mei.id}", str(mei.id), f"T-{tid}", "+49 151 2345 6789", "004915123456789"):
        card = await d.ask(ANA, f"/customer {ref}", rf"Mei \(C-{mei.id}\).*Tier: potential")
    assert "telegram:@mei_k" in card["text"] and f"T-{tid}" in card["text"]
    await d.press(ANA, card, "History", r"History of Mei")
    await d.ask(ANA, "/status away", r"You are away")  # Bob's mail waits in the queue
    await d.email.receive("bob@example.com", "Invoice 77 is wrong", sender_name="Bob")
    bob_card = await d.ask(ANA, "/customer BOB@Example.com", r"bob@example.com \(C-\d+\)|Tier:")
    assert "email:bob@example.com" in bob_card["text"]
    await d.ask(ANA, "/customer @nobody_here", r"No customer '@nobody_here' in your tiers")

    found = await d.ask(ANA, "/find parcel 8812", r"Found for 'parcel 8812'")
    assert f"T-{tid}" in found["text"] and "My parcel 8812 never arrived" in found["text"]
    assert "C-" in (await d.ask(ANA, "/find Mei", r"Customers:"))["text"]
    await d.ask(ANA, "/find zzqqxx", r"Nothing found for 'zzqqxx'")
    await d.ask(ANA, "/find", r"Usage: /find <words>")
    await d.ask(VIC, "/find parcel", r"Nothing found")  # Mei is not VIP: Vic sees none of it


async def replies(d: Day, tid: int, notice: dict) -> None:
    """Text, a photo and canned responses to Mei; each confirmed queued, then delivered."""
    api = d.api
    before = len(api.sent_to(ANA))
    d.says(ANA, f"/reply {tid} Your parcel is at the depot.")
    queued = await d.next_to(ANA, before, rf"Queued for Mei on T-{tid}")
    delivered = await d.next_to(ANA, before, rf"Delivered to Mei on T-{tid} via telegram")
    assert queued["message_id"] < delivered["message_id"]
    assert "Your parcel is at the depot." in api.texts_to(MEI)

    # A photo with a caption, as a Telegram reply to the notice: Mei gets the photo itself.
    before = len(api.sent_to(ANA))
    api.media_message(
        d.user(ANA), "photo", "ph-agent", file_size=50_000, caption="Here is your label", reply_to=notice["message_id"]
    )
    await d.next_to(ANA, before, rf"Delivered to Mei on T-{tid}")
    sent = await api.wait_for(lambda: api.copies_to(MEI))
    assert sent[-1]["photo"][-1]["file_id"] == "ph-agent" and sent[-1]["caption"] == "Here is your label"
    assert "Here is your label" not in api.texts_to(MEI), "the caption came with the photo, not twice"
    before_mei = len(api.copies_to(MEI))
    answer_before = len(api.sent_to(ANA))
    api.media_message(
        d.user(ANA),
        "document",
        "doc-huge",
        file_name="huge.zip",
        file_size=30 * 1024 * 1024,
        reply_to=notice["message_id"],
    )
    await d.next_to(ANA, answer_before, rf"huge.zip, 30.0 MB\] is over 20 MB; nothing was sent to T-{tid}")
    assert len(api.copies_to(MEI)) == before_mei

    # Canned responses: the list (with send buttons when it answers the ticket's message), one sent in German.
    listed = await d.ask(ANA, "/canned", r"Canned responses")
    assert "hours (default, de)" in listed["text"] and not buttons(listed)
    here = await d.ask(ANA, "/canned", r"Canned responses", reply_to=notice["message_id"])
    await d.press(ANA, here, "hours", rf"Delivered to Mei on T-{tid}")
    assert api.texts_to(MEI)[-1] == "Wir haben von 9 bis 17 Uhr geöffnet."
    await d.ask(ANA, f"/canned {tid} hours", rf"Queued for Mei on T-{tid}")
    await d.ask(ANA, f"/canned nope {tid}", r"No canned response 'nope'; /canned lists them")
    await d.ask(ANA, "/canned hours", r"Which ticket\?")

    # Mei edits her first message: Ana is shown the edit.
    first = next(m for m in api.messages[MEI].values() if m.get("text") == "My parcel 8812 never arrived")
    before = len(api.sent_to(ANA))
    api.edit_message(d.user(MEI), first["message_id"], "My parcel 8812 never arrived, tracking ZX81")
    edit = await d.next_to(ANA, before, rf"T-{tid} · Mei edited a message")
    assert "tracking ZX81" in edit["text"] and "(was: My parcel 8812 never arrived)" in edit["text"]


async def working(d: Day, tid: int) -> None:
    """Fields, states and the queue, from commands and their buttons."""
    assert "T-" in (await d.ask(ANA, "/mine", r"Your tickets \(1\)"))["text"]
    await d.ask(ANA, f"/tag {tid} +shipping", rf"T-{tid} tags: shipping")
    await d.ask(ANA, f"/priority {tid} 2", rf"T-{tid} now has priority 2")
    await d.ask(ANA, f"/subject {tid} Lost parcel 8812", rf"T-{tid}: subject set")
    await d.ask(ANA, f"/note {tid} depot called", r"Note saved")
    await d.ask(ANA, f"/pending {tid} 2h", rf"T-{tid}")
    assert (await d.ticket(tid)).status == "pending"
    await d.ask(ANA, f"/take {tid}", rf"T-{tid} is already yours")

    # Bob's mail waits in the queue; Ana takes it from /queue's button, closes it from the answer's button.
    queue = await d.ask(ANA, "/queue", r"Waiting \(1\)")
    bob_tid = int(re.search(r"Waiting \(1\):\nT-(\d+)", queue["text"]).group(1))
    taken = await d.press(ANA, queue, f"Take T-{bob_tid}", rf"T-{bob_tid} is yours")
    await d.ask(ANA, "/status online", r"You are online")
    before = len(d.api.sent_to(ANA))
    d.api.put_file("ph-bob", b"\xff\xd8 a photo \xff\xd9")
    d.api.media_message(d.user(ANA), "photo", "ph-bob", file_size=4000, reply_to=taken["message_id"])
    await d.next_to(ANA, before, rf"Queued for Bob on T-{bob_tid}")
    mailed = await d.email.wait_for(lambda m: bool(m.files))
    assert [(f.name, f.data) for f in mailed.files] == [("photo.jpg", b"\xff\xd8 a photo \xff\xd9")]
    closed = await d.press(ANA, taken, "Close", rf"T-{bob_tid} closed")
    await d.press(ANA, taken, "History", r"History of Bob")
    await d.ask(ANA, f"/reopen {bob_tid}", rf"T-{bob_tid}")
    assert (await d.ticket(bob_tid)).status in ("open", "pending")
    await d.ask(ANA, f"/transfer {bob_tid} vip", rf"T-{bob_tid} transferred to queue vip")
    assert closed
    await d.ask(SAM, "/status online", r"You are online")
    await d.ask(SAM, "/next", rf"T-{bob_tid} is yours")
    await d.ask(SAM, f"/close {bob_tid} sorted", rf"T-{bob_tid} closed")


async def supervising(d: Day, tid: int) -> None:
    async with d.app.sessions() as s:
        mei = await s.scalar(select(Customer).where(Customer.name == "Mei"))
        bob = await s.scalar(select(Customer).where(Customer.name == "Bob"))
    await d.ask(ANA, f"/merge C-{bob.id} C-{mei.id}", r"/merge is for supervisors and admins only")
    merged = await d.ask(SAM, f"/merge C-{bob.id} C-{mei.id}", rf"C-{bob.id} .* merged into C-{mei.id}")
    await d.press(SAM, merged, "History", r"History of Mei")
    await d.ask(SAM, f"/tier C-{mei.id} important", r"is now important")
    await d.ask(SAM, "/sla", r"SLA breaches today")
    await d.ask(SAM, "/report", r"Report for today")
    risky = await d.ask(SAM, "/atrisk", r"Nobody in the VIP and important tiers|Valuable customers at risk")
    if buttons(risky):
        await d.press(SAM, risky, next(iter(buttons(risky))), r"Tier:")
    await d.ask(ANA, f"/checkin C-{mei.id} Did the parcel arrive?", r"T-\d+")


async def bad_input(d: Day, tid: int) -> None:
    api = d.api
    await d.ask(ANA, "/frobnicate 3", r"Unknown command /frobnicate\. /help")
    await d.ask(VIC, f"/reply {tid} hello", r"does not exist or is not in your queues")
    before = len(api.texts_to(MEI))
    forged = {"text": "x", "message_id": 1, "chat": {"id": ANA, "type": "private"}, "date": 0}
    for data, pattern in (
        ("/take 99999", r"T-99999 does not exist|does not exist"),
        ("/history C-99999999", r"No customer 'C-99999999' in your tiers"),
        ("/canned hours 99999", r"does not exist"),
        ("/csat 1 9", r"Unknown command|rating"),
    ):
        answered = len(api.sent_to(ANA))
        api.press_button(d.user(ANA), forged, data)
        await d.next_to(ANA, answered, pattern)
    assert len(api.texts_to(MEI)) == before, "nothing reached the customer"


async def test_an_agent_day_in_telegram(day):
    d = day
    tid, notice = await morning(d)
    await lookups(d, tid)
    await replies(d, tid, notice)
    await working(d, tid)
    await supervising(d, tid)
    await bad_input(d, tid)
    await d.ask(ANA, f"/close {tid} parcel found", rf"T-{tid} closed")
    csat = await d.next_to(MEI, 0, r"How satisfied")
    d.api.press_button(d.user(MEI), csat, f"/csat {tid} 5")
    await d.next_to(MEI, 0, r"Thank you for your rating")

    helps = [await d.ask(uid, "/help", r"Commands for") for uid in (ANA, SAM)]
    listed = {line.split()[0] for h in helps for line in h["text"].splitlines()[1:]}
    assert listed - d.typed == set(), "every command /help lists was used"
    labels = {
        re.sub(r"[\s\d-]+$", "", b["text"])
        for uid in (ANA, VIC, SAM)
        for m in d.api.sent_to(uid)
        for row in m.get("reply_markup", {}).get("inline_keyboard", [])
        for b in row
    }
    assert labels - d.pressed == set(), "every kind of button the desk sent was pressed"
    async with d.app.sessions() as s:
        kinds = set(await s.scalars(select(TicketEvent.kind).where(TicketEvent.ticket_id == tid)))
    assert {"routed", "replied", "edited", "tagged", "priority_set", "closed", "csat"} <= kinds

"""WhatsApp end to end: customers write through the Cloud API stand-in (signed webhook deliveries into the web
app on loopback), the agent answers in Telegram (the Bot API stand-in), the customer gets it on WhatsApp; the
contact log, exported, holds each message exactly once."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from bot.settings import WhatsAppSettings
from channels.base import build
from crm_store.models import Contact, Customer, Identity, Ticket
from crm_store.receipts import DeliveryReceipt
from tests.e2e.botapi_server import BotApiServer
from tests.e2e.channel_desk import (
    ANA,
    agent_note,
    exported_log,
    free_port,
    repeated,
    running_desk,
    settings_for,
    ticket_of,
)
from tests.e2e.whatsapp_server import GraphServer
from tests.e2e.whatsapp_server import text_of as graph_text

MEI, LEO = "4915112345678", "4915187654321"


def whatsapp_settings(graph: GraphServer, tmp_path, **extra) -> WhatsAppSettings:
    return WhatsAppSettings(
        access_token=graph.token,
        phone_number_id=graph.phone_number_id,
        app_secret=graph.app_secret,
        verify_token="verify-me",
        graph_url=graph.url,
        media_dir=str(tmp_path / "media"),
        **extra,
    )


async def reply_in_telegram(api: BotApiServer, ticket_id: int, text: str) -> None:
    api.user_message(api.user(ANA, "Ana"), f"/reply {ticket_id} {text}")
    await agent_note(api, rf"Queued for .*|T-{ticket_id}.*{text[:10]}")


async def test_a_whatsapp_customer_is_answered_from_telegram(db, tmp_path):
    port = free_port()
    async with BotApiServer() as api, GraphServer(webhook_url=f"http://127.0.0.1:{port}/whatsapp/webhook") as graph:
        settings = settings_for(db, tmp_path, whatsapp=whatsapp_settings(graph, tmp_path))
        async with running_desk(settings, build("whatsapp", settings), api, port) as app:
            asked = await graph.customer_says(MEI, "My parcel 8812 never arrived", name="Mei")
            note = await agent_note(api, r"New ticket T-\d+ .*parcel 8812")
            ticket_id = ticket_of(note)
            await graph.wait_for(lambda: any(f"T-{ticket_id}" in t for t in graph.texts_to(MEI)))
            assert graph.read == [asked["entry"][0]["changes"][0]["value"]["messages"][0]["id"]]

            # Meta redelivers what it thinks went unanswered: stored once; bad deliveries store nothing.
            assert await graph.deliver(asked) == 200
            fake = graph.message_payload(MEI, "refund me twice")
            assert await graph.deliver(fake, signature="") == 401
            assert await graph.deliver(fake, signature="sha256=" + "0" * 64) == 401
            assert await graph.deliver(b'{"entry": [', signature=None) == 400

            await reply_in_telegram(api, ticket_id, "Your parcel left the depot this morning.")
            reply = await graph.wait_for(
                lambda: next((m for m in graph.sent_to(MEI) if "left the depot" in m["text"]["body"]), None)
            )

            # Delivery statuses, redelivered too, are stored once each, on the ticket of the message (once the
            # send is recorded: a status that overtakes its recording is stored without it).
            await app.outbox.drain()
            for status in ("sent", "delivered", "read", "delivered"):
                assert await graph.deliver(graph.status_payload(reply["id"], status, MEI)) == 200
            assert await graph.deliver(graph.status_payload("wamid.unknown", "failed", MEI, error=131026)) == 200
            await app.outbox.drain()
            async with app.sessions() as s:
                receipts = list(
                    await s.execute(
                        select(DeliveryReceipt.external_id, DeliveryReceipt.status, DeliveryReceipt.ticket_id).order_by(
                            DeliveryReceipt.id
                        )
                    )
                )
                problem = (await s.get(Ticket, ticket_id)).delivery_problem
                assert (
                    await s.scalar(select(func.count()).select_from(Contact).where(Contact.text == "refund me twice"))
                    == 0
                )
            assert receipts == [
                (reply["id"], "sent", ticket_id),
                (reply["id"], "delivered", ticket_id),
                (reply["id"], "read", ticket_id),
                ("wamid.unknown", "failed", None),
            ]
            assert problem is None  # the failure was about a message of nobody's ticket
            assert await graph.deliver(graph.status_payload(reply["id"], "failed", MEI, error=131026)) == 200
            async with app.sessions() as s:
                problem = (await s.get(Ticket, ticket_id)).delivery_problem
            assert problem == "whatsapp: not delivered (131026 Message undeliverable)"
            await agent_note(api, rf"reply on T-{ticket_id} was not delivered via whatsapp: 131026 Message undel")

            # Past the 24-hour window and without a template, the reply fails and Ana is told why.
            graph.close_window(MEI)
            api.user_message(api.user(ANA, "Ana"), f"/reply {ticket_id} Anything else?")
            told = await agent_note(api, rf"reply on T-{ticket_id} could not be delivered via whatsapp.*131047")
            assert "24-hour window" in told["text"]
            assert [code for code, _ in graph.refused] == [131047]

            rows = await exported_log(settings, tmp_path / "log.jsonl", "whatsapp")
    assert repeated(rows) == []
    inbound = [r for r in rows if r["direction"] == "in"]
    outbound = [r for r in rows if r["direction"] == "out"]
    assert [r["text"] for r in inbound] == ["My parcel 8812 never arrived"]
    assert [r["external_id"] for r in outbound] == [m["id"] for m in graph.sent_to(MEI)]
    assert any("left the depot" in r["text"] and r["author"] == "agent" for r in outbound)
    assert {r["ticket_id"] for r in rows} == {ticket_id}


async def test_templates_limits_media_and_a_number_shared_in_telegram(db, tmp_path, redis_url, redis_prefix):
    port = free_port()
    async with BotApiServer() as api, GraphServer(webhook_url=f"http://127.0.0.1:{port}/whatsapp/webhook") as graph:
        section = whatsapp_settings(graph, tmp_path, template_name="reply_waiting", template_language="de")
        settings = settings_for(db, tmp_path, whatsapp=section, redis_url=redis_url, redis_prefix=redis_prefix)
        async with running_desk(settings, build("whatsapp", settings), api, port) as app:
            # Leo shared his own number with Telegram's button earlier: his WhatsApp messages are his.
            leo_tg = api.user(5001, "Leo")
            api.user_message(
                leo_tg, "", contact={"phone_number": "49 151 8765 4321", "user_id": 5001, "first_name": "Leo"}
            )
            api.user_message(leo_tg, "Hello from Telegram")
            await agent_note(api, r"New ticket T-\d+ .*Hello from Telegram")

            photo = b"\x89PNG\r\n\x1a\n" + bytes(range(200))
            graph.add_media("media-77", photo, "image/png")
            await graph.customer_says(
                LEO,
                "",
                name="Leo W",
                kind="image",
                body={"id": "media-77", "mime_type": "image/png", "caption": "the dent"},
            )
            note = await agent_note(api, r"T-\d+ .*the dent")
            ticket_id = ticket_of(note)

            # Rate limited once (130429): the outbox retries; later, outside the window, the template goes.
            graph.fail_next(130429)
            await reply_in_telegram(api, ticket_id, "We will send a new one.")
            await graph.wait_for(lambda: "We will send a new one." in graph.texts_to(LEO))
            graph.close_window(LEO)
            await reply_in_telegram(api, ticket_id, "It ships\ntomorrow.")
            template = await graph.wait_for(
                lambda: next((m for m in graph.sent_to(LEO) if m["type"] == "template"), None)
            )
            assert template["template"]["name"] == "reply_waiting"
            assert template["template"]["language"] == {"code": "de"}
            assert "It ships tomorrow." in template["template"]["components"][0]["parameters"][0]["text"]
            assert [code for code, _ in graph.refused] == [130429, 131047]

            # The window can also close between the reply and its delivery: Meta then reports the failure
            # later (a status with 131047), and the template goes then.
            graph.last_wrote[LEO] = time.time()  # Leo wrote again: the window is open
            await reply_in_telegram(api, ticket_id, "Also a voucher.")
            late = await graph.wait_for(
                lambda: next(
                    (m for m in graph.sent_to(LEO) if m["type"] == "text" and "voucher" in m["text"]["body"]), None
                )
            )
            await app.outbox.drain()
            assert await graph.deliver(graph.status_payload(late["id"], "failed", LEO, error=131047)) == 200
            again = await graph.wait_for(
                lambda: next(
                    (m for m in graph.sent_to(LEO) if m["type"] == "template" and "voucher" in graph_text(m)), None
                )
            )
            assert again["template"]["name"] == "reply_waiting"
            await app.outbox.drain()
            # Send limits are kept in Redis, shared with every other process: Leo's share refills over a minute
            # (the number's own refills in 1/20 s and is gone already).
            leo_turns = f"{redis_prefix}:limits:whatsapp:{graph.phone_number_id}:{LEO}"
            assert 0 < await app.redis.pttl(leo_turns) <= 60_000

            async with app.sessions() as s:
                [image] = list(
                    await s.scalars(select(Contact).where(Contact.channel == "whatsapp", Contact.direction == "in"))
                )
                identities = set(
                    await s.execute(
                        select(Identity.channel, Identity.address).where(Identity.customer_id == image.customer_id)
                    )
                )
                customers = await s.scalar(
                    select(func.count()).select_from(Customer).where(Customer.merged_into_id.is_(None))
                )
                ticket = await s.get(Ticket, ticket_id)
            rows = await exported_log(settings, tmp_path / "log.jsonl", "whatsapp")
    assert (image.text, ticket.customer_id) == ("the dent", image.customer_id)
    [attachment] = image.attachments
    assert (attachment["kind"], attachment["mime"], attachment["size"]) == ("image", "image/png", len(photo))
    assert await asyncio.to_thread(Path(attachment["ref"]).read_bytes) == photo and graph.media_fetches == 1
    assert {("telegram", "5001"), ("whatsapp", LEO), ("phone", f"+{LEO}")} <= identities
    assert customers == 1
    assert repeated(rows) == []
    assert [r["direction"] for r in rows].count("out") == len(graph.sent_to(LEO))


async def test_meta_verifies_the_webhook_with_our_token(tmp_path):
    import httpx

    from bot.settings import Settings
    from bot.web.app import create_web_app
    from channels.base import ChannelRegistry

    registry = ChannelRegistry()
    registry.add(
        build(
            "whatsapp",
            Settings(
                whatsapp=WhatsAppSettings(
                    access_token="t", phone_number_id="1", app_secret="s", verify_token="verify-me"
                )
            ),
        )
    )
    web = create_web_app(SimpleNamespace(settings=Settings(state_dir=str(tmp_path)), registry=registry))
    asked = {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://t") as client:
        ok = await client.get("/whatsapp/webhook", params=asked)
        wrong = await client.get("/whatsapp/webhook", params={**asked, "hub.verify_token": "guess"})
    assert (ok.status_code, ok.text) == (200, "1158201444")
    assert wrong.status_code == 403


pytestmark = pytest.mark.timeout(120)


async def test_a_number_typed_in_telegram_is_confirmed_by_a_code_on_whatsapp(sqlite_db, tmp_path):
    """Someone else's contact card is only a claim: the code goes to that number on WhatsApp (as the template,
    since the number never wrote), and typing it back in Telegram links the number."""
    port = free_port()
    async with BotApiServer() as api, GraphServer(webhook_url=f"http://127.0.0.1:{port}/whatsapp/webhook") as graph:
        section = whatsapp_settings(graph, tmp_path, template_name="reply_waiting")
        settings = settings_for(sqlite_db, tmp_path, whatsapp=section, channels=["telegram", "whatsapp"])
        async with running_desk(settings, build("whatsapp", settings), api, port) as app:
            kim = api.user(5003, "Kim")
            api.user_message(kim, "", contact={"phone_number": f"+{MEI}", "user_id": 777, "first_name": "Mei"})
            await api.wait_for(lambda: any("6-digit code" in t for t in api.texts_to(5003)))
            mail = await graph.wait_for(lambda: next((m for m in graph.sent_to(MEI) if m["type"] == "template"), None))
            code = re.search(r"\b(\d{6})\b", graph_text(mail)).group(1)
            api.user_message(kim, code)
            await api.wait_for(lambda: any("is confirmed and linked" in t for t in api.texts_to(5003)))
            await graph.customer_says(MEI, "Kim here, on WhatsApp now")
            await app.outbox.drain()
            async with app.sessions() as s:
                owners = set(
                    await s.scalars(select(Identity.customer_id).where(Identity.address.in_(["5003", f"+{MEI}", MEI])))
                )
    assert len(owners) == 1  # Kim's Telegram, the confirmed number and its WhatsApp are one customer

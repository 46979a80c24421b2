"""API channels end to end: a caller posts messages over HTTP into the web app on loopback, the agent answers in
Telegram (the Bot API stand-in), the reply reaches the caller's callback receiver, signed, retried while it
answers 500 or hangs, failed for good on 410, or waits to be pulled; the exported log holds each once."""

from __future__ import annotations

import httpx
import pytest

from bot.settings import ApiChannelSettings, ApiEndpointSettings
from channels.base import build
from tests.e2e.botapi_server import BotApiServer
from tests.e2e.callback_receiver import CallbackReceiver
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

pytestmark = pytest.mark.timeout(120)
SHOP, GATE = "shop-token-1", "gateway-token-2"


def api_settings(receiver: CallbackReceiver) -> ApiChannelSettings:
    return ApiChannelSettings(
        endpoints={
            "shop": ApiEndpointSettings(token=SHOP, callback_url=receiver.url, secret=receiver.secret, timeout_s=0.5),
            "gateway": ApiEndpointSettings(token=GATE),
        }
    )


async def reply_in_telegram(api: BotApiServer, ticket_id: int, text: str) -> None:
    api.user_message(api.user(ANA, "Ana"), f"/reply {ticket_id} {text}")


async def test_an_api_caller_is_answered_from_telegram(db, tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}/api/v1/channels"
    async with BotApiServer() as api, CallbackReceiver("cb-secret") as receiver:
        settings = settings_for(db, tmp_path, api_channel=api_settings(receiver))
        async with running_desk(settings, build("api", settings), api, port) as app, httpx.AsyncClient() as http:
            auth = {"Authorization": f"Bearer {SHOP}"}
            message = {
                "id": "m-1",
                "sender": "cust-42",
                "sender_name": "Mei",
                "text": "Where is order 5521?",
                "attachments": [
                    {
                        "kind": "photo",
                        "name": "box.jpg",
                        "mime": "image/jpeg",
                        "size": 2048,
                        "url": "https://shop.example/u/box.jpg",
                    }
                ],
            }
            first = await http.post(f"{base}/shop/messages", json=message, headers=auth)
            again = await http.post(f"{base}/shop/messages", json=message, headers=auth)
            assert (first.status_code, again.status_code) == (202, 200)
            assert again.json() == {**first.json(), "duplicate": True}
            ticket_id = int(first.json()["ticket"][2:])

            refusals = [
                await http.post(f"{base}/shop/messages", json=message, headers={"Authorization": f"Bearer {GATE}"}),
                await http.post(f"{base}/shop/messages", json=message),
                await http.post(f"{base}/shop/messages", content=b'{"id": ', headers=auth),
                await http.post(f"{base}/shop/messages", json={"id": "m-2", "text": "no sender"}, headers=auth),
                await http.post(f"{base}/nowhere/messages", json=message, headers=auth),
            ]
            assert [r.status_code for r in refusals] == [401, 401, 400, 422, 404]
            assert "sender" in refusals[3].json()["error"]

            note = await agent_note(api, r"New ticket T-\d+ .*order 5521")
            assert ticket_of(note) == ticket_id
            # The acknowledgement went first; then Ana's reply: refused with 500, left hanging, then taken.
            await receiver.wait_for(lambda: any(f"T-{ticket_id}" in c.body["text"] for c in receiver.accepted()))
            receiver.answer_next(500, "timeout")
            await reply_in_telegram(api, ticket_id, "It left the warehouse today.")
            got = await receiver.wait_for(
                lambda: next((c for c in receiver.accepted() if "warehouse" in c.body["text"]), None)
            )
            tries = [c for c in receiver.received if "warehouse" in c.body["text"]]
            assert [c.answered for c in tries] == [500, "timeout", 200]
            assert all(c.signed for c in receiver.received)
            assert len({c.body["id"] for c in tries}) == 1 == len({c.headers["X-Tierdesk-Delivery"] for c in tries})
            assert (got.body["recipient"], got.body["channel"], got.body["ticket"]) == (
                "cust-42",
                "shop",
                f"T-{ticket_id}",
            )

            # 410: the caller says the recipient is gone; the reply fails for good and Ana is told.
            receiver.answer_next(410)
            await reply_in_telegram(api, ticket_id, "Are you still there?")
            await agent_note(api, rf"reply on T-{ticket_id} could not be delivered via api: .*HTTP 410")
            assert [c.answered for c in receiver.received if "still there" in c.body["text"]] == [410]
            await app.outbox.drain()
            rows = await exported_log(settings, tmp_path / "log.jsonl", "api")
    assert repeated(rows) == []
    assert [(r["direction"], r["text"]) for r in rows if r["direction"] == "in"] == [("in", "Where is order 5521?")]
    delivered = [r["text"] for r in rows if r["direction"] == "out"]
    assert delivered == [c.body["text"] for c in receiver.accepted()]
    assert {r["address"] for r in rows} == {"shop:cust-42"}


async def test_replies_wait_for_callers_that_pull(db, tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}/api/v1/channels/gateway"
    async with BotApiServer() as api, CallbackReceiver("cb-secret") as receiver:
        settings = settings_for(db, tmp_path, api_channel=api_settings(receiver))
        async with running_desk(settings, build("api", settings), api, port) as app, httpx.AsyncClient() as http:
            auth = {"Authorization": f"Bearer {GATE}"}
            posted = await http.post(
                f"{base}/messages",
                headers=auth,
                json={"id": 7001, "sender": "+15550100", "text": "STOP sending me bills"},
            )
            ticket_id = int(posted.json()["ticket"][2:])
            await agent_note(api, r"New ticket T-\d+ .*STOP sending")
            await reply_in_telegram(api, ticket_id, "Done, no more bills by SMS.")
            await agent_note(api, r"Queued for")
            await app.outbox.drain()

            page = (await http.get(f"{base}/replies", params={"after": 0}, headers=auth)).json()
            texts = [r["text"] for r in page["replies"]]
            assert texts[-1] == "Done, no more bills by SMS." and all(
                r["recipient"] == "+15550100" for r in page["replies"]
            )
            rest = (await http.get(f"{base}/replies", params={"after": page["next_after"]}, headers=auth)).json()
            assert rest == {"replies": [], "next_after": page["next_after"]}
            second = (
                await http.get(f"{base}/replies", params={"after": page["replies"][0]["cursor"]}, headers=auth)
            ).json()
            assert [r["text"] for r in second["replies"]] == texts[1:]
            shop_sees = await http.get(f"{base}/replies", headers={"Authorization": f"Bearer {SHOP}"})
            bad_cursor = await http.get(f"{base}/replies", params={"after": "-1"}, headers=auth)
            rows = await exported_log(settings, tmp_path / "log.jsonl", "api")
    assert (shop_sees.status_code, bad_cursor.status_code) == (401, 422)
    assert receiver.received == []  # nothing was pushed for the pulling caller
    assert repeated(rows) == []
    assert [r["text"] for r in rows if r["direction"] == "out"] == texts

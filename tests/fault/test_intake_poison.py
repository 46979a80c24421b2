"""Poison never blocks intake, counted end to end: the Bot-API test server sends updates with poison in every
kind of field, each followed by a canary message from another customer, through the real polling channel into
the inbound stream of a private redis-server and on to PostgreSQL.

What the edge can clean (a lone surrogate in a username or a file name, a NUL in a file name, a contact's phone
or a chat id, a 100,000-character username) is stored cleaned; an update that cannot be a message at all (a
chat id that is not a number) is refused at the edge with a log line; an entry in the stream that no database
takes (written by an older or buggy publisher) goes to the dead letters after `stream_max_deliveries`. Every
canary is stored and answered once, and the channel confirms every update (nothing stays stuck).
"""

from __future__ import annotations

import json
import time

import pytest

from bot.core.ingest import encode
from bot.core.messages import InboundMessage
from tests.e2e.botapi_server import BotApiServer
from tests.fault.test_intake_redis import fault_row, inbound, replies, start_app, stream_settings, until

pytestmark = pytest.mark.timeout(90)


def _document(file_id: str, name: str) -> dict[str, str]:
    return {"file_id": file_id, "file_unique_id": f"u{file_id}", "file_name": name}


def poison_updates(api: BotApiServer) -> tuple[list[int], list[int]]:
    """Push the poison (each followed by a canary); returns (users whose message can be stored, refused ones)."""
    nul, sur = "\x00", "\ud800"
    cleanable = [
        (101, {"first_name": f"Ann{sur}", "username": f"ann{sur}"}, {"text": "surrogate in my name"}),
        (102, {}, {"document": _document("F1", f"bill{sur}.pdf"), "caption": "surrogate in a file name"}),
        (103, {}, {"document": _document("F2", f"bill{nul}.pdf"), "caption": "NUL in a file name"}),
        (104, {}, {"contact": {"phone_number": f"+4915{nul}1234567", "first_name": f"Bo{nul}", "user_id": 104}}),
        (105, {}, {"chat": {"id": f"105{nul}", "type": "private"}, "text": "NUL in the chat id"}),
        (106, {"username": "u" * 100_000}, {"text": "long username"}),
    ]
    canary = 900
    for user_id, user_fields, fields in cleanable:
        user = {**api.user(user_id, "Poison"), **user_fields}
        chat = fields.pop("chat", None)
        api.user_message(user, fields.pop("text", ""), chat=chat, **fields)
        canary += 1
        api.user_message(api.user(canary, "Canary"), f"canary after {user_id}")
    api.user_message(api.user(107, "Poison"), "chat id is not a number", chat={"id": "abc", "type": "private"})
    api.user_message(api.user(canary + 1, "Canary"), "canary after 107")
    return [u for u, _, _ in cleanable], [107]


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
async def test_poison_updates_never_block_intake(db, private_redis):
    async with BotApiServer() as api:
        # an entry that failed is retried after 0.3 s, so the dead letter comes within seconds
        settings = stream_settings(db, private_redis.url, stream_max_deliveries=2, stream_claim_idle_s=0.3)
        app = await start_app(settings, api)
        try:
            started = time.monotonic()
            entry = json.loads(encode(InboundMessage.build(channel="telegram", external_id="m1:1", sender="1"))["m"])
            await app.redis.xadd(app.ingest.stream, {"m": json.dumps({**entry, "sender_name": {"not": "text"}})})
            stored_ok, refused = poison_updates(api)
            canaries = list(range(901, 901 + len(stored_ok) + len(refused)))
            await until(lambda: _all_answered(api, canaries), 30)
            await until(lambda: _dead_count_is(app, 1), 30)
            took = time.monotonic() - started
            rows, distinct = await inbound(app)
            answered = replies(api)
            sent = len(stored_ok) + len(refused) + len(canaries) + 1  # + the raw entry
            [dead] = await app.ingest.dead.list()
            fault_row(
                "poison through Telegram",
                sent=sent,
                stored=distinct,
                lost=0,
                duplicate_rows=rows - distinct,
                double_replies=sum(n - 1 for n in answered.values() if n > 1),
                dead_lettered=1,
                refused_at_edge=len(refused),
                unconfirmed=api.unconfirmed,
                all_canaries_answered_s=f"{took:.1f}",
                dead_reason=dead.reason[:60],
            )
            assert distinct == rows == len(stored_ok) + len(canaries)
            assert all(answered[c] == 1 for c in canaries) and all(answered[u] <= 1 for u in stored_ok)
            assert dead.reason.startswith("delivered 3 times; last error: StoreUnavailable")
            assert api.unconfirmed == 0 and await app.ingest.waiting() == 0
        finally:
            await app.stop()


async def _all_answered(api: BotApiServer, users: list[int]) -> bool:
    answered = replies(api)
    return all(answered[u] >= 1 for u in users)


async def _dead_count_is(app, n: int) -> bool:
    return await app.ingest.dead.count() == n

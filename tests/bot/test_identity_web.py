"""A website's signed user in the widget's hello frame: the right signature links the visitor at once, a wrong
one is ignored and logged."""

from __future__ import annotations

import logging

from sqlalchemy import select

from bot.identity import user_hash
from crm_store.models import Contact, Identity
from crm_store.repositories import audit
from tests.web.conftest import live, web_env  # noqa: F401 - fixtures
from tests.web.test_webchat import open_visitor

SECRET = "shop-and-desk-share-this"


async def webuser_owner(live) -> int | None:  # noqa: F811
    async with live.app.sessions() as s:
        return await s.scalar(select(Identity.customer_id).where(Identity.channel == "webuser"))


async def test_a_signed_user_links_two_browsers_to_one_customer(live):  # noqa: F811
    live.webchat.identity_secret = SECRET
    first, _, _ = await open_visitor(live)
    await first.send({"type": "hello", "user": "shop-42", "user_hash": user_hash(SECRET, "shop-42")})
    assert (await first.expect(lambda f: f["type"] == "user_ok"))["user"] == "shop-42"
    await first.send({"type": "message", "client_id": "a1", "text": "hello from the laptop"})
    await first.expect(lambda f: f["type"] == "ack")
    second, _, _ = await open_visitor(live)
    await second.send({"type": "message", "client_id": "b1", "text": "and from the phone"})
    await second.expect(lambda f: f["type"] == "ack")
    await second.send({"type": "hello", "user": "shop-42", "user_hash": user_hash(SECRET, "shop-42").upper()})
    await second.expect(lambda f: f["type"] == "user_ok")
    async with live.app.sessions() as s:
        owners = {c.external_id.split(":")[1]: c.customer_id for c in await s.scalars(
            select(Contact).where(Contact.channel == "webchat", Contact.direction == "in"))}
        linked = await audit.entries(s, action="identity_linked")
    assert owners["a1"] == owners["b1"] == await webuser_owner(live)
    assert [(e.data["via"], e.data["address"]) for e in linked] == [("signed website user", "shop-42")] * 2
    for v in (first, second):
        await v.ws.close()


async def test_a_wrong_signature_keeps_the_visitor_anonymous(live, caplog):  # noqa: F811
    live.webchat.identity_secret = SECRET
    v, _, _ = await open_visitor(live)
    with caplog.at_level(logging.WARNING, logger="channels.webchat.channel"):
        await v.send({"type": "hello", "user": "shop-42", "user_hash": user_hash("guessed", "shop-42")})
        await v.send({"type": "ping"})
        assert (await v.expect(lambda f: f["type"] in ("pong", "user_ok")))["type"] == "pong"
    assert "wrong signature" in caplog.text
    await v.send({"type": "hello", "user": "shop-42", "user_hash": "not hex"})
    assert (await v.expect(lambda f: f["type"] == "error"))["code"] == "bad_user"
    live.webchat.identity_secret = ""  # no secret configured: nobody can be vouched for
    await v.send({"type": "hello", "user": "shop-42", "user_hash": user_hash("", "shop-42")})
    await v.send({"type": "ping"})
    assert (await v.expect(lambda f: f["type"] in ("pong", "user_ok")))["type"] == "pong"
    assert await webuser_owner(live) is None
    await v.ws.close()

"""Claimed identities wait for their code; the impostor never becomes the customer whose email they typed."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from bot.identity import codes
from crm_store.models import Contact, Customer, Identity, OutboxItem, Ticket
from crm_store.repositories import audit
from crm_store.repositories import customers as customers_repo
from crm_store.trust import IdentityClaim
from tests.bot.test_desk_support import outbox, say

VERA = "vera@example.com"


async def vip_owner(h) -> tuple[Customer, int]:
    """Vera, a VIP who writes on Telegram and is known by her email; her open ticket."""
    async with h.app.sessions() as s, s.begin():
        vera = await customers_repo.create_customer(s, name="Vera", tier="VIP",
                                                    identities={"email": VERA, "telegram": "5005"})
    ticket_id = (await h.ch["telegram"].receive("5005", "my order 88 has not arrived")).ticket_id
    await h.settle()
    return vera, ticket_id


async def impostor_claims(h, address: str = "Vera@Example.com", visitor: str = "v-imp", n: int = 1):
    """A web visitor writes, then types `address` in the "Your email" box; returns the dispatch result."""
    first = await h.ch["webchat"].receive(visitor, "where is my order?", external_id=f"{visitor}:q{n}")
    claimed = await h.ch["webchat"].receive(visitor, "", external_id=f"{visitor}:email{n}",
                                            meta={"claimed_email": address})
    await h.settle()
    return first, claimed


async def code_mails(h, address: str = VERA) -> list[str]:
    return [re.search(r"\b(\d{6})\b", m.text).group(1) for m in h.ch["email"].sent if m.recipient == address]


async def typed(h, visitor: str, text: str, n: str):
    r = await h.ch["webchat"].receive(visitor, text, external_id=f"{visitor}:{n}")
    await h.settle()
    return r, h.ch["webchat"].sent_to(visitor)[-1]


async def test_a_typed_email_is_a_claim_never_a_merge(h):
    vera, owner_ticket = await vip_owner(h)
    first, claimed = await impostor_claims(h)
    imp = first.customer_id
    assert imp != vera.id and claimed.customer_id == imp and claimed.ticket_id == first.ticket_id != owner_ticket
    async with h.app.sessions() as s:
        imp_customer = await s.get(Customer, imp)
        idents = {(i.channel, i.address): i.customer_id for i in await s.scalars(select(Identity))}
        [claim] = list(await s.scalars(select(IdentityClaim)))
        own = await s.get(Ticket, first.ticket_id)
    assert imp_customer.merged_into_id is None
    assert idents[("email", VERA)] == vera.id and ("email", "vera@example.com") in idents
    assert sum(1 for (ch, _), cid in idents.items() if cid == imp) == 1  # only the visitor id
    assert (claim.customer_id, claim.channel, claim.address, claim.status) == (imp, "email", VERA, "pending")
    assert (claim.via_channel, claim.via_address, claim.attempts, claim.codes_sent) == ("webchat", "v-imp", 0, 1)
    assert (own.tier_at_open, own.customer_id) == ("potential", imp)  # routed as who they are
    [mail] = await outbox(h, channel="email", recipient=VERA)
    assert (mail.customer_id, mail.audience, mail.ticket_id, mail.author) == (imp, "customer", None, "bot")
    [code] = await code_mails(h)
    assert code not in claim.code_hash and codes.code_matches(claim.code_hash, code, b"nope") is False
    assert "6-digit code" in h.ch["webchat"].sent_to("v-imp")[-1]
    # the impostor's next message stays on their own ticket; the agent's reply to Vera goes to Vera only
    more = await h.ch["webchat"].receive("v-imp", "refund it to my card", external_id="v-imp:q9")
    assert more.ticket_id == first.ticket_id and more.customer_id == imp
    await h.agent("Alice", tiers=["VIP", "potential"])
    await say(h, "alice", f"/reply {owner_ticket} Your order 88 ships today, Vera")
    assert any("order 88 ships" in t for t in h.ch["telegram"].sent_to("5005"))
    assert not any("order 88" in t for t in h.ch["webchat"].sent_to("v-imp"))
    async with h.app.sessions() as s:
        on_owner = {(c.customer_id, c.address) for c in await s.scalars(
            select(Contact).where(Contact.ticket_id == owner_ticket))}
    assert on_owner == {(vera.id, "5005")}


async def test_the_right_code_links_once_and_is_audited(h):
    vera, owner_ticket = await vip_owner(h)
    first, _ = await impostor_claims(h)
    [code] = await code_mails(h)
    wrong = str((int(code) + 1) % 1_000_000).zfill(6)
    r, answer = await typed(h, "v-imp", wrong, "c1")
    assert "not right" in answer and "4" in answer and r.customer_id == first.customer_id
    async with h.app.sessions() as s:
        assert (await s.get(Customer, first.customer_id)).merged_into_id is None
    r, answer = await typed(h, "v-imp", f" {code} ", "c2")
    assert answer == f"Thank you: {VERA} is confirmed and linked to this chat." and r.customer_id == vera.id
    async with h.app.sessions() as s:
        claimant = await s.get(Customer, first.customer_id)
        [claim] = list(await s.scalars(select(IdentityClaim)))
        owners = dict((await s.execute(select(Ticket.id, Ticket.customer_id))).all())
        [entry] = await audit.entries(s, action="identity_linked")
    assert claimant.merged_into_id == vera.id and owners == {owner_ticket: vera.id, first.ticket_id: vera.id}
    assert (claim.status, claim.attempts) == ("verified", 1) and claim.verified_at is not None
    assert (entry.subject, entry.actor, entry.data["via"], entry.data["merged_from"], entry.data["claim"]) == (
        f"customer:{vera.id}", "customer", "code", first.customer_id, claim.id)
    _, answer = await typed(h, "v-imp", code, "c3")
    assert answer == "That code has been used already; each code works once."
    async with h.app.sessions() as s:
        assert len(await audit.entries(s, action="identity_linked")) == 1


async def test_an_expired_code_links_nothing(h):
    await vip_owner(h)
    first, _ = await impostor_claims(h)
    [code] = await code_mails(h)
    async with h.app.writer_sessions() as s, s.begin():
        await s.execute(update(IdentityClaim).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    r, answer = await typed(h, "v-imp", code, "c1")
    assert answer == "That code has expired. Leave your email again to get a new one."
    assert r.customer_id == first.customer_id
    async with h.app.sessions() as s:
        [claim] = list(await s.scalars(select(IdentityClaim)))
        assert claim.status == "expired" and (await s.get(Customer, first.customer_id)).merged_into_id is None
        assert await audit.entries(s, action="identity_linked") == []


async def test_five_wrong_tries_and_the_right_code_is_refused(h):
    await vip_owner(h)
    first, _ = await impostor_claims(h)
    [code] = await code_mails(h)
    answers = []
    for i in range(5):
        _, answer = await typed(h, "v-imp", str((int(code) + 1 + i) % 1_000_000).zfill(6), f"w{i}")
        answers.append(answer)
    assert answers[:4] == [f"That code is not right. Tries left: {n}." for n in (4, 3, 2, 1)]
    assert answers[4].startswith("Too many wrong tries")
    r, answer = await typed(h, "v-imp", code, "right")
    assert answer.startswith("Too many wrong tries") and r.customer_id == first.customer_id
    async with h.app.sessions() as s:
        [claim] = list(await s.scalars(select(IdentityClaim)))
        assert (claim.status, claim.attempts) == ("refused", 5)
        assert (await s.get(Customer, first.customer_id)).merged_into_id is None


async def test_the_fourth_code_in_an_hour_is_not_sent(h):
    await vip_owner(h)
    for n in range(1, 4):
        await impostor_claims(h, n=n, visitor="v-imp" if n < 3 else "v-other")
    assert len(await code_mails(h)) == 3
    await impostor_claims(h, n=4, visitor="v-third")
    assert len(await code_mails(h)) == 3  # the address's limit, whoever asks
    assert h.ch["webchat"].sent_to("v-third")[-1] == (
        f"We have sent too many codes to {VERA} in the last hour. Please try again later.")
    async with h.app.sessions() as s:
        statuses = [c.status for c in await s.scalars(select(IdentityClaim).order_by(IdentityClaim.id))]
    assert statuses == ["expired", "pending", "pending", "refused"]  # v-imp's second code replaced its first
    # only the newest code of a chat works: the first one sent to v-imp is no longer pending
    first_code = (await code_mails(h))[0]
    _, answer = await typed(h, "v-imp", first_code, "old")
    assert answer.startswith("That code has expired")


async def test_vouched_identities_link_at_once_and_claimed_phones_do_not(h):
    async with h.app.sessions() as s, s.begin():
        mei = await customers_repo.create_customer(s, name="Mei", identities={"phone": "+8613800138000"})
    own = await h.ch["telegram"].receive("777", "", meta={"vouched_phone": "+8613800138000"})
    other = await h.ch["telegram"].receive("888", "", meta={"claimed_phone": "+8613800138000"})
    web1 = await h.ch["webchat"].receive("v-a", "", meta={"vouched_user": "shop-user-42"})
    web2 = await h.ch["webchat"].receive("v-b", "hi again", external_id="v-b:1")
    web2b = await h.ch["webchat"].receive("v-b", "", meta={"vouched_user": "shop-user-42"})
    await h.settle()
    assert own.customer_id == mei.id and other.customer_id != mei.id
    assert web2b.customer_id == web1.customer_id and web2.customer_id != web1.customer_id
    async with h.app.sessions() as s:
        linked = [(e.data["via"], e.data["channel"]) for e in await audit.entries(s, action="identity_linked")]
        [phone_claim] = list(await s.scalars(select(IdentityClaim)))
        mails = list(await s.scalars(select(OutboxItem).where(OutboxItem.channel == "email")))
    assert sorted(linked) == [("signed website user", "webuser"), ("signed website user", "webuser"),
                              ("telegram contact", "phone")]
    assert (phone_claim.customer_id, phone_claim.status, phone_claim.code_hash) == (other.customer_id, "pending", "")
    assert mails == [] and h.ch["telegram"].sent_to("888") == [] and h.ch["telegram"].sent_to("777") == []


async def test_a_mail_replying_into_someone_elses_thread_opens_its_own_ticket(h):
    first = await h.ch["email"].receive("vera@example.com", "parcel lost", external_id="<v1@example.com>")
    spoof = await h.ch["email"].receive("mallory@example.net", "send it to me instead",
                                        external_id="<m1@example.net>", thread_ref="<v1@example.com>")
    await h.settle()
    assert spoof.ticket_id != first.ticket_id and spoof.customer_id != first.customer_id


async def test_an_edit_naming_someone_elses_message_stays_with_its_sender(h):
    first = await h.ch["webchat"].receive("v-vera", "my address is 1 Main St", external_id="v-vera:1")
    edit = await h.ch["webchat"].receive("v-imp", "my address is 9 Other Rd", external_id="v-imp:2",
                                         edit_of="v-vera:1")
    assert edit.ticket_id != first.ticket_id and edit.customer_id != first.customer_id


def test_codes_are_keyed_hashed_and_judged():
    key = b"k"
    stored = codes.hash_code("123456", key)
    assert "123456" not in stored and codes.code_matches(stored, "123456", key)
    assert not codes.code_matches(stored, "123456", b"other") and not codes.code_matches("", "123456", key)
    assert codes.looks_like_code(" 012345\n") and not codes.looks_like_code("1234567")
    assert codes.signs("s3", "u-1", codes.user_hash("s3", "u-1").upper())
    assert not codes.signs("s3", "u-1", codes.user_hash("s3", "u-2")) and not codes.signs("", "u-1", "")

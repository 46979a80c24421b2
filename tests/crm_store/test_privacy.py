"""Export, erasure, legal hold and retention on a history built by hand, on SQLite and PostgreSQL.

Vera (C-1, VIP) wrote twice about an order and was answered; C-3 was an older record of hers merged into C-1;
Olaf (C-2) is someone else whose data must not move. The word "quixotic" appears only in Vera's text.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text

from crm_store.models import (
    Agent,
    Contact,
    Customer,
    Identity,
    Note,
    OutboxItem,
    Ticket,
    TicketEvent,
    TierChange,
    ValueEvent,
)
from crm_store.repositories import audit, privacy
from crm_store.repositories.contact_days import contacts_by_day, refresh_contact_days
from crm_store.repositories.contacts import count_contacts
from crm_store.repositories.figures import figures
from crm_store.repositories.reports import ContactFilter, search_contacts
from crm_store.trust import IdentityClaim

D0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
S = timedelta(seconds=1)


def _contact(n: int, customer: int, direction: str, body: str, at: datetime, **extra) -> Contact:
    return Contact(id=n, channel="email", external_id=f"<m{n}@x>", direction=direction,
                   author="customer" if direction == "in" else "agent", address=extra.pop("address", "vera@x.example"),
                   customer_id=customer, text=body, created_at=at, logged_at=at, **extra)


async def seed(db) -> None:
    async with db.sessions() as ses, ses.begin():
        ses.add_all([Agent(id=1, name="Ann", role="agent"),
                     Customer(id=1, name="Vera Quist", external_ref="crm-1", tier="VIP"),
                     Customer(id=2, name="Olaf", tier="ordinary")])
        await ses.flush()
        ses.add(Customer(id=3, name="Vera Q (old)", external_ref="crm-old", merged_into_id=1))
        ses.add_all([Identity(customer_id=1, channel="email", address="vera@x.example"),
                     Identity(customer_id=1, channel="telegram", address="777"),
                     Identity(customer_id=2, channel="email", address="olaf@x.example")])
        ses.add_all([
            Ticket(id=1, customer_id=1, channel="email", tier_at_open="VIP", assignee_id=1, status="closed",
                   subject="Order quixotic lost", handoff_reason="needs a person", created_at=D0,
                   first_responded_at=D0 + 60 * S, solved_at=D0 + 3600 * S, closed_at=D0 + 3600 * S,
                   first_response_due=D0 + 300 * S, csat=4, csat_comment="quixotic help", resolution="refunded"),
            Ticket(id=2, customer_id=2, channel="email", tier_at_open="ordinary", status="open", subject="Olaf's",
                   handoff_reason="needs a person", created_at=D0 + 10 * S),
        ])
        await ses.flush()
        ses.add_all([
            _contact(1, 1, "in", "My quixotic parcel, card 4242", D0, ticket_id=1, subject="Order quixotic lost",
                     attachments=[{"name": "receipt.pdf", "ref": "ab12"}], raw_ref="raw/ab",
                     nlu={"intent": "order_status", "entities": [{"entity": "card", "value": "4242"}]}),
            _contact(2, 1, "out", "Dear Vera Quist, sorry", D0 + 60 * S, ticket_id=1, agent_id=1),
            _contact(3, 2, "in", "Olaf says zanzibar", D0 + 10 * S, ticket_id=2, address="olaf@x.example"),
            TicketEvent(ticket_id=1, at=D0, actor="customer", kind="opened", data={"channel": "email"}),
            TicketEvent(ticket_id=1, at=D0 + 3600 * S, actor="agent", agent_id=1, kind="closed",
                        data={"resolution": "refunded Vera"}),
            Note(customer_id=1, ticket_id=1, agent_id=1, text="Vera lives at 1 Quixotic Lane"),
            TierChange(customer_id=1, old_tier="important", new_tier="VIP", reason="spend"),
            ValueEvent(customer_id=1, amount=Decimal("120.50"), occurred_at=D0 - timedelta(days=3), source_key="v1"),
            IdentityClaim(customer_id=1, channel="sms", address="+15550001", code_hash="secret-hash"),
            IdentityClaim(customer_id=2, channel="email", address="vera@x.example", code_hash="h2"),
            OutboxItem(idempotency_key="o1", channel="email", recipient="vera@x.example", text="Still there, Vera?",
                       customer_id=1, ticket_id=1),
        ])


async def _search(session, word: str) -> list[int]:
    """Ids a contact-log search for `word` finds, and (asked directly) what the text index itself holds."""
    found = [r["id"] for r in await search_contacts(session, ContactFilter(q=word), limit=50)]
    if session.bind.dialect.name == "postgresql":
        q = "SELECT id FROM contacts WHERE search_tsv @@ to_tsquery('simple', :w) ORDER BY id"
    else:
        q = "SELECT rowid FROM contacts_fts WHERE contacts_fts MATCH :w ORDER BY rowid"
    indexed = list(await session.scalars(text(q), {"w": word}))
    return sorted(set(found) | set(indexed))


async def test_export_holds_every_kind_of_row_and_is_audited(db):
    await seed(db)
    async with db.sessions() as ses, ses.begin():
        data = await privacy.export_customer(ses, 1, agent_id=1)
    assert data["customer"]["name"] == "Vera Quist" and data["customer"]["external_ref"] == "crm-1"
    assert data["merged_from"] == [3]
    assert sorted((i["channel"], i["address"]) for i in data["identities"]) == [
        ("email", "vera@x.example"), ("telegram", "777")]
    assert [c["text"] for c in data["contacts"]] == ["My quixotic parcel, card 4242", "Dear Vera Quist, sorry"]
    assert [t["id"] for t in data["tickets"]] == [1]
    assert [e["kind"] for e in data["tickets"][0]["events"]] == ["opened", "closed"]
    assert [n["text"] for n in data["notes"]] == ["Vera lives at 1 Quixotic Lane"]
    assert [(t["old_tier"], t["new_tier"]) for t in data["tier_changes"]] == [("important", "VIP")]
    assert [v["amount"] for v in data["value_events"]] == ["120.50"]
    assert [c["address"] for c in data["identity_claims"]] == ["+15550001"]
    assert "code_hash" not in data["identity_claims"][0]
    async with db.sessions() as ses:
        (entry,) = await audit.entries(ses, action="customer_exported")
    assert (entry.subject, entry.agent_id, entry.data["contacts"], entry.data["tickets"]) == ("customer:1", 1, 2, 1)


async def _figures_and_counts(db) -> tuple[dict, int, int, list]:
    """The ticket figures, all contacts, Vera's contacts and the contacts-per-day rollup (refreshed first)."""
    async with db.sessions() as ses, ses.begin():
        await refresh_contact_days(ses, full=True, at=D0 + timedelta(days=2))
    async with db.sessions() as ses:
        fig = await figures(ses, D0 - timedelta(days=1), D0 + timedelta(days=1), at=D0 + timedelta(days=2))
        days = sorted(await contacts_by_day(ses, D0 - timedelta(days=2), D0 + timedelta(days=2)))
        return fig.as_dict(), await count_contacts(ses), await count_contacts(ses, customer_id=1), days


async def test_erase_blanks_text_and_identities_but_keeps_the_figures(db):
    await seed(db)
    before = await _figures_and_counts(db)
    async with db.sessions() as ses:
        assert await _search(ses, "quixotic") == [1]
    async with db.sessions() as ses, ses.begin():
        done = await privacy.erase_customer(ses, 1, agent_id=1)
    assert done.customer_ids == [1, 3] and (done.contacts, done.notes, done.identities) == (2, 1, 2)
    assert await _figures_and_counts(db) == before
    assert before[0]["total"]["conversations"] == 2 and before[1:3] == (3, 2)
    assert sum(row[-1] for row in before[3]) == 3
    async with db.sessions() as ses:
        assert await _search(ses, "quixotic") == []
        assert await _search(ses, "zanzibar") == [3]
        rows = {c.id: c for c in await ses.scalars(select(Contact))}
        assert [(rows[i].text, rows[i].subject, rows[i].attachments, rows[i].address, rows[i].raw_ref)
                for i in (1, 2)] == [("", None, [], "", None)] * 2
        assert rows[1].nlu == {"intent": "order_status"} and rows[1].direction == "in" and rows[2].agent_id == 1
        assert rows[3].text == "Olaf says zanzibar" and rows[3].address == "olaf@x.example"
        people = {c.id: c for c in await ses.scalars(select(Customer))}
        assert [(people[i].name, people[i].external_ref, people[i].erased_at is not None) for i in (1, 2, 3)] == [
            ("", None, True), ("Olaf", None, False), ("", None, True)]
        assert people[1].tier == "VIP"
        assert list(await ses.scalars(select(Identity.address).order_by(Identity.id))) == ["olaf@x.example"]
        assert list(await ses.scalars(select(Note.text))) == [""]
        t1 = await ses.get(Ticket, 1)
        assert (t1.subject, t1.csat_comment, t1.resolution, t1.csat, t1.status) == ("", None, None, 4, "closed")
        assert (await ses.get(Ticket, 2)).subject == "Olaf's"
        events = list(await ses.scalars(select(TicketEvent.data).where(TicketEvent.ticket_id == 1)
                                        .order_by(TicketEvent.id)))
        assert events == [{"channel": "email"}, {}]
        claims = [(c.customer_id, c.address, c.status) for c in await ses.scalars(select(IdentityClaim))]
        assert claims == [(2, "", "refused")]
        item = (await ses.scalars(select(OutboxItem))).one()
        assert (item.text, item.recipient, item.status) == ("", "", "failed")
        assert await ses.scalar(select(func.count(ValueEvent.id))) == 1
        (entry,) = await audit.entries(ses, action="customer_erased")
    assert entry.subject == "customer:1" and entry.data["contacts"] == 2


async def test_erase_is_refused_under_legal_hold(db):
    await seed(db)
    async with db.sessions() as ses, ses.begin():
        await privacy.set_legal_hold(ses, 1, True, agent_id=1)
    with pytest.raises(privacy.OnHold, match="C-1 is under legal hold"):
        async with db.sessions() as ses, ses.begin():
            await privacy.erase_customer(ses, 1)
    async with db.sessions() as ses:
        assert (await ses.get(Customer, 1)).name == "Vera Quist"
        assert await _search(ses, "quixotic") == [1]
    async with db.sessions() as ses, ses.begin():
        await privacy.set_legal_hold(ses, 1, False)
        await privacy.erase_customer(ses, 1)
    async with db.sessions() as ses:
        assert (await ses.get(Customer, 1)).name == ""
        actions = [e.action for e in await audit.entries(ses, subject="customer:1")]
    assert actions == ["customer_erased", "legal_hold_off", "legal_hold_on"]


async def test_erasing_a_merged_customer_leaves_its_survivor(db):
    await seed(db)
    async with db.sessions() as ses, ses.begin():
        done = await privacy.erase_customer(ses, 3)
    assert done.customer_ids == [3] and done.contacts == 0
    async with db.sessions() as ses:
        people = {c.id: c for c in await ses.scalars(select(Customer))}
        assert (people[3].name, people[3].erased_at is not None) == ("", True)
        assert (people[1].name, people[1].external_ref, people[1].erased_at) == ("Vera Quist", "crm-1", None)
        assert await ses.scalar(select(func.count(Identity.id)).where(Identity.customer_id == 1)) == 2
        assert await _search(ses, "quixotic") == [1]


async def test_retention_blanks_only_old_contacts(db):
    await seed(db)
    old = D0 - timedelta(days=40)
    async with db.sessions() as ses, ses.begin():
        ses.add(_contact(4, 2, "in", "ancient zanzibar story", old, subject="old", raw_ref="raw/old"))
    async with db.sessions() as ses:
        total = await count_contacts(ses)
    from bot.core.retention import retain_contacts

    assert await retain_contacts(db.sessions, 30, at=D0) == 1
    assert await retain_contacts(db.sessions, 30, at=D0) == 0  # nothing left to blank
    assert await retain_contacts(db.sessions, 0, at=D0) == 0  # 0 days: keep forever
    async with db.sessions() as ses:
        assert await count_contacts(ses) == total
        rows = {c.id: (c.text, c.subject, c.raw_ref) for c in await ses.scalars(select(Contact))}
        assert rows[4] == ("", None, None)
        assert rows[3] == ("Olaf says zanzibar", None, None) and rows[1][0] == "My quixotic parcel, card 4242"
        assert await _search(ses, "zanzibar") == [3]
        (entry,) = await audit.entries(ses, action="contacts_retained")
    assert entry.data["contacts"] == 1 and entry.actor == "system"

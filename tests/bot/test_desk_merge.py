"""/merge (supervisors join two records of one person) and /help (what each role may use)."""

from __future__ import annotations

from sqlalchemy import select

from crm_store.models import Customer, Identity, Ticket
from crm_store.repositories import customers as customers_repo
from tests.bot.test_desk_support import events, say


async def two_records(h) -> tuple[Customer, Customer]:
    async with h.app.sessions() as s, s.begin():
        anna_mail = await customers_repo.create_customer(s, name="Anna", identities={"email": "anna@example.com"})
        anna_tg = await customers_repo.create_customer(s, name="Anna T", identities={"telegram": "1001"})
    return anna_mail, anna_tg


async def test_a_supervisor_merges_and_each_moved_ticket_records_it(h):
    mail, tg = await two_records(h)
    first = (await h.ch["telegram"].receive("1001", "parcel lost")).ticket_id
    sam = await h.agent("Sam", role="supervisor")
    await say(h, "sam", f"/close {first}")
    second = (await h.ch["telegram"].receive("1001", "and another thing")).ticket_id
    kept = (await h.ch["email"].receive("anna@example.com", "mail question")).ticket_id
    assert len({first, second, kept}) == 3
    done = await say(h, "sam", f"/merge C-{tg.id} {mail.id}")
    assert done.text == (f"C-{tg.id} (Anna T) merged into C-{mail.id} (Anna): 2 tickets moved: "
                         f"T-{first}, T-{second}.")
    async with h.app.sessions() as s:
        owners = dict((await s.execute(select(Ticket.id, Ticket.customer_id))).all())
        identities = dict((await s.execute(select(Identity.address, Identity.customer_id))).all())
        source = await s.get(Customer, tg.id)
    assert owners == {first: mail.id, second: mail.id, kept: mail.id}
    assert identities == {"anna@example.com": mail.id, "1001": mail.id} and source.merged_into_id == mail.id
    for moved in (first, second):
        [event] = await events(h, moved, "customer_merged")
        assert (event.agent_id, event.data) == (sam.id, {"from_customer_id": tg.id, "into_customer_id": mail.id})
    assert await events(h, kept, "customer_merged") == []
    again = await say(h, "sam", f"/merge {tg.id} {mail.id}")
    assert again.text == f"C-{tg.id} was merged into C-{mail.id} already."
    into_gone = await say(h, "sam", f"/merge {mail.id} {tg.id}")
    assert into_gone.text == f"C-{tg.id} was merged into C-{mail.id}; merge into that one."
    assert (await say(h, "sam", f"/merge {mail.id} C-{mail.id}")).text == f"C-{mail.id} cannot be merged into itself."
    assert len(await events(h, first, "customer_merged")) == 1


async def test_merge_refuses_agents_and_bad_numbers(h):
    mail, tg = await two_records(h)
    await h.agent("Alice")
    refused = await say(h, "alice", f"/merge {tg.id} {mail.id}")
    assert refused.text == "/merge is for supervisors and admins only."
    await h.agent("Sam", role="admin")
    answers = {ref: (await say(h, "sam", f"/merge {ref} {mail.id}")).text
               for ref in ("99999999999999999999", "-3", "abc", "C-424242")}
    assert answers == {
        "99999999999999999999": "Customer C-99999999999999999999 does not exist.",
        "-3": "'-3' is not a customer number (write 12 or C-12).",
        "abc": "'abc' is not a customer number (write 12 or C-12).",
        "C-424242": "No customer 'C-424242' in your tiers.",
    }
    usage = await say(h, "sam", f"/merge {tg.id}")
    assert usage.text == "Usage: /merge <customer> <into-customer>, e.g. /merge C-7 C-3"
    async with h.app.sessions() as s:
        assert [c.merged_into_id for c in await s.scalars(select(Customer))] == [None, None]
        identities = dict((await s.execute(select(Identity.address, Identity.customer_id))).all())
    assert identities == {"anna@example.com": mail.id, "1001": tg.id}


async def test_help_lists_what_the_role_may_use(h):
    await h.agent("Alice")
    await h.agent("Sam", role="supervisor")
    agent_help = (await say(h, "alice", "/help")).text
    sup_help = (await say(h, "sam", "/help")).text
    for command in ("/take", "/next", "/reply", "/close", "/reopen", "/pending", "/tag", "/priority", "/subject",
                    "/note", "/transfer", "/history"):
        assert f"\n{command} " in agent_help and f"\n{command} " in sup_help
    for command in ("/merge", "/tier", "/sla", "/report"):
        assert f"\n{command} " not in agent_help and f"\n{command} " in sup_help
    assert agent_help.startswith("Commands for agents:") and sup_help.startswith("Commands for supervisors:")

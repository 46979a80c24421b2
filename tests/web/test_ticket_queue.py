"""The ticket queue page names each ticket's customer (with their tier) and assignee, read in the tickets' own
statement: the right names on the right rows, for a supervisor and for an agent (whose rows are read in batches)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from crm_store.models import Customer, Ticket


def _rows(html: str) -> dict[int, str]:
    """Each listed ticket's table row, by ticket id."""
    return {int(m.group(1)): m.group(0) for m in re.finditer(r'<tr[^>]*><td><a href="/tickets/(\d+)">.*?</tr>',
                                                             html, re.S)}


@pytest.mark.parametrize("db", ["sqlite", "postgresql"], indirect=True)
async def test_the_queue_names_each_tickets_customer_and_assignee(db, web_env):
    await web_env.agent("Sue", role="supervisor")
    ann = await web_env.agent("Ann", tiers=["VIP"])
    await web_env.agent("Bob")  # an agent no ticket is assigned to: never named on the page
    t0 = datetime.now(UTC) - timedelta(hours=1)
    async with web_env.app.sessions() as s, s.begin():
        vera, otto = Customer(name="Vera", tier="VIP"), Customer(name="", tier="ordinary")
        s.add_all([vera, otto])
        await s.flush()
        mine = Ticket(customer_id=vera.id, channel="webchat", tier_at_open="VIP", queue="vip", subject="Refund",
                      status="open", assignee_id=ann, created_at=t0)
        nobody = Ticket(customer_id=otto.id, channel="email", tier_at_open="ordinary", subject="Parcel",
                        status="open", created_at=t0)
        waiting = Ticket(customer_id=vera.id, channel="webchat", tier_at_open="VIP", subject="Later",
                         status="pending", created_at=t0)
        s.add_all([mine, nobody, waiting])
    assert (await web_env.login("Sue")).status_code == 303
    page = await web_env.client.get("/tickets?status=open")
    assert page.status_code == 200
    rows = _rows(page.text)
    assert set(rows) == {mine.id, nobody.id}
    assert f'<a href="/customers/{vera.id}">Vera</a>' in rows[mine.id] and "tier-vip" in rows[mine.id]
    assert "<td>Ann</td>" in rows[mine.id]
    assert f'<a href="/customers/{otto.id}">#{otto.id}</a>' in rows[nobody.id]  # no name: the number
    assert "tier-ordinary" in rows[nobody.id] and "<td>—</td>" in rows[nobody.id]
    assert "Bob" not in page.text and "Vera" not in rows[nobody.id]

    web_env.client.cookies.clear()
    assert (await web_env.login("Ann")).status_code == 303
    rows = _rows((await web_env.client.get("/tickets?status=open")).text)
    assert set(rows) == {mine.id}  # Ann serves VIP tickets: the ordinary one is not hers to see
    assert f'<a href="/customers/{vera.id}">Vera</a>' in rows[mine.id] and "<td>Ann</td>" in rows[mine.id]

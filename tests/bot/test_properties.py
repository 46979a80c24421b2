"""Property: any sequence of inbound messages, with repeats and interleavings, yields exactly one contact per
(channel, external id) and one open conversation per customer."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.app import App
from bot.core.messages import InboundMessage
from bot.settings import DispatchSettings, NluSettings, Settings
from crm_store.models import Contact, Ticket

message = st.tuples(
    st.sampled_from(["telegram", "email", "webchat"]),
    st.integers(min_value=0, max_value=12),  # external id: small range so repeats are common
    st.integers(min_value=0, max_value=4),  # sender
    st.text(max_size=30),
)


_TEMPLATE: dict[str, Path] = {}


def _fresh_db(tmp: str) -> Path:
    """A migrated SQLite file per example, copied from one migrated once (migrating is the slow part)."""
    if "db" not in _TEMPLATE:
        from crm_store.engine import upgrade

        template = Path(tempfile.mkdtemp()) / "template.db"
        asyncio.run(upgrade(f"sqlite+aiosqlite:///{template}"))
        _TEMPLATE["db"] = template
    target = Path(tmp) / "p.db"
    shutil.copy(_TEMPLATE["db"], target)
    return target


async def _run(batches: list[list[tuple[str, int, int, str]]], db_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{db_path}", nlu=NluSettings(enabled=False),
                        dispatch=DispatchSettings(batch_wait_ms=0.5))
    async with App(settings) as app:
        first_sender: dict[tuple[str, str], str] = {}
        for batch in batches:  # each batch arrives concurrently: interleavings inside, order between
            msgs = []
            for channel, ext, sender, text in batch:
                key = (channel, f"e{ext}")
                sender_id = first_sender.setdefault(key, f"s{sender}")  # a redelivery comes from the same sender
                msgs.append(InboundMessage.build(channel=channel, external_id=key[1], sender=sender_id, text=text))
            results = await asyncio.gather(*(app.deliver(m) for m in msgs))
            for m, r in zip(msgs, results, strict=True):
                assert r.contact_id > 0, m
                assert r.ticket_id is not None or not m.text.strip(), m  # only an empty message may stay off tickets
        async with app.sessions() as s:
            per_key = (await s.execute(
                select(Contact.channel, Contact.external_id, func.count())
                .where(Contact.direction == "in").group_by(Contact.channel, Contact.external_id)
            )).all()
            open_per_customer = (await s.execute(
                select(Ticket.customer_id, func.count()).where(Ticket.status.in_(["open", "pending"]))
                .group_by(Ticket.customer_id)
            )).all()
    assert {(c, e) for c, e, _ in per_key} == set(first_sender)
    assert all(n == 1 for _, _, n in per_key)
    assert all(n == 1 for _, n in open_per_customer)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(message, min_size=1, max_size=8), min_size=1, max_size=5))
def test_exactly_one_contact_per_external_id_and_one_conversation_per_customer(batches):
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_run(batches, _fresh_db(tmp)))

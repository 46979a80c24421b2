"""Bot answers per customer within a window, read for many customers at once; and languages set in bulk."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import event, select

from crm_store.models import Customer, OutboxItem, now
from crm_store.repositories import bot_answers as bot_answers_repo
from crm_store.repositories import customers as customers_repo


def _row(key: str, customer_id: int, author: str, created_at, status: str = "pending") -> OutboxItem:
    return OutboxItem(
        idempotency_key=key,
        channel="telegram",
        recipient="r",
        text="t",
        customer_id=customer_id,
        author=author,
        status=status,
        created_at=created_at,
    )


async def test_counts_only_bot_answers_within_the_window_for_each_customer_asked(db):
    at = now()
    async with db.sessions() as s, s.begin():
        a, b, c, d = (Customer(name=n) for n in "abcd")
        s.add_all([a, b, c, d])
        await s.flush()
        s.add_all(
            [
                _row("a1", a.id, "bot", at - timedelta(minutes=1)),
                _row("a2", a.id, "bot", at - timedelta(minutes=59), status="sent"),
                _row("a3", a.id, "bot", at - timedelta(minutes=30), status="failed"),
                _row("a4", a.id, "bot", at - timedelta(minutes=61)),  # before the window
                _row("a5", a.id, "agent", at - timedelta(minutes=2)),  # a person's reply
                _row("b1", b.id, "bot", at - timedelta(minutes=5)),
                _row("d1", d.id, "bot", at - timedelta(minutes=5)),  # not asked about
            ]
        )
    async with db.sessions() as s:
        found = await bot_answers_repo.bot_answers_since(s, [a.id, b.id, c.id, a.id], at - timedelta(hours=1))
        assert found == {a.id: 3, b.id: 1, c.id: 0}
        assert await bot_answers_repo.bot_answers_since(s, [], at) == {}


async def test_set_languages_fills_only_unknown_languages(db):
    async with db.sessions() as s, s.begin():
        blank, known = Customer(name="blank"), Customer(name="known", language="zh")
        s.add_all([blank, known])
        await s.flush()
        stamps = {blank.id: blank.updated_at, known.id: known.updated_at}
    async with db.sessions() as s, s.begin():
        await customers_repo.set_languages(s, {blank.id: "ru", known.id: "en"})
    async with db.sessions() as s:
        rows = {r.id: r for r in await s.scalars(select(Customer))}
    assert (rows[blank.id].language, rows[known.id].language) == ("ru", "zh")
    assert rows[blank.id].updated_at >= stamps[blank.id] and rows[known.id].updated_at == stamps[known.id]


async def test_the_cap_reads_the_customers_rows_by_index_not_the_whole_outbox(db):
    """The outbox keeps every reply ever sent: the per-batch read must search it by customer (migration 0018)."""
    at = now()
    async with db.sessions() as s, s.begin():
        customers = [Customer(name=f"c{i}") for i in range(200)]
        s.add_all(customers)
        await s.flush()
        s.add_all(
            _row(f"k{c.id}-{j}", c.id, "bot" if j % 2 else "agent", at - timedelta(minutes=j))
            for c in customers
            for j in range(20)
        )
    sent: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:
        if "FROM outbox" in statement and not statement.startswith("EXPLAIN"):
            sent.append((statement, parameters))

    async with db.engine.connect() as conn:
        await conn.exec_driver_sql("ANALYZE")
        await conn.commit()
    event.listen(db.engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with db.sessions() as s:
            asked = [c.id for c in customers[:5]]
            found = await bot_answers_repo.bot_answers_since(s, asked, at - timedelta(minutes=30))
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", capture)
    assert found == dict.fromkeys(asked, 10)  # minutes 1, 3, ..., 19 are the bot's
    [(statement, parameters)] = sent
    async with db.engine.connect() as conn:
        if db.engine.dialect.name == "sqlite":
            rows = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            plan = " | ".join(row[-1] for row in rows)
            assert "SCAN outbox" not in plan, plan
        else:
            rows = await conn.exec_driver_sql("EXPLAIN " + statement, parameters)
            plan = " | ".join(row[0] for row in rows)
            assert "Seq Scan" not in plan, plan
        assert "ix_outbox_customer_author_created" in plan, plan

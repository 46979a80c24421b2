"""CSV imports on SQLite and PostgreSQL: bad rows by line, good rows in, re-import changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from bot.importers.csv_import import ImportFileError, import_customers, import_purchases
from crm_store.models import Customer, Identity, ValueEvent
from crm_store.repositories.agents import add_agent

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

CUSTOMERS = """customer,name,email,phone,telegram,language,tier,key_account_manager
C-1,Ada Lovelace,Ada@Example.com,+49 170 1234567,@ada,en,,anna@desk.test
C-2,Bo,bo@example.com,,,zh,vip,
C-3,Cy,not-an-email,,,,,
C-4,Di,di@example.com,,,,gold,
C-5,Ed,ed@example.com,,,,,Nobody Known
C-1,Ada again,,,,,,
C-6,Fay,bo@example.com,,,,,
,No id,x@example.com,,,,,
C-7,Gus,gus@example.com,12,,,,
C-8,Hal,,,,,,Anna
"""

PURCHASES = """customer,amount,currency,occurred_at,referrals,loyalty_points
C-1,120.50,EUR,2026-05-01T10:00:00Z,1,10
ada@example.com,80,EUR,2026-05-02,,
+491701234567,-20,EUR,2026-05-03,,
C-2,abc,EUR,2026-05-01,,
C-2,1000,EUR,2027-01-01,,
C-9,10,EUR,2026-05-01,,
C-1,120.50,EUR,2026-05-01T10:00:00Z,1,10
C-2,1000,EUR,yesterday,,
C-2,50,EUR,2026-04-01,-1,
C-2,500,EUR,2026-04-01,,
"""


async def counts(db) -> tuple[int, int, int]:
    async with db.sessions() as s:
        return (
            await s.scalar(select(func.count(Customer.id))),
            await s.scalar(select(func.count(Identity.id))),
            await s.scalar(select(func.count(ValueEvent.id))),
        )


async def test_customers_import_reports_bad_rows_and_is_idempotent(db):
    async with db.sessions() as s, s.begin():
        anna = await add_agent(s, name="Anna", email="anna@desk.test")
    report = await import_customers(db.sessions, CUSTOMERS)
    problems = {p.line: p.reason for p in report.problems}
    assert report.rows == 10
    assert report.created == 3  # C-1, C-2, C-8
    assert set(problems) == {4, 5, 6, 7, 8, 9, 10}
    assert "email 'not-an-email' is not an address" in problems[4]
    assert "tier 'gold' is not one of" in problems[5]
    assert "key_account_manager 'Nobody Known' is no agent we know" in problems[6]
    assert "already appears on line 2" in problems[7]
    assert "email bo@example.com already appears on line 3" in problems[8]
    assert problems[9] == "customer is empty"
    assert "phone '12' is not a phone number" in problems[10]

    async with db.sessions() as s:
        ada = await s.scalar(select(Customer).where(Customer.external_ref == "C-1"))
        bo = await s.scalar(select(Customer).where(Customer.external_ref == "C-2"))
        hal = await s.scalar(select(Customer).where(Customer.external_ref == "C-8"))
        ids = {(i.channel, i.address) for i in await s.scalars(select(Identity).where(Identity.customer_id == ada.id))}
    assert ada.key_account_manager_id == anna.id and ada.language == "en" and ada.name == "Ada Lovelace"
    assert ids == {("email", "ada@example.com"), ("phone", "+491701234567"),
                   ("telegram", "ada")}
    assert bo.manual_tier == "VIP" and bo.tier == "VIP" and bo.language == "zh"
    assert hal.key_account_manager_id == anna.id  # by name, case-insensitive

    before = await counts(db)
    again = await import_customers(db.sessions, CUSTOMERS.encode())
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    assert await counts(db) == before


async def test_purchases_import_reports_bad_rows_and_is_idempotent(db):
    async with db.sessions() as s, s.begin():
        await add_agent(s, name="Anna", email="anna@desk.test")
    await import_customers(db.sessions, CUSTOMERS)
    report = await import_purchases(db.sessions, PURCHASES, now=lambda: NOW)
    problems = {p.line: p.reason for p in report.problems}
    assert report.created == 4  # lines 2, 3, 4 (refund) and 11
    assert set(problems) == {5, 6, 7, 8, 9, 10}
    assert problems[5] == "amount 'abc' is not a number"
    assert "is in the future" in problems[6]
    assert "unknown customer 'C-9'" in problems[7]
    assert problems[8] == "duplicate of line 2"
    assert "occurred_at 'yesterday' is not an ISO date" in problems[9]
    assert "referrals '-1' is not a whole number" in problems[10]

    async with db.sessions() as s:
        ada_total = await s.scalar(
            select(func.sum(ValueEvent.amount)).join(Customer, Customer.id == ValueEvent.customer_id)
            .where(Customer.external_ref == "C-1")
        )
    assert Decimal(ada_total) == Decimal("180.50")  # 120.50 + 80 - 20 refund, matched by ref, email and phone

    before = await counts(db)
    again = await import_purchases(db.sessions, PURCHASES, now=lambda: NOW)
    assert again.created == 0 and again.unchanged == 4
    assert len(again.problems) == 6
    assert await counts(db) == before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the file is empty"),
        ("   \n\n", "the file is empty"),
        ("customer;amount;currency;occurred_at\nC-1;10;EUR;2026-01-01\n", "separated by ';'; use commas"),
        ("customer\tamount\toccurred_at\nC-1\t10\t2026-01-01\n", "separated by tab"),
        ("client,amount,occurred_at\nC-1,10,2026-01-01\n", "missing column(s) customer"),
        (b"customer,amount,occurred_at\n\xff\xfe,1,2\n", "not UTF-8"),
    ],
)
async def test_unreadable_files_are_refused_as_a_whole(sqlite_db, content, message):
    with pytest.raises(ImportFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        await import_purchases(sqlite_db.sessions, content, now=lambda: NOW)
    assert await counts(sqlite_db) == (0, 0, 0)


async def test_a_row_with_a_stray_comma_is_refused_alone(sqlite_db):
    await import_customers(sqlite_db.sessions, "customer\nC-1\n")
    report = await import_purchases(
        sqlite_db.sessions, "customer,amount,occurred_at\nC-1,1,234.50,2026-01-01\nC-1,5,2026-01-02\n",
        now=lambda: NOW,
    )
    assert [(p.line, p.reason) for p in report.problems] == [(2, "expected 3 fields, found 4")]
    assert report.created == 1

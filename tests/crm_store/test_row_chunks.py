"""Multi-row statements go out in a few fixed row counts, so a connection prepares a handful of statement texts
per statement however many rows each batch brings (the prepared-statement cache was a worker's growing memory)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from crm_store.repositories import contacts as contacts_repo
from crm_store.repositories._sql import row_chunks


@pytest.mark.parametrize(
    ("n", "sizes"),
    [
        (0, []),
        (1, [1]),
        (7, [4, 2, 1]),
        (200, [128, 64, 8]),
        (256, [256]),
        (300, [256, 32, 8, 4]),
        (513, [256, 256, 1]),
    ],
)
def test_rows_split_into_powers_of_two_in_order(n, sizes):
    parts = row_chunks(list(range(n)))
    assert [len(p) for p in parts] == sizes
    assert [x for p in parts for x in p] == list(range(n))


def test_the_largest_count_must_be_a_power_of_two():
    with pytest.raises(ValueError):
        row_chunks([1, 2, 3], 300)


async def test_a_hundred_batch_sizes_prepare_a_handful_of_statements(db):
    if db.kind != "postgresql":
        pytest.skip("PostgreSQL's prepared statements are what the driver caches per connection")
    at = datetime(2026, 1, 1, tzinfo=UTC)
    async with db.sessions() as s, s.begin():
        for n in range(1, 101):  # batches of 1, 2, ... 100 messages
            rows = [
                {
                    "channel": "telegram",
                    "external_id": f"b{n}-{i}",
                    "direction": "in",
                    "address": "c",
                    "text": "hi",
                    "attachments": [],
                    "created_at": at,
                    "logged_at": at,
                }
                for i in range(n)
            ]
            await contacts_repo.insert_contacts(s, rows)
        prepared = await s.scalar(
            text("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE 'INSERT INTO contacts%'")
        )
    assert prepared <= 7, prepared  # 64, 32, ..., 1: one text each (one per batch size before: 100)

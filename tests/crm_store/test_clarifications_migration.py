"""Migration 0010 on both databases: the clarifications table goes away on downgrade and comes back on upgrade."""

from __future__ import annotations

from sqlalchemy import inspect

from tests.conftest import migrate


async def tables(db) -> set[str]:
    async with db.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names(schema=db.schema)))


async def test_downgrade_and_upgrade_of_the_clarifications_table(db):
    assert "clarifications" in await tables(db)
    await migrate(db, "0009_delivery", down=True)
    assert "clarifications" not in await tables(db)
    await migrate(db, "head")
    assert "clarifications" in await tables(db)

"""Canned responses on both databases: the language a customer gets, replacing, removing, bad names; the
`tierdesk canned` commands; migration 0014 down and up."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from crm_store.repositories import canned as canned_repo
from tests.bot.test_nlu_review import tierdesk
from tests.conftest import migrate


async def test_the_customers_language_then_its_primary_tag_then_the_default(db):
    async with db.sessions.begin() as s:
        await canned_repo.put(s, "Hours", "We are open 9-17.")
        await canned_repo.put(s, "hours", "Wir haben 9-17 Uhr geöffnet.", language="de")
        await canned_repo.put(s, "refund-only-fr", "Nous remboursons sous 14 jours.", language="fr")
    async with db.sessions() as s:
        assert (await canned_repo.pick(s, "HOURS", "de")).text == "Wir haben 9-17 Uhr geöffnet."
        assert (await canned_repo.pick(s, "hours", "de-AT")).language == "de"
        assert (await canned_repo.pick(s, "hours", "es")).text == "We are open 9-17."
        assert (await canned_repo.pick(s, "hours", None)).language == ""
        assert (await canned_repo.pick(s, "refund-only-fr", "en")).language == "fr"
        assert await canned_repo.pick(s, "nope", "en") is None
        assert await canned_repo.pick(s, "bad name!", "en") is None
        names = [(c.name, c.language) for c in await canned_repo.list_all(s)]
    assert names == [("hours", ""), ("hours", "de"), ("refund-only-fr", "fr")]


async def test_put_replaces_and_remove_takes_one_language_or_all(db):
    async with db.sessions.begin() as s:
        await canned_repo.put(s, "hi", "Hello")
        await canned_repo.put(s, "hi", "Hallo", language="de")
        await canned_repo.put(s, "hi", "Hello there")
    async with db.sessions.begin() as s:
        assert [c.text for c in await canned_repo.versions(s, "hi")] == ["Hello there", "Hallo"]
        assert await canned_repo.remove(s, "hi", language="de") == 1
        assert await canned_repo.remove(s, "hi", language="de") == 0
        assert await canned_repo.remove(s, "hi") == 1
        assert await canned_repo.list_all(s) == []


@pytest.mark.parametrize(
    ("name", "text", "language", "reason"),
    [
        ("two words", "x", "", "name"),
        ("ok", "   ", "", "needs a text"),
        ("ok", "x", "german!", "language"),
        ("ok", "x" * 4001, "", "at most 4000"),
    ],
)
async def test_bad_snippets_are_refused_with_the_reason(sqlite_db, name, text, language, reason):
    async with sqlite_db.sessions.begin() as s:
        with pytest.raises(canned_repo.BadCanned, match=reason):
            await canned_repo.put(s, name, text, language=language)


async def test_the_canned_commands(db, monkeypatch):
    code, out = await tierdesk(db, monkeypatch, "canned", "list")
    assert code == 0 and "no canned responses" in out
    code, out = await tierdesk(db, monkeypatch, "canned", "add", "hours", "We are open 9-17.")
    assert code == 0 and "saved hours (default)" in out
    code, out = await tierdesk(db, monkeypatch, "canned", "add", "hours", "Geöffnet 9-17.", "--language", "de")
    assert code == 0
    code, out = await tierdesk(db, monkeypatch, "canned", "list")
    assert code == 0 and "We are open 9-17." in out and "Geöffnet 9-17." in out and "default" in out
    code, out = await tierdesk(db, monkeypatch, "canned", "add", "bad name", "x")
    assert code == 2 and "name is 1-64" in out
    code, out = await tierdesk(db, monkeypatch, "canned", "remove", "hours", "--language", "de")
    assert code == 0 and "removed 1" in out
    code, out = await tierdesk(db, monkeypatch, "canned", "remove", "hours", "--language", "de")
    assert code == 2 and "no canned response 'hours' in 'de'" in out
    async with db.sessions() as s:
        assert [c.language for c in await canned_repo.list_all(s)] == [""]


async def test_migration_0014_down_and_up(db):
    async def tables() -> set[str]:
        async with db.engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names(schema=db.schema)))

    assert "canned_responses" in await tables()
    await migrate(db, "0013_channels", down=True)
    assert "canned_responses" not in await tables()
    await migrate(db, "head")
    assert "canned_responses" in await tables()

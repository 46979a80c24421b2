"""`tierdesk nlu review` as an admin runs it (the command in this process, on its own event loop) on choices
customers made through the real dispatcher, on both databases: listed, accepted into the training file, rejected."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.assistant.faq import FaqResponder
from crm_store.clarifications import Clarification
from nlu.rasa_format import load_nlu
from tests.bot.test_clarify_flow import RESPONSES, ScriptedClassifier

CONFIG = Path(__file__).resolve().parents[2] / "config"


async def tierdesk(db, monkeypatch, *args: str) -> tuple[int, str]:
    """The command in this process (its own event loop, in a thread), as `tierdesk ...` would run it."""
    from typer.testing import CliRunner

    from bot import settings as settings_module
    from bot.cli.main import app

    monkeypatch.setenv("TIERDESK_DATABASE_URL", db.url)
    monkeypatch.setenv("COLUMNS", "200")
    if db.schema:
        monkeypatch.setenv("TIERDESK_DATABASE_SCHEMA", db.schema)
    settings_module.get_settings.cache_clear()
    try:
        result = await asyncio.to_thread(CliRunner().invoke, app, list(args), catch_exceptions=False)
    finally:
        settings_module.get_settings.cache_clear()
    return result.exit_code, result.output


async def choose(h, sender: str, text: str, option: int) -> None:
    await h.ch["telegram"].receive(sender, text)
    await h.settle()
    question = [m for m in h.ch["telegram"].sent if m.recipient == sender][-1]
    await h.ch["telegram"].receive(sender, question.buttons[option - 1].data)
    await h.settle()


async def reviewed(h) -> dict[str, tuple[str | None, str | None]]:
    async with h.app.sessions() as s:
        return {r.text: (r.review, r.reviewed_by) for r in await s.scalars(select(Clarification))}


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    target = tmp_path / "nlu.yml"
    shutil.copy(CONFIG / "nlu.yml", target)
    return target


async def test_review_lists_accepts_into_the_right_block_and_rejects(harness_factory, db, monkeypatch, data_file: Path):
    h = await harness_factory(responder=FaqResponder(ScriptedClassifier(), RESPONSES))
    await choose(h, "21", "运费和时间？", 2)  # zh → pricing
    await choose(h, "22", "доставка сколько?", 1)  # ru → delivery
    await choose(h, "23", "how long and how much is shipping?", 3)  # a person: not training data
    async with h.app.sessions() as s:
        ids = {r.text: r.id for r in await s.scalars(select(Clarification))}

    code, out = await tierdesk(db, monkeypatch, "nlu", "review")
    assert code == 0, out
    assert "运费和时间？" in out and "доставка сколько?" in out and "how long and how much" not in out

    before = read(data_file)
    zh, ru = ids["运费和时间？"], ids["доставка сколько?"]
    args = ("nlu", "review", "--accept", str(zh), "--reject", str(ru), "--data", str(data_file), "--by", "ops")
    code, out = await tierdesk(db, monkeypatch, *args)
    assert code == 0, out
    assert "accepted 1" in out and "rejected 1" in out
    after = read(data_file)
    assert len(after.splitlines()) == len(before.splitlines()) + 1
    examples = load_nlu(data_file).examples
    assert [(e.intent, e.language) for e in examples if e.text == "运费和时间？"] == [("pricing", "zh")]
    assert not [e for e in examples if e.text == "доставка сколько?"]
    state = await reviewed(h)
    assert state["运费和时间？"] == ("accepted", "ops") and state["доставка сколько?"] == ("rejected", "ops")
    assert state["how long and how much is shipping?"] == (None, None)

    code, out = await tierdesk(db, monkeypatch, "nlu", "review", "--accept", str(zh), "--data", str(data_file))
    assert code == 1 and f"not waiting for review (unknown or already reviewed): {zh}" in out
    assert read(data_file) == after
    code, out = await tierdesk(db, monkeypatch, "nlu", "review")
    assert code == 0 and "no choices waiting for review" in out

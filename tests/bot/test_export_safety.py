"""`tierdesk log export`: CSV cells that would run as spreadsheet formulas are neutralised, the BOM is written
only with --bom, JSON lines stay as they are, and each export leaves an audit entry with its filter and rows."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from bot.cli.log import _export, log_app
from bot.core.csv_safe import safe_cell
from bot.settings import Settings
from crm_store.models import Contact, Customer
from crm_store.repositories import audit

PAYLOADS = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tleading tab", "\r=1+1"]


@pytest.mark.parametrize("text", PAYLOADS)
def test_formula_cells_get_a_leading_quote(text):
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize("value", ["plain", "a = b", " =not first", "'quoted", "", -2, 3.5, None, True])
def test_other_cells_are_left_alone(value):
    assert safe_cell(value) == value


async def seed(db) -> int:
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    async with db.sessions() as s, s.begin():
        customer = Customer(name="@evil", tier="VIP")
        s.add(customer)
        await s.flush()
        texts = [*PAYLOADS, "Привет, 你好"]
        s.add_all([Contact(channel="telegram", external_id=f"m{i}", direction="in", author="customer",
                           address="=+15551234", customer_id=customer.id, text=text,
                           created_at=t0 + timedelta(minutes=i)) for i, text in enumerate(texts)])
    return customer.id


async def test_log_export_neutralises_csv_writes_bom_only_when_asked_and_is_audited(db, tmp_path):
    customer = await seed(db)
    settings = Settings(database_url=db.url, database_schema=db.schema)
    plain, bommed, lines = tmp_path / "log.csv", tmp_path / "excel.csv", tmp_path / "log.jsonl"
    assert await _export(plain, "csv", None, None, None, True, settings=settings) == 7
    assert await _export(bommed, "csv", customer, "telegram", None, True, bom=True, settings=settings) == 7
    assert await _export(lines, "jsonl", None, None, None, True, settings=settings) == 7

    assert not plain.read_bytes().startswith(b"\xef\xbb\xbf")
    assert bommed.read_bytes().startswith(b"\xef\xbb\xbf") and bommed.read_bytes()[3:] == plain.read_bytes()
    rows = list(csv.DictReader(plain.open(encoding="utf-8", newline="")))
    assert [r["text"] for r in rows] == ["'" + p for p in PAYLOADS] + ["Привет, 你好"]
    assert {r["address"] for r in rows} == {"'=+15551234"}
    assert [json.loads(x)["text"] for x in lines.read_text(encoding="utf-8").splitlines()] == [
        *PAYLOADS, "Привет, 你好"]

    async with db.sessions() as s:
        logged = list(reversed(await audit.entries(s, action="contacts_exported")))
    assert [(e.actor, e.data["format"], e.data["bom"], e.data["rows"]) for e in logged] == [
        ("cli", "csv", False, 7), ("cli", "csv", True, 7), ("cli", "jsonl", False, 7)]
    assert logged[1].data["filter"] == {"customer_id": customer, "channel": "telegram", "since": None,
                                        "include_desk": False}


def test_bom_is_refused_for_json_lines(tmp_path):
    result = CliRunner().invoke(log_app, ["export", "--out", str(tmp_path / "x.jsonl"), "--format", "jsonl", "--bom"])
    assert result.exit_code == 2 and "--bom is for CSV" in result.output
    assert not (tmp_path / "x.jsonl").exists()

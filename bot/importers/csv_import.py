"""CSV import of customers and purchases: bad rows are reported by line and reason, good rows go in, and
importing the same file again changes nothing (customers upsert by external id; a purchase's source key is a
hash of its normalised row, so two identical rows count as one purchase and the second is reported).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.routing.tiering import TIERS
from crm_store.repositories import value as repo
from crm_store.repositories.customers import customers_by_identity

CUSTOMER_COLUMNS = ("customer", "name", "email", "phone", "telegram", "language", "tier", "key_account_manager")
PURCHASE_COLUMNS = ("customer", "amount", "currency", "occurred_at", "referrals", "loyalty_points")
MAX_AMOUNT = Decimal("999999999999.99")
FUTURE_TOLERANCE = timedelta(minutes=5)
BATCH_ROWS = 5_000
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,4})?$")


class ImportFileError(ValueError):
    """The file as a whole cannot be read (empty, not CSV with commas, a required column missing)."""


@dataclass(frozen=True, slots=True)
class RowProblem:
    line: int
    reason: str


@dataclass(slots=True)
class ImportReport:
    kind: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        what = "customers" if self.kind == "customers" else "purchases"
        parts = [f"{self.rows} rows: {self.created} {what} new"]
        if self.kind == "customers":
            parts.append(f"{self.updated} updated")
        parts.append(f"{self.unchanged} already present")
        parts.append(f"{len(self.problems)} refused")
        return ", ".join(parts)


def read_rows(data: bytes | str, required: tuple[str, ...], known: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) pairs of a comma-separated file with a header; whole-file problems raise."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ImportFileError(f"the file is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV") from None
    if not data.strip():
        raise ImportFileError("the file is empty")
    reader = csv.reader(io.StringIO(data))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except csv.Error as exc:
        raise ImportFileError(f"line 1: not readable as CSV ({exc})") from None
    missing = [c for c in required if c not in header]
    if missing:
        first = data.splitlines()[0]
        for other in (";", "\t", "|"):
            if other in first and len(first.split(other)) > len(header):
                shown = "tab" if other == "\t" else repr(other)
                raise ImportFileError(f"line 1: the columns are separated by {shown}; use commas")
        raise ImportFileError(f"line 1: missing column(s) {', '.join(missing)} (header: {', '.join(header)})")
    dupes = {h for h in header if header.count(h) > 1}
    if dupes:
        raise ImportFileError(f"line 1: column(s) named twice: {', '.join(sorted(dupes))}")
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        for fields in reader:
            if not any(f.strip() for f in fields):
                continue
            if len(fields) != len(header):
                rows.append((reader.line_num, {"__error__": f"expected {len(header)} fields, found {len(fields)}"}))
                continue
            rows.append((reader.line_num, {h: f.strip() for h, f in zip(header, fields, strict=True) if h in known}))
    except csv.Error as exc:
        raise ImportFileError(f"line {reader.line_num}: not readable as CSV ({exc})") from None
    return rows


def normalise_phone(raw: str) -> str | None:
    digits = re.sub(r"[\s\-().]", "", raw)
    if not re.fullmatch(r"\+?\d{6,15}", digits):
        return None
    return digits if digits.startswith("+") else f"+{digits}"


def parse_datetime(raw: str) -> datetime:
    value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_purchase(row: dict[str, str], now: datetime) -> dict[str, Any]:
    """One purchase row as ValueEvent fields (without customer_id); raises ValueError with the reason."""
    key = row.get("customer", "")
    if not key:
        raise ValueError("customer is empty")
    raw_amount = row.get("amount", "")
    try:
        amount = Decimal(raw_amount.replace(" ", ""))
    except InvalidOperation:
        raise ValueError(f"amount {raw_amount!r} is not a number") from None
    if not amount.is_finite():
        raise ValueError(f"amount {raw_amount!r} is not a number")
    amount = amount.quantize(Decimal("0.01"))
    if amount == 0:
        raise ValueError("amount is 0")
    if abs(amount) > MAX_AMOUNT:
        raise ValueError(f"amount {raw_amount} is too large")
    currency = (row.get("currency") or "USD").upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise ValueError(f"currency {currency!r} is not a three-letter code")
    raw_at = row.get("occurred_at", "")
    try:
        occurred = parse_datetime(raw_at)
    except ValueError:
        raise ValueError(f"occurred_at {raw_at!r} is not an ISO date or date-time") from None
    if occurred > now + FUTURE_TOLERANCE:
        raise ValueError(f"occurred_at {occurred.isoformat()} is in the future")
    counts = {}
    for col in ("referrals", "loyalty_points"):
        raw = row.get(col) or "0"
        if not raw.isdigit():
            raise ValueError(f"{col} {raw!r} is not a whole number ≥ 0")
        counts[col] = int(raw)
    norm = "|".join([key.lower(), str(amount), currency, occurred.isoformat(), str(counts["referrals"]),
                     str(counts["loyalty_points"])])
    return {
        "key": key, "amount": amount, "currency": currency, "occurred_at": occurred,
        "source_key": hashlib.sha256(norm.encode()).hexdigest(), **counts,
    }


def parse_customer(row: dict[str, str]) -> dict[str, Any]:
    """One customer row, normalised; raises ValueError with the reason."""
    ref = row.get("customer", "")
    if not ref:
        raise ValueError("customer is empty")
    if len(ref) > 255:
        raise ValueError("customer id is longer than 255 characters")
    identities = []
    if email := row.get("email", "").lower():
        if not EMAIL.match(email):
            raise ValueError(f"email {email!r} is not an address")
        identities.append(("email", email))
    if raw_phone := row.get("phone", ""):
        phone = normalise_phone(raw_phone)
        if phone is None:
            raise ValueError(f"phone {raw_phone!r} is not a phone number")
        identities.append(("phone", phone))
    if telegram := row.get("telegram", "").lstrip("@"):
        identities.append(("telegram", telegram))
    language = row.get("language", "").lower() or None
    if language and not LANGUAGE.match(language):
        raise ValueError(f"language {language!r} is not a language code like en or zh")
    tier = None
    if raw_tier := row.get("tier", ""):
        tier = next((t for t in TIERS if t.lower() == raw_tier.lower()), None)
        if tier is None:
            raise ValueError(f"tier {raw_tier!r} is not one of {', '.join(TIERS)}")
    return {
        "ref": ref, "name": row.get("name", "")[:255], "language": language, "tier": tier,
        "kam": row.get("key_account_manager", ""), "identities": tuple(identities),
    }


def _lookups(key: str) -> list[str]:
    """The forms a purchase's customer field may match: as written, as an email, as a phone number."""
    forms = [key, key.lower()]
    phone = normalise_phone(key)
    if phone:
        forms.append(phone)
    return forms


def _load(source: Path | str | bytes) -> bytes | str:
    if isinstance(source, Path):
        try:
            return source.read_bytes()
        except OSError as exc:
            raise ImportFileError(f"cannot read {source}: {exc.strerror or exc}") from None
    return source


async def import_customers(sessions: async_sessionmaker[AsyncSession], source: Path | str | bytes) -> ImportReport:
    """Upsert customers with their identities and key-account managers, in one transaction."""
    report = ImportReport("customers")
    rows = read_rows(_load(source), ("customer",), CUSTOMER_COLUMNS)
    report.rows = len(rows)
    parsed: list[tuple[int, dict[str, Any]]] = []
    seen_ref: dict[str, int] = {}
    seen_identity: dict[tuple[str, str], int] = {}
    for line, row in rows:
        try:
            if "__error__" in row:
                raise ValueError(row["__error__"])
            item = parse_customer(row)
            if item["ref"] in seen_ref:
                raise ValueError(f"customer {item['ref']!r} already appears on line {seen_ref[item['ref']]}")
            for pair in item["identities"]:
                if pair in seen_identity:
                    raise ValueError(f"{pair[0]} {pair[1]} already appears on line {seen_identity[pair]}")
        except ValueError as exc:
            report.problems.append(RowProblem(line, str(exc)))
            continue
        seen_ref[item["ref"]] = line
        seen_identity.update({pair: line for pair in item["identities"]})
        parsed.append((line, item))
    async with sessions() as session, session.begin():
        await repo.lock_for_writing(session)
        agents = await repo.agent_ids_by_email_or_name(session, (i["kam"] for _, i in parsed))
        refs = await repo.customer_ids_by_ref(session, (i["ref"] for _, i in parsed))
        owners = await customers_by_identity(session, (p for _, i in parsed for p in i["identities"]))
        good: list[repo.ImportedCustomer] = []
        for line, item in parsed:
            kam = agents.get(item["kam"].lower()) if item["kam"] else None
            if item["kam"] and kam is None:
                report.problems.append(RowProblem(line, f"key_account_manager {item['kam']!r} is no agent we know"))
                continue
            mine = refs.get(item["ref"])
            taken = [p for p in item["identities"] if p in owners and owners[p] != mine]
            if taken:
                ch, addr = taken[0]
                report.problems.append(RowProblem(line, f"{ch} {addr} already belongs to customer {owners[taken[0]]}"))
                continue
            good.append(repo.ImportedCustomer(item["ref"], item["name"], item["language"], item["tier"], kam,
                                              item["identities"]))
        report.created, report.updated = await repo.upsert_customers(session, good)
        report.unchanged = len(good) - report.created - report.updated
    report.problems.sort(key=lambda p: p.line)
    return report


async def import_purchases(
    sessions: async_sessionmaker[AsyncSession], source: Path | str | bytes, *, now: Callable[[], datetime] | None = None
) -> ImportReport:
    """Insert purchases and refunds; already imported rows are skipped, each batch in its own transaction."""
    report = ImportReport("purchases")
    at = (now or (lambda: datetime.now(UTC)))()
    rows = read_rows(_load(source), ("customer", "amount", "occurred_at"), PURCHASE_COLUMNS)
    report.rows = len(rows)
    parsed: list[tuple[int, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        try:
            if "__error__" in row:
                raise ValueError(row["__error__"])
            item = parse_purchase(row, at)
            if item["source_key"] in seen:
                raise ValueError(f"duplicate of line {seen[item['source_key']]}")
        except ValueError as exc:
            report.problems.append(RowProblem(line, str(exc)))
            continue
        seen[item["source_key"]] = line
        parsed.append((line, item))
    currencies = sorted({i["currency"] for _, i in parsed})
    if len(currencies) > 1:
        report.notes.append(f"several currencies ({', '.join(currencies)}): spend is summed as it stands")
    for start in range(0, len(parsed), BATCH_ROWS):
        batch = parsed[start : start + BATCH_ROWS]
        async with sessions() as session, session.begin():
            await repo.lock_for_writing(session)
            customers = await repo.customers_for_purchases(session, (k for _, i in batch for k in _lookups(i["key"])))
            values = []
            for line, item in batch:
                cid = next((customers[k] for k in _lookups(item["key"]) if k in customers), None)
                if cid is None:
                    report.problems.append(
                        RowProblem(line, f"unknown customer {item['key']!r} (no such external id, email or phone)")
                    )
                    continue
                fields = {k: v for k, v in item.items() if k != "key"}
                values.append({"customer_id": cid, **fields})
            added = await repo.insert_value_events(session, values)
            report.created += added
            report.unchanged += len(values) - added
    report.problems.sort(key=lambda p: p.line)
    return report

"""Contact-log exports over HTTP (the dashboard's and the REST API's): one streaming writer for both, so both
neutralise formula cells, write the BOM only when asked, show only what the filter's scope allows, and leave
one audit entry (who, which filter, how many rows) when the download ends."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse

from bot.core.csv_safe import BOM, safe_cell
from crm_store.repositories import audit
from crm_store.repositories.contact_search import ContactFilter, iter_contacts

FORMATS = ("csv", "jsonl")
EXPORT_FIELDS = ("id", "created_at", "channel", "direction", "author", "address", "customer_id", "customer_name",
                 "tier", "agent_id", "ticket_id", "intent", "text")
AUDIT_ACTION = "contacts_exported"


def export_fields(f: ContactFilter) -> tuple[str, ...]:
    """The exported columns: with desk traffic included, a last one saying which rows are desk traffic."""
    return (*EXPORT_FIELDS, "desk") if f.include_desk else EXPORT_FIELDS


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def filter_summary(f: ContactFilter) -> dict[str, Any]:
    """The filter as the audit log keeps it: only what was set, times as ISO 8601."""
    default = asdict(ContactFilter())
    return {k: list(v) if isinstance(v, tuple) else _plain(v) for k, v in asdict(f).items() if v != default[k]}


async def _rows(session: Any, f: ContactFilter, counter: list[int]) -> AsyncIterator[dict[str, Any]]:
    async for row in iter_contacts(session, f):
        counter[0] += 1
        yield row


async def _csv(rows: AsyncIterator[dict[str, Any]], fields: tuple[str, ...], bom: bool) -> AsyncIterator[str]:
    buf = io.StringIO()
    if bom:
        buf.write(BOM)
    writer = csv.writer(buf)
    writer.writerow(fields)
    async for row in rows:
        writer.writerow([safe_cell(_plain(row.get(k))) for k in fields])
        if buf.tell() > 64_000:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


async def _jsonl(rows: AsyncIterator[dict[str, Any]], fields: tuple[str, ...]) -> AsyncIterator[str]:
    chunk: list[str] = []
    async for row in rows:
        chunk.append(json.dumps({k: _plain(row.get(k)) for k in fields}, ensure_ascii=False))
        if len(chunk) >= 500:
            yield "\n".join(chunk) + "\n"
            chunk = []
    if chunk:
        yield "\n".join(chunk) + "\n"


def export_response(
    request: Request, f: ContactFilter, fmt: str, *, bom: bool, agent_id: int | None, actor: str, via: str
) -> StreamingResponse:
    """The filtered contacts as a download; the audit entry is written when the stream ends (complete or not),
    with the number of rows actually sent. `bom` applies to CSV only (it would break JSON lines)."""
    ctx = request.app.state.ctx
    sessions, writer_sessions = ctx.sessions, getattr(ctx, "writer_sessions", None) or ctx.sessions
    fields = export_fields(f)
    csv_bom = bom and fmt == "csv"

    async def body() -> AsyncIterator[str]:
        counter, complete = [0], False
        try:
            async with sessions() as session:
                rows = _rows(session, f, counter)
                async for part in _csv(rows, fields, csv_bom) if fmt == "csv" else _jsonl(rows, fields):
                    yield part
            complete = True
        finally:
            async with writer_sessions() as s, s.begin():
                audit.record(s, AUDIT_ACTION, subject="contacts", agent_id=agent_id, actor=actor, via=via,
                             format=fmt, bom=csv_bom, rows=counter[0], complete=complete, filter=filter_summary(f))

    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson; charset=utf-8"
    stamp = datetime.now().strftime("%Y%m%d-%H%M")
    return StreamingResponse(body(), media_type=media,
                             headers={"Content-Disposition": f'attachment; filename="contacts-{stamp}.{fmt}"'})

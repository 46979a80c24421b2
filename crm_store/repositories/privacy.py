"""What the business holds about one person, and how it lets go of it: export, erasure, legal hold, retention.

Erasure and retention anonymise, they never delete the rows the figures count: a contact keeps its channel,
direction, author, times, customer, ticket and agent, so volumes, response times and SLA figures stay the same;
its text, subject, attachments, raw message and address are blanked. The contacts' text index follows the text
(SQLite: the FTS5 triggers on UPDATE OF text; PostgreSQL: the generated tsvector column), so a search for an
erased word finds nothing. Every export, erasure and hold change is written to the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import String, and_, cast, delete, func, inspect, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.clarifications import Clarification
from crm_store.errors import Conflict, NotFound
from crm_store.models import Contact, Customer, Identity, Note, OutboxItem, Ticket, TicketEvent, TierChange, ValueEvent
from crm_store.models import now as utc_now
from crm_store.repositories import audit
from crm_store.repositories._sql import dialect
from crm_store.trust import AuditEntry, IdentityClaim

EXPORT_VERSION = 1
SECRET_COLUMNS = {"code_hash"}
"""Never exported: a claim's code hash is a credential, not data about the person."""
TEXT_EVENT_KEYS = ("resolution", "subject", "comment", "text")
"""Ticket event data that can hold what a person wrote; erasure drops these keys."""
ERASED = "customer erased"


class OnHold(Conflict):
    """Erasure refused: the customer's data is under legal hold."""


@dataclass(slots=True)
class Erasure:
    """What an erasure changed (row counts), for the audit log and the person who asked."""

    customer_ids: list[int] = field(default_factory=list)
    contacts: int = 0
    notes: int = 0
    tickets: int = 0
    identities: int = 0
    claims: int = 0
    outbox: int = 0
    files: list[str] = field(default_factory=list)
    """Stored raw messages and attachments no contact refers to any more: the caller deletes them (file I/O
    stays out of the store)."""

    def as_dict(self) -> dict[str, Any]:
        return {k: len(getattr(self, k)) if k == "files" else getattr(self, k) for k in self.__slots__}


def _plain(value: Any) -> Any:
    """A column value as JSON can carry it."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def row_dict(row: Any) -> dict[str, Any]:
    """Every mapped column of an ORM row, JSON-ready (secrets left out)."""
    return {c.key: _plain(getattr(row, c.key)) for c in inspect(type(row)).column_attrs if c.key not in SECRET_COLUMNS}


async def _rows(session: AsyncSession, model: Any, *where: Any, order: tuple[Any, ...] = ()) -> list[Any]:
    return list(await session.scalars(select(model).where(*where).order_by(*(order or (model.id,)))))


async def customer_row(session: AsyncSession, customer_id: int) -> Customer:
    """The customer row itself (a merged customer is not followed to its survivor: it is its own record)."""
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"customer C-{customer_id} not found")
    return customer


async def export_customer(session: AsyncSession, customer_id: int, *, agent_id: int | None = None,
                          actor: str = "agent") -> dict[str, Any]:
    """Everything held about one customer, as one JSON-ready object; the export itself is audited (in the
    caller's transaction)."""
    customer = await customer_row(session, customer_id)
    cid = customer.id
    tickets = await _rows(session, Ticket, Ticket.customer_id == cid)
    events: dict[int, list[dict[str, Any]]] = {t.id: [] for t in tickets}
    if tickets:
        for e in await _rows(session, TicketEvent, TicketEvent.ticket_id.in_(list(events)),
                             order=(TicketEvent.at, TicketEvent.id)):
            events[e.ticket_id].append(row_dict(e))
    merged_from = list(await session.scalars(select(Customer.id).where(Customer.merged_into_id == cid)))
    data = {
        "export_version": EXPORT_VERSION,
        "exported_at": utc_now().isoformat(),
        "customer": row_dict(customer),
        "merged_from": merged_from,
        "identities": [row_dict(r) for r in await _rows(session, Identity, Identity.customer_id == cid)],
        "contacts": [row_dict(r) for r in await _rows(session, Contact, Contact.customer_id == cid,
                                                        order=(Contact.created_at, Contact.id))],
        "tickets": [{**row_dict(t), "events": events[t.id]} for t in tickets],
        "notes": [row_dict(r) for r in await _rows(session, Note, Note.customer_id == cid)],
        "tier_changes": [row_dict(r) for r in await _rows(session, TierChange, TierChange.customer_id == cid)],
        "value_events": [row_dict(r) for r in await _rows(session, ValueEvent, ValueEvent.customer_id == cid)],
        "identity_claims": [row_dict(r) for r in await _rows(session, IdentityClaim, IdentityClaim.customer_id == cid)],
        "clarifications": [row_dict(r) for r in await _rows(session, Clarification, Clarification.customer_id == cid)],
        "audit": [row_dict(r) for r in await _rows(session, AuditEntry, AuditEntry.subject == f"customer:{cid}")],
    }
    counts = {k: len(v) for k, v in data.items() if isinstance(v, list)}
    audit.record(session, "customer_exported", subject=f"customer:{cid}", agent_id=agent_id, actor=actor, **counts)
    return data


async def set_legal_hold(session: AsyncSession, customer_id: int, on: bool, *, agent_id: int | None = None,
                         actor: str = "agent") -> Customer:
    """Put a customer's data under legal hold (erasure refused) or lift it; audited."""
    customer = await customer_row(session, customer_id)
    customer.legal_hold = on
    audit.record(session, "legal_hold_on" if on else "legal_hold_off", subject=f"customer:{customer.id}",
                 agent_id=agent_id, actor=actor)
    await session.flush()
    return customer


async def _merged_family(session: AsyncSession, customer_id: int) -> list[int]:
    """The customer and every customer merged into it (their rows are the same person's); never the survivor a
    merged customer points to."""
    family, frontier = [customer_id], [customer_id]
    while frontier:
        frontier = [i for i in await session.scalars(select(Customer.id).where(Customer.merged_into_id.in_(frontier)))
                    if i not in family]
        family += frontier
    return family


def _without_entities(session: AsyncSession) -> Any:
    """contacts.nlu without the entities the classifier found in the text (they quote it: emails, phones)."""
    if dialect(session) == "postgresql":
        return Contact.nlu.op("-")(literal("entities", String))
    return func.json_remove(Contact.nlu, "$.entities")


def blank_contacts(session: AsyncSession, *, with_address: bool) -> dict[str, Any]:
    """The UPDATE values that anonymise a contact and keep what the figures count."""
    values: dict[str, Any] = {"text": "", "subject": None, "attachments": [], "raw_ref": None,
                              "nlu": _without_entities(session)}
    if with_address:
        values["address"] = ""
    return values


async def erase_customer(session: AsyncSession, customer_id: int, *, agent_id: int | None = None,
                         actor: str = "agent", at: datetime | None = None) -> Erasure:
    """Anonymise a customer (and the customers merged into them): their text and identities go, the rows the
    figures count stay. Refused with `OnHold` while any of them is under legal hold. Audited."""
    customer = await customer_row(session, customer_id)
    ids = await _merged_family(session, customer.id)
    held = list(await session.scalars(select(Customer.id).where(Customer.id.in_(ids), Customer.legal_hold)))
    if held:
        raise OnHold(f"customer C-{held[0]} is under legal hold: lift the hold before erasing")
    at = at or utc_now()
    out = Erasure(customer_ids=ids)
    stored = await stored_files(session, Contact.customer_id.in_(ids))
    out.contacts = (await session.execute(
        update(Contact).where(Contact.customer_id.in_(ids)).values(**blank_contacts(session, with_address=True))
        .execution_options(synchronize_session=False))).rowcount
    out.notes = (await session.execute(update(Note).where(Note.customer_id.in_(ids)).values(text="")
                                       .execution_options(synchronize_session=False))).rowcount
    out.tickets = await _blank_tickets(session, ids)
    out.outbox = await _blank_outbox(session, ids)
    out.identities, out.claims = await _drop_identities(session, ids)
    # The bot's questions quote their message; a choice not yet accepted into the training data goes with them.
    await session.execute(delete(Clarification).where(Clarification.customer_id.in_(ids)))
    out.files = sorted(stored - await still_referenced(session, stored))
    await session.execute(update(Customer).where(Customer.id.in_(ids))
                          .values(name="", external_ref=None, erased_at=func.coalesce(Customer.erased_at, at),
                                  updated_at=at).execution_options(synchronize_session=False))
    audit.record(session, "customer_erased", subject=f"customer:{customer.id}", agent_id=agent_id, actor=actor,
                 at=at, **out.as_dict())
    await session.flush()
    session.expire_all()
    return out


async def _blank_tickets(session: AsyncSession, ids: list[int]) -> int:
    """Ticket subjects, comments and resolutions, and the event data that repeats them."""
    ticket_ids = list(await session.scalars(select(Ticket.id).where(Ticket.customer_id.in_(ids))))
    if not ticket_ids:
        return 0
    await session.execute(update(Ticket).where(Ticket.id.in_(ticket_ids))
                          .values(subject="", csat_comment=None, resolution=None)
                          .execution_options(synchronize_session=False))
    for event in await session.scalars(select(TicketEvent).where(TicketEvent.ticket_id.in_(ticket_ids))):
        data = dict(event.data or {})
        if any(k in data for k in TEXT_EVENT_KEYS):
            event.data = {k: v for k, v in data.items() if k not in TEXT_EVENT_KEYS}
    return len(ticket_ids)


async def _blank_outbox(session: AsyncSession, ids: list[int]) -> int:
    """Replies to them lose text and recipient; one still waiting is not sent any more."""
    await session.execute(update(OutboxItem).where(OutboxItem.customer_id.in_(ids), OutboxItem.status == "pending")
                          .values(status="failed", last_error=ERASED).execution_options(synchronize_session=False))
    result = await session.execute(
        update(OutboxItem).where(OutboxItem.customer_id.in_(ids))
        .values(text="", subject="", recipient="", reply_to="", buttons=[])
        .execution_options(synchronize_session=False))
    return result.rowcount


async def _drop_identities(session: AsyncSession, ids: list[int]) -> tuple[int, int]:
    """Their identities are removed (a later message from the address starts a new, unknown customer); their
    own claims go, and a pending claim someone else made on one of their addresses is refused and blanked."""
    pairs = [(ch, a) for ch, a in await session.execute(
        select(Identity.channel, Identity.address).where(Identity.customer_id.in_(ids)))]
    claims = 0
    for own in await session.scalars(select(IdentityClaim).where(IdentityClaim.customer_id.in_(ids))):
        await session.delete(own)
        claims += 1
    if pairs:
        await session.execute(
            update(IdentityClaim)
            .where(or_(*(and_(IdentityClaim.channel == ch, IdentityClaim.address == a) for ch, a in pairs)))
            .values(address="", code_hash="", status="refused").execution_options(synchronize_session=False))
    for ident in await session.scalars(select(Identity).where(Identity.customer_id.in_(ids))):
        await session.delete(ident)
    return len(pairs), claims


def _not_blank(session: AsyncSession) -> Any:
    """A contact that still holds text, a subject, a raw message or attachments."""
    length = func.jsonb_array_length if dialect(session) == "postgresql" else func.json_array_length
    return or_(Contact.text != "", Contact.subject.is_not(None), Contact.raw_ref.is_not(None),
               func.coalesce(length(Contact.attachments), 0) > 0)


async def stored_files(session: AsyncSession, where: Any) -> set[str]:
    """The stored raw messages and attachment files of the contacts `where` selects."""
    refs: set[str] = set()
    for raw_ref, attachments in (await session.execute(select(Contact.raw_ref, Contact.attachments).where(where))):
        if raw_ref:
            refs.add(raw_ref)
        refs.update(str(a["ref"]) for a in attachments or () if isinstance(a, dict) and a.get("ref"))
    return refs


async def still_referenced(session: AsyncSession, refs: set[str]) -> set[str]:
    """Those of `refs` another contact still points to (files are stored once per content, and shared)."""
    found: set[str] = set()
    for ref in refs:
        used = await session.scalar(select(Contact.id).where(or_(
            Contact.raw_ref == ref, cast(Contact.attachments, String).contains(ref))).limit(1))
        if used is not None:
            found.add(ref)
    return found


async def anonymise_contacts_before(session: AsyncSession, before: datetime, *, after_id: int = 0,
                                    limit: int = 1000, files: set[str] | None = None) -> tuple[int, int | None]:
    """Retention: blank up to `limit` contacts created before `before` (from id `after_id` on). Returns how
    many were blanked and the id to go on from (None when none are left). Desk traffic is included: notices to
    agents quote what customers wrote."""
    ids = list(await session.scalars(
        select(Contact.id).where(Contact.id > after_id, Contact.created_at < before, _not_blank(session))
        .order_by(Contact.id).limit(limit)))
    if not ids:
        return 0, None
    stored = await stored_files(session, Contact.id.in_(ids)) if files is not None else set()
    await session.execute(update(Contact).where(Contact.id.in_(ids))
                          .values(**blank_contacts(session, with_address=False))
                          .execution_options(synchronize_session=False))
    if files is not None:
        files.update(stored - await still_referenced(session, stored))
    return len(ids), ids[-1] if len(ids) == limit else None


def record_retention(session: AsyncSession, before: datetime, contacts: int, *, actor: str = "system") -> None:
    audit.record(session, "contacts_retained", subject="contacts", actor=actor, before=before.isoformat(),
                 contacts=contacts)


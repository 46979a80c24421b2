"""Customers: the list and the 360° card (identities, tier and why, value, key-account manager, tickets,
conversation, notes), and for admins the customer's data as a whole: export, erasure, legal hold."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.messages import clean_text
from bot.core.retention import remove_stored_files
from bot.routing import tier_history
from bot.tickets import TicketError, may_see_ticket, may_see_tier, parse_id
from bot.tickets.access import is_admin
from bot.web.auth import Viewer
from bot.web.dashboard.common import Forbidden, check_csrf, current_viewer, int_or_none, page_viewer, render
from bot.web.dashboard.contacts import _cursor
from bot.web.sessions import read_session, write_session
from crm_store.errors import NotFound
from crm_store.models import Customer
from crm_store.repositories import customer_card, privacy, reports
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import tickets as tickets_repo
from crm_store.repositories import web as web_repo

router = APIRouter(include_in_schema=False)


@router.get("/customers")
async def customer_list(
    request: Request, viewer: Viewer = Depends(page_viewer), session: AsyncSession = Depends(read_session)
) -> Response:
    q = request.query_params.get("q", "")[:200].strip()
    tier = request.query_params.get("tier", "")[:20]
    after = int_or_none(request.query_params.get("after"))
    rows = await reports.search_customers_page(session, q=q, tier=tier, scope_tiers=viewer.scope_tiers,
                                               after_id=after, limit=51)
    more = len(rows) > 50
    rows = rows[:50]
    return render(request, "customers.html", viewer, rows=rows, q=q, tier=tier,
                  next_after=rows[-1]["id"] if more else None)


def _customer_number(customer_ref: str | int) -> int:
    """The customer a path names ("12" or "C-12"); a number too large or not a number names nobody (a 404)."""
    try:
        return parse_id(customer_ref, what="customer")
    except TicketError as exc:
        raise TicketError(exc.message, code="not_found") from None


async def visible_customer(session: AsyncSession, viewer: Viewer, customer_ref: str | int) -> Customer:
    """The customer a path names if the core lets this viewer see their current tier; otherwise a 404 (an agent
    learns nothing of other tiers)."""
    customer_id = _customer_number(customer_ref)
    customer = await customers_repo.get_customer(session, customer_id)
    if not may_see_tier(viewer.actor, customer.manual_tier or customer.tier):
        raise NotFound(f"customer C-{customer_id} not found")
    return customer


async def visible_card(session: AsyncSession, viewer: Viewer, customer_id: int) -> customer_card.CardFigures:
    """visible_customer with the card's figures, read in one statement."""
    card = await customer_card.card_figures(session, customer_id)
    if not may_see_tier(viewer.actor, card.customer.manual_tier or card.customer.tier):
        raise NotFound(f"customer C-{customer_id} not found")
    return card


@router.get("/customers/{customer_ref}")
async def customer_card_page(
    customer_ref: str, request: Request, viewer: Viewer = Depends(page_viewer),
    session: AsyncSession = Depends(read_session),
) -> Response:
    card = await visible_card(session, viewer, _customer_number(customer_ref))
    customer = card.customer
    if str(customer.id) != customer_ref:
        return RedirectResponse(f"/customers/{customer.id}", status_code=303)
    before = _cursor(request.query_params.get("before"))
    history = await reports.search_contacts(
        session, reports.ContactFilter(customer_id=customer.id), before=before, limit=51
    )
    more = len(history) > 50
    history = history[:50]
    return render(
        request, "customer.html", viewer, customer=customer,
        identities=await customers_repo.identities_of(session, customer.id),
        value=card.value, kam=card.key_account_manager,
        outlook=tier_history.outlook_of(card.predicted_value, card.p_alive, card.purchases, card.last,
                                        datetime.now(UTC)),
        tickets=[t for t in await tickets_repo.customer_tickets(session, customer.id)
                 if may_see_ticket(viewer.actor, t)],
        history=list(reversed(history)),
        older=f"{history[-1]['created_at'].isoformat()}_{history[-1]['id']}" if more else None,
        notes=await web_repo.notes_for(session, customer_id=customer.id, limit=50),
        is_admin=is_admin(viewer.role),
    )


@router.post("/customers/{customer_ref}/notes")
async def add_customer_note(
    customer_ref: str, request: Request, viewer: Viewer = Depends(current_viewer),
    session: AsyncSession = Depends(write_session),
) -> Response:
    form = await check_csrf(request, viewer)
    text, _ = clean_text(str(form.get("text", "")))
    if len(text) > 100_000:
        raise TicketError(f"That note is {len(text):,} characters; at most 100,000 fit. Nothing was saved.",
                          code="invalid")
    async with session.begin():
        customer = await visible_customer(session, viewer, customer_ref)
        if text.strip():
            await tickets_repo.add_note(session, customer_id=customer.id, text=text.strip(), agent_id=viewer.agent_id)
    return RedirectResponse(f"/customers/{customer.id}#notes", status_code=303)


async def _admin_customer(request: Request, viewer: Viewer, session: AsyncSession, customer_ref: str) -> tuple[
        dict, int]:
    """The checked form and the customer the path names, for an admin only (a person's data as a whole is not
    for agents or supervisors). A merged customer is named as itself, never as its survivor."""
    form = await check_csrf(request, viewer)
    if not is_admin(viewer.role):
        raise Forbidden("Exporting, erasing or holding a customer's data is for admins.")
    await visible_customer(session, viewer, customer_ref)
    customer_id = parse_id(customer_ref, what="customer")
    return form, customer_id


@router.post("/customers/{customer_ref}/export")
async def export_customer(
    customer_ref: str, request: Request, viewer: Viewer = Depends(current_viewer),
    session: AsyncSession = Depends(write_session),
) -> Response:
    """Everything held about the customer as a JSON download; audited."""
    async with session.begin():
        _, customer_id = await _admin_customer(request, viewer, session, customer_ref)
        data = await privacy.export_customer(session, customer_id, agent_id=viewer.agent_id)
    return Response(json.dumps(data, ensure_ascii=False, indent=2), media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="customer-{customer_id}.json"'})


@router.post("/customers/{customer_ref}/erase")
async def erase_customer(
    customer_ref: str, request: Request, viewer: Viewer = Depends(current_viewer),
    session: AsyncSession = Depends(write_session),
) -> Response:
    """Anonymise the customer once the admin typed its number (C-12) in the confirmation field."""
    async with session.begin():
        form, customer_id = await _admin_customer(request, viewer, session, customer_ref)
        typed = str(form.get("confirm", "")).strip().upper()
        if typed not in (f"C-{customer_id}", str(customer_id)):
            raise TicketError(f"To erase this customer, type C-{customer_id} in the confirmation field. "
                              "Nothing was erased.", code="invalid")
        try:
            done = await privacy.erase_customer(session, customer_id, agent_id=viewer.agent_id)
        except privacy.OnHold as exc:
            raise TicketError(f"{exc}. Nothing was erased.", code="conflict") from None
    remove_stored_files(done.files, request.app.state.ctx.settings.email.attachment_dir)
    return RedirectResponse(f"/customers/{customer_id}", status_code=303)


@router.post("/customers/{customer_ref}/hold")
async def hold_customer(
    customer_ref: str, request: Request, viewer: Viewer = Depends(current_viewer),
    session: AsyncSession = Depends(write_session),
) -> Response:
    """Put the customer under legal hold (`on=1`) or lift it (`on=0`); audited."""
    async with session.begin():
        form, customer_id = await _admin_customer(request, viewer, session, customer_ref)
        await privacy.set_legal_hold(session, customer_id, str(form.get("on", "")) == "1", agent_id=viewer.agent_id)
    return RedirectResponse(f"/customers/{customer_id}#privacy", status_code=303)

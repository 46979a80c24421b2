"""Tickets: the queue view, and one ticket with its transcript, audit trail, notes and the actions an agent
takes on it (reply, note, take, assign, pending, close, reopen, priority, tags, subject). Every action is a
ticket-core operation; a refusal shows the ticket page again with the core's words."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

from bot.core.messages import clean_text
from bot.tickets import STATUSES, Actor, TicketError, may_see_ticket, not_visible, parse_id
from bot.web import ticket_actions as actions
from bot.web.auth import Viewer
from bot.web.dashboard.common import check_csrf, current_viewer, error_status, int_or_none, page_viewer, render
from bot.web.inbox import delivery, forms, uploads
from bot.web.sessions import read_session, write_session
from crm_store.models import Ticket
from crm_store.repositories import canned as canned_repo
from crm_store.repositories import contacts as contacts_repo
from crm_store.repositories import customer_card
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import tickets as tickets_repo
from crm_store.repositories import web as web_repo
from crm_store.repositories.agents import list_agents

router = APIRouter(include_in_schema=False)
PAGE = 50


@router.get("/tickets")
async def ticket_list(
    request: Request, viewer: Viewer = Depends(page_viewer), session: AsyncSession = Depends(read_session)
) -> Response:
    params = request.query_params
    status = params.get("status", "open")
    status = status if status in (*STATUSES, "all") else "open"
    mine = params.get("mine") == "1"
    people = web_repo.TicketPeople()  # customers and assignees, read with the tickets: one statement per batch
    tickets, next_before = await actions.visible_tickets(
        session, viewer.actor, limit=PAGE, cursor=int_or_none(params.get("before")), newest_first=True,
        status=None if status == "all" else status, queue=params.get("queue", "")[:64] or None,
        assignee_id=viewer.agent_id if mine else int_or_none(params.get("agent")), people=people,
    )
    return render(request, "tickets.html", viewer, tickets=tickets, customers=people.customers,
                  agent_names=people.agent_names, status=status, mine=mine, statuses=STATUSES,
                  queue=params.get("queue", ""), next_before=next_before)


def ticket_number(ticket_ref: str) -> int:
    """The ticket a path names ("12" or "T-12"); a path naming none (too large, negative, not a number) is a
    page that does not exist."""
    try:
        return parse_id(ticket_ref, what="ticket")
    except TicketError as exc:
        raise TicketError(exc.message, code="not_found") from None


async def _page(request: Request, viewer: Viewer, session: AsyncSession, ticket: Ticket, *, error: str = "",
                status_code: int = 200) -> Response:
    agents = await list_agents(session)
    card = await customer_card.card_figures(session, ticket.customer_id)
    identities = await customers_repo.identities_of(session, ticket.customer_id)
    messages, states = await delivery.transcript(
        session, ticket.id, await contacts_repo.ticket_transcript(session, ticket.id, limit=1000))
    return render(
        request, "ticket.html", viewer, status_code=status_code, ticket=ticket, error=error, customer=card.customer,
        messages=messages, states=states, queued=delivery.queued_notice(request, card.customer, identities, ticket),
        events=await tickets_repo.ticket_events(session, ticket.id),
        notes=await web_repo.notes_for(session, ticket_id=ticket.id),
        agents=agents, agent_names={a.id: a.name for a in agents}, form_key=forms.new_form_key(),
        canned=sorted({c.name for c in await canned_repo.list_all(session)}),
        identities=identities,
        value=card.value,
        other_tickets=[t for t in await tickets_repo.customer_tickets(session, ticket.customer_id)
                       if t.id != ticket.id and may_see_ticket(viewer.actor, t)][:5],
    )


@router.get("/tickets/{ticket_ref}")
async def ticket_page(
    ticket_ref: str, request: Request, viewer: Viewer = Depends(page_viewer),
    session: AsyncSession = Depends(read_session),
) -> Response:
    ticket = await actions.visible_ticket(session, viewer.actor, ticket_number(ticket_ref))
    return await _page(request, viewer, session, ticket)


async def _act(request: Request, viewer: Viewer, session: AsyncSession, ticket_ref: str,
               build: actions.Step | None, anchor: str = "", key: str | None = None) -> Response:
    """Run one core operation from a posted form; on a refusal show the ticket again with the reason. A form
    whose key was written already is answered as done (see `bot.web.inbox.forms`)."""
    ticket_id = ticket_number(ticket_ref)
    try:
        if build is None:
            raise TicketError("That form was incomplete.", code="invalid")
        if key is None:
            await actions.change_ticket(request, session, viewer.actor, ticket_id, build)
        else:
            await forms.post_once(request, session, viewer.actor, ticket_id, build, key)
    except TicketError as exc:
        if exc.code == "not_found":
            raise
        ticket = await session.get(Ticket, ticket_id)
        if ticket is None:
            raise not_visible(ticket_id) from exc
        await session.refresh(ticket)
        return await _page(request, viewer, session, ticket, error=exc.message, status_code=error_status(exc))
    return RedirectResponse(f"/tickets/{ticket_id}{anchor}", status_code=303)


MAX_REPLY_CHARS = 100_000


def _text(form: dict, name: str, limit: int) -> str:
    """A form's text, cleaned; longer than `limit` is refused with its length (never cut without a word)."""
    text = clean_text(str(form.get(name, "")))[0].strip()
    if len(text) > limit:
        raise TicketError(f"That text is {len(text):,} characters; at most {limit:,} fit. Nothing was saved.",
                          code="invalid")
    return text


def _when(value: str) -> datetime | None:
    """A snooze time from a datetime-local field (UTC); empty or unreadable is no snooze."""
    try:
        when = datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when is not None and when.tzinfo is None else when


def _step(action: str, actor: Actor, form: dict) -> actions.Step | None:
    """The core operation a ticket page form asks for."""
    if action == "reply":
        text, name = _text(form, "text", MAX_REPLY_CHARS), _text(form, "canned", 64)
        line = str(form.get("attachment_line", ""))  # set by `_attach`, never by the browser
        if name and not text:
            return forms.canned_reply(actor, name, line)
        return actions.reply(actor, "\n".join(filter(None, [text, line])))
    if action == "transfer":
        queue = _text(form, "queue", 64)
        return actions.transfer(actor, queue) if queue else None
    if action == "notes":
        return actions.note(actor, _text(form, "text", MAX_REPLY_CHARS))
    if action == "close":
        return actions.close(actor, _text(form, "resolution", 2000))
    if action == "assign":
        raw = str(form.get("agent_id", ""))
        agent_id = int_or_none(raw)
        return None if raw and agent_id is None else actions.assign(actor, agent_id)
    if action == "tags":
        add, remove = _text(form, "add", 1000), _text(form, "remove", 1000)
        return actions.tag(actor, add=add.replace(",", " ").split(), remove=remove.replace(",", " ").split())
    if action == "priority":
        value = int_or_none(str(form.get("priority", "")))
        return actions.priority(actor, value) if value is not None else None
    steps = {"take": lambda: actions.take(actor), "reopen": lambda: actions.reopen(actor),
             "pending": lambda: actions.pending(actor, _when(str(form.get("until", ""))[:40])),
             "subject": lambda: actions.subject(actor, _text(form, "subject", 1000))}
    return steps[action]() if action in steps else None


ACTIONS = ("reply", "notes", "close", "assign", "take", "reopen", "pending", "priority", "tags", "subject",
           "transfer")


@router.post("/tickets/{ticket_ref}/{action}")
async def ticket_action(
    ticket_ref: str, action: str, request: Request, viewer: Viewer = Depends(current_viewer),
    session: AsyncSession = Depends(write_session),
) -> Response:
    if action not in ACTIONS:
        raise not_visible(ticket_number(ticket_ref))
    form = await check_csrf(request, viewer)
    anchor = {"notes": "#notes", "reply": delivery.QUEUED_ANCHOR}.get(action, "")
    try:
        if action == "reply":
            await _attach(request, form)
        step = _step(action, viewer.actor, form)
    except TicketError as refused:
        step = _refused(refused)
    return await _act(request, viewer, session, ticket_ref, step, anchor, forms.form_key_of(form))


async def _attach(request: Request, form: dict) -> None:
    """A reply's attached file, stored and named by its link at the end of the reply's text."""
    form.pop("attachment_line", None)
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return
    settings = request.app.state.ctx.settings
    stored = await uploads.store(settings.state_dir, upload)
    form["attachment_line"] = stored.line(settings.web.public_url or str(request.base_url))


def _refused(refused: TicketError) -> actions.Step:
    """A form the page could not read: the refusal is raised where `_act` shows it on the ticket page."""
    async def step(ticket: Ticket, ctx: object) -> actions.Decision:
        raise refused
    return step

"""rasa-sdk custom actions that let an existing Rasa assistant use tierdesk's CRM.

    python -m bot.assistant.rasa_actions --database-url URL [--schema S] [--host 127.0.0.1] [--port 5055]

(or `tierdesk actions`). Rasa calls POST /webhook with the tracker; each action reads the CRM through
`crm_store` repositories, and changes tickets only through the ticket core (`bot.tickets`), in one transaction of
its own, and answers with events:

- action_customer_lookup — slot `customer_ref` (id, e-mail, phone, @user), else an email/phone entity of the
  last message, else the sender id → sets `customer_id`, `customer_name`, `customer_tier` (None when unknown).
- action_customer_history — the last contacts of `customer_id` (looked up as above when unset), as text and as
  a custom payload.
- action_open_ticket — opens a ticket for the customer from the last message (intent, language slot) and hands
  it to a person the way any channel's ticket is routed (tier, queue, SLA, assignee, notices), or returns the one
  already active → sets `ticket_id` ("T-<n>") and `ticket_status`.
- action_ticket_status — slot `ticket_id` (or a "T-12"/"#12" in the message) → sets `ticket_status`; only the
  ticket's own customer learns it.

The actions hold only the database URL (they must pickle into Sanic's worker process); the engine, the settings
and the routing policy are made on first use inside the worker's event loop.
"""

from __future__ import annotations

import argparse
import logging
import re
from dataclasses import dataclass
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import ActionExecutor, CollectingDispatcher
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.routing.policy import RoutingPolicy
from bot.settings import Settings, get_settings
from bot.tickets import BOT, TicketError, lifecycle, parse_id, request_cause, ticket_work
from bot.tickets.handoff import Handoff, open_for_person
from crm_store.engine import make_engine, make_sessionmaker
from crm_store.errors import NotFound
from crm_store.models import Customer, Ticket
from crm_store.repositories import contacts as contacts_repo
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import tickets as tickets_repo
from crm_store.repositories.value import lock_for_writing

log = logging.getLogger(__name__)

RASA_CHANNEL = "rasa"
HISTORY_SIZE = 5
HANDOFF_REASON = "opened by a Rasa assistant"
_TICKET_REF = re.compile(r"(?:\bT-?|#)(\d+)\b|^\s*(\d+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Runtime:
    """What the actions need in the server process: sessions, the settings and the routing policy."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    settings: Settings
    policy: RoutingPolicy


_RUNTIMES: dict[tuple[str, str | None], Runtime] = {}


def _runtime(url: str, schema: str | None) -> Runtime:
    """One engine per process and database, made lazily in the running loop, with the settings tierdesk runs
    with (for webhooks and the routing policy) pointed at that database."""
    key = (url, schema)
    if key not in _RUNTIMES:
        from bot.app import load_policy

        settings = get_settings().model_copy(update={"database_url": url, "database_schema": schema})
        engine = make_engine(url, schema=schema)
        _RUNTIMES[key] = Runtime(engine, make_sessionmaker(engine), settings, load_policy(settings))
    return _RUNTIMES[key]


class CrmAction(Action):
    """An action bound to one CRM database (by URL, so it pickles)."""

    action_name = ""
    writes = False
    """Takes the write lock first (SQLite: a transaction that reads, then writes, must not lose its turn)."""

    def __init__(self, database_url: str, schema: str | None = None) -> None:
        self.database_url, self.schema = database_url, schema

    def name(self) -> str:
        return self.action_name

    @property
    def runtime(self) -> Runtime:
        return _runtime(self.database_url, self.schema)

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict]:
        try:
            async with self.runtime.sessions() as session, session.begin():
                if self.writes:
                    await lock_for_writing(session)
                return await self.act(session, dispatcher, tracker)
        except Exception:  # Rasa gets a polite answer, the log gets the details
            log.exception("%s failed", self.action_name)
            dispatcher.utter_message(text="Sorry, the customer records are not reachable right now.")
            return []

    async def act(self, session: AsyncSession, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[dict]:
        raise NotImplementedError


def _entity(tracker: Tracker, *names: str) -> str | None:
    for entity in tracker.latest_message.get("entities") or []:
        if entity.get("entity") in names and entity.get("value"):
            return str(entity["value"])
    return None


async def _customer(session: AsyncSession, tracker: Tracker) -> Customer | None:
    """The customer named by the `customer_id` / `customer_ref` slots, an e-mail/phone entity, or the sender.

    The sender id is matched only as an address on the input channel (never as a customer number), so a numeric
    chat id cannot land on another customer's record.
    """
    known = tracker.get_slot("customer_id")
    if known:
        try:
            return await customers_repo.get_customer(session, int(known))
        except (NotFound, ValueError):
            pass
    for query in (tracker.get_slot("customer_ref"), _entity(tracker, "email", "phone")):
        if query:
            customer = await customers_repo.find_customer(session, str(query))
            if customer is not None:
                return customer
    channel = tracker.get_latest_input_channel() or RASA_CHANNEL
    if tracker.sender_id:
        pair = (channel, str(tracker.sender_id))
        found = await customers_repo.customers_by_identity(session, [pair])
        if pair in found:
            return await customers_repo.get_customer(session, found[pair])
    return None


def _customer_slots(customer: Customer | None) -> list[dict]:
    if customer is None:
        return [SlotSet("customer_id", None), SlotSet("customer_name", None), SlotSet("customer_tier", None)]
    return [
        SlotSet("customer_id", str(customer.id)),
        SlotSet("customer_name", customer.name),
        SlotSet("customer_tier", customer.manual_tier or customer.tier),
    ]


class ActionCustomerLookup(CrmAction):
    action_name = "action_customer_lookup"

    async def act(self, session: AsyncSession, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[dict]:
        customer = await _customer(session, tracker)
        if customer is None:
            dispatcher.utter_message(text="I could not find you in our records.")
        else:
            dispatcher.utter_message(text=f"Found customer {customer.name or customer.id}.")
        return _customer_slots(customer)


class ActionCustomerHistory(CrmAction):
    action_name = "action_customer_history"

    async def act(self, session: AsyncSession, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[dict]:
        customer = await _customer(session, tracker)
        if customer is None:
            dispatcher.utter_message(text="I could not find you in our records.")
            return _customer_slots(None)
        contacts = await contacts_repo.customer_history(session, customer.id, limit=HISTORY_SIZE)
        items = [
            {
                "at": c.created_at.isoformat(),
                "channel": c.channel,
                "direction": c.direction,
                "ticket": f"T-{c.ticket_id}" if c.ticket_id else None,
                "text": c.text[:200],
            }
            for c in contacts
        ]
        if items:
            lines = [f"{i['at'][:16]} {i['channel']} {i['direction']}: {i['text'][:80]}" for i in items]
            dispatcher.utter_message(text="Your recent contacts:\n" + "\n".join(lines))
        else:
            dispatcher.utter_message(text="We have no earlier contacts from you.")
        dispatcher.utter_message(json_message={"customer_id": customer.id, "history": items})
        return _customer_slots(customer)


def _ticket_slots(ticket: Ticket | None) -> list[dict]:
    if ticket is None:
        return [SlotSet("ticket_id", None), SlotSet("ticket_status", None)]
    return [SlotSet("ticket_id", f"T-{ticket.id}"), SlotSet("ticket_status", ticket.status)]


class ActionOpenTicket(CrmAction):
    action_name = "action_open_ticket"
    writes = True

    async def act(self, session: AsyncSession, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[dict]:
        customer = await _customer(session, tracker)
        if customer is None:
            dispatcher.utter_message(text="I need to know who you are before I can open a ticket.")
            return _customer_slots(None)
        active = (await tickets_repo.active_tickets(session, [customer.id])).get(customer.id)
        if active is not None:
            dispatcher.utter_message(text=f"You already have ticket T-{active.id} open; we will continue there.")
            return [*_customer_slots(customer), *_ticket_slots(active)]
        ticket = await self.open_and_route(session, customer, tracker)
        dispatcher.utter_message(text=f"I have opened ticket T-{ticket.id}; a person from our team will reply.")
        return [*_customer_slots(customer), *_ticket_slots(ticket)]

    async def open_and_route(self, session: AsyncSession, customer: Customer, tracker: Tracker) -> Ticket:
        """Open the ticket and hand it to a person through the ticket core, as the dispatcher does for a message
        that needs one. The Rasa assistant answers the customer itself, so the core sends no acknowledgement."""
        rt = self.runtime
        message = tracker.latest_message or {}
        intent = ((message.get("intent") or {}).get("name") or "")[:64] or None
        text = message.get("text") or ""
        tier = customer.manual_tier or customer.tier
        language = tracker.get_slot("language") or customer.language
        subject = lifecycle.subject_of(text)
        handoff = Handoff(
            tier=tier, language=language, key_account_manager_id=customer.key_account_manager_id,
            customer_name=customer.name or f"C-{customer.id}", text=text, channel=RASA_CHANNEL, subject=subject,
            reason=HANDOFF_REASON, intent=intent, ack=False,
        )
        async with ticket_work(session, rt.settings, rt.policy) as ctx:
            ticket = await open_for_person(ctx, customer.id, handoff, BOT, cause=request_cause(), source="rasa")
        return ticket


def _ticket_ref(tracker: Tracker) -> str | None:
    """The ticket number the customer means: the `ticket_id` slot or entity, else a T-12 / #12 in the message."""
    ref = tracker.get_slot("ticket_id") or _entity(tracker, "ticket_id") or tracker.latest_message.get("text")
    match = _TICKET_REF.search(str(ref or ""))
    return (match.group(1) or match.group(2)) if match else None


class ActionTicketStatus(CrmAction):
    action_name = "action_ticket_status"

    async def act(self, session: AsyncSession, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[dict]:
        ref = _ticket_ref(tracker)
        if ref is None:
            dispatcher.utter_message(text="Which ticket? Please give its number, like T-12.")
            return [SlotSet("ticket_status", None)]
        try:
            ticket_id = parse_id(ref)
            ticket = await tickets_repo.get_ticket(session, ticket_id)
        except (TicketError, NotFound):
            dispatcher.utter_message(text=f"I could not find ticket T-{ref[:20]}.")
            return _ticket_slots(None)
        customer = await _customer(session, tracker)
        if customer is None or customer.id != ticket.customer_id:
            # Only the ticket's own customer learns its status; to anyone else it does not exist.
            dispatcher.utter_message(text=f"I could not find ticket T-{ticket_id}.")
            return _ticket_slots(None)
        dispatcher.utter_message(text=f"Ticket T-{ticket.id} is {ticket.status}.")
        return _ticket_slots(ticket)


ACTIONS = (ActionCustomerLookup, ActionCustomerHistory, ActionOpenTicket, ActionTicketStatus)


def make_executor(database_url: str, schema: str | None = None) -> ActionExecutor:
    executor = ActionExecutor()
    for action in ACTIONS:
        executor.register_action(action(database_url, schema))
    return executor


def serve(database_url: str, schema: str | None = None, *, host: str = "127.0.0.1", port: int = 5055) -> None:
    """Run rasa-sdk's own action server app (blocks) in this one process.

    rasa-sdk's `endpoint.run` forks Sanic workers and binds the host from $SANIC_HOST; one process with the
    same app is simpler to supervise and scale out behind a load balancer.
    """
    from rasa_sdk import endpoint

    app = endpoint.create_app(make_executor(database_url, schema))
    app.run(host=host, port=port, single_process=True, access_log=False, motd=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="tierdesk's rasa-sdk action server")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--schema", default=None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5055)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    serve(args.database_url, args.schema, host=args.host, port=args.port)


if __name__ == "__main__":
    main()

"""rasa-sdk custom actions that let an existing Rasa assistant use tierdesk's CRM.

    python -m nlu.actions --database-url URL [--schema S] [--host 127.0.0.1] [--port 5055]

(or `tierdesk actions`). Rasa calls POST /webhook with the tracker; each action reads/writes the CRM through
`crm_store` repositories in one transaction of its own and answers with events:

- action_customer_lookup — slot `customer_ref` (id, e-mail, phone, @user), else an email/phone entity of the
  last message, else the sender id → sets `customer_id`, `customer_name`, `customer_tier` (None when unknown).
- action_customer_history — the last contacts of `customer_id` (looked up as above when unset), as text and as
  a custom payload.
- action_open_ticket — opens a ticket for the customer from the last message (intent, language slot) or
  returns the one already active → sets `ticket_id` ("T-<n>") and `ticket_status`.
- action_ticket_status — slot `ticket_id` (or a "T-12"/"#12" in the message) → sets `ticket_status`.

The actions hold only the database URL (they must pickle into Sanic's worker process); the engine is made
on first use inside the worker's event loop.
"""

from __future__ import annotations

import argparse
import logging
import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import ActionExecutor, CollectingDispatcher
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from crm_store.engine import make_engine, make_sessionmaker
from crm_store.errors import NotFound
from crm_store.models import Customer
from crm_store.repositories import contacts as contacts_repo
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import tickets as tickets_repo

log = logging.getLogger(__name__)

RASA_CHANNEL = "rasa"
HISTORY_SIZE = 5
_TICKET_REF = re.compile(r"(?:\bT-|#)(\d{1,12})\b|^\s*(\d{1,12})\s*$", re.IGNORECASE)
_ENGINES: dict[tuple[str, str | None], tuple[AsyncEngine, async_sessionmaker[AsyncSession]]] = {}


def _sessions(url: str, schema: str | None) -> async_sessionmaker[AsyncSession]:
    """One engine per process and database, made lazily in the running loop."""
    key = (url, schema)
    if key not in _ENGINES:
        engine = make_engine(url, schema=schema)
        _ENGINES[key] = (engine, make_sessionmaker(engine))
    return _ENGINES[key][1]


class CrmAction(Action):
    """An action bound to one CRM database (by URL, so it pickles)."""

    action_name = ""

    def __init__(self, database_url: str, schema: str | None = None) -> None:
        self.database_url, self.schema = database_url, schema

    def name(self) -> str:
        return self.action_name

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict]:
        try:
            async with _sessions(self.database_url, self.schema)() as session, session.begin():
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


class ActionOpenTicket(CrmAction):
    action_name = "action_open_ticket"

    async def act(self, session: AsyncSession, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[dict]:
        customer = await _customer(session, tracker)
        if customer is None:
            dispatcher.utter_message(text="I need to know who you are before I can open a ticket.")
            return _customer_slots(None)
        active = (await tickets_repo.active_tickets(session, [customer.id])).get(customer.id)
        if active is not None:
            dispatcher.utter_message(text=f"You already have ticket T-{active.id} open; we will continue there.")
            return [*_customer_slots(customer), SlotSet("ticket_id", f"T-{active.id}"),
                    SlotSet("ticket_status", active.status)]
        message = tracker.latest_message or {}
        intent = (message.get("intent") or {}).get("name")
        tier = customer.manual_tier or customer.tier
        ticket = await tickets_repo.open_ticket(
            session,
            customer_id=customer.id,
            channel=RASA_CHANNEL,
            status="open",
            tier_at_open=tier,
            subject=(message.get("text") or "")[:255],
            intent=intent[:64] if intent else None,
            language=(tracker.get_slot("language") or customer.language),
            handoff_reason="opened by a Rasa assistant",
        )
        tickets_repo.add_event(session, ticket.id, "opened", actor="bot", source="rasa", intent=intent)
        dispatcher.utter_message(text=f"I have opened ticket T-{ticket.id}; a person from our team will reply.")
        return [*_customer_slots(customer), SlotSet("ticket_id", f"T-{ticket.id}"), SlotSet("ticket_status", "open")]


class ActionTicketStatus(CrmAction):
    action_name = "action_ticket_status"

    async def act(self, session: AsyncSession, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[dict]:
        ref = tracker.get_slot("ticket_id") or _entity(tracker, "ticket_id") or tracker.latest_message.get("text")
        match = _TICKET_REF.search(str(ref or ""))
        if not match:
            dispatcher.utter_message(text="Which ticket? Please give its number, like T-12.")
            return [SlotSet("ticket_status", None)]
        ticket_id = int(match.group(1) or match.group(2))
        try:
            ticket = await tickets_repo.get_ticket(session, ticket_id)
        except NotFound:
            dispatcher.utter_message(text=f"I could not find ticket T-{ticket_id}.")
            return [SlotSet("ticket_id", None), SlotSet("ticket_status", None)]
        customer = await _customer(session, tracker)
        if customer is not None and customer.id != ticket.customer_id:
            # Only the ticket's own customer learns its status.
            dispatcher.utter_message(text=f"I could not find ticket T-{ticket_id}.")
            return [SlotSet("ticket_id", None), SlotSet("ticket_status", None)]
        dispatcher.utter_message(text=f"Ticket T-{ticket.id} is {ticket.status}.")
        return [SlotSet("ticket_id", f"T-{ticket.id}"), SlotSet("ticket_status", ticket.status)]


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

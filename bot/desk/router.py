"""A small command router for the agent desk, shaped like aiogram's: routers own handlers registered with a
decorator, a `Desk` composes routers, and the cross-cutting steps live in one place instead of every handler:
the role check, the ticket a command names (parsed, looked up and checked for visibility before the handler
runs) and turning a refusal (`DeskError`, the ticket core's `TicketError`) into the agent's answer."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bot.core.messages import Button, InboundMessage
from bot.core.outbound import BatchContext
from bot.tickets import ALL_ROLES, Actor, Decision, TicketError, apply
from crm_store.models import Agent, Ticket

LOOKS_LIKE_TICKET = re.compile(r"^-?(?:T-?|#)?-?\d+$", re.IGNORECASE)
"""What an agent meant as a ticket number (the core's `parse_id` then says whether it is one)."""


class DeskError(Exception):
    """A problem with what the agent typed (bad arguments, an unknown name); never a traceback. Refusals by a
    ticket rule come from the core as `TicketError`."""


@dataclass
class DeskCall:
    """One agent command being handled: who, what they typed, and how to answer them."""

    ctx: BatchContext
    msg: InboundMessage
    agent: Agent
    contact_id: int
    command: str
    args: list[str]
    rest: str
    ticket_id: int | None = None
    desk: Desk | None = None
    _answers: int = field(default=0)

    def answer(self, text: str, buttons: tuple[Button, ...] = ()) -> None:
        """Reply to the agent where they wrote from (desk traffic, never a customer contact)."""
        self._answers += 1
        self.ctx.queue_message(
            key=f"{self.cause}:desk{self._answers}",
            channel=self.msg.channel,
            recipient=self.msg.sender,
            text=text,
            author="system",
            audience="desk",
            agent_id=self.agent.id,
            ticket_id=self.ticket_id,
            buttons=buttons,
        )

    @property
    def actor(self) -> Actor:
        return Actor.of_agent(self.agent)

    @property
    def cause(self) -> str:
        """What the ticket writer prefixes outbox keys with: a retried batch sends nothing twice."""
        return f"c{self.contact_id}"

    @property
    def is_supervisor(self) -> bool:
        return self.actor.is_supervisor

    async def apply(self, ticket: Ticket, decision: Decision, answer: str = "") -> Decision:
        """Write the core's decision through the one writer and tell the agent what happened."""
        await apply(self.ctx, ticket, decision, self.actor, cause=self.cause)
        self.ticket_id = ticket.id
        self.answer(decision.answer or answer, decision.buttons)
        return decision


Handler = Callable[..., Awaitable[None]]


@dataclass(frozen=True)
class Command:
    names: tuple[str, ...]
    handler: Handler
    roles: tuple[str, ...]
    usage: str
    help: str
    ticket: bool = False
    """The first argument names a ticket (or the topic / replied-to message does): the handler gets `ticket`."""


class DeskRouter:
    def __init__(self, name: str) -> None:
        self.name = name
        self.commands: list[Command] = []

    def command(self, *names: str, roles: tuple[str, ...] = ALL_ROLES, usage: str = "", help: str = "",
                ticket: bool = False) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.commands.append(Command(names, handler, roles, usage or f"/{names[0]}", help, ticket))
            return handler

        return register


def split_command(text: str) -> tuple[str, list[str], str]:
    """'/reply@bot 12 hello there' -> ('reply', ['12', 'hello', 'there'], '12 hello there')."""
    head, _, rest = text.strip().partition(" ")
    name = head[1:].split("@", 1)[0].lower()
    rest = rest.strip()
    return name, rest.split(), rest


def drop_first(call: DeskCall) -> None:
    """The ticket argument is used up: the handler sees what follows it."""
    call.args = call.args[1:]
    parts = call.rest.split(None, 1)
    call.rest = parts[1].strip() if len(parts) > 1 else ""


PlainText = Callable[[DeskCall], Awaitable[bool]]


class Desk:
    """All routers together; finds the command, checks the role, resolves its ticket, runs it, and turns
    refusals into answers."""

    def __init__(self) -> None:
        self.routers: list[DeskRouter] = []
        self.plain_text_handlers: list[PlainText] = []

    def include_router(self, router: DeskRouter) -> Desk:
        self.routers.append(router)
        return self

    def commands_for(self, role: str) -> list[Command]:
        return [c for r in self.routers for c in r.commands if role in c.roles]

    def find(self, name: str) -> Command | None:
        for router in self.routers:
            for command in router.commands:
                if name in command.names:
                    return command
        return None

    async def handle(self, ctx: BatchContext, msg: InboundMessage, agent: Agent, contact_id: int) -> int | None:
        text = msg.text.strip()
        name, args, rest = split_command(text) if text.startswith("/") else ("", text.split(), text)
        call = DeskCall(ctx, msg, agent, contact_id, name, args, rest, desk=self)
        try:
            await self._run(call)
        except DeskError as exc:
            call.answer(str(exc))
        except TicketError as exc:
            call.answer(exc.message, tuple(exc.offer))
        return call.ticket_id

    async def _run(self, call: DeskCall) -> None:
        if not call.command:
            for plain in self.plain_text_handlers:
                if await plain(call):
                    return
            call.answer("To answer a customer, use /reply <ticket> <text> or reply to the ticket's message. "
                        "/help lists what you can do.")
            return
        command = self.find(call.command)
        if command is None:
            call.answer(f"Unknown command /{call.command}. /help lists what you can do.")
            return
        if call.agent.role not in command.roles:
            call.answer(f"/{call.command} is for {' and '.join(r + 's' for r in command.roles)} only.")
            return
        extras: dict[str, Any] = {}
        if command.ticket:
            extras["ticket"] = await self._ticket_of(call, command)
        elif not call.args and "<customer|T-ticket>" in command.usage:
            # In a ticket's topic, or replying to its message, "/history" means the ticket's customer.
            from bot.desk.access import context_ticket

            if (ticket := await context_ticket(call)) is not None:
                call.args, call.rest = [f"T-{ticket.id}"], f"T-{ticket.id}"
        await command.handler(call, **extras)

    @staticmethod
    async def _ticket_of(call: DeskCall, command: Command) -> Ticket:
        """The ticket a command is about: its first argument when that looks like a ticket number, else the
        ticket of the forum topic or of the message being replied to ("/note called back" there means
        "/note T-12 called back"). Numbers go through the core's `parse_id` and visibility rule."""
        from bot.desk.access import context_ticket, visible_ticket

        if call.args and LOOKS_LIKE_TICKET.match(call.args[0]):
            ticket = await visible_ticket(call, call.args[0])
            drop_first(call)
            return ticket
        ticket = await context_ticket(call)
        if ticket is not None:
            return ticket
        if not call.args:
            raise DeskError(f"Usage: {command.usage}")
        ticket = await visible_ticket(call, call.args[0])  # "abc": the core says what a ticket number is
        drop_first(call)
        return ticket

    @classmethod
    def default(cls) -> Desk:
        from bot.desk import builtin_plain_text_handlers, builtin_routers

        desk = cls()
        for router in builtin_routers():
            desk.include_router(router)
        desk.plain_text_handlers.extend(builtin_plain_text_handlers())
        return desk

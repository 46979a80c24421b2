"""A small command router for the agent desk, shaped like aiogram's: routers own handlers registered with a
decorator, a `Desk` composes routers, and the role check lives in one place instead of every handler."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.core.messages import Button, InboundMessage
from bot.core.outbound import BatchContext
from crm_store.models import Agent

ALL_ROLES = ("agent", "supervisor", "admin")
SUPERVISORS = ("supervisor", "admin")
TICKET_REF = re.compile(r"^(?:T-?|#)?(\d+)$", re.IGNORECASE)


class DeskError(Exception):
    """A problem the agent should read (bad arguments, no such ticket, not allowed); never a traceback."""


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
        """Reply to the agent where they wrote from."""
        self._answers += 1
        self.ctx.queue_message(
            key=f"c{self.contact_id}:desk{self._answers}",
            channel=self.msg.channel,
            recipient=self.msg.sender,
            text=text,
            author="system",
            agent_id=self.agent.id,
            ticket_id=self.ticket_id,
            buttons=buttons,
        )

    @property
    def is_supervisor(self) -> bool:
        return self.agent.role in SUPERVISORS


Handler = Callable[[DeskCall], Awaitable[None]]


@dataclass(frozen=True)
class Command:
    names: tuple[str, ...]
    handler: Handler
    roles: tuple[str, ...]
    usage: str
    help: str


class DeskRouter:
    def __init__(self, name: str) -> None:
        self.name = name
        self.commands: list[Command] = []

    def command(self, *names: str, roles: tuple[str, ...] = ALL_ROLES, usage: str = "", help: str = ""):
        def register(handler: Handler) -> Handler:
            self.commands.append(Command(names, handler, roles, usage or f"/{names[0]}", help))
            return handler

        return register


def parse_ticket_ref(text: str) -> int:
    match = TICKET_REF.match(text.strip())
    if not match:
        raise DeskError(f"{text!r} is not a ticket number (write 12 or T-12)")
    return int(match.group(1))


def split_command(text: str) -> tuple[str, list[str], str]:
    """'/reply@bot 12 hello there' -> ('reply', ['12', 'hello', 'there'], '12 hello there')."""
    head, _, rest = text.strip().partition(" ")
    name = head[1:].split("@", 1)[0].lower()
    rest = rest.strip()
    return name, rest.split(), rest


PlainText = Callable[[DeskCall], Awaitable[bool]]


class Desk:
    """All routers together; finds the command, checks the role, runs it, and turns errors into answers."""

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
            if not name:
                for plain in self.plain_text_handlers:
                    if await plain(call):
                        return call.ticket_id
                call.answer(
                    "To answer a customer, use /reply <ticket> <text> or reply to the ticket's message. "
                    "/help lists what you can do."
                )
                return None
            command = self.find(name)
            if command is None:
                call.answer(f"Unknown command /{name}. /help lists what you can do.")
                return None
            if agent.role not in command.roles:
                call.answer(f"/{name} is for {' and '.join(r + 's' for r in command.roles)} only.")
                return None
            await self._ticket_from_context(call, command)
            await command.handler(call)
        except DeskError as exc:
            call.answer(str(exc))
        return call.ticket_id

    @staticmethod
    async def _ticket_from_context(call: DeskCall, command: Command) -> None:
        """In a ticket's forum topic, or replying to a ticket's message, the ticket goes without saying:
        "/note called back" means "/note T-12 called back"."""
        first = command.usage.split()[1:2]
        if first not in (["<ticket>"], ["<customer|T-ticket>"]) or (call.args and TICKET_REF.match(call.args[0])):
            return
        from bot.desk.relay import replied_ticket, topic_ticket

        ticket = await topic_ticket(call) or await replied_ticket(call)
        if ticket is not None:
            call.args.insert(0, f"T-{ticket.id}")
            call.rest = f"T-{ticket.id} {call.rest}".strip()

    @classmethod
    def default(cls) -> Desk:
        from bot.desk import builtin_plain_text_handlers, builtin_routers

        desk = cls()
        for router in builtin_routers():
            desk.include_router(router)
        desk.plain_text_handlers.extend(builtin_plain_text_handlers())
        return desk

"""/canned: the canned responses (`crm_store.repositories.canned`, shared with the web inbox). Alone it lists
them; with a name it sends that snippet to the ticket, in the customer's language when it has one."""

from __future__ import annotations

from bot.core.messages import Button
from bot.desk.access import context_ticket, visible_ticket
from bot.desk.router import LOOKS_LIKE_TICKET, DeskCall, DeskError, DeskRouter
from bot.desk.tickets import send_reply
from crm_store.repositories import canned as canned_repo
from crm_store.repositories import customers as customers_repo

router = DeskRouter(__name__)
LIST_BUTTONS = 6


async def _list(call: DeskCall) -> None:
    versions = await canned_repo.list_all(call.ctx.session)
    if not versions:
        call.answer("No canned responses yet (an admin adds them with `tierdesk canned add`).")
        return
    names: dict[str, list[str]] = {}
    for v in versions:
        names.setdefault(v.name, []).append(v.language or "default")
    ticket = await context_ticket(call)
    lines = ["Canned responses (send with /canned <name> [ticket]):"]
    for name, languages in names.items():
        first = next(v.text for v in versions if v.name == name)
        lines.append(f"{name} ({', '.join(languages)}): {first[:70]}")
    buttons = ()
    if ticket is not None:  # in a ticket's topic or replying to its message: one press sends
        buttons = tuple(Button(n, f"/canned {n} {ticket.id}") for n in list(names)[:LIST_BUTTONS])
    call.answer("\n".join(lines), buttons)


@router.command(
    "canned",
    "cr",
    usage="/canned [name] [ticket]",
    help="list the canned responses; with a name: send it (in the customer's language)",
)
async def canned(call: DeskCall) -> None:
    if not call.args:
        await _list(call)
        return
    args = list(call.args[:2])
    if len(args) == 2 and LOOKS_LIKE_TICKET.match(args[0]) and not LOOKS_LIKE_TICKET.match(args[1]):
        args.reverse()  # "/canned 12 hours" as well as "/canned hours 12"
    name = args[0]
    ticket = await visible_ticket(call, args[1]) if len(args) > 1 else await context_ticket(call)
    if ticket is None:
        raise DeskError("Which ticket? /canned <name> <ticket>, or reply to the ticket's message.")
    customer = await customers_repo.get_customer(call.ctx.session, ticket.customer_id)
    snippet = await canned_repo.pick(call.ctx.session, name, customer.language)
    if snippet is None:
        raise DeskError(f"No canned response {name[:40]!r}; /canned lists them.")
    await send_reply(call, ticket, snippet.text)

"""The agent desk: commands agents and supervisors type in any chat channel (Telegram, console)."""

from __future__ import annotations

from bot.desk.router import Desk, DeskCall, DeskError, DeskRouter


def builtin_routers() -> list[DeskRouter]:
    """Every command family, in the order /help lists them."""
    from bot.desk import atrisk, canned, find, history, queue, supervisor, tickets, workflow
    from bot.desk import help as help_cmd

    return [queue.router, find.router, tickets.router, canned.router, workflow.router, history.router,
            supervisor.router, atrisk.router, help_cmd.router]


def builtin_plain_text_handlers() -> list:
    """What an agent's message without a command may mean, tried in order (a reply to a ticket message, ...)."""
    from bot.desk.relay import relay_plain_reply

    return [relay_plain_reply]


__all__ = ["Desk", "DeskCall", "DeskError", "DeskRouter", "builtin_plain_text_handlers", "builtin_routers"]

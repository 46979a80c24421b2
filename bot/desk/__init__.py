"""The agent desk: commands agents and supervisors type in any chat channel (Telegram, console)."""

from __future__ import annotations

from bot.desk.router import Desk, DeskCall, DeskError, DeskRouter


def builtin_routers() -> list[DeskRouter]:
    """Every command family, in the order /help lists them."""
    from bot.desk import help as help_cmd
    from bot.desk import history, tickets

    return [tickets.router, history.router, help_cmd.router]


__all__ = ["Desk", "DeskCall", "DeskError", "DeskRouter", "builtin_routers"]

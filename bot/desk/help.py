"""/help lists only what the caller's role may do."""

from __future__ import annotations

from bot.desk.router import DeskCall, DeskRouter

router = DeskRouter(__name__)


@router.command("help", "start", usage="/help", help="this list")
async def show_help(call: DeskCall) -> None:
    assert call.desk is not None
    lines = [f"Commands for {call.agent.role}s:"]
    for command in call.desk.commands_for(call.agent.role):
        lines.append(f"{command.usage} — {command.help}")
    call.answer("\n".join(lines))

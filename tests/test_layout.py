"""The layout rules newcomers rely on: small modules and functions, and every ticket state change in the ticket
core (bot/tickets) or the store (crm_store) — nowhere else."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "channels", "crm_store", "nlu")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
TICKET_STATE = {"status", "assignee_id", "csat", "first_responded_at", "solved_at", "closed_at", "snoozed_until",
                "escalation_level", "sla_breached_at", "handoff_reason", "queue", "priority", "tier_at_open"}
"""Fields only the ticket core decides."""
STATE_WRITERS = {"note_assignment"}
"""Calls that change an agent's load outside the writer."""
CORE = ("bot/tickets/",)


def sources() -> list[Path]:
    return [p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py")) if "migrations" not in p.parts]


def rel(p: Path) -> str:
    return p.relative_to(ROOT).as_posix()


def test_modules_are_small():
    big = {rel(p): n for p in sources() if (n := p.read_text().count("\n")) > MAX_MODULE_LINES}
    assert not big, f"modules over {MAX_MODULE_LINES} lines: {big}"


def test_functions_are_small():
    long = []
    for p in sources():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if (n := node.end_lineno - node.lineno + 1) > MAX_FUNCTION_LINES:
                    long.append(f"{rel(p)}:{node.name} ({n} lines)")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def _owner(node: ast.AST) -> str:
    return ast.unparse(node).lower()


NOT_TICKETS = ("agent", "claim", "session", "item", "run", "entry")
"""Names of other rows with a status of their own (an agent's, an identity claim's, an outbox item's, ...)."""


def _other_row(owner: ast.AST) -> bool:
    name = _owner(owner)
    return name in ("self", "cls") or any(word in name for word in NOT_TICKETS)


def ticket_state_changes(tree: ast.AST) -> list[str]:
    """Assignments to a ticket's state fields, and calls of the store's state writers, in one module."""
    found = []
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AugAssign | ast.AnnAssign) else []
        for target in targets:
            for t in target.elts if isinstance(target, ast.Tuple) else [target]:
                if isinstance(t, ast.Attribute) and t.attr in TICKET_STATE and not _other_row(t.value):
                    found.append(f"line {t.lineno}: {ast.unparse(t)} =")
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in STATE_WRITERS:
                found.append(f"line {node.lineno}: {name}(...)")
    return found


def test_ticket_state_changes_only_in_the_ticket_core():
    outside = {}
    for p in sources():
        path = rel(p)
        if path.startswith(CORE) or path.startswith("crm_store/"):
            continue
        if hits := ticket_state_changes(ast.parse(p.read_text())):
            outside[path] = hits
    assert not outside, f"ticket state changed outside bot/tickets: {outside}"


def test_the_check_finds_a_state_change():
    sample = ("ticket.status = 'closed'\nt.assignee_id, x = 1, 2\nawait ctx.note_assignment(1)\n"
              "agent.status = 'away'\nclaim.status = 'verified'")
    assert ticket_state_changes(ast.parse(sample)) == [
        "line 1: ticket.status =", "line 2: t.assignee_id =", "line 3: note_assignment(...)"]


def test_no_module_left_flat_in_bot():
    flat = sorted(p.name for p in (ROOT / "bot").glob("*.py") if p.name != "__init__.py")
    assert flat == ["app.py", "runner.py", "settings.py"], flat

"""`tierdesk demo`: a whole conversation on a fresh SQLite file, no tokens, no servers.

Two customers on two channels (Telegram and email, played by in-memory channels); Anna is a known VIP and is
recognised on both; the bot answers what it can; her question goes to her key-account manager, who reads her
history across channels and replies from the console; the reply reaches her on the channel she last used.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel

from bot.app import App
from bot.cli.log import contact_table
from bot.settings import Settings
from channels.memory import MemoryChannel
from crm_store.repositories import agents as agents_repo
from crm_store.repositories import contacts as contacts_repo
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import value as value_repo

console = Console(width=max(Console().width, 150))
COLOURS = {"telegram": "cyan", "email": "magenta", "console": "green"}


class Stage:
    """Plays the people and prints everything that crosses a channel, in order."""

    def __init__(self, app: App, channels: dict[str, MemoryChannel]) -> None:
        self.app = app
        self.channels = channels
        self.printed = {name: 0 for name in channels}

    async def say(self, channel: str, sender: str, who: str, text: str, **kwargs) -> int | None:
        colour = COLOURS.get(channel, "white")
        console.print(f"[bold {colour}]{escape(who)}[/] [dim]via {channel}[/]: {escape(text)}")
        result = await self.channels[channel].receive(sender, text, sender_name=who, **kwargs)
        await self.settle()
        return result.ticket_id

    async def settle(self) -> None:
        await self.app.outbox.drain()
        for name, channel in self.channels.items():
            for msg in channel.sent[self.printed[name] :]:
                author = msg.meta_value("author", "bot")
                label = {"agent": "Alice (agent)", "bot": "tierdesk bot", "system": "tierdesk desk"}.get(author, author)
                body = escape(msg.text_with_buttons()).replace("\n", "\n    ")
                subject = f" [dim]«{escape(msg.subject)}»[/]" if msg.subject else ""
                console.print(f"  [bold]{label}[/] → [dim]{name}:{msg.recipient}[/]{subject}\n    {body}")
            self.printed[name] = len(channel.sent)


async def run_demo(db_path: Path) -> int:
    db_path.unlink(missing_ok=True)  # noqa: ASYNC240 - once, before anything runs
    settings = Settings(database_url=f"sqlite+aiosqlite:///{db_path}")
    channels = {name: MemoryChannel(name) for name in ("telegram", "email", "console")}
    console.print(Panel.fit(f"tierdesk demo · a fresh SQLite store at {db_path}", style="bold"))
    async with App(settings, channels=list(channels.values())) as app:
        async with app.sessions() as session, session.begin():
            alice = await agents_repo.add_agent(
                session, name="Alice", role="agent", addresses={"console": "alice"}, languages=["en", "ru"], capacity=10
            )
            anna = await customers_repo.create_customer(
                session,
                name="Anna Petrova",
                external_ref="CUST-1001",
                tier="VIP",
                key_account_manager_id=alice.id,
                tier_reason="VIP: top value cluster (5 orders, 12,400.00 spent, last 4 days ago)",
                identities={"email": "anna@example.com", "telegram": "5001"},
                lifecycle_stage="customer",
            )
            today = datetime.now(UTC)
            await value_repo.insert_value_events(
                session,
                [
                    {
                        "customer_id": anna.id,
                        "amount": Decimal(amount),
                        "currency": "EUR",
                        "referrals": 0,
                        "loyalty_points": 0,
                        "occurred_at": today - timedelta(days=days),
                        "source_key": f"demo-{days}",
                    }
                    for days, amount in (
                        (4, "3100.00"),
                        (35, "2900.00"),
                        (80, "2400.00"),
                        (140, "2200.00"),
                        (200, "1800.00"),
                    )
                ],
            )
        stage = Stage(app, channels)
        console.rule("A new customer asks a common question")
        await stage.say("telegram", "5002", "Bob", "Hi! What are your opening hours?")
        console.rule("A VIP writes by email; the bot cannot answer this, so a person takes it")
        ticket = await stage.say(
            "email",
            "anna@example.com",
            "Anna Petrova",
            "Hello, the parcel for order A-1042 arrived damaged and I was charged twice. "
            "This is really disappointing, please sort it out.",
            external_id="<a1042-1@example.com>",
            meta={"subject": "Damaged parcel, charged twice (A-1042)"},
        )
        console.rule("Anna follows up on Telegram: same customer, same ticket")
        await stage.say(
            "telegram", "5001", "Anna Petrova", "Hi, it's Anna again, writing from Telegram. Any news on A-1042?"
        )
        console.rule("Her key-account manager looks her up and answers from the console")
        await stage.say("console", "alice", "Alice (agent)", "/customer CUST-1001")
        await stage.say("console", "alice", "Alice (agent)", "/history CUST-1001 6")
        await stage.say(
            "console",
            "alice",
            "Alice (agent)",
            f"/reply T-{ticket} Hi Anna, I refunded the double charge and a replacement for A-1042 ships today. Sorry!",
        )
        await stage.say("telegram", "5001", "Anna Petrova", "Got it, thank you!")
        await stage.say("console", "alice", "Alice (agent)", f"/close T-{ticket} parcel delivered")
        await stage.say("telegram", "5001", "Anna Petrova", "5")
        async with app.sessions() as session:
            rows = await contacts_repo.recent_contacts(session, limit=100)
        console.print(contact_table(list(reversed(rows)), title="The contact log: customer contacts, each once"))
        failed = app.outbox.failed
    _finished(console, db_path)
    return 1 if failed else 0


def _finished(console: Console, db_path: Path) -> None:
    console.print(
        f"[bold green]Demo finished.[/] The store is kept at {db_path}; try "
        f"`TIERDESK_DATABASE_URL=sqlite+aiosqlite:///{db_path} tierdesk log show` (`--include-desk` adds the "
        f"agents' commands and the desk's notices)."
    )


def main(db: Path | None = None) -> int:
    path = db or Path(tempfile.mkdtemp(prefix="tierdesk-demo-")) / "demo.db"
    return asyncio.run(run_demo(path))

"""IMAP intake: a mailbox of mails from many senders, taken in through the real email channel from a real IMAP
server (Debian's dovecot, as the tests run it) into the App, NLU on, against a baseline measured in the same run:
the same mails parsed by the same channel and handed to the same App one at a time, each waited for before the
next (how IMAP intake delivered a fetched batch before it went in side by side).

    python bench/email_intake.py                      # 1,000 mails from 200 senders, SQLite
    python bench/email_intake.py --db postgresql -n 2000 --senders 400

Timed: from the channel's start (or the first mail handed over) until every mail is stored. Replies are not sent
(no SMTP relay is configured); they wait in the outbox. Target: ≥ 3 × the one-at-a-time baseline's msgs/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from bench.ingest import bench_settings, drop_database, fresh_database, prepare_model
from bench.pg import databases
from bench.telegram_intake import until_stored
from bot.app import App
from channels.email import EmailChannel
from tests.e2e.mailservers import Dovecot

TEXTS = ("Where is my order {n}?", "What are your opening hours?", "my parcel {n} arrived damaged", "hi")


def mail(n: int, sender: str) -> bytes:
    return (
        f"From: <{sender}>\r\nTo: support@desk.test\r\nSubject: question {n}\r\nMessage-ID: <q{n}@example.org>\r\n"
        f"Date: Mon, 03 Mar 2025 10:00:00 +0000\r\n\r\n{TEXTS[n % len(TEXTS)].format(n=n)}\r\n"
    ).encode()


async def one_run(kind: str, server: Dovecot, args: argparse.Namespace, *, imap: bool) -> float:
    url, schema, drop = await fresh_database(kind)
    files = tempfile.mkdtemp()
    try:
        options = server.settings() if imap else {}
        channel = EmailChannel(address="support@desk.test", attachment_dir=files, imap_idle=False, **options)
        app = App(bench_settings(url, schema, args.model_dir), channels=[channel])
        mails = [mail(n, f"c{n % args.senders}@example.org") for n in range(args.n)]
        if imap:
            for raw in mails:
                await server.append(raw)
        started = time.perf_counter()
        await app.start()
        try:
            if not imap:
                for raw in mails:
                    await app.deliver(channel.parse(raw))
            await until_stored(app, args.n)
            return args.n / (time.perf_counter() - started)
        finally:
            await app.stop()
    finally:
        await drop_database(drop)


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=1_000)
    p.add_argument("--senders", type=int, default=200)
    p.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="sqlite")
    p.add_argument("--model-dir", type=Path, default=Path(tempfile.gettempdir()) / "tierdesk-bench-nlu")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    await prepare_model(args.model_dir)  # trained (or loaded) before any clock starts
    results = {}
    for kind in await databases(args.db):
        server = Dovecot.start()
        try:
            baseline = await one_run(kind, server, args, imap=False)
            batched = await one_run(kind, server, args, imap=True)
        finally:
            server.stop()
        results[kind] = {"imap_msgs_per_s": batched, "one_at_a_time_msgs_per_s": baseline, "ratio": batched / baseline}
    if args.json:
        print(json.dumps(results))
        return
    for kind, r in results.items():
        print(
            f"{kind:>11}: IMAP intake {r['imap_msgs_per_s']:.0f} stored msgs/s, one mail at a time "
            f"{r['one_at_a_time_msgs_per_s']:.0f} msgs/s → ratio {r['ratio']:.2f} ({args.n} mails, "
            f"{args.senders} senders)"
        )


if __name__ == "__main__":
    asyncio.run(main())

"""Mail with a large attachment: how long the event loop stalls while `EmailChannel.send` encodes and sends it to
a loopback aiosmtpd relay (a process of its own), against a baseline measured in the same run (the same mail
built and flattened on the loop, as a plain `aiosmtplib.send(EmailMessage)` would).

    python bench/email_attachment.py                 # 10 MiB, 3 runs
    python bench/email_attachment.py --mib 5 --runs 5 --json

A ticker on the loop wakes every 5 ms; its longest late wake-up is the stall every other conversation sees.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiosmtplib

from bot.core.messages import OutboundFile, OutboundMessage
from channels.email import EmailChannel
from channels.email.outbound import build_email

TICK_S = 0.005


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def worst_stall(send) -> tuple[float, float]:
    """(the longest the loop was late, the send's total seconds) while `send()` runs."""
    worst, done = 0.0, asyncio.Event()

    async def tick() -> None:
        nonlocal worst
        while not done.is_set():
            start = time.perf_counter()
            await asyncio.sleep(TICK_S)
            worst = max(worst, time.perf_counter() - start - TICK_S)

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.02)
    began = time.perf_counter()
    await send()
    took = time.perf_counter() - began
    done.set()
    await ticker
    return worst, took


async def main(mib: int, runs: int) -> dict:
    port = free_port()
    # The relay runs in a process of its own, so its work on the 13 MiB it receives is not counted as ours.
    relay = subprocess.Popen(  # noqa: ASYNC220 - started once, before anything is measured
        [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Sink", "-s", "0"]
    )
    for _ in range(100):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        await asyncio.sleep(0.05)
    smtp = {"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_starttls": False, "smtp_tls": False}
    channel = EmailChannel(address="support@desk.test", attachment_dir="/tmp", **smtp)
    data = os.urandom(mib * 1024 * 1024)
    message = OutboundMessage(
        channel="email",
        recipient="mei@example.org",
        text="Your file.",
        ticket_id=1,
        idempotency_key="bench",
        files=(OutboundFile("big.pdf", "application/pdf", data),),
    )

    async def inline() -> None:
        mail = build_email(message, from_address="support@desk.test")
        await aiosmtplib.send(mail, hostname="127.0.0.1", port=port, start_tls=False, use_tls=False)

    results: dict[str, list[tuple[float, float]]] = {"baseline_on_loop": [], "email_channel": []}
    try:
        for _ in range(runs):
            results["baseline_on_loop"].append(await worst_stall(inline))
            results["email_channel"].append(await worst_stall(lambda: channel.send(message)))
    finally:
        relay.terminate()
        relay.wait(5)
    return {
        name: {
            "stall_ms_median": round(statistics.median(s for s, _ in rows) * 1000, 1),
            "stall_ms_max": round(max(s for s, _ in rows) * 1000, 1),
            "send_s_median": round(statistics.median(t for _, t in rows), 2),
        }
        for name, rows in results.items()
    } | {"mib": mib, "runs": runs}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = asyncio.run(main(args.mib, args.runs))
    if args.json:
        print(json.dumps(figures))
    else:
        for name in ("baseline_on_loop", "email_channel"):
            f = figures[name]
            print(
                f"{name:18} loop stall median {f['stall_ms_median']:7.1f} ms, max {f['stall_ms_max']:7.1f} ms; "
                f"send {f['send_s_median']:.2f} s  ({args.mib} MiB, {args.runs} runs)"
            )

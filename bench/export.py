"""Export benchmark: `tierdesk log export` of a small and a large contact log, for rows/s and peak memory, against
a raw dump of the same columns measured in the same run (the driver's cursor straight into csv, no ORM, no
rows-as-dicts).

    python bench/export.py                          # SQLite and, if reachable, PostgreSQL
    python bench/export.py --db sqlite --sizes 200000 2000000 --json

Each export runs as the real command in a child process (`tierdesk log export --format csv --quiet`), which
reports its own peak resident size (VmHWM) as it exits. Target: memory stays flat from the small log to the large
one (the export streams keyset pages of 5,000 rows, and on SQLite reads through the page cache rather than a
memory map that would count the file's pages as the process's); rows/s is reported beside the raw dump's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert

from bench.ingest import _drop, fresh_database
from bench.pg import databases
from crm_store.engine import make_engine
from crm_store.models import Contact, now

CHANNELS = ("telegram", "email", "webchat")

PEAK = "import atexit, sys; atexit.register(lambda: print('VmHWM', open('/proc/self/status').read()" \
       ".split('VmHWM:')[1].split()[0], file=sys.stderr))\n"
"""Printed by each child as it exits: its own peak resident size in KiB. (ru_maxrss would count the pages of
the parent it was forked from.)"""

RAW_DUMP = PEAK + r"""
import asyncio, csv
url, schema, out = sys.argv[1], sys.argv[2] or None, sys.argv[3]
COLS = "id, channel, external_id, direction, author, address, customer_id, agent_id, ticket_id, text, nlu, created_at"
ROWS = "FROM contacts WHERE NOT desk ORDER BY id"  # the export's rows: customer contacts
def sqlite_dump():
    import sqlite3
    conn = sqlite3.connect(url.split("///", 1)[1])
    cur = conn.execute(f"SELECT {COLS} {ROWS}")
    with open(out, "w", newline="") as fh:
        w = csv.writer(fh)
        while rows := cur.fetchmany(5000):
            w.writerows(rows)
async def pg_dump():
    import asyncpg
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    if schema:
        await conn.execute(f'SET search_path TO "{schema}"')
    with open(out, "w", newline="") as fh:
        w = csv.writer(fh)
        async with conn.transaction():
            cur = await conn.cursor(f"SELECT {COLS} {ROWS}")
            while rows := await cur.fetch(5000):
                w.writerows(rows)
    await conn.close()
if url.startswith("sqlite"):
    sqlite_dump()
else:
    asyncio.run(pg_dump())
"""


async def seed(url: str, schema: str | None, n: int) -> None:
    """`n` contacts of realistic length, in plain batched inserts."""
    engine = make_engine(url, schema=schema)
    at = now()
    try:
        for start in range(0, n, 5000):
            rows = [
                {"channel": CHANNELS[i % 3], "external_id": f"m{i}", "direction": "in" if i % 2 else "out",
                 "author": "customer" if i % 2 else "bot", "address": f"cust{i % 50000}",
                 "text": f"message {i}: where is my order {i * 7919 % 1000003}, it was due last week",
                 "attachments": [], "nlu": {"intent": "order_status"} if i % 3 == 0 else None,
                 "created_at": at, "logged_at": at, "truncated": False}
                for i in range(start, min(start + 5000, n))
            ]
            async with engine.begin() as conn:
                await conn.execute(insert(Contact.__table__), rows)
    finally:
        await engine.dispose()


def run_child(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Seconds and peak resident KiB of one child process (which prints its peak as it exits, see PEAK)."""
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - t0
    peaks = [line.split()[1] for line in proc.stderr.splitlines() if line.startswith("VmHWM ")]
    if proc.returncode != 0 or not peaks:
        raise SystemExit(f"{argv[:3]} failed: {proc.stderr[-2000:]}")
    return elapsed, int(peaks[-1])


def line_count(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(1 for _ in fh)


async def one_size(kind: str, n: int) -> dict:
    url, schema, drop = await fresh_database(kind)
    cleanup: list[Path] = []
    try:
        await seed(url, schema, n)
        out = Path(tempfile.mkdtemp())
        cleanup.append(out)
        env = {**os.environ, "TIERDESK_DATABASE_URL": url, "TIERDESK_DATABASE_SCHEMA": schema or ""}
        if not schema:
            env.pop("TIERDESK_DATABASE_SCHEMA")
        cli = [sys.executable, "-c", PEAK + "from bot.cli.main import app; app()"]
        export_s, export_kib = run_child(
            [*cli, "log", "export", "--format", "csv", "--quiet", "--out", str(out / "log.csv")], env)
        raw_s, raw_kib = run_child([sys.executable, "-c", RAW_DUMP, url, schema or "", str(out / "raw.csv")], env)
        exported = line_count(out / "log.csv") - 1  # the header
        if exported != n:
            raise SystemExit(f"exported {exported} of {n} contacts")
        return {"rows": n, "export_rows_per_s": round(n / export_s), "export_peak_mib": round(export_kib / 1024, 1),
                "raw_rows_per_s": round(n / raw_s), "raw_peak_mib": round(raw_kib / 1024, 1),
                "ratio": round(raw_s / export_s, 3)}
    finally:
        for folder in cleanup:
            shutil.rmtree(folder, ignore_errors=True)
        await _drop(drop)


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    kinds = await databases(args.db)
    out = {}
    for kind in kinds:
        rows = [await one_size(kind, n) for n in args.sizes]
        growth = rows[-1]["export_peak_mib"] / rows[0]["export_peak_mib"]
        out[kind] = {"sizes": rows, "peak_growth": round(growth, 3)}
    if args.json:
        print(json.dumps(out))
        return
    for kind, res in out.items():
        print(f"{kind}:")
        for r in res["sizes"]:
            print(f"  {r['rows']:>10,} rows  export {r['export_rows_per_s']:>8,} rows/s, "
                  f"peak {r['export_peak_mib']} MiB   raw dump {r['raw_rows_per_s']:>8,} rows/s, "
                  f"peak {r['raw_peak_mib']} MiB   ratio {r['ratio']}")
        print(f"  peak memory, largest / smallest log: x{res['peak_growth']}")


if __name__ == "__main__":
    asyncio.run(main())

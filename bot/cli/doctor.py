"""`tierdesk doctor`: check a deployment's configuration and services, and say what is wrong and how to fix it.

Every check is a plain async function returning a `Check`; one that cannot even run (a bad URL, a refused
connection) is a failed check with its reason, never a traceback. The same checks stop `tierdesk run` early
(`startup_problems`), so a process never runs quietly without its routing policy or its classifier.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.settings import CONFIG_DIR, ConfigProblem, Settings

TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


async def check_config(settings: Settings) -> Check:
    if not CONFIG_DIR.is_dir():
        return Check(
            "config",
            False,
            f"{CONFIG_DIR} is not a folder",
            "set TIERDESK_CONFIG_DIR to a folder written by `tierdesk init DIR`",
        )
    missing = [n for n in ("tierdesk.toml",) if not (CONFIG_DIR / n).is_file()]
    if missing:
        return Check(
            "config", False, f"{CONFIG_DIR} has no {', '.join(missing)}", "write the folder with `tierdesk init DIR`"
        )
    return Check("config", True, str(CONFIG_DIR))


async def check_routing(settings: Settings) -> Check:
    from bot.app import load_policy

    try:
        policy = load_policy(settings)
    except ConfigProblem as exc:
        return Check("routing policy", False, str(exc), "fix the file, or point TIERDESK_ROUTING_POLICY at one")
    return Check("routing policy", True, f"tiers: {', '.join(sorted(policy.tiers)) or 'none'}")


async def check_nlu(settings: Settings) -> Check:
    if not settings.nlu.enabled:
        return Check("NLU", True, "off: every customer message goes to a person")
    from bot.assistant.faq import load_classifier
    from nlu.rasa_format import NluDataError, load_responses

    try:
        classifier = await asyncio.to_thread(load_classifier, settings)
        load_responses(settings.config_path(settings.nlu.responses))
    except (NluDataError, OSError, ValueError) as exc:
        return Check(
            "NLU", False, str(exc), "fix the training data or FAQ answers it names, or set TIERDESK_NLU__ENABLED=false"
        )
    where = f"model {settings.nlu.model_path}, data {settings.config_path(settings.nlu.data)}"
    wanted = settings.nlu.encoder
    if wanted and classifier.config.encoder != wanted:
        return Check(
            "NLU",
            False,
            f"{where}; sentence encoder {wanted!r} cannot be loaded, so the bot answers with TF-IDF alone",
            "pip install 'tierdesk[encoder]', or remove nlu.encoder from the settings",
        )
    return Check("NLU", True, where + (f", sentence encoder {wanted}" if wanted else ""))


async def check_database(settings: Settings) -> Check:
    from sqlalchemy import text

    from crm_store.engine import is_sqlite, make_engine, needs_upgrade

    try:
        engine = make_engine(settings.database_url, schema=settings.database_schema)
    except Exception as exc:  # a malformed URL names itself here
        return Check("database", False, f"{type(exc).__name__}: {exc}", "check TIERDESK_DATABASE_URL")
    try:
        async with asyncio.timeout(TIMEOUT_S):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            pending = await needs_upgrade(engine)
    except Exception as exc:
        return Check(
            "database",
            False,
            f"cannot connect: {type(exc).__name__}: {exc}"[:300],
            "start the database or fix TIERDESK_DATABASE_URL",
        )
    finally:
        await engine.dispose()
    if pending and not is_sqlite(settings.database_url):
        return Check("database", False, "reachable, but the schema is not up to date", "run `tierdesk db upgrade`")
    return Check(
        "database",
        True,
        "reachable" + (" (an empty SQLite file is set up on first start)" if pending else ", schema up to date"),
    )


async def check_redis(settings: Settings) -> Check:
    if not settings.redis_url:
        if settings.dispatch.ingest == "stream":
            return Check("Redis", False, "stream ingest is on but no Redis is set", "set TIERDESK_REDIS_URL")
        return Check("Redis", True, "not used (one process, in-process queues)")
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(settings.redis_url, socket_connect_timeout=TIMEOUT_S, socket_timeout=TIMEOUT_S)
    try:
        await client.ping()
        info = await client.info("persistence")
    except Exception as exc:
        return Check(
            "Redis",
            False,
            f"cannot reach it: {type(exc).__name__}: {exc}"[:300],
            "start Redis or fix TIERDESK_REDIS_URL",
        )
    finally:
        await client.aclose()
    if settings.dispatch.ingest == "stream" and not int(info.get("aof_enabled", 0)):
        return Check(
            "Redis",
            False,
            "reachable, but without AOF a restart loses queued messages",
            "run Redis with `appendonly yes`",
        )
    return Check("Redis", True, "reachable")


async def check_channels(settings: Settings) -> list[Check]:
    from bot.runner import build_channel, configured_names
    from channels.base import traits_of

    checks = []
    for name in configured_names(settings):
        section = traits_of(name).section or name
        try:
            channel = build_channel(name, settings)
        except SystemExit as exc:
            checks.append(Check(f"channel {name}", False, str(exc), f"fix the [{section}] settings"))
            continue
        probe: Callable[[], Awaitable[str | None]] | None = getattr(channel, "probe", None)
        problem = None
        if probe is not None:
            try:
                async with asyncio.timeout(TIMEOUT_S * 2):
                    problem = await probe()
            except Exception as exc:
                problem = f"{type(exc).__name__}: {exc}"[:300]
        checks.append(
            Check(
                f"channel {name}",
                problem is None,
                problem or "configured",
                f"check the [{section}] credentials" if problem else "",
            )
        )
    return checks


async def run_checks(settings: Settings) -> list[Check]:
    checks = [await check_config(settings), await check_routing(settings), await check_nlu(settings)]
    checks += [await check_database(settings), await check_redis(settings)]
    return checks + await check_channels(settings)


async def startup_problems(settings: Settings) -> list[Check]:
    """What must be right before `tierdesk run` starts: the files it reads (services are retried at run time)."""
    checks = [await check_config(settings), await check_routing(settings)]
    return [c for c in checks if not c.ok]

"""Identities a message brings, handled inside the batch: vouched ones link at once, claimed ones become a
claim and a code mailed to the claimed address, and a code typed back in the same chat links its claim.

Nothing here ever files a message under the claimed customer before the code is entered: the claimant stays
who they were (their own ticket, their own tier), and the code mail is filed under the claimant too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.assistant.texts import say
from bot.core.messages import InboundMessage
from bot.core.outbound import BatchContext
from bot.identity import codes
from bot.settings import Settings
from crm_store.repositories import audit
from crm_store.repositories import claims as claims_repo
from crm_store.repositories import customers as customers_repo

VOUCHED = (("vouched_phone", "phone", "telegram contact"), ("vouched_user", "webuser", "signed website user"))
"""(meta key, identity channel, who vouched): identities the channel itself stands for."""
CLAIMED = (("claimed_email", "email"), ("claimed_phone", "phone"))
"""(meta key, identity channel): identities a person merely typed or forwarded."""
CODE_CHANNELS = {"email": ("email",), "phone": ("sms", "whatsapp")}
"""Where the code for a claimed identity can go, when that channel is configured."""

Adopt = Callable[[BatchContext, int, int, int], Awaitable[None]]
"""adopt(ctx, contact_id, old_customer, survivor): move the batch's state to the customer who survived a merge."""


@dataclass(frozen=True, slots=True)
class Answered:
    """The message was an answer to a claim (a code) and is handled: no ticket work, no bot, no person paged."""

    ticket_id: int | None


def carries_identity(msg: InboundMessage) -> bool:
    """Whether the message vouches for or claims an identity (it is handled on its own, not in bulk)."""
    return any(msg.meta_value(k) for k, *_ in (*VOUCHED, *CLAIMED))


def secret_of(settings: Settings) -> bytes:
    return (settings.web.identity_secret or settings.web.secret_key or "tierdesk identity claims").encode()


def normalise(channel: str, value: str) -> str:
    """One spelling per identity: emails in lower case, phone numbers as "+" and digits (Telegram shares
    "4915..." or "+49 15...", WhatsApp says "4915..."), so the same number links wherever it came from."""
    value = value.strip()
    if channel == "phone":
        digits = "".join(ch for ch in value if ch.isdigit() and ch.isascii())
        return f"+{digits}" if digits else value
    return value.lower() if channel == "email" else value


async def identify(
    ctx: BatchContext, m: InboundMessage, customer_id: int, contact_id: int, adopt: Adopt
) -> tuple[int, Answered | None]:
    """The customer the message is from once its identities are handled, and whether it was a code."""
    for meta_key, channel, who in VOUCHED:
        value = normalise(channel, m.meta_value(meta_key))
        if value:
            customer_id = await link(ctx, customer_id, contact_id, channel, value, adopt, via=who)
    for meta_key, channel in CLAIMED:
        value = normalise(channel, m.meta_value(meta_key))
        if value:
            await claim(ctx, m, customer_id, contact_id, channel, value)
    if codes.looks_like_code(m.text) and not carries_identity(m):
        return await enter_code(ctx, m, customer_id, contact_id, adopt)
    return customer_id, None


async def link(
    ctx: BatchContext,
    customer_id: int,
    contact_id: int,
    channel: str,
    address: str,
    adopt: Adopt,
    *,
    via: str,
    claim_id: int | None = None,
) -> int:
    """Attach a trusted identity, merging into the customer who owns it; audited when anything changed."""
    owner = (await customers_repo.customers_by_identity(ctx.session, [(channel, address)])).get((channel, address))
    if owner == customer_id:
        return customer_id
    survivor = await customers_repo.link_identity(ctx.session, customer_id, channel, address)
    audit.record(
        ctx.session,
        "identity_linked",
        subject=f"customer:{survivor}",
        actor="customer",
        at=ctx.now,
        channel=channel,
        address=address,
        via=via,
        claimant=customer_id,
        merged_from=customer_id if survivor != customer_id else None,
        claim=claim_id,
    )
    if survivor != customer_id:
        await adopt(ctx, contact_id, customer_id, survivor)
    return survivor


async def claim(
    ctx: BatchContext, m: InboundMessage, customer_id: int, contact_id: int, channel: str, address: str
) -> None:
    """Store the claim and mail a code to the claimed address (rate-limited per address); tell the claimant,
    in their own chat, to type it."""
    session = ctx.session
    await session.flush()  # claims made earlier in this batch count
    owner = (await customers_repo.customers_by_identity(session, [(channel, address)])).get((channel, address))
    if owner == customer_id:
        return  # already theirs
    fields = dict(
        customer_id=customer_id,
        channel=channel,
        address=address[:255],
        via_channel=m.channel,
        via_address=m.sender[:255],
        created_at=ctx.now,
    )
    code_channel = next((c for c in CODE_CHANNELS.get(channel, ()) if _configured(ctx.settings, c)), None)
    if code_channel is None:
        claims_repo.add_claim(session, **fields)  # kept for a person to look at; no way to send a code
        return
    language = ctx.facts.get(customer_id, {}).get("language")
    sent = await claims_repo.codes_sent_since(session, channel, address, ctx.now - codes.RATE_WINDOW)
    if sent >= codes.CODES_PER_HOUR:
        claims_repo.add_claim(session, status="refused", **fields)
        _tell(ctx, m, customer_id, contact_id, "claim", say("claim_too_many", language, address=address))
        return
    for old in await claims_repo.open_claims(session, customer_id, channel, address):
        claims_repo.change(old, status="expired")  # a new code replaces the older ones
    code = codes.new_code()
    claims_repo.add_claim(
        session,
        code_hash=codes.hash_code(code, secret_of(ctx.settings)),
        status="pending",
        codes_sent=sent + 1,
        sent_at=ctx.now,
        expires_at=ctx.now + codes.CODE_TTL,
        **fields,
    )
    ctx.queue_message(
        key=f"c{contact_id}:code",
        channel=code_channel,
        recipient=address,
        author="bot",
        audience="customer",
        customer_id=customer_id,
        subject=say("claim_code_subject", language),
        text=say("claim_code_mail", language, code=code),
    )
    _tell(ctx, m, customer_id, contact_id, "claim", say("claim_code_sent", language, address=address))


async def enter_code(
    ctx: BatchContext, m: InboundMessage, customer_id: int, contact_id: int, adopt: Adopt
) -> tuple[int, Answered | None]:
    """A six-digit message in a chat a code was asked from: link, or say why not. Anything else is a message."""
    code = codes.CODE.match(m.text).group(1)
    await ctx.session.flush()  # a claim made earlier in this batch counts
    made = await claims_repo.claims_made_from(ctx.session, m.channel, m.sender[:255], ctx.now - codes.LOOKBACK)
    verdict, changes = codes.judge(made, code, secret_of(ctx.settings), ctx.now)
    for changed, values in changes:
        claims_repo.change(changed, **values)
    if verdict is None:
        return customer_id, None
    claimed = verdict.claim
    language = ctx.facts.get(customer_id, {}).get("language")
    if verdict.outcome == "linked":
        claims_repo.change(claimed, status="verified", verified_at=ctx.now)
        customer_id = await link(
            ctx, customer_id, contact_id, claimed.channel, claimed.address, adopt, via="code", claim_id=claimed.id
        )
        text = say("code_ok", language, address=claimed.address)
    else:
        text = say(f"code_{verdict.outcome}", language, left=verdict.left)
    ticket = ctx.active.get(customer_id)
    if ticket is not None:
        ctx.contact_updates.append({"id": contact_id, "ticket_id": ticket.id})
    _tell(ctx, m, customer_id, contact_id, "code", text)
    return customer_id, Answered(ticket.id if ticket is not None else None)


def _tell(ctx: BatchContext, m: InboundMessage, customer_id: int, contact_id: int, what: str, text: str) -> None:
    """Answer the claimant where they wrote (never the claimed address)."""
    ticket = ctx.active.get(customer_id)
    ctx.queue_message(
        key=f"c{contact_id}:{what}",
        channel=m.channel,
        recipient=m.sender,
        author="bot",
        audience="customer",
        customer_id=customer_id,
        ticket_id=ticket.id if ticket is not None else None,
        text=text,
        reply_to=m.external_id,
    )


def _configured(settings: Settings, channel: str) -> bool:
    """Email always is (the outbox dead-letters a mail it cannot send); SMS and WhatsApp when listed."""
    return channel == "email" or channel in settings.channels

"""HTTP ways in for channels that are called rather than polled: WhatsApp's webhook (verification and signed
deliveries) and the API channels' messages and pulled replies. The channels check and parse; this module only
hands over what they accept and records WhatsApp's delivery statuses. They are not in the REST API's schema:
each API channel has its own token, and their errors are the channel's (documented in the README)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from bot.core import receipts
from bot.core.messages import utcnow
from channels.api import Refused as ApiRefused
from channels.whatsapp import Refused as WhatsAppRefused
from crm_store.repositories import channel_replies

log = logging.getLogger(__name__)
router = APIRouter()
MAX_BODY = 5_000_000


def _channel(request: Request, name: str) -> Any:
    registry = getattr(request.app.state.ctx, "registry", None)
    return registry.get(name) if registry is not None and name in registry else None


async def _body(request: Request) -> bytes | None:
    body = await request.body()
    return None if len(body) > MAX_BODY else body


@router.get("/whatsapp/webhook", include_in_schema=False)
async def whatsapp_verify(request: Request) -> Response:
    """Meta's subscription handshake: echo `hub.challenge` when `hub.verify_token` is ours."""
    channel = _channel(request, "whatsapp")
    if channel is None:
        return PlainTextResponse("whatsapp webhook not configured", status_code=404)
    answer = channel.verification(dict(request.query_params))
    if answer is None:
        return PlainTextResponse("verification refused", status_code=403)
    return PlainTextResponse(answer)


@router.post("/whatsapp/webhook", include_in_schema=False)
async def whatsapp_delivery(request: Request) -> Response:
    """200 only once every message is stored and every status recorded; Meta redelivers anything else."""
    channel = _channel(request, "whatsapp")
    if channel is None:
        return PlainTextResponse("whatsapp webhook not configured", status_code=404)
    body = await _body(request)
    if body is None:
        return PlainTextResponse("too large", status_code=413)
    try:
        delivery = channel.read_delivery(dict(request.headers), body)
        await channel.store(delivery)
        if delivery.statuses:
            await _record_statuses(request.app.state.ctx, channel, delivery.statuses)
    except WhatsAppRefused as exc:
        return PlainTextResponse(exc.reason, status_code=exc.status)
    except Exception:
        log.exception("whatsapp webhook delivery not stored")
        return PlainTextResponse("not stored; deliver again", status_code=503)
    return PlainTextResponse("ok")


async def _record_statuses(ctx: Any, channel: Any, statuses: list[Any]) -> None:
    rows = [{"external_id": s.external_id, "status": s.status, "error": s.error, "at": s.at} for s in statuses]
    sessions = getattr(ctx, "writer_sessions", None) or ctx.sessions
    async with sessions() as session, session.begin():
        await receipts.record(session, "whatsapp", rows, at=utcnow(), template=bool(channel.template_name))


def _refused(exc: ApiRefused) -> JSONResponse:
    return JSONResponse({"error": exc.reason}, status_code=exc.status)


@router.post("/api/v1/channels/{name}/messages", include_in_schema=False)
async def api_channel_message(name: str, request: Request) -> JSONResponse:
    """Store one message posted to API channel `name` (its bearer token); its `id` makes a repeat a no-op. With
    stream ingestion the message is queued durably and a worker logs it: contact and ticket are then null."""
    channel = _channel(request, "api")
    if channel is None:
        return JSONResponse({"error": "no API channel is running"}, status_code=404)
    body = await _body(request)
    if body is None:
        return JSONResponse({"error": "too large"}, status_code=413)
    try:
        msg, result = await channel.receive(name, dict(request.headers), body)
    except ApiRefused as exc:
        return _refused(exc)
    except Exception:
        log.exception("API channel %s: message not stored", name[:40])
        return JSONResponse({"error": "not stored; post it again"}, status_code=503)
    answer = {
        "id": msg.external_id.partition(":")[2],
        "contact": result.contact_id or None,
        "ticket": f"T-{result.ticket_id}" if result.ticket_id else None,
        "duplicate": result.duplicate,
    }
    return JSONResponse(answer, status_code=200 if result.duplicate else 202)


@router.get("/api/v1/channels/{name}/replies", include_in_schema=False)
async def api_channel_replies(
    name: str, request: Request, after: int = Query(0, ge=0, le=2**63 - 1), limit: int = Query(100, ge=1, le=500)
) -> JSONResponse:
    """Replies sent to API channel `name`'s senders after the cursor `after`, oldest first (pull mode)."""
    channel = _channel(request, "api")
    if channel is None:
        return JSONResponse({"error": "no API channel is running"}, status_code=404)
    try:
        channel.authorize(name, dict(request.headers))
    except ApiRefused as exc:
        return _refused(exc)
    async with request.app.state.ctx.sessions() as session:
        found = await channel_replies.replies_after(session, "api", f"{name}:", after, limit)
    replies = [
        {
            "cursor": c.id,
            "id": c.external_id,
            "recipient": c.address.partition(":")[2],
            "text": c.text,
            "ticket": f"T-{c.ticket_id}" if c.ticket_id else None,
            "sent_at": c.created_at.isoformat(),
        }
        for c in found
    ]
    return JSONResponse({"replies": replies, "next_after": found[-1].id if found else after})

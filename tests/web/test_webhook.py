"""The webhook channel against a real local HTTP receiver: signature, and which failures are retried."""

from __future__ import annotations

import asyncio
import json

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bot.core.messages import DeliveryError, OutboundMessage
from channels.webhook import WebhookChannel, sign, ticket_event_payload, verify
from tests.web.conftest import free_port


@pytest.fixture
async def receiver():
    got: list[tuple[dict, bytes]] = []
    status = {"code": 200}

    async def hook(request: Request) -> PlainTextResponse:
        got.append(({k.lower(): v for k, v in request.headers.items()}, await request.body()))
        return PlainTextResponse("x", status_code=status["code"], headers={"Retry-After": "7"})

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/hook", hook, methods=["POST"])]),
                                           host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}/hook", got, status
    server.should_exit = True
    await task


def event() -> str:
    return ticket_event_payload("ticket.created", ticket_id=7, customer_id=3, status="open", tier="VIP",
                                queue="vip", event_id="T-7:created:1")


async def test_signed_delivery_verifies(receiver):
    url, got, _ = receiver
    ch = WebhookChannel("s3cret")
    await ch.start(None)
    ext = await ch.send(OutboundMessage(channel="webhook", recipient=url, text=event(), idempotency_key="k1"))
    await ch.stop()
    headers, body = got[0]
    assert ext == "k1" and json.loads(body)["ticket"]["id"] == 7
    assert verify("s3cret", headers["x-tierdesk-timestamp"], body.decode(), headers["x-tierdesk-signature"])
    assert not verify("other", headers["x-tierdesk-timestamp"], body.decode(), headers["x-tierdesk-signature"])
    assert not verify("s3cret", headers["x-tierdesk-timestamp"], body.decode() + " ", headers["x-tierdesk-signature"])


@pytest.mark.parametrize(("code", "permanent"), [(500, False), (503, False), (429, False), (410, True), (400, True)])
async def test_failures_are_classified_for_retry(receiver, code, permanent):
    url, _, status = receiver
    status["code"] = code
    ch = WebhookChannel("s3cret")
    with pytest.raises(DeliveryError) as err:
        await ch.send(OutboundMessage(channel="webhook", recipient=url, text=event()))
    await ch.stop()
    assert err.value.permanent is permanent and err.value.retry_after == 7


async def test_unreachable_receiver_is_retried():
    ch = WebhookChannel("s3cret", timeout_s=2)
    with pytest.raises(DeliveryError) as err:
        await ch.send(OutboundMessage(channel="webhook", recipient=f"http://127.0.0.1:{free_port()}/x", text="{}"))
    await ch.stop()
    assert not err.value.permanent


def test_payload_is_pure_and_checked():
    assert event() == event()
    with pytest.raises(ValueError):
        ticket_event_payload("ticket.exploded", ticket_id=1, customer_id=1, status="open")
    assert verify("k", "100", "{}", sign("k", "100", "{}"), now=150)
    assert not verify("k", "100", "{}", sign("k", "100", "{}"), now=1000)

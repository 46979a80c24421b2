"""WhatsApp and API-channel contacts, handled by the dispatcher like any channel's, show in the dashboard's
channel chart and by-channel figures, and the contact log's channel filter offers and applies both."""

from __future__ import annotations

import re

from bot.core.messages import InboundMessage
from tests.web.conftest import web_env  # noqa: F401  (the fixture)


async def test_new_channels_are_charted_and_filtered(web_env):  # noqa: F811
    for channel, ext, sender, text in [
        ("whatsapp", "wamid.1", "4915112345678", "parcel via whatsapp"),
        ("whatsapp", "wamid.2", "4915112345678", "still waiting"),
        ("api", "shop:m1", "shop:cust-1", "order via the shop app"),
    ]:
        await web_env.app.deliver(InboundMessage.build(channel=channel, external_id=ext, sender=sender, text=text))
    await web_env.app.outbox.drain()
    await web_env.agent("Sue", role="supervisor")
    await web_env.login("Sue")
    c = web_env.client
    overview = (await c.get("/")).text
    chart = overview[overview.index('id="chart-channel"') :]
    chart = chart[: chart.index("</svg>")]
    counts = {key: int(n) for key, n in re.findall(r"<title>[\d-]+ · (\w+): (\d+)</title>", chart)}
    assert counts["whatsapp"] == 2 and counts["api"] == 1  # inbound only: no WhatsApp sender runs here
    log = (await c.get("/contacts")).text
    options = re.findall(
        r"<option(?: selected)?\s*>(\w+)</option>", log[log.index('name="channel"') : log.index('name="tier"')]
    )
    assert {"whatsapp", "api", "telegram", "email", "webchat"} <= set(options) and "memory" not in options
    only_whatsapp = (await c.get("/contacts?channel=whatsapp")).text
    assert "parcel via whatsapp" in only_whatsapp and "still waiting" in only_whatsapp
    assert "order via the shop app" not in only_whatsapp
    assert "order via the shop app" in (await c.get("/contacts?channel=api")).text

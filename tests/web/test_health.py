from __future__ import annotations


async def test_healthz_and_readyz(web_env):
    assert (await web_env.client.get("/healthz")).text == "ok"
    ready = await web_env.client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"ready": True}


async def test_readyz_reports_a_stopped_worker(web_env):
    await web_env.app.outbox.stop()
    ready = await web_env.client.get("/readyz")
    assert ready.status_code == 503
    assert "outbox: not running" in ready.json()["problems"]


async def test_telegram_webhook_without_channel_is_404(web_env):
    assert (await web_env.client.post("/telegram/webhook", content=b"{}")).status_code == 404

"""`tierdesk doctor` asks the Graph API (the loopback stand-in) whether the configured token reaches the
business number, and says so when it does not."""

from __future__ import annotations

from bot.cli.doctor import check_channels
from bot.settings import Settings, WhatsAppSettings
from tests.e2e.whatsapp_server import GraphServer


async def test_the_doctor_checks_the_whatsapp_credentials(tmp_path):
    async with GraphServer() as graph:

        def settings(token: str) -> Settings:
            return Settings(
                channels=["whatsapp"],
                state_dir=str(tmp_path),
                whatsapp=WhatsAppSettings(
                    access_token=token, phone_number_id=graph.phone_number_id, app_secret="s", graph_url=graph.url
                ),
            )

        [good] = await check_channels(settings(graph.token))
        [bad] = await check_channels(settings("expired"))
        [unset] = await check_channels(Settings(channels=["whatsapp"], state_dir=str(tmp_path)))
    assert (good.name, good.ok, good.detail) == ("channel whatsapp", True, "configured")
    assert not bad.ok and "error 190" in bad.detail and "credentials" in bad.fix
    assert not unset.ok and "access token and a phone number id" in unset.detail

"""Every channel builds itself from its own settings section (no network), and the core asks channels by name
for what differs between them: threading, where agents are reached, the desk mirror, reply caps."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bot.core.forum import desk_mirror
from bot.core.outbound import bot_reply_cap, preferred_address
from bot.settings import ConsoleSettings, DispatchSettings, EmailSettings, Settings, TelegramSettings, WebSettings
from channels.base import _KNOWN, ChannelTraits, ReplyFields, build, channel_factory, known_channels, traits_of


def full_settings() -> Settings:
    return Settings(
        channels=["telegram", "email", "webchat", "console"],
        telegram=TelegramSettings(token="123:abc", mode="webhook", webhook_secret="s3", forum_chat_id=-100500),
        email=EmailSettings(address="desk@x.test", imap_host="imap.x.test", smtp_host="smtp.x.test",
                            lmtp_listen="127.0.0.1:2525", bot_replies_per_sender_per_hour=2),
        web=WebSettings(max_message_chars=321, webhook_url="http://127.0.0.1:9/hook", webhook_secret="hk"),
        console=ConsoleSettings(user="operator"),
        dispatch=DispatchSettings(bot_replies_per_sender_per_hour=9),
    )


def test_each_registered_channel_builds_from_its_own_section():
    s = full_settings()
    telegram = build("telegram", s)
    assert (telegram.mode, telegram.webhook_secret, telegram.forum_chat_id) == ("webhook", "s3", -100500)
    assert build("telegram", s, send_only=True).mode == "embedded"
    email = build("email", s)
    assert email.address == "desk@x.test" and email.imap_account.host == "imap.x.test"
    assert email.lmtp_listen == "127.0.0.1:2525" and email.smtp["hostname"] == "smtp.x.test"
    sender = build("email", s, send_only=True)
    assert sender.imap_account is None and sender.lmtp_listen == "" and sender.smtp["hostname"] == "smtp.x.test"
    assert build("webchat", s).max_message_chars == 321
    assert build("console", s).user == "operator"
    assert build("webhook", s)._secret == "hk"
    assert build("memory", s).name == "memory"
    assert {n for n in known_channels()} == {"memory", "console", "telegram", "email", "webchat", "webhook", "api",
                                             "whatsapp"}


async def test_a_configured_memory_channel_keeps_only_the_latest_replies():
    """In a long-running process the memory channel must not hold every reply it ever sent."""
    from bot.core.messages import OutboundMessage
    from channels.memory import KEPT_BY_A_PROCESS, MemoryChannel

    channel = build("memory", full_settings())
    for i in range(KEPT_BY_A_PROCESS + 5):
        await channel.send(OutboundMessage(channel="memory", recipient="u", text=f"reply {i}"))
    assert len(channel.sent) == KEPT_BY_A_PROCESS
    assert channel.sent[0].text == "reply 5" and channel.sent[-1].text == f"reply {KEPT_BY_A_PROCESS + 4}"
    unbounded = MemoryChannel()  # a test's own channel keeps everything
    for i in range(KEPT_BY_A_PROCESS + 5):
        await unbounded.send(OutboundMessage(channel="memory", recipient="u", text=f"reply {i}"))
    assert len(unbounded.sent) == KEPT_BY_A_PROCESS + 5


def test_a_channel_that_cannot_start_says_why():
    with pytest.raises(ValueError, match="no bot token"):
        build("telegram", Settings())
    with pytest.raises(ValueError, match="signing secret"):
        build("webhook", Settings())
    with pytest.raises(ValueError, match="no API channel is configured"):
        build("api", Settings())
    with pytest.raises(ValueError, match="access token and a phone number id"):
        build("whatsapp", Settings())


def test_traits_are_the_channels_own_and_light():
    for name, entry in _KNOWN.items():
        cls = channel_factory(name)
        assert issubclass(cls, traits_of(name)) and issubclass(cls, ChannelTraits), name
        assert callable(cls.from_settings), name
        if entry.traits:
            assert entry.traits.split(":")[0] != entry.target.split(":")[0]
    # Asking Telegram's traits must not import aiogram (seconds of import in every process).
    code = "import sys; from channels.base import traits_of; traits_of('telegram'); print('aiogram' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_send_only_and_implied_channels_are_traits():
    assert [n for n in known_channels() if not traits_of(n).can_send_only] == ["console", "webchat"]
    s = full_settings()
    assert traits_of("webhook").implied_by(s.web) and not traits_of("webhook").implied_by(WebSettings())
    assert not any(traits_of(n).implied_by(getattr(s, traits_of(n).section or n, None))
                   for n in known_channels() if n != "webhook")


def test_email_threads_and_chat_channels_answer_the_last_message():
    fields = traits_of("email").reply_fields(7, "Parcel lost", "<m2@c>", ["<m1@c>", "<m2@c>"])
    assert fields == ReplyFields("Re: Parcel lost [#T-7]", "<m2@c>", (("references", "<m1@c> <m2@c>"),))
    again = traits_of("email").reply_fields(7, "RE: Parcel lost [#T-7]", "", ["<m1@c>"])
    assert again.subject == "RE: Parcel lost [#T-7]" and again.reply_to == "<m1@c>"
    assert traits_of("email").reply_fields(8, "", "", []).subject == "Re: Your request [#T-8]"
    assert traits_of("email").threads and not traits_of("telegram").threads
    assert traits_of("telegram").reply_fields(7, "Parcel", "m5:9", []) == ReplyFields(reply_to="m5:9")
    assert traits_of("sms").reply_fields(7, "", "abc", []) == ReplyFields(reply_to="abc")  # unknown: plain


def test_agents_are_reached_where_the_desk_lives():
    assert preferred_address([("email", "a@x"), ("console", "al"), ("telegram", "42")]) == ("telegram", "42")
    assert preferred_address([("email", "a@x"), ("console", "al")]) == ("console", "al")
    assert preferred_address([("sms", "+1"), ("email", "a@x")]) == ("sms", "+1")  # equals: the first listed
    assert preferred_address([]) is None


def test_the_desk_mirror_is_the_channel_that_names_a_target():
    s = full_settings()
    assert desk_mirror(s) == ("telegram", "-100500")
    assert desk_mirror(Settings()) is None
    meta = traits_of("telegram").mirror_fields("-100500", 12, "T-12 · VIP · Ann", "-100500:77", True)
    assert meta == {"forum_topic_for_ticket": "12", "topic_title": "T-12 · VIP · Ann", "message_thread_id": "77",
                    "close_forum_topic": "1"}
    moved = traits_of("telegram").mirror_fields("-100600", 12, "T-12", "-100500:77", False)
    assert moved == {"forum_topic_for_ticket": "12", "topic_title": "T-12"}  # another forum: a new topic


def test_bot_reply_caps_are_per_channel():
    s = full_settings()
    assert bot_reply_cap(s, "email") == 2  # the email section's own
    assert bot_reply_cap(s, "telegram") == 9 and bot_reply_cap(s, "webchat") == 9 and bot_reply_cap(s, "sms") == 9
    assert bot_reply_cap(Settings(), "email") == 5 and bot_reply_cap(Settings(), "telegram") == 5


async def test_the_web_app_hands_a_webhook_to_the_channel_named_in_its_path(tmp_path):
    from types import SimpleNamespace

    import httpx

    from bot.web.app import create_web_app
    from channels.base import ChannelRegistry
    from channels.telegram import TelegramChannel

    got = []

    async def deliver(msg):
        got.append(msg)

    channel = TelegramChannel("123:abc", mode="webhook", webhook_secret="s3")
    channel._deliver = deliver  # as `start` leaves it, without asking Telegram who the bot is
    registry = ChannelRegistry()
    registry.add(channel)
    web = create_web_app(SimpleNamespace(settings=Settings(state_dir=str(tmp_path)), registry=registry))
    update = b'{"update_id": 5, "message": {"message_id": 9, "date": 1700000000, "chat": {"id": 42, "type": ' \
             b'"private"}, "from": {"id": 42, "is_bot": false, "first_name": "Ann"}, "text": "hello"}}'
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://t") as client:
        refused = await client.post("/telegram/webhook", content=update)
        stored = await client.post("/telegram/webhook", content=update,
                                   headers={"X-Telegram-Bot-Api-Secret-Token": "s3"})
        unknown = await client.post("/sms/webhook", content=update)
    await channel.bot.session.close()
    assert (refused.status_code, stored.status_code, unknown.status_code) == (401, 200, 404)
    assert [(m.channel, m.sender, m.text) for m in got] == [("telegram", "42", "hello")]

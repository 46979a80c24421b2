"""Telegram updates into the update parser: generated shapes with broken fields never crash it, whatever it
returns can be stored as it is, and whatever it drops is logged."""

from __future__ import annotations

from hypothesis import given

from bot.core.messages import InboundMessage
from channels.telegram.updates import update_to_inbound
from tests.fuzz.nasty import DEEP_DICT, FUZZ_EXAMPLES, MEGA_UNICODE, batches, fuzz_settings, recording, storable
from tests.fuzz.telegram_updates import update


def assert_storable(msg: InboundMessage) -> None:
    """Every field of the message can be written to PostgreSQL and SQLite as it is."""
    fields = [msg.channel, msg.external_id, msg.sender, msg.text, msg.sender_name, msg.thread_ref, msg.raw_ref,
              msg.edit_of, *(k for k, _ in msg.meta), *(v for _, v in msg.meta)]
    for a in msg.attachments:
        fields += [a.kind, a.name, a.mime, a.ref]
        assert isinstance(a.size, int) and 0 <= a.size < 2**63, a
    for value in fields:
        assert isinstance(value, str) and storable(value), (value[:80], msg.external_id[:80])
    assert 0 < len(msg.external_id) <= 255 and 0 < len(msg.sender) <= 255
    assert msg.received_at.tzinfo is not None


def test_generated_updates_never_crash_the_parser():
    ran, taken = [0], [0]

    @fuzz_settings()
    @given(batches(update))
    def parse(updates):
        for data in updates:
            ran[0] += 1
            with recording("channels.telegram") as log:
                msg = update_to_inbound(data, bot_username="tierdesk_bot")
            assert log.tracebacks() == [], log.tracebacks()[:1]
            if msg is None:
                assert log.records, "a dropped update must be logged"
                continue
            taken[0] += 1
            assert_storable(msg)

    parse()
    print(f"telegram updates: {ran[0]} generated, {taken[0]} became messages")
    assert ran[0] >= FUZZ_EXAMPLES
    assert taken[0] >= 1000, taken  # the generator reaches the conversion, not only the first refusal


def test_known_poison_is_cleaned_or_refused_with_a_log_line():
    """The cases the fuzzer found, kept as plain examples."""
    user = {"id": 5001, "first_name": "Mei\x00", "username": "a\x00\ud800"}
    chat = {"id": 5001, "type": "private"}
    with recording("channels.telegram") as log:
        # a message with text and a photo list that is not a list of objects: the text is kept
        msg = update_to_inbound({"update_id": 1, "message": {"message_id": 1, "from": user, "chat": chat,
                                                             "text": "hi", "photo": ["x"], "date": 10**30}})
        assert msg is not None and msg.text == "hi" and msg.attachments == ()
        assert dict(msg.meta)["username"] == "a?" and msg.sender_name == "Mei"
        # a chat that is a string, a 5,000-digit id, a deep name: refused, each with a log line
        for bad in ({"message_id": 1, "from": user, "chat": "x", "text": "hi"},
                    {"message_id": 1, "from": {"id": 10**5000}, "chat": chat, "text": "hi"},
                    {"message_id": 1, "from": {"id": 1, "first_name": DEEP_DICT}, "chat": {"id": "\x00"},
                     "text": MEGA_UNICODE}):
            assert update_to_inbound({"update_id": 2, "message": bad}) is None
        # a callback id with a NUL
        press = update_to_inbound({"update_id": 3, "callback_query": {"id": "q\x00", "from": user}})
        assert press is not None and press.external_id == "qq"
    assert log.tracebacks() == []
    assert sum("ignored update 2" in r.getMessage() for r in log.records) == 3

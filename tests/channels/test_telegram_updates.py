"""Telegram update → InboundMessage on recorded Bot API payloads; the same result from aiogram and PTB objects."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.telegram.updates import (
    as_update_dict,
    message_external_id,
    parse_message_ref,
    update_to_inbound,
)

PAYLOADS = Path(__file__).parent / "payloads"


def payload(name: str) -> dict:
    return json.loads((PAYLOADS / f"telegram_{name}.json").read_text(encoding="utf-8"))


def test_text_message_keys_on_chat_and_message_id():
    msg = update_to_inbound(payload("text"))
    assert msg is not None
    assert msg.channel == "telegram"
    assert msg.external_id == "m5001:41"
    assert msg.raw_ref == "telegram:update:815000001"
    assert msg.sender == "5001"
    assert msg.sender_name == "Mei Lin"
    assert msg.text == "Where is my order #8812?"
    assert msg.received_at == datetime.fromtimestamp(1717000000, UTC)
    assert msg.meta_value("chat_id") == "5001"
    assert msg.meta_value("message_id") == "41"
    assert msg.meta_value("username") == "meilin"
    assert msg.meta_value("language_code") == "zh-hans"
    assert msg.meta_value("chat_type") == "private"
    assert msg.edit_of == "" and msg.thread_ref == ""


def test_redelivered_update_gets_the_same_external_id():
    first = update_to_inbound(payload("text"))
    again = update_to_inbound(copy.deepcopy(payload("text")))
    assert first is not None and again is not None
    assert first.external_id == again.external_id


def test_photo_takes_largest_size_and_caption_as_text():
    msg = update_to_inbound(payload("photo_caption"))
    assert msg is not None
    assert msg.text == "The box arrived broken"
    [photo] = msg.attachments
    assert (photo.kind, photo.ref, photo.size, photo.mime) == ("photo", "AgACAgQAAxkBAAIBs-large", 88123, "image/jpeg")


@pytest.mark.parametrize(
    ("name", "kind", "ref", "size", "mime", "file_name"),
    [
        ("document", "document", "BQACAgQAAxkBAAIBtGZ", 52311, "application/pdf", "invoice-8812.pdf"),
        ("voice", "voice", "AwACAgQAAxkBAAIBtWZ", 9120, "audio/ogg", ""),
        ("sticker", "sticker", "CAACAgIAAxkBAAIBtmZ", 21000, "application/x-tgsticker", "\U0001f621"),
    ],
)
def test_media_becomes_attachment_metadata(name, kind, ref, size, mime, file_name):
    msg = update_to_inbound(payload(name))
    assert msg is not None
    assert msg.text == ""
    [att] = msg.attachments
    assert (att.kind, att.ref, att.size, att.mime, att.name) == (kind, ref, size, mime, file_name)


def test_own_shared_contact_vouches_for_the_phone():
    msg = update_to_inbound(payload("contact_own"))
    assert msg is not None
    assert (msg.meta_value("vouched_phone"), msg.meta_value("claimed_phone")) == ("+8613800138000", "")
    [att] = msg.attachments
    assert (att.kind, att.ref, att.name) == ("contact", "+8613800138000", "Mei Lin")


def test_forwarded_contact_of_someone_else_is_only_a_claim():
    msg = update_to_inbound(payload("contact_other"))
    assert msg is not None
    assert (msg.meta_value("vouched_phone"), msg.meta_value("claimed_phone")) == ("", "+4915112345678")
    assert msg.attachments[0].ref == "+4915112345678"


def test_edit_points_at_the_original_message():
    original = update_to_inbound(payload("text"))
    edit = update_to_inbound(payload("edited"))
    assert original is not None and edit is not None
    assert edit.edit_of == original.external_id
    assert edit.external_id == "e5001:41:815000008"
    assert edit.external_id != original.external_id
    assert edit.text == "Where is my order #8813?"
    assert edit.received_at == datetime.fromtimestamp(1717000100, UTC)


def test_callback_query_carries_data_and_ids():
    msg = update_to_inbound(payload("callback"))
    assert msg is not None
    assert msg.external_id == "q4382bfdwdsb323b2d9"
    assert msg.text == "/take 12"
    assert msg.sender == "9001"
    assert msg.meta_value("callback_query_id") == "4382bfdwdsb323b2d9"
    assert msg.meta_value("message_id") == "310"
    assert msg.meta_value("chat_id") == "9001"
    assert msg.thread_ref == "m9001:310"


def test_reply_maps_to_the_replied_message_external_id():
    msg = update_to_inbound(payload("reply"))
    assert msg is not None
    assert msg.meta_value("reply_to_message_id") == "310"
    assert msg.thread_ref == message_external_id(9001, 310)


def test_forum_topic_message_is_not_taken_for_a_reply():
    msg = update_to_inbound(payload("forum_topic"))
    assert msg is not None
    assert msg.meta_value("message_thread_id") == "900"
    assert msg.meta_value("reply_to_message_id") == ""
    assert msg.thread_ref == ""
    assert msg.meta_value("chat_id") == "-1001234567890"


def test_group_command_addressed_to_us_loses_the_mention():
    assert update_to_inbound(payload("group_command"), bot_username="@TierDesk_Bot").text == "/queue vip"
    assert update_to_inbound(payload("group_command"), bot_username="other_bot").text == "/queue@tierdesk_bot vip"


@pytest.mark.parametrize("name", ["chat_member", "service_message"])
def test_unknown_update_types_and_service_messages_are_ignored(name, caplog):
    caplog.set_level("INFO")
    assert update_to_inbound(payload(name)) is None
    assert "ignored" in caplog.text


def test_messages_from_bots_are_ignored():
    update = payload("text")
    update["message"]["from"]["is_bot"] = True
    assert update_to_inbound(update) is None


@pytest.mark.parametrize(
    "odd",
    [None, [], "text", 12, {}, {"update_id": "x"}, {"update_id": 1, "message": "hi"},
     {"update_id": 1, "message": {"text": "no sender"}}, {"update_id": 1, "message": {"from": {"id": 1}, "text": "x"}},
     {"update_id": 1, "callback_query": {"from": {"id": 1}}}, {"update_id": 1, "message": {"photo": [1, 2]}}],
)
def test_odd_input_is_ignored_not_raised(odd):
    assert update_to_inbound(odd) is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from(["message", "edited_message", "callback_query", "poll"]),
    body=st.dictionaries(
        st.sampled_from(["from", "chat", "message_id", "text", "caption", "photo", "document", "contact", "data",
                         "id", "message", "reply_to_message", "date", "edit_date", "sticker", "location"]),
        json_values, max_size=8,
    ),
)
def test_fuzzed_updates_never_raise(kind, body):
    result = update_to_inbound({"update_id": 7, kind: body})
    assert result is None or result.channel == "telegram"


def test_aiogram_and_ptb_objects_convert_like_the_raw_json():
    from aiogram.types import Update as AiogramUpdate
    from telegram import Update as PtbUpdate

    for name in ("text", "photo_caption", "callback", "edited", "forum_topic", "contact_own"):
        raw = payload(name)
        expected = update_to_inbound(raw)
        via_aiogram = update_to_inbound(AiogramUpdate.model_validate(raw))
        via_ptb = update_to_inbound(PtbUpdate.de_json(copy.deepcopy(raw), None))
        assert expected is not None
        for got in (via_aiogram, via_ptb):
            assert got is not None
            assert (got.external_id, got.text, got.sender, got.attachments, got.meta, got.edit_of) == (
                expected.external_id, expected.text, expected.sender, expected.attachments, expected.meta,
                expected.edit_of,
            ), name


def test_as_update_dict_refuses_other_objects():
    assert as_update_dict(object()) is None


def test_parse_message_ref():
    assert parse_message_ref("m-100123:45") == ("-100123", 45)
    assert parse_message_ref("q123") is None
    assert parse_message_ref("m12:x") is None

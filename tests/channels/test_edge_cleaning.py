"""Every string a channel takes from outside is cleaned at the edge (`InboundMessage.build`): what reaches the
inbound stream encodes as UTF-8 and holds no NUL, no control character and nothing without bound."""

from __future__ import annotations

import json

import pytest

from bot.core.ingest import encode
from bot.core.messages import MAX_META_CHARS
from channels.telegram.updates import update_to_inbound

USER = {"id": 7, "is_bot": False, "first_name": "Ann"}
CHAT = {"id": 7, "type": "private"}
POISON = {
    "lone surrogate in the username": {"from": {**USER, "first_name": "A\ud800", "username": "x\udfff"}, "text": "a"},
    "lone surrogate in a file name": {"document": {"file_id": "f\ud800", "file_name": "r\ud800.pdf"}},
    "NUL in a file name and caption": {"document": {"file_id": "f", "file_name": "r\x00.pdf"}, "caption": "c\x00"},
    "NUL in a shared contact's phone": {"contact": {"phone_number": "+1\x00555", "first_name": "B\x00", "user_id": 7}},
    "NUL in the chat id": {"chat": {"id": "7\x00", "type": "private"}, "text": "a"},
    "control characters in the language": {"from": {**USER, "language_code": "e\x1bn\x07"}, "text": "a"},
    "a megabyte of username": {"from": {**USER, "username": "u" * 1_000_000}, "text": "a"},
}


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


@pytest.mark.parametrize("case", sorted(POISON))
def test_poison_in_any_field_is_cleaned_at_the_edge(case):
    update = {
        "update_id": 1,
        "message": {"message_id": 3, "date": 1_700_000_000, "from": USER, "chat": CHAT, **POISON[case]},
    }
    msg = update_to_inbound(update)
    assert msg is not None and msg.external_id == "m7:3" and msg.sender == "7"
    raw = encode(msg)["m"].encode("utf-8")  # raises on a lone surrogate
    for text in _strings(json.loads(raw)):
        assert not any(ord(c) < 32 and c not in "\t\n\r" for c in text), (case, text[:40])
    assert all(len(v) <= MAX_META_CHARS for _, v in msg.meta)


def test_what_is_cleaned_keeps_its_meaning():
    msg = update_to_inbound(
        {
            "update_id": 1,
            "message": {
                "message_id": 3,
                "from": USER,
                "chat": CHAT,
                "contact": {"phone_number": "+1\x00555", "user_id": 7},
            },
        }
    )
    assert msg.meta_value("vouched_phone") == "+1555"
    assert [(a.kind, a.ref) for a in msg.attachments] == [("contact", "+1555")]

"""Telegram Bot API updates for fuzzing: real shapes (as the Bot API sends them) with places broken, plus
anything at all a broken server or proxy might send instead."""

from __future__ import annotations

from tests.fuzz.nasty import anything, mutated

USER = {"id": 5001, "is_bot": False, "first_name": "Mei", "last_name": "Lin", "username": "meilin",
        "language_code": "zh"}
CHAT = {"id": 5001, "type": "private", "first_name": "Mei"}
GROUP = {"id": -100123, "type": "supergroup", "title": "Desk", "is_forum": True}
MEDIA = {"file_id": "AgAD", "file_unique_id": "u1", "file_size": 1024, "mime_type": "application/pdf",
         "file_name": "invoice.pdf"}

TEMPLATES = [
    {"update_id": 10, "message": {"message_id": 1, "from": USER, "chat": CHAT, "date": 1_700_000_000,
                                  "text": "Where is my order?"}},
    {"update_id": 11, "message": {"message_id": 2, "from": USER, "chat": GROUP, "date": 1_700_000_000,
                                  "text": "/take@tierdesk_bot 12", "message_thread_id": 7, "is_topic_message": True,
                                  "entities": [{"type": "bot_command", "offset": 0, "length": 5}],
                                  "reply_to_message": {"message_id": 7, "chat": GROUP, "date": 0}}},
    {"update_id": 12, "edited_message": {"message_id": 1, "from": USER, "chat": CHAT, "date": 1_700_000_000,
                                         "edit_date": 1_700_000_100, "text": "Where is my order 1234?"}},
    {"update_id": 13, "callback_query": {"id": "cb1", "from": USER, "chat_instance": "1", "data": "rate:5",
                                         "message": {"message_id": 3, "chat": CHAT, "date": 0, "text": "Rate us"}}},
    {"update_id": 14, "message": {"message_id": 4, "from": USER, "chat": CHAT, "date": 1_700_000_000,
                                  "caption": "the receipt", "document": MEDIA,
                                  "photo": [{"file_id": "s", "file_size": 10, "width": 90, "height": 90},
                                            {"file_id": "l", "file_size": 99, "width": 800, "height": 800}]}},
    {"update_id": 15, "message": {"message_id": 5, "from": USER, "chat": CHAT, "date": 1_700_000_000,
                                  "contact": {"phone_number": "+8613800000000", "first_name": "Mei",
                                              "user_id": 5001}}},
    {"update_id": 16, "message": {"message_id": 6, "from": USER, "chat": CHAT, "date": 1_700_000_000,
                                  "location": {"latitude": 31.2, "longitude": 121.5},
                                  "sticker": {"file_id": "st", "emoji": "👍", "is_animated": True},
                                  "voice": {"file_id": "v", "duration": 3}, "reply_to_message": {
                                      "message_id": 2, "from": USER, "chat": CHAT, "date": 0, "text": "earlier"}}},
    {"update_id": 17, "my_chat_member": {"chat": CHAT, "from": USER, "date": 0}},
]

update = mutated(TEMPLATES) | mutated(TEMPLATES) | mutated(TEMPLATES) | anything
"""One update as `getUpdates` or a webhook hands it over, broken in up to four places, or anything at all."""

"""Splitting long text into Telegram-sized parts, and the token bucket's arithmetic."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.send_limits import Rate, gcra_reserve
from channels.telegram.sender import split_text, utf16_len


def test_short_text_is_one_part():
    assert split_text("hello") == ["hello"]
    assert split_text("") == [""]


def test_long_text_splits_on_line_boundaries():
    lines = [f"line {i:05d} " + "x" * 40 for i in range(300)]  # ~14,700 characters
    text = "\n".join(lines)
    parts = split_text(text)
    assert len(parts) == 4
    assert "".join(parts) == text
    assert all(utf16_len(p) <= 4096 for p in parts)
    assert all(p.endswith("\n") for p in parts[:-1])


def test_falls_back_to_words_then_hard_cuts():
    words = " ".join(["word"] * 2000)
    parts = split_text(words)
    assert "".join(parts) == words and all(p.endswith(" ") for p in parts[:-1])
    solid = "z" * 9000
    assert [len(p) for p in split_text(solid)] == [4096, 4096, 808]


def test_counts_utf16_units_and_never_splits_an_emoji():
    text = "\U0001f600" * 3000  # 6,000 UTF-16 units
    parts = split_text(text)
    assert [utf16_len(p) for p in parts] == [4096, 1904]
    assert "".join(parts) == text


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from(["a", " ", "\n", "é", "\U0001f600", "中"]), max_size=12_000),
       st.integers(min_value=2, max_value=5000))
def test_split_is_lossless_and_bounded(text, limit):
    parts = split_text(text, limit)
    assert "".join(parts) == text
    assert all(utf16_len(p) <= limit for p in parts)
    assert all(p for p in parts) or text == ""


def test_token_bucket_spaces_reservations():
    rate, tat, waits = Rate(per_s=2.0, burst=2), None, []
    for _ in range(4):
        wait, tat = gcra_reserve(tat, 100.0, rate)
        waits.append(wait)
    assert waits == pytest.approx([0.0, 0.0, 0.5, 1.0])
    waits = []
    for _ in range(3):  # ten seconds later: refilled only up to the burst
        wait, tat = gcra_reserve(tat, 110.0, rate)
        waits.append(wait)
    assert waits == pytest.approx([0.0, 0.0, 0.5])


class _StubBot:
    """Records sendMessage calls the way aiogram's `Bot` is called; no network."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    async def send_message(self, **kwargs):
        from types import SimpleNamespace

        self.calls.append(kwargs)
        return SimpleNamespace(message_id=100 + len(self.calls))


async def test_a_ten_thousand_character_reply_goes_out_in_three_ordered_parts():
    from bot.core.messages import Button, OutboundMessage
    from channels.telegram.sender import RateLimiter, TelegramSender

    text = "".join(f"{i:04d} " + "y" * 45 + "\n" for i in range(200))  # 200 lines of 51 = 10,200 characters
    text = text[:10_000]
    bot = _StubBot()
    sender = TelegramSender(bot, RateLimiter(per_chat=1000, overall=1000, chat_burst=100, overall_burst=100))
    ext = await sender.send(OutboundMessage("telegram", "4242", text, reply_to="m4242:7",
                                            buttons=(Button("Close", "/close 3"),)))
    parts = [c["text"] for c in bot.calls]
    assert [len(p) for p in parts] == [4080, 4080, 1840]  # cut after the last whole line that fits in 4,096
    assert "".join(parts) == text
    assert ext == "m4242:101"  # the first part's id stands for the message
    assert bot.calls[0]["reply_parameters"].message_id == 7 and bot.calls[1]["reply_parameters"] is None
    assert [c["reply_markup"] is not None for c in bot.calls] == [False, False, True]  # buttons under the last

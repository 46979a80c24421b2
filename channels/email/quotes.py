"""Strip quoted replies and signatures from a mail text, so the bot and the agent read what is new.

The full original is kept by reference (`raw_ref`); this only shapes the text that is logged and classified.
Conservative on purpose: when in doubt a line stays, and a text that would come out empty is kept whole.
"""

from __future__ import annotations

import re

# A line that introduces the quoted previous message; everything from it on is the old conversation.
_REPLY_HEADERS = [
    re.compile(r"^\s*On\b.{0,300}\bwrote:\s*$", re.I),  # Gmail, Apple Mail, Thunderbird
    re.compile(r"^\s*Le\b.{0,300}\ba écrit\s*:\s*$", re.I),
    re.compile(r"^\s*Am\b.{0,300}\bschrieb\b.{0,100}:\s*$", re.I),
    re.compile(r"^.{0,300}\bнаписал(а|\(а\))?\s*:\s*$", re.I),  # Russian clients
    re.compile(r"^.{0,300}(写道|寫道)\s*[:：]\s*$"),  # Chinese clients
    re.compile(r"^\s*-{2,}\s*(Original Message|Исходное сообщение|原始邮件|原始郵件)\s*-{2,}\s*$", re.I),
    re.compile(r"^\s*_{20,}\s*$"),  # Outlook's divider before the quoted header block
]
_CUT_HERE = re.compile("|".join(f"(?:{p.pattern})" for p in _REPLY_HEADERS), re.I)
# Outlook quotes without ">" but with a header block: "From: ...", then "Sent:"/"Date:" within the next lines.
_OUTLOOK_FROM = re.compile(r"^\s*\*?(From|От|发件人|寄件者)\s*[:：]", re.I)
_OUTLOOK_NEXT = re.compile(
    r"^\s*\*?(Sent|Date|To|Subject|Отправлено|Дата|Кому|Тема|发送时间|日期|收件人|主题)\s*[:：]", re.I
)

_SIGNATURE = re.compile(r"^--\s?$")
_MOBILE_SIGNATURE = re.compile(
    r"^\s*(Sent from my \w+|Sent from (Outlook|Mail) for \w+|Отправлено (с|из) .{1,40}|从我的.{1,20}发送)\s*$", re.I
)


def strip_quotes_and_signature(text: str) -> tuple[str, bool]:
    """The new part of a reply; and whether anything was cut."""
    lines = text.splitlines()
    cut = len(lines)
    for i, line in enumerate(lines):
        if _SIGNATURE.match(line) or _MOBILE_SIGNATURE.match(line) or _CUT_HERE.match(line):
            cut = i
            break
        if _OUTLOOK_FROM.match(line) and any(_OUTLOOK_NEXT.match(nxt) for nxt in lines[i + 1 : i + 4]):
            cut = i
            break
    kept = [line for line in lines[:cut] if not line.lstrip().startswith(">")]
    new = "\n".join(kept).strip()
    if not new:
        return text.strip(), False
    return new, new != text.strip()

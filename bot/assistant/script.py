"""Answer in the script the customer wrote: a message in Traditional Chinese gets the (Simplified) zh answer
converted to Traditional. The NLU says which script a message used (`NluResult.script`, see `nlu.chinese`);
this module only decides what that means for what the bot says."""

from __future__ import annotations

from nlu.chinese import HANT, to_traditional

TRADITIONAL = HANT


def answer_script(script: str | None) -> str | None:
    """The script the bot's Chinese texts must be converted to for this customer; None: as written."""
    return TRADITIONAL if script == TRADITIONAL else None


def in_script(text: str, script: str | None) -> str:
    """`text` (written in Simplified where it is Chinese) in the customer's script."""
    return to_traditional(text) if script == TRADITIONAL else text

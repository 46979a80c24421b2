"""Answer in the script the customer wrote: a message in Traditional Chinese gets the (Simplified) zh answer
converted to Traditional. The NLU says which script a message used (`NluResult.script`, see `nlu.chinese`);
this module only decides what that means for what the bot says.

Everything the bot converts is fixed text (FAQ answers, its own phrases and button titles): `prepare` converts
it all once when the bot loads, so no process holds the Simplified→Traditional converter (see `nlu.chinese`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from bot.assistant.texts import INTENT_TITLES, TEXTS
from nlu.chinese import HANT, prepare_traditional, to_traditional
from nlu.rasa_format import Responses

TRADITIONAL = HANT
CHINESE = "zh"


def answer_script(script: str | None) -> str | None:
    """The script the bot's Chinese texts must be converted to for this customer; None: as written."""
    return TRADITIONAL if script == TRADITIONAL else None


def in_script(text: str, script: str | None) -> str:
    """`text` (written in Simplified where it is Chinese) in the customer's script."""
    return to_traditional(text) if script == TRADITIONAL else text


def fixed_texts(responses: Responses) -> Iterator[str]:
    """Every text the bot may say to a customer writing Chinese: the answers it would pick for zh (the zh
    variations, else the default ones), its phrases and the topic titles on its buttons."""
    for variants in responses.by_intent.values():
        yield from variants.get(CHINESE) or variants.get(None) or ()
    for table in (*TEXTS.values(), *INTENT_TITLES.values()):
        if CHINESE in table:
            yield table[CHINESE]


def prepare(responses: Responses, cache_file: Path | None) -> int:
    """Convert the fixed texts to Traditional now (cached in `cache_file`); returns how many were converted."""
    return prepare_traditional(fixed_texts(responses), cache_file)


def cache_file_for(model_path: str | Path) -> Path:
    """Where the converted texts are kept: beside the NLU model they answer for."""
    model = Path(model_path)
    return model.with_name(f"{model.stem}.{TRADITIONAL}.json")

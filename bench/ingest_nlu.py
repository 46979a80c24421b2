"""The NLU's part of the ingestion benchmark: the round's new messages classified alone, as the dispatcher does
it (the default model, batches of `dispatch.batch_max`, through a fresh parse cache that remembers repeated
texts), and nothing else. No run that classifies every message can store faster than this: printed beside the
plain-insert baseline, it says how much of that baseline the classification alone already costs.
"""

from __future__ import annotations

import time

from bot.app import load_default_responder
from bot.core.messages import InboundMessage
from bot.settings import Settings
from nlu.parse_cache import ParseCache


def nlu_alone(settings: Settings, msgs: list[InboundMessage]) -> float:
    """Distinct messages classified per second, with the model and limits of `settings`."""
    parser = load_default_responder(settings).parses.parser
    first, texts = set(), []
    for m in msgs:  # a redelivery is a repeat the dispatcher does not classify again
        if (m.channel, m.external_id) not in first and m.text.strip():
            first.add((m.channel, m.external_id))
            texts.append(m.text[: settings.nlu.max_chars])
    size = settings.dispatch.batch_max
    ParseCache(parser).prime(texts[:size])  # the first call's one-off costs, as a running worker has paid them
    cache = ParseCache(parser)
    started = time.perf_counter()
    for i in range(0, len(texts), size):
        cache.prime(texts[i : i + size])
    return len(first) / (time.perf_counter() - started)

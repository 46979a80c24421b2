"""Natural-language understanding for tierdesk: intents, entities, language and out-of-scope detection.

A pure library (no imports from `bot/` or `crm_store/`): train an `IntentClassifier` on Rasa-format data,
`parse` a message into an `NluResult`, save and load it with joblib. Names are imported lazily, so a process
that needs only the Rasa data format (the rasa-sdk action server in `bot.assistant.rasa_actions`) starts
without loading scikit-learn.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nlu.classifier import ClassifierConfig, IntentClassifier, ModelFileError
    from nlu.entities import EntityExtractor
    from nlu.language import detect_language
    from nlu.result import Entity, NluResult

_EXPORTS = {
    "ClassifierConfig": "nlu.classifier",
    "IntentClassifier": "nlu.classifier",
    "ModelFileError": "nlu.classifier",
    "EntityExtractor": "nlu.entities",
    "detect_language": "nlu.language",
    "Entity": "nlu.result",
    "NluResult": "nlu.result",
}

__all__ = [
    "ClassifierConfig",
    "Entity",
    "EntityExtractor",
    "IntentClassifier",
    "ModelFileError",
    "NluResult",
    "detect_language",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'nlu' has no attribute {name!r}")

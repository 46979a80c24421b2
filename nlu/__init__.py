"""Natural-language understanding for tierdesk: intents, entities, language and out-of-scope detection.

A pure library (no imports from `bot/`): train an `IntentClassifier` on Rasa-format data, `parse` a message
into an `NluResult`, save and load it with joblib.
"""

from nlu.classifier import ClassifierConfig, IntentClassifier, ModelFileError
from nlu.entities import EntityExtractor
from nlu.language import detect_language
from nlu.result import Entity, NluResult

__all__ = [
    "ClassifierConfig",
    "Entity",
    "EntityExtractor",
    "IntentClassifier",
    "ModelFileError",
    "NluResult",
    "detect_language",
]

"""One classifier trained on our starter data, shared by the NLU tests (training once keeps them fast)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlu.classifier import ClassifierConfig, IntentClassifier
from nlu.rasa_format import TrainingData, load_nlu, load_responses

CONFIG = Path(__file__).resolve().parents[2] / "config"


@pytest.fixture(scope="session")
def starter_data() -> TrainingData:
    return load_nlu(CONFIG / "nlu.yml")


@pytest.fixture(scope="session")
def starter_responses():
    return load_responses(CONFIG / "responses.yml")


@pytest.fixture(scope="session")
def starter_classifier(starter_data: TrainingData) -> IntentClassifier:
    return IntentClassifier(config=ClassifierConfig.for_small_data(), entities=starter_data.entity_extractor()).fit(
        starter_data.texts, starter_data.labels
    )

"""The FAQ bot: answers a confident, in-scope question in the customer's language, hands off everything else.

Plugs into the dispatcher as a `Responder`. The model is trained once (or loaded from `settings.nlu.model_path`
when it is newer than the training data), never per message.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from bot.assistant.policy import DecisionRules, decide
from bot.assistant.responder import BotTurn, HumanOnly, Responder
from bot.assistant.script import answer_script, cache_file_for, in_script, prepare
from bot.assistant.texts import intent_title, say
from bot.core import metrics
from bot.settings import Settings
from nlu import encoder as encoders
from nlu.classifier import ClassifierConfig, IntentClassifier, ModelFileError
from nlu.parse_cache import ParseCache
from nlu.rasa_format import NluDataError, Responses, TrainingData, load_nlu, load_responses

log = logging.getLogger(__name__)

DEFAULT_LANGUAGE = "en"
RANKING_STORED = 3


class FaqResponder:
    """Decides per message (`bot.assistant.policy.decide`): answer from `responses`, ask which of two close topics
    was meant, or hand off with the NLU result attached. Answers and questions come in the customer's script.

    `BotTurn.language` is the message's language (or the customer's known one), None when neither is known, so
    a message like "48213" never overwrites what we know; the answer itself then falls back to English.
    For complaint / human_handoff, `nlu["handoff_message"]` carries the "a person will take over" notice in
    the customer's language.
    """

    def __init__(
        self,
        classifier: IntentClassifier,
        responses: Responses,
        *,
        answer_threshold: float = 0.55,
        handoff_intents: list[str] | tuple[str, ...] = ("complaint", "human_handoff"),
        default_language: str = DEFAULT_LANGUAGE,
    ) -> None:
        self.classifier = classifier
        self.responses = responses
        self.answer_threshold = answer_threshold
        self.handoff_intents = frozenset(handoff_intents)
        self.rules = DecisionRules(handoff_intents=tuple(handoff_intents))
        self.answerable = frozenset(responses.by_intent) - self.handoff_intents
        self.default_language = default_language
        self.languages = {lang for variants in responses.by_intent.values() for lang in variants if lang}
        self.languages.add(default_language)
        self.parses = ParseCache(classifier)

    def prepare(self, texts: list[str]) -> None:
        """Classify a batch's texts at once, ahead of `respond` for each (see `nlu.parse_cache`)."""
        self.parses.prime(texts)

    def _known_language(self, detected: str | None, customer_language: str | None) -> str | None:
        """The message's language when we answer in it, else the customer's; None when neither is known."""
        for candidate in (detected, customer_language):
            if candidate in self.languages:
                return candidate
        return None

    def answer_for(self, intent: str, language: str | None, script: str | None = None) -> str | None:
        """The written answer for a topic the customer chose, in their language and script."""
        answer = self.responses.answer(intent, language or self.default_language)
        return in_script(answer, script) if answer else None

    def respond(self, text: str, *, customer_language: str | None = None) -> BotTurn:
        """Never raises: any failure becomes a handoff with the reason."""
        try:
            return self._respond(text, customer_language)
        except Exception as exc:  # the dispatcher must always be able to route the message
            log.exception("FAQ bot failed; handing the message to a person")
            return BotTurn(answer=None, handoff_reason=f"bot error: {type(exc).__name__}")

    def _respond(self, text: str, customer_language: str | None) -> BotTurn:
        result = self.parses.parse(text)
        known = self._known_language(result.language, customer_language)
        language = known or self.default_language
        script = answer_script(result.script) if language == "zh" else None
        choice = decide(result, answer_threshold=self.answer_threshold, answerable=self.answerable, rules=self.rules)
        nlu: dict[str, Any] = result.as_dict(top=RANKING_STORED)
        nlu.update(answer_language=language, decision=choice.action, decision_reason=choice.reason)
        metrics.count_decision(choice.action, result.language)
        turn = {"intent": choice.intent or result.intent, "language": known, "nlu": nlu, "script": script}
        if choice.action == "clarify":
            options = tuple((intent, in_script(intent_title(intent, language), script)) for intent in choice.options)
            question = in_script(say("clarify_question", language), script)
            return BotTurn(question=question, options=options, handoff_reason=choice.reason, **turn)
        if choice.action == "answer" and choice.intent is not None:
            answer = self.responses.answer(choice.intent, language)
            if answer:
                return BotTurn(answer=in_script(answer, script), **turn)
        notice = self.responses.answer(choice.intent, language) if choice.intent in self.handoff_intents else None
        if notice:
            nlu["handoff_message"] = in_script(notice, script)
        return BotTurn(answer=None, handoff_reason=choice.reason, **turn)


def _small_data_config(max_chars: int, encoder: str | None = None) -> ClassifierConfig:
    config = ClassifierConfig.for_small_data()
    config.max_chars = max_chars
    config.encoder = encoder
    return config


def train_classifier(data: TrainingData, max_chars: int = 2000, encoder: str | None = None) -> IntentClassifier:
    """The classifier for our own (small) training data, with the sentence encoder the settings name."""
    classifier = IntentClassifier(config=_small_data_config(max_chars, encoder), entities=data.entity_extractor())
    return classifier.fit(data.texts, data.labels)


def usable_encoder(settings: Settings) -> str | None:
    """The configured sentence encoder, or None (logged, with how to install it) when it cannot be loaded:
    the bot then answers with TF-IDF alone rather than not at all."""
    name = settings.nlu.encoder
    if not name:
        return None
    try:
        encoders.load(name)
    except encoders.EncoderUnavailable as exc:
        log.error("NLU runs without its sentence encoder: %s", exc)
        return None
    return name


def _model_is_fresh(model: Path, sources: list[Path]) -> bool:
    if not model.exists():
        return False
    built = model.stat().st_mtime
    return all(not src.exists() or src.stat().st_mtime <= built for src in sources)


def load_classifier(settings: Settings, *, retrain: bool = False) -> IntentClassifier:
    """The saved model when newer than the training data, else a freshly trained (and saved) one.

    Raises NluDataError for unusable training data (the message names the file and line).
    """
    data_path = settings.config_path(settings.nlu.data)
    model_path = Path(settings.nlu.model_path)
    encoder = usable_encoder(settings)
    if not retrain and _model_is_fresh(model_path, [data_path]):
        try:
            classifier = IntentClassifier.load(model_path)
            classifier.config.max_chars = settings.nlu.max_chars
            if classifier.config == _small_data_config(settings.nlu.max_chars, encoder):
                return classifier
            log.info("retraining the NLU model: its configuration changed")
        except ModelFileError as exc:
            log.warning("retraining the NLU model: %s", exc)
    started = time.perf_counter()
    classifier = train_classifier(load_nlu(data_path), settings.nlu.max_chars, encoder)
    log.info("trained the NLU model on %s in %.1f s", data_path, time.perf_counter() - started)
    try:
        classifier.save(model_path)
    except OSError as exc:
        log.warning("could not save the NLU model to %s (%s); it will be retrained next start", model_path, exc)
    return classifier


def load_responder(settings: Settings) -> Responder:
    """The FAQ bot from settings; HumanOnly when NLU is off or its data is unusable (logged with file:line)."""
    if not settings.nlu.enabled:
        return HumanOnly()
    try:
        classifier = load_classifier(settings)
        responses = load_responses(settings.config_path(settings.nlu.responses))
        prepare(responses, cache_file_for(settings.nlu.model_path))
    except NluDataError as exc:
        log.error("NLU disabled, every message goes to a person: %s", exc)
        return HumanOnly()
    return FaqResponder(
        classifier,
        responses,
        answer_threshold=settings.nlu.answer_threshold,
        handoff_intents=settings.nlu.handoff_intents,
    )

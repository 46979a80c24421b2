"""The bot on our held-out messages (tests/nlu/heldout/*.csv): what customers get, per language and script.

Used by bench/nlu.py. The model is trained on config/nlu.yml exactly as the bot trains it, the decision is the
bot's (`bot.assistant.policy.decide` through the FAQ bot's settings). Baselines measured in the same run:
the same model without script conversion (Traditional Chinese and Latin-letter Russian classified as written),
and without Chinese words (character n-grams alone).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.assistant.faq import train_classifier
from bot.cli.nlu_eval import bot_decision
from bot.settings import get_settings
from nlu.classifier import ClassifierConfig, IntentClassifier
from nlu.evaluation import EvalReport, LabelledSet, evaluate_trained, read_csv
from nlu.language import detect
from nlu.rasa_format import TrainingData, load_nlu

ROOT = Path(__file__).resolve().parent.parent
HELDOUT = ROOT / "tests" / "nlu" / "heldout"
TRAINING = ROOT / "config" / "nlu.yml"


@dataclass(slots=True)
class HeldoutRun:
    name: str
    by_language: EvalReport
    by_script: EvalReport


def load_heldout(folder: Path) -> LabelledSet:
    rows = LabelledSet([], [], [])
    for path in sorted(folder.glob("*.csv")):
        rows += read_csv(path, label_column="intent")
    return rows


def _script_groups(rows: LabelledSet) -> list[str]:
    return [f"{lang} {detect(text).script or '-'}" for text, lang in zip(rows.texts, rows.languages, strict=True)]


def run_model(
    name: str, classifier: IntentClassifier, rows: LabelledSet, scripts: list[str] | None = None
) -> HeldoutRun:
    """`scripts`: the language/script group of each row (by default detected on the rows' own text)."""
    settings = get_settings()
    _, decide = bot_decision(settings, classifier)
    kwargs = {"oos_label": classifier.oos_label, "decide": decide, "no_answer_intents": settings.nlu.handoff_intents}
    by_language = evaluate_trained(classifier, rows.split, test_groups=rows.languages, **kwargs)
    by_script = evaluate_trained(classifier, rows.split, test_groups=_script_groups(rows), **kwargs)
    return HeldoutRun(name, by_language, by_script)


def _variant(data: TrainingData, **changes: bool) -> IntentClassifier:
    config = ClassifierConfig.for_small_data()
    for name, value in changes.items():
        setattr(config, name, value)
    return IntentClassifier(config=config, entities=data.entity_extractor()).fit(data.texts, data.labels)


def runs(folder: Path = HELDOUT, training: Path = TRAINING, encoders: tuple[str, ...] = ()) -> list[HeldoutRun]:
    """Ours, then the same model without script conversion, and with Chinese as character n-grams only; then
    ours with each sentence encoder (`nlu.encoder`) beside TF-IDF, as `nlu.encoder = NAME` in the settings."""
    data = load_nlu(training)
    rows = load_heldout(folder)
    done = [
        run_model("tierdesk", train_classifier(data), rows),
        run_model("without script conversion", _variant(data, convert_scripts=False), rows),
        run_model("Chinese as char n-grams only", _variant(data, chinese_words=False), rows),
    ]
    for name in encoders:
        done.append(run_model(f"tierdesk + {name}", train_classifier(data, encoder=name), rows))
    return done


def latency(classifier: IntentClassifier, texts: list[str], repeat: int = 3) -> dict[str, float]:
    """Single-message p50/p99/mean (ms) and the mean per message of one `parse_many` over all texts."""
    single = []
    for _ in range(repeat):
        for text in texts:
            t0 = time.perf_counter()
            classifier.parse(text)
            single.append((time.perf_counter() - t0) * 1000.0)
    t0 = time.perf_counter()
    classifier.parse_many(texts)
    batch = (time.perf_counter() - t0) * 1000.0 / max(len(texts), 1)
    return {
        "p50_ms": float(np.percentile(single, 50)),
        "p99_ms": float(np.percentile(single, 99)),
        "mean_ms": float(np.mean(single)),
        "batch_ms": batch,
    }

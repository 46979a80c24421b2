"""Evaluating a classifier the way the out-of-scope literature does (Larson et al. 2019, CLINC150).

Pure: reads data files and returns figures; printing is the CLI's and the benchmark's business.
In-scope accuracy counts a message right only when it gets its intent and is not rejected; OOS recall is the
share of out-of-scope messages rejected; OOS precision the share of rejections that were out of scope.
Data without an out-of-scope label gets plain accuracy: no rejection threshold unless one is asked for
(a threshold chosen without out-of-scope examples can only reject right answers).
With a `decide` function (the bot's decision on an NluResult), the report adds what customers got:
correct answers, wrong answers, handoffs and clarifying questions per language (`nlu.outcomes`).
"""

from __future__ import annotations

import csv
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from nlu.classifier import ClassifierConfig, IntentClassifier
from nlu.outcomes import DecisionRates, Outcome, rates_by_group
from nlu.rasa_format import load_nlu
from nlu.result import NluResult

CLINC_OOS = "oos"

Split = tuple[list[str], list[str]]
Decide = Callable[[NluResult], Outcome]


class EvalDataError(Exception):
    """An evaluation file that cannot be read (missing, wrong columns, wrong JSON shape)."""


@dataclass(slots=True)
class EvalReport:
    in_scope_accuracy: float
    oos_recall: float | None
    oos_precision: float | None
    macro_f1: float
    train_seconds: float
    p50_ms: float
    p99_ms: float
    threshold: float
    n_train: int
    n_test: int
    n_test_oos: int
    confused: list[tuple[str, str, int]] = field(default_factory=list)
    by_group: dict[str, float] = field(default_factory=dict)
    """In-scope accuracy per group of test messages (e.g. per language), when groups were given."""
    decisions: dict[str, DecisionRates] = field(default_factory=dict)
    """The bot's decision per group (and "all"), when a decide function was given."""

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(slots=True)
class LabelledSet:
    """Rows of a labelled CSV: text, label and the language each was written in."""

    texts: list[str]
    labels: list[str]
    languages: list[str]

    @property
    def split(self) -> Split:
        return self.texts, self.labels

    def __add__(self, other: LabelledSet) -> LabelledSet:
        return LabelledSet(self.texts + other.texts, self.labels + other.labels, self.languages + other.languages)


def load_clinc(path: str | Path) -> dict[str, Split]:
    """CLINC150 `data_full.json`: {'train': [[text, intent], ...], 'oos_train': ..., 'val', 'test', ...}."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise EvalDataError(f"{path}: no such file") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EvalDataError(f"{path}: not CLINC150 JSON ({exc})") from exc
    splits: dict[str, Split] = {}
    for name in ("train", "oos_train", "val", "oos_val", "test", "oos_test"):
        rows = raw.get(name) if isinstance(raw, dict) else None
        if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) == 2 for r in rows):
            raise EvalDataError(f"{path}: missing or malformed split {name!r} (expected [[text, intent], ...])")
        splits[name] = ([str(r[0]) for r in rows], [str(r[1]) for r in rows])
    return splits


def read_csv(
    path: str | Path, *, text_column: str = "text", label_column: str = "label", language_column: str = "language"
) -> LabelledSet:
    """A labelled CSV with a header; rows without a label are skipped.

    The language of a row is its `language_column` when the file has one, else the file's name without the
    extension (tests/nlu/heldout/zh.csv holds Chinese).
    """
    try:
        with Path(path).open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            columns = set(reader.fieldnames or ())
            if not {text_column, label_column} <= columns:
                raise EvalDataError(
                    f"{path}: needs a header with columns {text_column!r} and {label_column!r} "
                    f"(has {', '.join(sorted(columns)) or 'none'}; see --text-column / --label-column)"
                )
            rows = LabelledSet([], [], [])
            for row in reader:
                if row.get(label_column):
                    rows.texts.append(row.get(text_column) or "")
                    rows.labels.append(row[label_column].strip())
                    rows.languages.append((row.get(language_column) or Path(path).stem).strip())
    except FileNotFoundError as exc:
        raise EvalDataError(f"{path}: no such file") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise EvalDataError(f"{path}: not a UTF-8 CSV ({exc})") from exc
    if not rows.texts:
        raise EvalDataError(f"{path}: no labelled rows")
    return rows


def load_csv(path: str | Path, *, text_column: str = "text", label_column: str = "label") -> Split:
    """The (texts, labels) of `read_csv`."""
    return read_csv(path, text_column=text_column, label_column=label_column).split


def _join(*splits: Split) -> Split:
    return [t for s in splits for t in s[0]], [label for s in splits for label in s[1]]


def evaluate(
    train: Split,
    test: Split,
    *,
    val: Split | None = None,
    oos_label: str | None = None,
    make_classifier: Callable[[str], IntentClassifier] | None = None,
    test_groups: Sequence[str] | None = None,
    reject: bool | None = None,
    decide: Decide | None = None,
    encoder: str | None = None,
) -> EvalReport:
    """Train on `train` (threshold on `val`, else on a held-out part of train), then score `test`.

    `reject`: choose a rejection threshold; by default only when there is an out-of-scope label.
    `encoder`: a sentence encoder beside TF-IDF (`ClassifierConfig.with_encoder`), unless `make_classifier`.
    """
    label = oos_label or "__no_oos__"
    if make_classifier is not None:
        classifier = make_classifier(label)
    else:
        config = ClassifierConfig.with_encoder(encoder) if encoder else ClassifierConfig()
        config.use_threshold = reject if reject is not None else oos_label is not None
        classifier = IntentClassifier(config=config, oos_label=label)
    started = time.perf_counter()
    if val is None:
        classifier.fit(train[0], train[1])
    else:
        classifier.fit(train[0], train[1], val_texts=val[0], val_labels=val[1])
    train_seconds = time.perf_counter() - started
    return evaluate_trained(
        classifier,
        test,
        oos_label=label,
        test_groups=test_groups,
        decide=decide,
        train_seconds=train_seconds,
        n_train=len(train[0]),
    )


def evaluate_trained(
    classifier: IntentClassifier,
    test: Split,
    *,
    oos_label: str,
    test_groups: Sequence[str] | None = None,
    decide: Decide | None = None,
    no_answer_intents: Sequence[str] = (),
    train_seconds: float = 0.0,
    n_train: int = 0,
) -> EvalReport:
    """Score a trained classifier on `test`, one message at a time as the bot sees them.

    `no_answer_intents` (with `decide`): intents whose messages should get no FAQ answer; the out-of-scope
    label always counts as one.
    """
    predicted, latencies, results = [], [], []
    for text in test[0]:
        t0 = time.perf_counter()
        result = classifier.parse(text)
        latencies.append((time.perf_counter() - t0) * 1000.0)
        results.append(result)
        predicted.append(oos_label if result.out_of_scope else result.intent)
    report = score(test[1], predicted, oos_label, train_seconds, latencies, classifier.threshold, n_train)
    groups = list(test_groups) if test_groups is not None else None
    if groups is not None:
        report.by_group = _accuracy_by_group(test[1], predicted, groups, oos_label)
    if decide is not None:
        outcomes = [decide(r) for r in results]
        no_answer = {*no_answer_intents, oos_label, classifier.oos_label}
        report.decisions = rates_by_group(test[1], outcomes, groups or ["-"] * len(outcomes), no_answer)
        if len(report.decisions) > 1:
            report.decisions["all"] = rates_by_group(test[1], outcomes, ["all"] * len(outcomes), no_answer)["all"]
    return report


def _accuracy_by_group(gold: Sequence[str], predicted: Sequence[str], groups: Sequence[str], oos: str) -> dict:
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for g, p, group in zip(gold, predicted, groups, strict=True):
        if g != oos:
            total[group] += 1
            right[group] += g == p
    return {group: right[group] / total[group] for group in sorted(total)}


def evaluate_clinc(path: str | Path, **kwargs) -> EvalReport:
    """The published protocol: train on train+oos_train, threshold on val+oos_val, report on test+oos_test."""
    s = load_clinc(path)
    return evaluate(
        _join(s["train"], s["oos_train"]),
        _join(s["test"], s["oos_test"]),
        val=_join(s["val"], s["oos_val"]),
        oos_label=CLINC_OOS,
        **kwargs,
    )


def score(
    gold: Sequence[str],
    predicted: Sequence[str],
    oos_label: str,
    train_seconds: float,
    latencies_ms: Sequence[float],
    threshold: float,
    n_train: int,
) -> EvalReport:
    """The figures from gold and predicted labels (an OOS prediction is `oos_label`)."""
    g, p = np.array(gold), np.array(predicted)
    in_scope = g != oos_label
    rejected = p == oos_label
    n_oos = int((~in_scope).sum())
    accuracy = float((p[in_scope] == g[in_scope]).mean()) if in_scope.any() else 0.0
    recall = float(rejected[~in_scope].mean()) if n_oos else None
    precision = float((~in_scope[rejected]).mean()) if n_oos and rejected.any() else (0.0 if n_oos else None)
    confused = Counter((a, b) for a, b in zip(g, p, strict=True) if a != b)
    lat = np.array(latencies_ms) if len(latencies_ms) else np.zeros(1)
    return EvalReport(
        in_scope_accuracy=accuracy,
        oos_recall=recall,
        oos_precision=precision,
        macro_f1=macro_f1(g, p),
        train_seconds=train_seconds,
        p50_ms=float(np.percentile(lat, 50)),
        p99_ms=float(np.percentile(lat, 99)),
        threshold=threshold,
        n_train=n_train,
        n_test=len(g),
        n_test_oos=n_oos,
        confused=[(a, b, n) for (a, b), n in confused.most_common(10)],
    )


def macro_f1(gold: np.ndarray, predicted: np.ndarray) -> float:
    """Unweighted mean F1 over the gold labels (the OOS label counts as one class when present)."""
    scores = []
    for label in np.unique(gold):
        tp = float(((predicted == label) & (gold == label)).sum())
        fp = float(((predicted == label) & (gold != label)).sum())
        fn = float(((predicted != label) & (gold == label)).sum())
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return float(np.mean(scores)) if scores else 0.0


def evaluate_rasa_holdout(
    path: str | Path, *, test_size: float = 0.25, seed: int = 7, oos_label: str = "out_of_scope"
) -> EvalReport:
    """Our own data: a held-out split of a Rasa nlu.yml, stratified by intent and language.

    `by_group` holds the in-scope accuracy per language (examples without a language count as '-').
    Uses the small-data configuration, as the FAQ bot does.
    """
    data = load_nlu(path)
    strata = [f"{e.intent}/{e.language}" for e in data.examples]
    train, test = train_test_split(data.examples, test_size=test_size, random_state=seed, stratify=strata)
    extractor = data.entity_extractor()
    report = evaluate(
        ([e.text for e in train], [e.intent for e in train]),
        ([e.text for e in test], [e.intent for e in test]),
        oos_label=oos_label,
        make_classifier=lambda label: IntentClassifier(
            config=ClassifierConfig.for_small_data(), oos_label=label, entities=extractor
        ),
        test_groups=[e.language or "-" for e in test],
    )
    return report

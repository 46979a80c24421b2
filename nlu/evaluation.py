"""Evaluating a classifier the way the out-of-scope literature does (Larson et al. 2019, CLINC150).

Pure: reads data files and returns figures; printing is the CLI's and the benchmark's business.
In-scope accuracy counts a message right only when it gets its intent and is not rejected; OOS recall is the
share of out-of-scope messages rejected; OOS precision the share of rejections that were out of scope.
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
from nlu.rasa_format import load_nlu

CLINC_OOS = "oos"

Split = tuple[list[str], list[str]]


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

    def as_dict(self) -> dict:
        return asdict(self)


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


def load_csv(path: str | Path) -> Split:
    """A labelled CSV with a header naming the columns `text` and `label`."""
    try:
        with Path(path).open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not {"text", "label"} <= set(reader.fieldnames):
                raise EvalDataError(f"{path}: needs a header with columns 'text' and 'label'")
            texts, labels = [], []
            for row in reader:
                if row.get("label"):
                    texts.append(row.get("text") or "")
                    labels.append(row["label"])
    except FileNotFoundError as exc:
        raise EvalDataError(f"{path}: no such file") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise EvalDataError(f"{path}: not a UTF-8 CSV ({exc})") from exc
    if not texts:
        raise EvalDataError(f"{path}: no labelled rows")
    return texts, labels


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
) -> EvalReport:
    """Train on `train` (threshold on `val`, else on a held-out part of train), then score `test`."""
    label = oos_label or "__no_oos__"
    classifier = make_classifier(label) if make_classifier else IntentClassifier(oos_label=label)
    started = time.perf_counter()
    if val is None:
        classifier.fit(train[0], train[1])
    else:
        classifier.fit(train[0], train[1], val_texts=val[0], val_labels=val[1])
    train_seconds = time.perf_counter() - started
    predicted, latencies = [], []
    for text in test[0]:
        t0 = time.perf_counter()
        result = classifier.parse(text)
        latencies.append((time.perf_counter() - t0) * 1000.0)
        predicted.append(label if result.out_of_scope else result.intent)
    report = score(test[1], predicted, label, train_seconds, latencies, classifier.threshold, len(train[0]))
    if test_groups is not None:
        report.by_group = _accuracy_by_group(test[1], predicted, test_groups, label)
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

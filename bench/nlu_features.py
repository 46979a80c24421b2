"""CLINC150 feature and model sweep for the TF-IDF classifier: which features and which linear model, at the
operating point chosen on validation data.

    python bench/nlu_features.py ../shared/data/clinc150/data_full.json [--only NAME ...]

Same protocol as `bench/nlu.py`: train on train + oos_train, temperature and rejection threshold on
val + oos_val (`nlu.calibration`, as the classifier does), figures on test + oos_test. Beside the operating
point chosen on validation, each row prints the figures without any threshold (the in-scope ceiling of the
features: rejection can only lower it) and the best in-scope accuracy on test at OOS recall >= 60 % (an
oracle, to show whether any threshold could meet the target; never used to choose).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.pipeline import FeatureUnion
from sklearn.svm import LinearSVC

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nlu.calibration import choose_threshold, fit_temperature, softmax
from nlu.evaluation import CLINC_OOS, load_clinc

OOS_WEIGHT = {CLINC_OOS: 3.0}


def features(word=(1, 2), char=(1, 5), analyzer="char_wb") -> FeatureUnion:
    parts = [("words", TfidfVectorizer(ngram_range=word, sublinear_tf=True))]
    if char:
        parts.append(("chars", TfidfVectorizer(analyzer=analyzer, ngram_range=char, sublinear_tf=True, min_df=2)))
    return FeatureUnion(parts)


CANDIDATES: dict[str, Callable[[], tuple[FeatureUnion, object]]] = {
    "ours: word 1-2 + char_wb 1-5, SVM C=1, OOS x3": lambda: (features(), LinearSVC(C=1.0, class_weight=OOS_WEIGHT)),
    "word 1-2 + char_wb 2-5, SVM C=1": lambda: (features(char=(2, 5)), LinearSVC(C=1.0, class_weight=OOS_WEIGHT)),
    "word 1-2 + char_wb 2-5, SVM C=0.5": lambda: (features(char=(2, 5)), LinearSVC(C=0.5, class_weight=OOS_WEIGHT)),
    "word 1-2 + char_wb 2-5, SVM C=2": lambda: (features(char=(2, 5)), LinearSVC(C=2.0, class_weight=OOS_WEIGHT)),
    "word 1-3 + char_wb 2-5, SVM C=1": lambda: (
        features(word=(1, 3), char=(2, 5)),
        LinearSVC(C=1.0, class_weight=OOS_WEIGHT),
    ),
    "word 1-2 + char_wb 2-5, SVM, OOS x1": lambda: (
        features(char=(2, 5)),
        LinearSVC(C=1.0, class_weight={CLINC_OOS: 1}),
    ),
    "word 1-2 + char_wb 2-5, SVM, OOS x6": lambda: (
        features(char=(2, 5)),
        LinearSVC(C=1.0, class_weight={CLINC_OOS: 6}),
    ),
    "word 1-2 + char 2-6 (across words), SVM": lambda: (
        features(char=(2, 6), analyzer="char"),
        LinearSVC(C=1.0, class_weight=OOS_WEIGHT),
    ),
    "word 1-2 + char_wb 2-5, SGD modified Huber": lambda: (
        features(char=(2, 5)),
        SGDClassifier(loss="modified_huber", alpha=5e-5, class_weight=OOS_WEIGHT, max_iter=30, random_state=0),
    ),
    "word 1-2 + char_wb 2-5, logistic regression C=20": lambda: (
        features(char=(2, 5)),
        LogisticRegression(C=20, max_iter=300, class_weight=OOS_WEIGHT),
    ),
}


def in_scope_gate(probs: np.ndarray, classes: list[str]) -> np.ndarray:
    """P(best in-scope intent) / (that + P(out of scope)), as `IntentClassifier` gates."""
    oos = classes.index(CLINC_OOS)
    in_scope = probs.copy()
    in_scope[:, oos] = -1.0
    top = in_scope.max(axis=1)
    return top / np.maximum(top + probs[:, oos], 1e-12)


def measure(data: dict, make: Callable[[], tuple[FeatureUnion, object]]) -> dict[str, float]:
    def join(a: str, b: str) -> tuple[list[str], list[str]]:
        return [t.casefold() for t in data[a][0] + data[b][0]], list(data[a][1] + data[b][1])

    train, val, test = join("train", "oos_train"), join("val", "oos_val"), join("test", "oos_test")
    feats, model = make()
    started = time.perf_counter()
    model.fit(feats.fit_transform(train[0]), train[1])
    seconds = time.perf_counter() - started
    classes = [str(c) for c in model.classes_]
    sv, st = (model.decision_function(feats.transform(split[0])) for split in (val, test))
    temperature = fit_temperature(sv, np.array(val[1]), classes)
    cv, ct = (in_scope_gate(softmax(s, temperature), classes) for s in (sv, st))
    names = np.array(classes)
    threshold = choose_threshold(cv, names[sv.argmax(1)], np.array(val[1]), CLINC_OOS)
    predicted, gold = names[st.argmax(1)], np.array(test[1])
    in_scope = gold != CLINC_OOS

    def at(thr: float) -> tuple[float, float]:
        rejected = (predicted == CLINC_OOS) | (ct < thr)
        return float(((predicted == gold) & ~rejected)[in_scope].mean()), float(rejected[~in_scope].mean())

    chosen, ceiling = at(threshold), at(0.0)
    meeting = [at(t) for t in np.quantile(ct, np.linspace(0, 0.5, 101))]
    oracle = max((p for p in meeting if p[1] >= 0.60), default=(0.0, 0.0))
    return {"in_scope": chosen[0], "oos_recall": chosen[1], "threshold": threshold, "ceiling": ceiling[0],
            "oracle_in_scope": oracle[0], "train_s": seconds}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", default="../shared/data/clinc150/data_full.json")
    parser.add_argument("--only", action="append", default=[], help="run candidates whose name contains this")
    args = parser.parse_args(argv)
    data = load_clinc(args.data)
    print(f"{'features and model':<52}{'in-scope':>9}{'OOS rec':>9}{'no-thr':>8}{'oracle@60':>10}{'train s':>8}")
    for name, make in CANDIDATES.items():
        if args.only and not any(part in name for part in args.only):
            continue
        r = measure(data, make)
        print(
            f"{name:<52}{100 * r['in_scope']:>8.1f}%{100 * r['oos_recall']:>8.1f}%{100 * r['ceiling']:>7.1f}%"
            f"{100 * r['oracle_in_scope']:>9.1f}%{r['train_s']:>8.0f}",
            flush=True,
        )
    print("target: in-scope >= 95 % with OOS recall >= 60 % at one operating point (chosen on validation)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Turning linear scores into probabilities and choosing the out-of-scope threshold, on validation data only.

LinearSVC scores become probabilities by a softmax whose temperature is fitted on the validation split
(temperature scaling), which keeps training a single fit instead of one per calibration fold.
"""

from __future__ import annotations

import math

import numpy as np


def holdout(texts: list[str], labels: list[str], fraction: float) -> tuple[list, list, list, list]:
    """A stratified held-out part for calibration (plain random when some class is too small)."""
    from sklearn.model_selection import train_test_split  # training only (see nlu.linear)

    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    stratify = labels if min(counts.values()) >= 2 and len(labels) * fraction >= len(counts) else None
    return train_test_split(texts, labels, test_size=fraction, random_state=0, stratify=stratify)


def softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    z = scores * temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(scores: np.ndarray, gold: np.ndarray, classes: list[str]) -> float:
    """The softmax scale that minimises the negative log-likelihood of the validation labels."""
    index = {c: i for i, c in enumerate(classes)}
    known = np.array([g in index for g in gold])
    if not known.any():
        return 1.0
    rows = np.arange(int(known.sum()))
    cols = np.array([index[g] for g in gold[known]])
    best_t, best_nll = 1.0, math.inf
    for t in np.geomspace(0.5, 100.0, 60):
        nll = -np.log(softmax(scores[known], t)[rows, cols] + 1e-12).mean()
        if nll < best_nll:
            best_t, best_nll = float(t), float(nll)
    return best_t


def choose_threshold(
    confidence: np.ndarray,
    predicted: np.ndarray,
    gold: np.ndarray,
    oos_label: str,
    keep_correct: float = 0.97,
    max_accuracy_loss: float = 0.005,
) -> float:
    """The rejection threshold on the validation split.

    With out-of-scope examples: the highest threshold (most OOS recall) whose in-scope accuracy stays within
    `max_accuracy_loss` of the accuracy without a threshold; an answer counts only when right and not rejected.
    Maximising accuracy + recall instead over-rejects, because validation sets hold few OOS examples.
    Without OOS examples: the highest threshold that still keeps `keep_correct` of the correct answers.
    """
    in_scope = gold != oos_label
    if not in_scope.any():
        return 0.0
    right = (predicted == gold) & (predicted != oos_label)
    if (~in_scope).any():
        candidates = np.unique(confidence[in_scope])
        base = float(right[in_scope].mean())
        best = 0.0
        for thr in candidates:
            accuracy = float((right & (confidence >= thr))[in_scope].mean())
            if accuracy < base - max_accuracy_loss - 1e-9:
                break
            best = float(thr)
        return best
    correct = confidence[in_scope & (predicted == gold)]
    return float(np.quantile(correct, 1.0 - keep_correct)) if correct.size else 0.0

"""How far a message lies from everything the intents were trained on: a second out-of-scope signal.

The classifier's confidence says which intent wins; it cannot say that a message resembles none of them,
because a linear model's scores grow along directions no training example took. The distance gate measures
that directly in a sentence encoder's space: the Mahalanobis distance from the message to the nearest intent's
mean, under the covariance the intents share (Lee et al. 2018; on intent data, Podolskiy et al. 2021). It is
fitted on the in-scope training vectors only, so it needs no out-of-scope examples.

`combined_gate` puts it beside the classifier's confidence on one scale: each signal is standardised on the
in-scope validation messages, and the gate is log(confidence) + weight x distance score. One threshold on that
sum then rejects what either signal finds unlike the intents, chosen on validation data as before.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RIDGE = 1e-3
"""Added to the shared covariance's diagonal: 512 dimensions from a few thousand examples need it
(chosen on CLINC150's validation split among 1e-4, 1e-3 and 1e-2)."""


@dataclass(slots=True)
class DistanceGate:
    """Fitted once from labelled vectors; `score` is minus the squared distance to the nearest intent."""

    means: np.ndarray
    precision: np.ndarray
    mean_terms: np.ndarray
    """mu P mu for every intent mean, kept so a score costs two matrix products."""

    @classmethod
    def fit(cls, vectors: np.ndarray, labels: np.ndarray, ridge: float = RIDGE) -> DistanceGate:
        names, index = np.unique(labels, return_inverse=True)
        means = np.stack([vectors[index == i].mean(axis=0) for i in range(len(names))])
        residuals = vectors - means[index]
        covariance = residuals.T @ residuals / max(len(vectors), 1) + ridge * np.eye(vectors.shape[1])
        precision = np.linalg.inv(covariance)
        return cls(means, precision, np.einsum("ij,jk,ik->i", means, precision, means))

    def score(self, vectors: np.ndarray) -> np.ndarray:
        """Higher is nearer to some intent; one row per vector."""
        projected = vectors @ self.precision
        squared = (projected * vectors).sum(axis=1)[:, None] - 2.0 * projected @ self.means.T + self.mean_terms
        return -squared.min(axis=1)


@dataclass(slots=True)
class Standard:
    """Mean and spread of a signal over the in-scope validation messages."""

    mean: float
    spread: float

    @classmethod
    def of(cls, values: np.ndarray) -> Standard:
        return cls(float(values.mean()), float(values.std()) or 1.0)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        return (values - self.mean) / self.spread


@dataclass(slots=True)
class CombinedGate:
    """log(confidence) and the distance score, standardised and summed with `weight` on the distance."""

    confidence: Standard
    distance: Standard
    weight: float

    def __call__(self, confidence: np.ndarray, distance: np.ndarray) -> np.ndarray:
        return self.confidence(np.log(np.maximum(confidence, 1e-12))) + self.weight * self.distance(distance)


def combined_gate(confidence: np.ndarray, distance: np.ndarray, in_scope: np.ndarray, weight: float) -> CombinedGate:
    """The gate standardised on the in-scope rows of the validation signals."""
    log_confidence = np.log(np.maximum(confidence[in_scope], 1e-12))
    return CombinedGate(Standard.of(log_confidence), Standard.of(distance[in_scope]), weight)

"""The distance gate and its combination with confidence, on numbers worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from nlu.novelty import DistanceGate, Standard, combined_gate


def two_intents() -> DistanceGate:
    # A around (0, 0), B around (10, 0); residuals (+-1, 0): covariance [[1, 0], [0, 0]], + ridge 1 -> [[2, 0], [0, 1]]
    vectors = np.array([[-1.0, 0.0], [1.0, 0.0], [9.0, 0.0], [11.0, 0.0]])
    return DistanceGate.fit(vectors, np.array(["a", "a", "b", "b"]), ridge=1.0)


def test_the_score_is_minus_the_squared_mahalanobis_distance_to_the_nearest_intent() -> None:
    gate = two_intents()
    # (2, 3): to A 0.5*2^2 + 3^2 = 11, to B 0.5*8^2 + 3^2 = 41 -> -11; (10, 0) sits on B's mean -> 0
    # (5, 0): 0.5*5^2 = 12.5 to either
    assert gate.score(np.array([[2.0, 3.0], [10.0, 0.0], [5.0, 0.0]])) == pytest.approx([-11.0, 0.0, -12.5])


def test_a_step_across_the_intents_spread_costs_less_than_the_same_step_off_it() -> None:
    gate = two_intents()
    along, across = gate.score(np.array([[2.0, 0.0], [0.0, 2.0]]))
    assert along == pytest.approx(-2.0) and across == pytest.approx(-4.0)


def test_the_combined_gate_standardises_each_signal_on_the_in_scope_rows() -> None:
    confidence = np.exp(np.array([0.0, -2.0, -9.0]))  # log: 0, -2 (in scope); the third is out of scope
    distance = np.array([1.0, 3.0, -50.0])
    gate = combined_gate(confidence, distance, np.array([True, True, False]), weight=0.5)
    # log confidence: mean -1, spread 1; distance: mean 2, spread 1
    assert gate(np.array([1.0]), np.array([2.0])) == pytest.approx([1.0])
    assert gate(np.exp(np.array([-1.0])), np.array([0.0])) == pytest.approx([-1.0])
    assert gate(np.array([0.0]), np.array([2.0]))[0] < -20  # a zero confidence is floored, not -inf


def test_a_constant_signal_does_not_divide_by_zero() -> None:
    assert Standard.of(np.array([3.0, 3.0]))(np.array([4.0])) == pytest.approx([1.0])

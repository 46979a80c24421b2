"""A trained TF-IDF + linear model, scored with numpy alone.

Why: scikit-learn (with the SciPy modules it pulls in) costs a process about 100 MB before it classifies anything.
Training needs it; answering does not. After training, `LinearScorer.from_sklearn` copies out what scoring reads
(each vectorizer's vocabulary, idf and n-gram settings, the model's weights), so a saved model loads and answers
in a process that never imports scikit-learn or SciPy: a worker stays well under its memory budget.

The numbers are sklearn's own (`TfidfVectorizer(sublinear_tf=True)` per part, l2-normalised, then the linear
decision function); tests/nlu/test_linear.py holds them equal on many texts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_WHITE_SPACES = re.compile(r"\s\s+")


@dataclass(slots=True)
class NgramTable:
    """One vectorizer: how it cuts a text into n-grams, its vocabulary and idf, and where its columns start."""

    analyzer: str
    """"word" (tokens by `token_pattern`) or "char_wb" (character n-grams inside word boundaries)."""
    ngram_range: tuple[int, int]
    token_pattern: str
    lowercase: bool
    vocabulary: dict[str, int]
    idf: np.ndarray
    offset: int

    @classmethod
    def from_vectorizer(cls, vectorizer: Any, offset: int) -> NgramTable:
        """The parts of a fitted `TfidfVectorizer` that scoring reads; other set-ups are refused, not guessed."""
        plain = vectorizer.preprocessor is None and vectorizer.tokenizer is None and not vectorizer.strip_accents
        plain = plain and vectorizer.stop_words is None and vectorizer.norm == "l2" and vectorizer.sublinear_tf
        if vectorizer.analyzer not in ("word", "char_wb") or not plain or not vectorizer.use_idf:
            raise ValueError("only plain word / char_wb TF-IDF vectorizers (sublinear tf, l2 norm) can be copied")
        vocabulary = {str(gram): int(index) for gram, index in vectorizer.vocabulary_.items()}
        idf = np.asarray(vectorizer.idf_, dtype=np.float64)
        ngrams = (int(vectorizer.ngram_range[0]), int(vectorizer.ngram_range[1]))
        return cls(vectorizer.analyzer, ngrams, vectorizer.token_pattern, vectorizer.lowercase, vocabulary, idf, offset)

    def __post_init__(self) -> None:
        if self.analyzer == "word" and re.compile(self.token_pattern).groups > 1:
            raise ValueError("a token pattern may capture at most one group")

    def grams(self, text: str) -> list[str]:
        """The n-grams sklearn's analyzer yields for `text`, in the same order."""
        if self.lowercase:
            text = text.lower()
        low, high = self.ngram_range
        if self.analyzer == "char_wb":
            grams = []
            for word in _WHITE_SPACES.sub(" ", text).split():
                word = f" {word} "
                for n in range(low, high + 1):
                    last = max(len(word) - n, 0)
                    grams.extend(word[i : i + n] for i in range(last + 1))
                    if last == 0:  # a word shorter than n counts once
                        break
            return grams
        tokens = re.findall(self.token_pattern, text)
        grams = list(tokens) if low == 1 else []
        for n in range(max(low, 2), min(high, len(tokens)) + 1):
            grams.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
        return grams

    def weights(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(columns, l2-normalised sublinear tf-idf) of the n-grams of `text` this vocabulary knows."""
        counts: dict[int, int] = {}
        vocabulary = self.vocabulary
        for gram in self.grams(text):
            index = vocabulary.get(gram)
            if index is not None:
                counts[index] = counts.get(index, 0) + 1
        if not counts:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        values = (np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts))) + 1.0) * self.idf[idx]
        values /= np.sqrt(values @ values)
        return idx + self.offset, values


@dataclass(slots=True)
class LinearScorer:
    """The decision function of a linear model over the tables' columns, then an optional dense vector."""

    tables: list[NgramTable]
    weights: np.ndarray
    """(columns, classes): one row per feature, so a message's few columns are one gather."""
    intercept: np.ndarray
    vector_weights: np.ndarray | None = None
    """(vector size, classes) for a sentence encoder's vector appended after the n-gram columns."""

    @classmethod
    def from_sklearn(cls, features: Any, model: Any, vector_size: int = 0) -> LinearScorer:
        """From a fitted `FeatureUnion` of TF-IDF vectorizers and a fitted linear model (`coef_`, `intercept_`)."""
        tables, offset = [], 0
        for _, vectorizer in features.transformer_list:
            tables.append(NgramTable.from_vectorizer(vectorizer, offset))
            offset += len(vectorizer.vocabulary_)
        coef = np.asarray(model.coef_, dtype=np.float64)
        if coef.shape[1] != offset + vector_size:
            raise ValueError(f"the model has {coef.shape[1]} columns, the features {offset} + {vector_size}")
        vector_weights = np.ascontiguousarray(coef[:, offset:].T) if vector_size else None
        weights = np.ascontiguousarray(coef[:, :offset].T)
        return cls(tables, weights, np.asarray(model.intercept_, dtype=np.float64).copy(), vector_weights)

    def row(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(columns, values) of one text across every table."""
        parts = [table.weights(text) for table in self.tables]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def scores(self, texts: Sequence[str], vectors: np.ndarray | None = None) -> np.ndarray:
        """(texts, outputs) raw decision values: one column per class, or one for a binary model."""
        rows = [self.row(text) for text in texts]
        out = np.tile(self.intercept, (len(rows), 1))
        sizes = np.array([len(columns) for columns, _ in rows], dtype=np.int64)
        if sizes.sum():
            columns = np.concatenate([c for c, _ in rows])
            values = np.concatenate([v for _, v in rows])
            filled = np.flatnonzero(sizes)
            starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])[filled]
            out[filled] += np.add.reduceat(self.weights[columns] * values[:, None], starts, axis=0)
        if self.vector_weights is not None:
            if vectors is None or len(vectors) != len(rows):
                raise ValueError("this model reads a sentence vector per text: give them")
            out += np.asarray(vectors, dtype=np.float64) @ self.vector_weights
        return out

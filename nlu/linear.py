"""A trained TF-IDF + linear model, scored with numpy alone.

Why: scikit-learn (with the SciPy modules it pulls in) costs a process about 100 MB before it classifies anything.
Training needs it; answering does not. After training, `LinearScorer.from_sklearn` copies out what scoring reads
(each vectorizer's vocabulary and n-gram settings, the idf, the model's weights), so a saved model loads and answers
in a process that never imports scikit-learn or SciPy: a worker stays well under its memory budget.

The numbers are sklearn's own (`TfidfVectorizer(sublinear_tf=True)` per part, l2-normalised, then the linear
decision function); tests/nlu/test_linear.py holds them equal on many texts.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_WHITE_SPACES = re.compile(r"\s\s+")


@dataclass(slots=True)
class NgramTable:
    """One vectorizer: how it cuts a text into n-grams, its vocabulary, and where its columns start."""

    analyzer: str
    """"word" (tokens by `token_pattern`) or "char_wb" (character n-grams inside word boundaries)."""
    ngram_range: tuple[int, int]
    token_pattern: str
    lowercase: bool
    vocabulary: dict[str, int]
    offset: int

    @classmethod
    def from_vectorizer(cls, vectorizer: Any, offset: int) -> NgramTable:
        """The parts of a fitted `TfidfVectorizer` that scoring reads; other set-ups are refused, not guessed."""
        plain = vectorizer.preprocessor is None and vectorizer.tokenizer is None and not vectorizer.strip_accents
        plain = plain and vectorizer.stop_words is None and vectorizer.norm == "l2" and vectorizer.sublinear_tf
        if vectorizer.analyzer not in ("word", "char_wb") or not plain or not vectorizer.use_idf:
            raise ValueError("only plain word / char_wb TF-IDF vectorizers (sublinear tf, l2 norm) can be copied")
        vocabulary = {str(gram): int(index) for gram, index in vectorizer.vocabulary_.items()}
        ngrams = (int(vectorizer.ngram_range[0]), int(vectorizer.ngram_range[1]))
        return cls(vectorizer.analyzer, ngrams, vectorizer.token_pattern, vectorizer.lowercase, vocabulary, offset)

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
                    grams += [word[i : i + n] for i in range(last + 1)]
                    if last == 0:  # a word shorter than n counts once
                        break
            return grams
        tokens = re.findall(self.token_pattern, text)
        grams = list(tokens) if low == 1 else []
        for n in range(max(low, 2), min(high, len(tokens)) + 1):
            grams += [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
        return grams

    def counts(self, text: str) -> Counter:
        """How often each known n-gram of `text` occurs, by its column within this table."""
        counts = Counter(map(self.vocabulary.get, self.grams(text)))
        counts.pop(None, None)  # n-grams the vocabulary does not know
        return counts


@dataclass(slots=True)
class LinearScorer:
    """The decision function of a linear model over the tables' columns, then an optional dense vector."""

    tables: list[NgramTable]
    weights: np.ndarray
    """(columns, classes): one row per feature, so a message's few columns are one gather."""
    intercept: np.ndarray
    idf: np.ndarray
    """Every table's idf, end to end, by column (the tables keep none of their own)."""
    vector_weights: np.ndarray | None = None
    """(vector size, classes) for a sentence encoder's vector appended after the n-gram columns."""

    @classmethod
    def from_sklearn(cls, features: Any, model: Any, vector_size: int = 0) -> LinearScorer:
        """From a fitted `FeatureUnion` of TF-IDF vectorizers and a fitted linear model (`coef_`, `intercept_`)."""
        tables, idf, offset = [], [], 0
        for _, vectorizer in features.transformer_list:
            tables.append(NgramTable.from_vectorizer(vectorizer, offset))
            idf.append(np.asarray(vectorizer.idf_, dtype=np.float64))
            offset += len(vectorizer.vocabulary_)
        coef = np.asarray(model.coef_, dtype=np.float64)
        if coef.shape[1] != offset + vector_size:
            raise ValueError(f"the model has {coef.shape[1]} columns, the features {offset} + {vector_size}")
        vector_weights = np.ascontiguousarray(coef[:, offset:].T) if vector_size else None
        weights = np.ascontiguousarray(coef[:, :offset].T)
        intercept = np.asarray(model.intercept_, dtype=np.float64).copy()
        return cls(tables, weights, intercept, np.concatenate(idf), vector_weights)

    def scores(self, texts: Sequence[str], vectors: np.ndarray | None = None) -> np.ndarray:
        """(texts, outputs) raw decision values: one column per class, or one for a binary model.

        The n-grams are counted in Python, the arithmetic is done once for the whole batch: each (text, table)
        part is normalised on its own, as each vectorizer of a FeatureUnion does."""
        columns: list[int] = []
        counts: list[int] = []
        starts: list[int] = []  # where each (text, table) part with known n-grams starts in `columns`
        rows: list[int] = []  # the text of each part
        offsets: list[int] = []  # the table of each part: where its columns start
        for number, text in enumerate(texts):
            for table in self.tables:
                found = table.counts(text)
                if found:
                    starts.append(len(columns))
                    rows.append(number)
                    offsets.append(table.offset)
                    columns += found.keys()
                    counts += found.values()
        out = np.tile(self.intercept, (len(texts), 1))
        if columns:
            first = np.array(starts, dtype=np.int64)
            sizes = np.diff(np.append(first, len(columns)))
            cols = np.array(columns, dtype=np.int64) + np.repeat(np.array(offsets, dtype=np.int64), sizes)
            values = (np.log(np.array(counts, dtype=np.float64)) + 1.0) * self.idf[cols]
            values /= np.repeat(np.sqrt(np.add.reduceat(values * values, first)), sizes)
            parts = np.add.reduceat(self.weights[cols] * values[:, None], first, axis=0)
            np.add.at(out, np.array(rows, dtype=np.int64), parts)
        if self.vector_weights is not None:
            if vectors is None or len(vectors) != len(texts):
                raise ValueError("this model reads a sentence vector per text: give them")
            out += np.asarray(vectors, dtype=np.float64) @ self.vector_weights
        return out

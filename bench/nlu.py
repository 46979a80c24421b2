"""CLINC150 out-of-scope benchmark: our classifier beside the published baselines and a naive one run here.

    python bench/nlu.py ../shared/data/clinc150/data_full.json [--json]

Protocol (Larson et al. 2019, "Full" setting): train on train + oos_train, choose every threshold on
val + oos_val, report on test + oos_test. The naive baseline (word TF-IDF + linear SVM, out-of-scope as an
ordinary class, no threshold) is measured in the same run so the ratio does not depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nlu.classifier import ClassifierConfig, IntentClassifier
from nlu.evaluation import EvalReport, evaluate_clinc, evaluate_rasa_holdout

DEFAULT_DATA = "../shared/data/clinc150/data_full.json"
STARTER_DATA = Path(__file__).resolve().parent.parent / "config" / "nlu.yml"
PUBLISHED = {  # Larson et al. 2019, Table 2, Full: (in-scope accuracy, OOS recall), percent
    "Rasa (published)": (91.5, 45.3),
    "BERT (published)": (96.9, 40.3),
}
TARGETS = {"in_scope_accuracy": 0.92, "oos_recall": 0.50, "p50_ms": 2.0, "train_seconds": 60.0}


def naive(oos_label: str) -> IntentClassifier:
    return IntentClassifier(config=ClassifierConfig(char_ngrams=None, oos_weight=1.0, use_threshold=False),
                            oos_label=oos_label)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", default=DEFAULT_DATA, help="CLINC150 data_full.json")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--starter", default=str(STARTER_DATA), help="our Rasa nlu.yml for a held-out split")
    args = parser.parse_args(argv)
    ours = evaluate_clinc(args.data)
    base = evaluate_clinc(args.data, make_classifier=naive)
    starter = evaluate_rasa_holdout(args.starter)
    met = {
        "in_scope_accuracy": ours.in_scope_accuracy >= TARGETS["in_scope_accuracy"],
        "oos_recall": (ours.oos_recall or 0.0) >= TARGETS["oos_recall"],
        "p50_ms": ours.p50_ms < TARGETS["p50_ms"],
        "train_seconds": ours.train_seconds < TARGETS["train_seconds"],
    }
    if args.json:
        print(json.dumps({"ours": _figures(ours), "naive_baseline": _figures(base), "published": PUBLISHED,
                          "targets_met": met, "starter_heldout": _figures(starter)}))
        return 0 if all(met.values()) else 1
    print(f"CLINC150 Full ({args.data}); {ours.n_train} training, {ours.n_test} test messages "
          f"({ours.n_test_oos} out of scope)\n")
    print(f"{'system':<34}{'in-scope acc':>14}{'OOS recall':>12}{'OOS prec':>10}{'train s':>9}{'p50 ms':>8}"
          f"{'p99 ms':>8}")
    for name, (acc, rec) in PUBLISHED.items():
        print(f"{name:<34}{acc:>13.1f}%{rec:>11.1f}%")
    for name, r in (("naive TF-IDF+SVM (this run)", base), ("tierdesk (this run)", ours)):
        print(f"{name:<34}{100 * r.in_scope_accuracy:>13.1f}%{100 * (r.oos_recall or 0):>11.1f}%"
              f"{100 * (r.oos_precision or 0):>9.1f}%{r.train_seconds:>9.1f}{r.p50_ms:>8.3f}{r.p99_ms:>8.3f}")
    acc_ratio = ours.in_scope_accuracy / base.in_scope_accuracy
    recall_ratio = (ours.oos_recall or 0) / max(base.oos_recall or 0, 1e-9)
    print(f"\nratio tierdesk / naive (same run): in-scope accuracy x{acc_ratio:.3f}, OOS recall x{recall_ratio:.2f}")
    print(f"OOS threshold chosen on validation: {ours.threshold:.3f}; macro-F1 {100 * ours.macro_f1:.1f}%")
    print("targets (in-scope >= 92.0 %, OOS recall >= 50 %, p50 < 2 ms, training < 60 s): "
          + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in met.items()))
    by_language = ", ".join(f"{lang} {100 * acc:.1f} %" for lang, acc in starter.by_group.items())
    print(f"\nstarter data ({Path(args.starter).name}), 25 % held out, stratified by intent and language: "
          f"in-scope accuracy {100 * starter.in_scope_accuracy:.1f} % ({by_language}); OOS recall "
          f"{100 * (starter.oos_recall or 0):.1f} % on {starter.n_test_oos} messages; macro-F1 "
          f"{100 * starter.macro_f1:.1f} %; training {starter.train_seconds:.2f} s on {starter.n_train} examples")
    return 0 if all(met.values()) else 1


def _figures(r: EvalReport) -> dict:
    return {k: v for k, v in r.as_dict().items() if k != "confused"}


if __name__ == "__main__":
    raise SystemExit(main())

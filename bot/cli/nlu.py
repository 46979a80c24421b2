"""`tierdesk nlu train | parse | eval | export` and `tierdesk actions`: the NLU from a terminal.

The figures come from `nlu.evaluation` (pure); this module only reads options and prints.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from bot.cli.nlu_eval import eval_command
from bot.cli.nlu_review import review
from bot.settings import get_settings
from nlu.rasa_format import NluDataError, load_nlu, load_responses

console = Console()
errors = Console(stderr=True)

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
    console.print(
        f"intent [bold]{result.intent}[/bold] ({result.confidence:.3f}), {verdict}, language {result.language or '?'}"
    )
    ranking = Table("intent", "confidence", title="ranking")
    for name, p in result.ranking[:top]:
        ranking.add_row(name, f"{p:.3f}")
    console.print(ranking)
    if result.entities:
        found = Table("entity", "value", "text", "span", "extractor", title="entities")
        for e in result.entities:
            found.add_row(e.entity, e.value, e.text, f"{e.start}-{e.end}", e.extractor)
        console.print(found)


nlu_app.command("eval")(eval_command)


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

"""What the `ksearch` command modules share: the console, the --model option, failing with a one-line error, loading
the encoder from the settings."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.console import Console

console = Console(width=None if Console().is_terminal else 120)

ModelOption = Annotated[
    Optional[str],
    typer.Option("--model", "-m", help="Model folder, cached hub id or a name under $KSEARCH_HOME/models (`ksearch "
                                       "adapt`) (default: $KSEARCH_MODEL, production, shipped)."),
]


def fail(message: str) -> None:
    """Print a one-line error and exit with code 2."""
    from rich.markup import escape

    console.print(f"[red]error:[/red] {escape(message)}", highlight=False)  # `.[train]` is text, not markup
    raise typer.Exit(2)


def load_encoder_or_fail(model: str | None):
    """The encoder `model` names, with the settings' encoder options, or a one-line error."""
    from encoder import ModelNotFoundError
    from retrieval.opening import load_encoder
    from retrieval.settings import get_settings

    try:
        return load_encoder(get_settings(), model)
    except (ModelNotFoundError, ValueError) as exc:  # ValueError: a bad setting (precision, pruning, ksearch.json)
        fail(str(exc))

"""`ksearch opensearch ...`: run a local single-node OpenSearch without Docker."""

from __future__ import annotations

import typer
from rich.console import Console

from ksearch.opensearch_node import DEFAULT_VERSION, RELEASES, LocalOpenSearch, OpenSearchNodeError

opensearch_app = typer.Typer(
    name="opensearch",
    help=f"A local single-node OpenSearch ({' or '.join(RELEASES)}; downloaded from Maven Central, no Docker).",
    no_args_is_help=True,
)

_VERSION_HELP = (f"OpenSearch version: {', '.join(RELEASES)} (or just 2 / 3). Default: $KSEARCH_OPENSEARCH_VERSION, "
                 f"else {DEFAULT_VERSION} (runs on Java 17; 3.x needs Java 21+). Each is assembled in its own folder.")

_err = Console(stderr=True)


def _fail(e: Exception) -> None:
    _err.print(f"[red]error:[/] {e}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(1)


@opensearch_app.command()
def start(
    port: int | None = typer.Option(None, "--port", "-p", help="HTTP port on 127.0.0.1 (default: a free one)."),
    timeout: float = typer.Option(180.0, help="Seconds to wait for the node to become ready."),
    ml: bool = typer.Option(False, "--ml", help="With ml-commons, to serve models inside OpenSearch (a 480 MB "
                            "download the first time; the node starts slower; 2.19.1 only)."),
    version: str | None = typer.Option(None, "--version", "-V", help=_VERSION_HELP),
) -> None:
    """Download/assemble if needed, start the node in the background and print its URL.

    While it runs, `--backend opensearch` (and the app) use it unless KSEARCH_OPENSEARCH_URL says otherwise:
    the URL is recorded in the node's state file, which `stop` removes."""
    try:
        node = LocalOpenSearch(ml=ml, version=version)
        url = node.start(port=port, timeout=timeout)
    except OpenSearchNodeError as e:
        _fail(e)
    typer.echo(url)
    from retrieval.settings import Settings

    settings = Settings()  # read now: the cached settings of this process may predate the node
    if "opensearch_url" in settings.model_fields_set and settings.opensearch_url.rstrip("/") != url:
        _err.print("note: KSEARCH_OPENSEARCH_URL is set to another node, so --backend opensearch keeps using that one; "
                   "unset it to use this node", highlight=False, markup=False, soft_wrap=True)
    else:
        _err.print(f"--backend opensearch uses this node until `ksearch opensearch stop` (recorded in {node.state_file})",
                   highlight=False, markup=False, soft_wrap=True)


@opensearch_app.command()
def stop() -> None:
    """Stop the node started by `ksearch opensearch start`."""
    try:
        stopped = LocalOpenSearch(version=DEFAULT_VERSION).stop()  # whichever version runs
    except OpenSearchNodeError as e:
        _fail(e)
    typer.echo("stopped" if stopped else "not running")


@opensearch_app.command()
def status() -> None:
    """Print the node's URL, or say it is not running (exit code 1)."""
    url = LocalOpenSearch(version=DEFAULT_VERSION).status()  # whichever version runs
    if url is None:
        typer.echo("not running")
        raise typer.Exit(1)
    typer.echo(url)


@opensearch_app.command()
def install(
    ml: bool = typer.Option(False, "--ml", help="The installation with ml-commons (what `start --ml` runs)."),
    version: str | None = typer.Option(None, "--version", "-V", help=_VERSION_HELP),
) -> None:
    """Only download and assemble the node (e.g. to warm the cache); print its home."""
    try:
        home = LocalOpenSearch(ml=ml, version=version).ensure_installed()
    except OpenSearchNodeError as e:
        _fail(e)
    typer.echo(str(home))

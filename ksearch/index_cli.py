"""`ksearch index ...`: look after an embedded index's derived structures (its approximate index) outside an ingest."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ksearch.cli_common import console, fail

index_app = typer.Typer(name="index", help="Inspect an embedded index and build its approximate index (impact-ordered postings).",
                        no_args_is_help=True)

IndexNameOption = Annotated[Optional[str], typer.Option("--index", "-i", help="Index name (default: $KSEARCH_INDEX, 'sample').")]


def _open(index: str | None):  # -> EmbeddedIndex (the default backend of open_index)
    from retrieval.backends import open_index
    from retrieval.errors import IndexNotFoundError, RetrievalError
    from retrieval.opening import missing_index_message
    from retrieval.settings import get_settings

    settings = get_settings()
    name, config = index or settings.index, settings.backend_config()
    try:
        store = open_index(name, config=config)
    except IndexNotFoundError:
        fail(missing_index_message(name, config.home))
    except RetrievalError as exc:
        fail(str(exc))
    return store


@index_app.command("status")
def status(index: IndexNameOption = None) -> None:
    """Passages, writes, BM25 and whether sparse search uses the approximate index (and if not, why)."""
    store = _open(index)
    m = store.manifest
    bm25 = "current" if m.bm25 is not None and m.bm25.seq == m.last_seq else "out of date (rebuilt by the next ingest)"
    console.print(f"index {store.root.name!r} at {store.root}: {store.count():,} passages, write {m.last_seq}, "
                  f"{len(m.segments)} segment(s); BM25 {bm25}", highlight=False, markup=False)
    console.print(f"sparse search: {store.approximate_status().describe()}", highlight=False, markup=False)


@index_app.command("build-ann")
def build_ann(
    index: IndexNameOption = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even when the approximate index is current.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Build the approximate index (impact-ordered postings) searches use above KSEARCH_APPROXIMATE_ABOVE passages
    (ingests build it too).

    For indexes written before ingests built it, or to have it ready before turning approximate search on.
    Searches go on meanwhile: they answer exactly until the new index is committed."""
    from retrieval.errors import RetrievalError

    store = _open(index)
    before = store.manifest.ann
    try:
        ref = store.build_approximate(force=force, progress=not quiet)
    except RetrievalError as exc:
        fail(str(exc))
    finally:
        store.close()
    if before is not None and ref.name == before.name:
        console.print(f"the approximate index of {store.root.name!r} is current ({ref.name}); --force rebuilds it",
                      highlight=False, markup=False)
    else:
        console.print(f"built the approximate index of {store.root.name!r}: {ref.passages:,} passages in "
                      f"{ref.build_seconds:.1f} s ({ref.name})", highlight=False, markup=False)
    console.print(f"sparse search: {store.approximate_status().describe()}", highlight=False, markup=False)

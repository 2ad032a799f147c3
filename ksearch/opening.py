"""Open what a search needs (an encoder and an index) the same way in the CLI and the app; errors carry readable messages."""

from __future__ import annotations

from ksearch.settings import get_settings


def load_encoder(model: str | None = None):
    """The encoder `model` names (default: $KSEARCH_MODEL, production, shipped) with the settings' pruning (`ModelNotFoundError`)."""
    from encoder import SparseEncoder

    settings = get_settings()
    return SparseEncoder.load(
        model or settings.model,
        document_pruning=settings.document_pruning,
        query_pruning=settings.query_pruning,
        batch_size=settings.batch_size,
        precision=settings.precision,
    )


def encoder_for_index(index_model_id: str, model: str | None = None):
    """The encoder to search an index built with `index_model_id`: `model`, else $KSEARCH_MODEL, else the index's own model when loadable, else the default."""
    from encoder import ModelNotFoundError

    if model is None and get_settings().model is None:
        try:  # the model the index was built with, when it is a local folder or cached
            return load_encoder(index_model_id)
        except (ModelNotFoundError, OSError, ValueError):
            pass
    return load_encoder(model)


def missing_index_message(name: str) -> str:
    """What to tell a user whose index `name` does not exist."""
    return (f"index {name!r} does not exist under {get_settings().home}: build it first with "
            f"`ksearch ingest PATH --index {name}` (e.g. `ksearch ingest sample_data/corpus.jsonl`)")

"""Open what a search needs (an encoder and an index) the same way in the CLI and the app, from the settings they pass.

Errors carry readable messages; the callers decide how to show them.
"""

from __future__ import annotations

from pathlib import Path

from retrieval.settings import Settings


def load_encoder(settings: Settings, model: str | None = None):
    """The encoder `model` names (default: the settings' model, else production, else shipped) with the settings'
    pruning, batch size, precision and encoder backend (`ModelNotFoundError`; `ValueError` for a bad setting).
    A plain name may be a model under $KSEARCH_HOME/models (`ksearch adapt` writes there)."""
    from encoder import SparseEncoder

    return SparseEncoder.load(
        model or settings.model,
        document_pruning=settings.document_pruning,
        query_pruning=settings.query_pruning,
        batch_size=settings.batch_size,
        precision=settings.precision,
        backend=settings.encoder_backend,
        models_dir=settings.models_dir,
    )


def encoder_for_index(settings: Settings, index_model_id: str, model: str | None = None):
    """The encoder to search an index built with `index_model_id`: `model`, else the settings' model, else the
    index's own model when loadable, else the default."""
    from encoder import ModelNotFoundError

    if model is None and settings.model is None:
        try:  # the model the index was built with, when it is a local folder or cached
            return load_encoder(settings, index_model_id)
        except (ModelNotFoundError, OSError, ValueError):
            pass
    return load_encoder(settings, model)


def missing_index_message(name: str, home: Path) -> str:
    """What to tell a user whose embedded index `name` does not exist under `home`."""
    return (f"index {name!r} does not exist under {home}: build it first with "
            f"`ksearch ingest PATH --index {name}` (e.g. `ksearch ingest sample_data/corpus.jsonl`)")

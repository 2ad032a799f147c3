"""What the app loads once per process (`st.cache_resource`): the encoder and the index; failures become readable messages."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from encoder import ModelNotFoundError
from encoder.kiwi_neighbours import KiwiNeighbours
from retrieval.backends import SearchBackend, open_index
from retrieval.errors import IndexNotFoundError, RetrievalError, VocabularyMismatchError
from retrieval.opening import encoder_for_index, load_encoder, missing_index_message
from retrieval.searcher import Searcher
from retrieval.settings import get_settings


class AppError(RuntimeError):
    """A failure the app shows as a message (the text says what to do)."""


def index_name() -> str:
    """The index the app searches ($KSEARCH_INDEX, 'sample')."""
    return get_settings().index


@st.cache_resource(show_spinner="Opening the index…")
def cached_backend(name: str, backend: str, home: str) -> SearchBackend:
    """The opened index `name` (one per process and home folder)."""
    return open_index(name, backend=backend, config=get_settings().backend_config(home=Path(home)))


@st.cache_resource(show_spinner="Loading the sparse encoder…")
def cached_encoder(index_model_id: str | None, model: str | None):
    """The encoder for an index built with `index_model_id` (None: no index yet, the default model)."""
    settings = get_settings()
    encoder = load_encoder(settings, model) if index_model_id is None else encoder_for_index(settings, index_model_id, model)
    encoder.encode_queries(["보증금 당뇨"])  # loads Kiwi and warms the model, so shown latencies are the query's own
    return encoder


@st.cache_resource(show_spinner=False)
def cached_kiwi_neighbours(model_id: str, _encoder) -> KiwiNeighbours:
    """Kiwi's neighbours over the model's vocabulary (one lookup, and its cache, per model)."""
    return KiwiNeighbours(_encoder.feature_names)


def backend_or_error(backend: str = "embedded") -> SearchBackend:
    """The app's index, or `AppError` saying how to build it or what is wrong."""
    settings = get_settings()
    name = index_name()
    try:
        return cached_backend(name, backend, str(settings.home))
    except IndexNotFoundError:
        raise AppError(missing_index_message(name, settings.home) + ". For the sample corpus, `make demo` builds it and starts this app; "
                       "or upload a file on the Corpus page.") from None
    except (RetrievalError, ValueError) as exc:
        raise AppError(str(exc)) from None
    except Exception as exc:  # a remote backend that is down or refuses the connection
        raise AppError(f"could not reach the {backend} backend: {type(exc).__name__}: {exc}") from None


def encoder_or_error(index_model_id: str | None):
    """The encoder for an index (or the default one), or `AppError` when no model is available."""
    try:
        return cached_encoder(index_model_id, get_settings().model)
    except (ModelNotFoundError, OSError, ValueError) as exc:
        raise AppError(f"could not load the sparse encoder: {exc}") from None


def searcher_or_error(backend: str = "embedded", encoding: str = "client") -> Searcher:
    """A `Searcher` over the app's index with the encoder sharing its vocabulary (`encoding` server: queries encoded
    by the index's model in OpenSearch), or `AppError`."""
    store = backend_or_error(backend)
    try:
        return Searcher(encoder_or_error(store.meta.model_id), store, encoding=encoding,
                        hybrid_weight=get_settings().hybrid_weight)
    except VocabularyMismatchError as exc:
        raise AppError(f"{exc} For the sample index, `make demo` rebuilds it.") from None
    except RetrievalError as exc:
        raise AppError(str(exc)) from None


def forget_index() -> None:
    """Drop the cached index so the next page run reopens it (after an ingest wrote to it)."""
    cached_backend.clear()

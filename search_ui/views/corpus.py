"""Corpus page: index statistics and uploading a file to ingest through the ingest worker."""

from __future__ import annotations

import streamlit as st

from ingest import ColumnMapping
from retrieval.backends import open_or_create_index
from retrieval.errors import RetrievalError
from retrieval.index_meta import IndexMeta
from retrieval.settings import get_settings
from search_ui.resources import AppError, backend_or_error, encoder_or_error, forget_index, index_name
from search_ui.upload import MAX_UPLOAD_MB, UploadError, ingest_upload

NO_DOMAIN = "(none: use the file's domain column only)"


def render_stats() -> None:
    """Documents, passages and their split by domain."""
    try:
        store = backend_or_error()
        stats = store.stats()
    except (AppError, RetrievalError) as exc:
        st.warning(str(exc))
        return
    c1, c2, c3 = st.columns(3)
    c1.metric("Documents", ("≈ " if stats.documents_approximate else "") + f"{stats.documents:,}")
    c2.metric("Passages", f"{stats.passages:,}")
    c3.metric("Non-zero weights per passage", f"{stats.avg_nonzero_weights:.1f}")
    rows = [{"domain": d or "(none)", "documents": n, "passages": stats.passages_by_domain.get(d, 0)}
            for d, n in stats.documents_by_domain.items()]
    if rows:
        st.dataframe(rows, hide_index=True)
    st.caption(f"index {store.meta.name!r} · model {store.meta.model_id} · created {store.meta.created_at}")


def render_upload() -> None:
    """Upload a CSV, JSONL, Parquet or .txt file and ingest it with a progress bar and a summary."""
    st.subheader("Add documents")
    st.caption(f"CSV, JSONL or Parquet with columns id, text (and optionally title, domain), or one .txt document; "
               f"at most {MAX_UPLOAD_MB} MB. Re-uploading a file skips passages that are already stored.")
    upload = st.file_uploader("File", type=["csv", "jsonl", "parquet", "txt"], key="corpus_upload")
    domain = st.selectbox("Domain of rows without one", [NO_DOMAIN, "legal", "medical"], key="corpus_domain")
    if upload is None or not st.button("Ingest", type="primary", key="corpus_ingest"):
        return
    name = index_name()
    bar = st.progress(0.0, text="reading and splitting…")

    def on_progress(written: int, total: int) -> None:
        bar.progress(written / total if total else 1.0, text=f"encoded and written {written} of {total} passages")

    try:
        index_model = None
        try:
            index_model = backend_or_error().meta.model_id
        except AppError:
            pass  # no index yet: it is created with the default model
        encoder = encoder_or_error(index_model)
        columns = ColumnMapping(domain=None if domain == NO_DOMAIN else domain)
        config = get_settings().backend_config()
        with open_or_create_index(name, IndexMeta.for_encoder(name, encoder), config=config) as store:
            outcome = ingest_upload(upload.getvalue(), upload.name, store, encoder, columns=columns, on_progress=on_progress)
    except (AppError, UploadError, RetrievalError, ValueError) as exc:
        bar.empty()
        st.error(f"Nothing was ingested: {exc}")
        return
    finally:
        forget_index()
    bar.progress(1.0, text="done")
    report = outcome.report
    st.success(f"{upload.name}: read {report.documents_read} documents → {report.passages} passages; "
               f"written {report.written}, skipped (unchanged) {report.skipped_unchanged}, failed rows {report.failed}"
               + (f", stale chunks removed {report.deleted_stale}" if report.deleted_stale else ""))
    if outcome.problems:
        st.warning(f"{len(outcome.problems)} rows were skipped:")
        st.dataframe([{"row": p} for p in outcome.problems], hide_index=True)


def render_adapt_hint() -> None:
    """How to fit the model to this corpus: from the command line, since it trains for many minutes with torch and
    would hold the app's CPU (and the search it serves) the whole time."""
    st.subheader("Fit the model to your corpus")
    st.caption("`ksearch adapt` fine-tunes a copy of the model on your documents alone (no labelled queries), so your "
               "own terms get weight. It takes about 30 minutes of this machine's CPU (--minutes N bounds the "
               "training), so run it from a shell, then ingest into a new index with the new model:")
    st.code("ksearch adapt corpus.jsonl --out my-model\n"
            "ksearch ingest corpus.jsonl --model my-model --index my-index", language="bash")


def render() -> None:
    """Draw the corpus page."""
    st.header("Corpus")
    st.caption(f"index {index_name()!r} under {get_settings().home}")
    render_stats()
    render_upload()
    render_adapt_hint()

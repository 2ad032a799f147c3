"""`python -m ksearch.demo_index CORPUS`: is the demo index ready for `make demo`?

Exit 0: the index holds every document of CORPUS, built with the default model's vocabulary (reuse it).
Exit 1: it must be (re)built with `ksearch ingest CORPUS`; an index built by an earlier version of the
same model (another vocabulary, e.g. after retraining) is removed first, since its vectors are unusable.
Exit 2: the index was built with another model; the message says what to do.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from ingest import ColumnMapping, InputFileError, SourceDocument, read_documents
from retrieval.backends import EmbeddedIndex
from retrieval.errors import IndexNotFoundError, RetrievalError
from retrieval.passage import doc_id_of
from retrieval.settings import get_settings

READY, INGEST, FOREIGN = 0, 1, 2


def index_is_complete(corpus: Path, index_dir: Path) -> bool:
    """True when `index_dir` opens, its BM25 is current and it holds exactly the document ids of `corpus`."""
    try:
        index = EmbeddedIndex.open(index_dir)
        wanted = {d.doc_id for d in read_documents(corpus, None, ColumnMapping()) if isinstance(d, SourceDocument)}
    except (RetrievalError, InputFileError, OSError, ValueError):
        return False
    bm25 = index.manifest.bm25
    if bm25 is None or bm25.seq != index.manifest.last_seq:
        return False
    return {doc_id_of(pid) for pid in index.content_hashes()} == wanted


def demo_index_state(corpus: Path, index_dir: Path, model_id: str, vocab_hash: str) -> tuple[int, str]:
    """(exit code, message) for the index at `index_dir` and the encoder `model_id` / `vocab_hash`; see the module docstring."""
    try:
        meta = EmbeddedIndex.open(index_dir).meta
    except IndexNotFoundError:
        return INGEST, f"no index at {index_dir}: building it from {corpus}"
    except RetrievalError as exc:
        return FOREIGN, f"{exc}; remove {index_dir} and run `make demo` again"
    if meta.vocab_hash != vocab_hash:
        if meta.model_id != model_id:
            return FOREIGN, (f"index {index_dir} was built with model {meta.model_id!r}, not {model_id!r}: set KSEARCH_MODEL "
                             f"to that model, or KSEARCH_INDEX to another index name, or remove {index_dir}")
        shutil.rmtree(index_dir)
        return INGEST, f"index {index_dir} was built with an earlier version of {model_id!r} (another vocabulary): rebuilding it"
    if index_is_complete(corpus, index_dir):
        return READY, f"index {index_dir} already holds {corpus}: reusing it"
    return INGEST, f"index {index_dir} is incomplete: ingesting {corpus} (stored passages are skipped)"


def main(argv: list[str]) -> int:
    """Print the state of the demo index and return its exit code."""
    from retrieval.opening import load_encoder

    if len(argv) != 1:
        print("usage: python -m ksearch.demo_index CORPUS", file=sys.stderr)
        return FOREIGN
    settings = get_settings()
    encoder = load_encoder(settings)
    code, message = demo_index_state(Path(argv[0]), Path(settings.home) / settings.index, encoder.model_id, encoder.vocab_hash)
    print(message, file=sys.stderr if code == FOREIGN else sys.stdout)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

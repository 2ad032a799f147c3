"""`EmbeddedIndex`: the default backend, exact sparse dot products over posting lists built from CSR segments on disk.

On disk (`KSEARCH_HOME/<name>/`): `manifest.json` plus immutable `seg-NNNNNN/` segment folders
(see `segment.py`) and one `bm25-NNNNNN/` folder. A write adds a segment (replacements simply
win over older versions of the same id; deletions are tombstones) and then replaces the manifest,
so appending never rewrites what is stored, and a killed writer never leaves an index that fails
to open. `compact` merges the live rows into one segment. One writer at a time (a lock file);
any number of readers. Searches run over the live rows assembled by `live_view`.

Sparse search is exact. With `approximate_above` set (`KSEARCH_APPROXIMATE_ABOVE`) and the optional
`pyseismic-lsr` installed, indexes with at least that many live passages take their candidates
from a Seismic index instead (`approx-seismic-NNNNNN.index.seismic`, built on the first such search
and saved for the next process) and re-score them exactly.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from retrieval.backends.approximate import SeismicParams, SeismicScorer, seismic_available
from retrieval.backends.atomic_files import TEMP_PREFIX
from retrieval.backends.base import IndexStats, SearchBackend, SearchFilters
from retrieval.backends.live_view import LiveView, live_view
from retrieval.backends.manifest import BM25Ref, Manifest, SegmentRef, read_manifest, write_manifest
from retrieval.backends.postings import posting_scores
from retrieval.backends.segment import Segment, build_segment, read_segment, write_segment
from retrieval.backends.top_k import top_k_rows
from retrieval.backends.vector_check import check_vectors
from retrieval.bm25_index import BM25Index
from retrieval.errors import IndexNotFoundError, RetrievalError
from retrieval.hits import Hit
from retrieval.index_meta import IndexMeta
from retrieval.morphemes import content_morphemes_many
from retrieval.passage import Passage

log = logging.getLogger(__name__)

LOCK_FILE = ".writer.lock"
COMPACT_AFTER_SEGMENTS = 32  # finish_writes merges segments beyond this many
APPROXIMATE_PREFIX = "approx-seismic-"
APPROXIMATE_DEPTH = 4  # Seismic candidates per wanted hit when filters or the document collapse may drop some


class EmbeddedIndex(SearchBackend):
    """An index in a local folder; see the module docstring for the layout."""

    def __init__(self, root: Path, manifest: Manifest) -> None:
        self.root = root
        self.manifest = manifest
        self.meta = manifest.meta
        self._segments: list[Segment] = [read_segment(root, s.name, s.seq) for s in manifest.segments]
        self._live: LiveView | None = None
        self._bm25: BM25Index | None = None
        self._lock_fd: int | None = None
        self.approximate_above: int | None = None  # live passages from which `search` uses Seismic (None: never)
        self._approximate: tuple[int, SeismicScorer] | None = None  # (manifest.last_seq, its Seismic index)

    # ---------------------------------------------------------------- opening
    @classmethod
    def open(cls, root: Path) -> "EmbeddedIndex":
        """Open an existing index (`IndexNotFoundError` if there is none)."""
        return cls(Path(root), read_manifest(Path(root)))

    @classmethod
    def create(cls, root: Path, meta: IndexMeta) -> "EmbeddedIndex":
        """Create an empty index at `root` (which must not hold one already)."""
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        index = cls(root, Manifest(meta=meta))
        index._acquire_writer()
        try:
            read_manifest(root)
        except IndexNotFoundError:
            write_manifest(root, index.manifest)
        else:
            index.close()
            raise RetrievalError(f"an index already exists at {root}")
        return index

    @classmethod
    def open_or_create(cls, root: Path, meta: IndexMeta) -> "EmbeddedIndex":
        """Open the index at `root`, creating it with `meta` when it does not exist."""
        try:
            return cls.open(root)
        except IndexNotFoundError:
            return cls.create(root, meta)

    # ---------------------------------------------------------------- writing
    def _acquire_writer(self) -> None:
        if self._lock_fd is not None:
            return
        fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RetrievalError(f"index {self.root} is being written by another process; wait for it to finish") from None
        self._lock_fd = fd
        try:  # another writer may have committed since we read the manifest
            on_disk = read_manifest(self.root)
        except IndexNotFoundError:
            on_disk = None
        if on_disk is not None and on_disk.model_dump() != self.manifest.model_dump():
            self.__init__(self.root, on_disk)
            self._lock_fd = fd
        self._remove_orphans()

    def _remove_orphans(self) -> None:
        """Delete what a killed writer left: temporary files and uncommitted folders."""
        referenced = {s.name for s in self.manifest.segments} | ({self.manifest.bm25.name} if self.manifest.bm25 else set())
        for entry in self.root.iterdir():
            name = entry.name
            orphan = name.startswith(TEMP_PREFIX) or (name.startswith(("seg-", "bm25-")) and name not in referenced)
            if orphan:
                log.info("removing orphan %s", entry)
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink(missing_ok=True)

    def _commit(self, manifest: Manifest) -> None:
        write_manifest(self.root, manifest)
        self.manifest = manifest
        self._live = None

    def add(self, passages: Sequence[Passage], vectors: Sequence[Mapping[str, float]]) -> None:
        """Append one segment holding these passages (the newest version of an id wins)."""
        if len(passages) != len(vectors):
            raise ValueError(f"{len(passages)} passages but {len(vectors)} vectors")
        if not passages:
            return
        ids = [p.id for p in passages]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate passage ids in one add()")
        check_vectors(ids, vectors)
        self._acquire_writer()
        seq = self.manifest.next_seq
        segment = build_segment(f"seg-{seq:06d}", seq, passages, vectors, content_morphemes_many(p.text for p in passages))
        write_segment(self.root, segment)
        manifest = self.manifest.model_copy(deep=True)
        manifest.segments.append(SegmentRef(name=segment.name, seq=seq, rows=len(passages)))
        manifest.next_seq = seq + 1
        self._commit(manifest)
        self._segments.append(segment)

    def delete(self, passage_ids: Iterable[str]) -> int:
        """Tombstone these ids (one manifest write); return how many were live."""
        live = self._view().row_of
        doomed = sorted({i for i in passage_ids if i in live})
        if not doomed:
            return 0
        self._acquire_writer()
        manifest = self.manifest.model_copy(deep=True)
        seq = manifest.next_seq
        manifest.tombstones.update({i: seq for i in doomed})
        manifest.next_seq = seq + 1
        self._commit(manifest)
        return len(doomed)

    def finish_writes(self) -> None:
        """Compact if there are many segments, then rebuild and save BM25 if it is stale.

        BM25 is rebuilt from the stored passages' morphemes at the end of an ingest run rather than
        per write: bm25s has no incremental update, and IDF depends on the whole collection.
        """
        if len(self.manifest.segments) > COMPACT_AFTER_SEGMENTS:
            self.compact()
        if self.manifest.bm25 is not None and self.manifest.bm25.seq == self.manifest.last_seq:
            return
        self._acquire_writer()
        view = self._view()
        bm25 = BM25Index.build([p.id for p in view.passages], view.morphemes)
        seq = self.manifest.last_seq
        name = f"bm25-{seq:06d}"
        tmp = self.root / f"{TEMP_PREFIX}{name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        bm25.save(tmp)
        if (self.root / name).exists():  # left by a writer killed before its manifest commit
            shutil.rmtree(self.root / name)
        os.replace(tmp, self.root / name)
        manifest = self.manifest.model_copy(deep=True)
        old = manifest.bm25
        manifest.bm25 = BM25Ref(name=name, seq=seq)
        self._commit(manifest)
        self._bm25 = bm25
        if old is not None and old.name != name:
            shutil.rmtree(self.root / old.name, ignore_errors=True)

    def compact(self) -> None:
        """Merge all live rows into one new segment and drop the old segments and tombstones."""
        self._acquire_writer()
        view = self._view()
        seq = self.manifest.next_seq
        vectors = [view.row_vector(r) for r in range(len(view.passages))]
        segment = build_segment(f"seg-{seq:06d}", seq, view.passages, vectors, view.morphemes)
        write_segment(self.root, segment)
        manifest = self.manifest.model_copy(deep=True)
        old = [s.name for s in manifest.segments]
        manifest.segments = [SegmentRef(name=segment.name, seq=seq, rows=len(view.passages))]
        manifest.tombstones = {}
        manifest.next_seq = seq + 1
        bm25_was_fresh = manifest.bm25 is not None and manifest.bm25.seq == self.manifest.last_seq
        if bm25_was_fresh:  # same live rows in the same order: the BM25 folder stays valid
            manifest.bm25 = BM25Ref(name=manifest.bm25.name, seq=seq)
        self._commit(manifest)
        self._segments = [segment]
        for name in old:
            shutil.rmtree(self.root / name, ignore_errors=True)

    def close(self) -> None:
        """Release the writer lock."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # ---------------------------------------------------------------- reading
    def _view(self) -> LiveView:
        if self._live is None:
            self._live = live_view(self._segments, self.manifest.tombstones)
        return self._live

    def count(self) -> int:
        """Number of live passages."""
        return len(self._view().passages)

    def content_hashes(self) -> dict[str, str]:
        """Live passage id -> content hash."""
        return {p.id: p.content_hash for p in self._view().passages}

    def get_passages(self, passage_ids: Sequence[str]) -> list[Passage]:
        """Live passages with these ids, in the order asked."""
        view = self._view()
        return [view.passages[view.row_of[i]] for i in passage_ids if i in view.row_of]

    def get_vectors(self, passage_ids: Sequence[str]) -> dict[str, dict[str, float]]:
        """Stored vectors of these passages."""
        view = self._view()
        return {i: view.row_vector(view.row_of[i]) for i in passage_ids if i in view.row_of}

    def _candidates(self, view: LiveView, filters: SearchFilters | None) -> np.ndarray:
        mask = np.ones(len(view.passages), dtype=bool)
        if filters is not None and filters.domain is not None:
            mask &= view.domains == filters.domain
        return mask

    def _hits(self, view: LiveView, rows: list[int], scores: np.ndarray | Mapping[int, float]) -> list[Hit]:
        out = []
        for r in rows:
            p = view.passages[r]
            out.append(Hit(id=p.id, doc_id=p.doc_id, score=float(scores[r]), title=p.title, domain=p.domain, text=p.text, extra=p.extra))
        return out

    def sparse_scores(self, query_tokens: Mapping[str, float]) -> np.ndarray:
        """Exact dot product of the query with every live passage (row order of the live view)."""
        view = self._view()
        return posting_scores(view.postings, *view.query_columns(query_tokens))

    def search(self, query_tokens: Mapping[str, float], k: int = 10, *, filters: SearchFilters | None = None,
               per_document: bool = True) -> list[Hit]:
        """Top-k passages (or documents) by exact sparse dot product; zero scores do not match."""
        view = self._view()
        if self.approximate_above is not None and len(view.passages) >= self.approximate_above:
            hits = self._search_approximate(view, query_tokens, k, filters, per_document)
            if hits is not None:
                return hits
        scores = self.sparse_scores(query_tokens)
        rows = top_k_rows(scores, self._candidates(view, filters) & (scores > 0), k, view.doc_codes if per_document else None)
        return self._hits(view, rows, scores)

    def _search_approximate(self, view: LiveView, query_tokens: Mapping[str, float], k: int,
                            filters: SearchFilters | None, per_document: bool) -> list[Hit] | None:
        """Seismic's candidates, re-scored exactly; None (exact search answers) without Seismic or when
        the filters and the document collapse leave fewer than k of a full candidate list."""
        scorer = self._approximate_scorer(view)
        if scorer is None:
            return None
        cols, weights = view.query_columns(query_tokens)
        if not cols.size or k <= 0:
            return []
        depth = k if filters is None and not per_document else APPROXIMATE_DEPTH * k
        rows = np.sort(np.asarray(scorer.top_k(cols, weights, depth), dtype=np.int64))  # row order breaks ties
        q = np.zeros(len(view.features), dtype=np.float64)
        q[cols] = weights
        scores = np.asarray(view.matrix[rows] @ q, dtype=np.float64)  # Seismic stores weights in half precision
        keep = scores > 0
        if filters is not None and filters.domain is not None:
            keep &= view.domains[rows] == filters.domain
        picked = top_k_rows(scores, keep, k, view.doc_codes[rows] if per_document else None)  # positions in rows
        if len(picked) < k and rows.size >= depth:
            return None
        return self._hits(view, rows[picked].tolist(), dict(zip(rows.tolist(), scores.tolist())))

    def _approximate_scorer(self, view: LiveView) -> SeismicScorer | None:
        """The Seismic index of the live passages: cached, else loaded from the index folder, else built and saved."""
        seq = self.manifest.last_seq
        if self._approximate is not None and self._approximate[0] == seq:
            return self._approximate[1]
        missing = seismic_available()
        if missing is not None:
            log.warning("approximate search is on but unavailable (%s): searching exactly", missing)
            self.approximate_above = None
            return None
        params = SeismicParams()
        path = self.root / f"{APPROXIMATE_PREFIX}{seq:06d}{SeismicScorer.SUFFIX}"
        if path.is_file():
            scorer = SeismicScorer.load(path, view.matrix, params)
        else:
            log.warning("building the approximate (Seismic) index of %s for %d passages; it is saved for later "
                        "searches", self.root.name, len(view.passages))
            scorer = SeismicScorer(view.matrix, params)
            tmp = self.root / f"{TEMP_PREFIX}{APPROXIMATE_PREFIX}{seq:06d}-{os.getpid()}{SeismicScorer.SUFFIX}"
            os.replace(scorer.save(tmp), path)
            for old in self.root.glob(f"{APPROXIMATE_PREFIX}*"):
                if old != path:
                    old.unlink(missing_ok=True)
        self._approximate = (seq, scorer)
        return scorer

    def _bm25_scores(self, view: LiveView, text: str) -> np.ndarray:
        fresh = self.manifest.bm25 is not None and self.manifest.bm25.seq == self.manifest.last_seq
        if self._bm25 is None or [p.id for p in view.passages] != self._bm25.passage_ids:
            if fresh:
                self._bm25 = BM25Index.load(self.root / self.manifest.bm25.name)
            if self._bm25 is None or self._bm25.passage_ids != [p.id for p in view.passages]:
                log.warning("BM25 of index %s is older than its passages (an interrupted ingest?): rebuilding it in "
                            "memory; run `ksearch ingest` again to store it", self.root.name)
                self._bm25 = BM25Index.build([p.id for p in view.passages], view.morphemes)
        return self._bm25.scores(text)

    def search_bm25(self, text: str, k: int = 10, *, filters: SearchFilters | None = None,
                    per_document: bool = True) -> list[Hit]:
        """Top-k passages (or documents) by BM25 over content morphemes."""
        view = self._view()
        scores = self._bm25_scores(view, text)
        rows = top_k_rows(scores, self._candidates(view, filters) & (scores > 0), k, view.doc_codes if per_document else None)
        return self._hits(view, rows, scores)

    def stats(self) -> IndexStats:
        """Live passages, documents and mean non-zero weights per passage."""
        view = self._view()
        n = len(view.passages)
        nnz = float(np.diff(view.matrix.indptr).mean()) if n else 0.0
        passages_by_domain = Counter(p.domain for p in view.passages)
        documents_by_domain = Counter(domain for _, domain in {(p.doc_id, p.domain) for p in view.passages})
        return IndexStats(passages=n, documents=len({p.doc_id for p in view.passages}), avg_nonzero_weights=nnz,
                          documents_by_domain=dict(sorted(documents_by_domain.items())),
                          passages_by_domain=dict(sorted(passages_by_domain.items())))

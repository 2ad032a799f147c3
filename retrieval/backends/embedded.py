"""`EmbeddedIndex`: the default backend, exact sparse dot products over posting lists built from CSR segments on disk.

On disk (`KSEARCH_HOME/<name>/`): `manifest.json`, immutable `seg-NNNNNN/` segment folders (`segment.py`), one
`bm25-NNNNNN/` folder and at most one `approx-impact-*/` folder (the approximate index). A write adds a segment (replacements win over older versions of
an id; deletions are tombstones), then replaces the manifest: nothing stored is rewritten, and a killed writer never
leaves an index that fails to open. `compact` merges the live rows into one segment.

One writer at a time: a process takes the lock file at its first write and keeps it until `close` (another process's
write fails with a clear error); threads sharing one object take turns, a whole write each. Readers (the writer's own
searches too) work on one committed state, manifest and segments swapped as a whole: before a write or after it.
A write does not keep its rows in memory: the next read loads the committed segments from disk, so an ingest's
writer holds one batch at a time (until `finish_writes`, whose compaction and BM25 build read every live row).

Sparse search is exact. With `approximate_above` set (`KSEARCH_APPROXIMATE_ABOVE`), indexes of at least that many
live passages take candidates from impact-ordered postings (`impact.py`), scored exactly against the live rows.
Building them is writer's work: at the end of an ingest (`finish_writes`) or by `build_approximate` (`ksearch index
build-ann`), with a progress bar, into files under a new folder name that only the committed manifest points readers
to; readers memory-map those files. A search never builds them: with the folder missing or older than the rows (an
index from before, or a search during an ingest), it answers exactly (the same results, slower), logs why once and
reports it in `search_notice()`.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retrieval.backends.approximate_search import approximate_top_k
from retrieval.backends.approximate_state import AnnStatus, ref_is_current
from retrieval.backends.atomic_files import TEMP_PREFIX
from retrieval.backends.base import IndexStats, SearchBackend, SearchFilters
from retrieval.backends.impact_file import ImpactFile, build_settings
from retrieval.backends.live_view import LiveView, live_view
from retrieval.backends.manifest import AnnRef, BM25Ref, Manifest, SegmentRef, read_manifest, write_manifest
from retrieval.backends.postings import posting_scores
from retrieval.backends.segment import Segment, build_segment, read_segment, read_segment_hashes, write_segment
from retrieval.backends.top_k import top_k_rows
from retrieval.backends.vector_check import check_vectors
from retrieval.backends.writer_lock import take_writer_lock, remove_orphans
from retrieval.bm25_index import BM25Index
from retrieval.errors import IndexNotFoundError, RetrievalError
from retrieval.hits import Hit
from retrieval.index_meta import IndexMeta
from retrieval.morphemes import content_morphemes_many
from retrieval.passage import Passage

log = logging.getLogger(__name__)

COMPACT_AFTER_SEGMENTS = 32  # finish_writes merges segments beyond this many


@dataclass(frozen=True)
class _Snapshot:
    """One committed state: a manifest and its segments, replaced as a whole so that no search mixes two states.

    `segments` is None after a write: the rows are read back from disk when something first needs them, so that
    an ingest's writer never holds the index in memory."""

    manifest: Manifest
    segments: tuple[Segment, ...] | None


_SAME = object()  # `_commit`: the segments did not change


class EmbeddedIndex(SearchBackend):
    """An index in a local folder; see the module docstring for the layout."""

    def __init__(self, root: Path, manifest: Manifest) -> None:
        self.root = root
        self._lock_fd: int | None = None
        self._write_lock = threading.RLock()  # one write at a time among the threads sharing this object
        self.approximate_above: int | None = None  # live passages from which `search` approximates (None: never)
        self.approximate = ImpactFile(root)  # the approximate index the manifest names
        self._bm25: BM25Index | None = None
        self._load(manifest)

    def _load(self, manifest: Manifest) -> None:
        """Read `manifest`'s segments and make them the current state."""
        self._set(_Snapshot(manifest, tuple(read_segment(self.root, s.name, s.seq) for s in manifest.segments)))

    def _set(self, snapshot: _Snapshot) -> None:
        self._live: tuple[_Snapshot, LiveView] | None = None
        self._snapshot = snapshot
        self.meta = snapshot.manifest.meta

    @property
    def manifest(self) -> Manifest:
        """The committed manifest this object reads."""
        return self._snapshot.manifest

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
        """Take the lock file (once per object), load what another writer committed since, remove its leftovers."""
        if self._lock_fd is not None:
            return
        self._lock_fd = take_writer_lock(self.root)
        try:  # another writer may have committed since we read the manifest
            on_disk = read_manifest(self.root)
        except IndexNotFoundError:
            on_disk = None
        if on_disk is not None and on_disk.model_dump() != self.manifest.model_dump():
            self._load(on_disk)
        remove_orphans(self.root, self.manifest)

    def _commit(self, manifest: Manifest, segments: Sequence[Segment] | None | object = _SAME) -> None:
        """Replace the manifest on disk, then this object's state (with `segments` when they changed; None: read
        them from disk when needed)."""
        write_manifest(self.root, manifest)
        kept = self._snapshot.segments if segments is _SAME else None if segments is None else tuple(segments)
        self._set(_Snapshot(manifest, kept))

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
        morphemes = content_morphemes_many(p.text for p in passages)
        with self._write_lock:
            self._acquire_writer()
            seq = self.manifest.next_seq
            segment = build_segment(f"seg-{seq:06d}", seq, passages, vectors, morphemes)
            write_segment(self.root, segment)
            manifest = self.manifest.model_copy(deep=True)
            manifest.segments.append(SegmentRef(name=segment.name, seq=seq, rows=len(passages)))
            manifest.next_seq = seq + 1
            self._commit(manifest, None)  # not kept in memory: a long ingest holds one batch, not every segment

    def delete(self, passage_ids: Iterable[str]) -> int:
        """Tombstone these ids (one manifest write); return how many were live."""
        wanted = set(passage_ids)
        with self._write_lock:
            if not wanted & self._view().row_of.keys():
                return 0  # nothing to do: no lock taken
            self._acquire_writer()  # may load a newer state: count against that one
            doomed = sorted(wanted & self._view().row_of.keys())
            if not doomed:
                return 0
            manifest = self.manifest.model_copy(deep=True)
            seq = manifest.next_seq
            manifest.tombstones.update({i: seq for i in doomed})
            manifest.next_seq = seq + 1
            self._commit(manifest)
            return len(doomed)

    def finish_writes(self, *, progress: bool = False) -> None:
        """Compact if there are many segments, then bring BM25 and the approximate index up to date (see the module doc).

        BM25 is rebuilt from the stored passages' morphemes at the end of an ingest run rather than per write:
        bm25s has no incremental update, and IDF depends on the whole collection. The approximate index is rebuilt
        when searches would use it (`approximate_above` set and reached); `progress` shows a bar while it builds.
        """
        with self._write_lock:
            if not self._derived_work_due():
                return  # nothing to do: no lock taken
            self._acquire_writer()
            if len(self.manifest.segments) > COMPACT_AFTER_SEGMENTS:
                self.compact()
            if not self._bm25_current(self.manifest):
                self._write_bm25()
            if self._approximate_wanted() and not ref_is_current(self.manifest, build_settings()):
                try:
                    self._write_ann(progress)
                except RetrievalError as exc:
                    raise RetrievalError(f"{exc}; the passages are stored, and sparse search answers exactly until "
                                         f"`ksearch index build-ann --index {self.root.name}` succeeds") from exc

    def _derived_work_due(self) -> bool:
        m = self.manifest
        return (len(m.segments) > COMPACT_AFTER_SEGMENTS or not self._bm25_current(m)
                or (self._approximate_wanted() and not ref_is_current(m, build_settings())))

    @staticmethod
    def _bm25_current(manifest: Manifest) -> bool:
        return manifest.bm25 is not None and manifest.bm25.seq == manifest.last_seq

    def _write_bm25(self) -> None:
        view = self._view()
        bm25 = BM25Index.build([p.id for p in view.passages], view.morphemes)
        seq = self.manifest.last_seq
        name = f"bm25-{seq:06d}"
        bm25.install(self.root / name, self.root / f"{TEMP_PREFIX}{name}-{os.getpid()}")
        manifest = self.manifest.model_copy(deep=True)
        old = manifest.bm25
        manifest.bm25 = BM25Ref(name=name, seq=seq)
        self._commit(manifest)
        self._bm25 = bm25
        if old is not None and old.name != name:
            shutil.rmtree(self.root / old.name, ignore_errors=True)

    def _approximate_wanted(self) -> bool:
        """True when searches would use an approximate index."""
        return self.approximate_above is not None and self.count() >= self.approximate_above

    def build_approximate(self, *, force: bool = False, progress: bool = False) -> AnnRef:
        """Build (with `force`, rebuild) the approximate index of the live rows unless it is current; return its entry.

        For indexes written before ingests built it, or with approximate search off. `RetrievalError` without
        passages, or while another process writes."""
        with self._write_lock:
            self._acquire_writer()
            if force or not ref_is_current(self.manifest, build_settings()):
                self._write_ann(progress)
            return self.manifest.ann

    def _write_ann(self, progress: bool) -> None:
        """Build the approximate index of the current rows, commit the manifest naming it, delete the one it replaces."""
        snapshot, view = self._snapshot_view()
        ref = self.approximate.build(snapshot.manifest, view, progress=progress)
        manifest = snapshot.manifest.model_copy(deep=True)
        old, manifest.ann = manifest.ann, ref
        self._commit(manifest)
        if old is not None and old.name != ref.name:  # a reader that mapped it keeps its files; one that had not: exact
            path = self.root / old.name
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)  # Seismic: a file

    def compact(self) -> None:
        """Merge all live rows into one new segment and drop the old segments and tombstones.

        The new segment keeps the live rows' order and feature numbering, so a current BM25 folder and approximate
        index stay valid."""
        with self._write_lock:
            self._acquire_writer()
            view = self._view()
            seq = self.manifest.next_seq
            segment = Segment(f"seg-{seq:06d}", seq, list(view.passages), list(view.morphemes), list(view.features),
                              view.matrix)  # the rows' own objects, not copies: nothing mutates them
            write_segment(self.root, segment)
            manifest = self.manifest.model_copy(deep=True)
            old = [s.name for s in manifest.segments]
            manifest.segments = [SegmentRef(name=segment.name, seq=seq, rows=len(view.passages))]
            manifest.tombstones = {}
            manifest.next_seq = seq + 1
            if self._bm25_current(self.manifest):  # same live rows in the same order: the BM25 folder stays valid
                manifest.bm25 = BM25Ref(name=manifest.bm25.name, seq=seq)
            if self.manifest.ann is not None and self.manifest.ann.seq == self.manifest.last_seq:  # same rows, columns
                manifest.ann = manifest.ann.model_copy(update={"seq": seq})
            self._commit(manifest, (segment,))
            for name in old:
                shutil.rmtree(self.root / name, ignore_errors=True)

    def close(self) -> None:
        """Release the writer lock."""
        with self._write_lock:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    # ---------------------------------------------------------------- reading
    def _snapshot_view(self) -> tuple[_Snapshot, LiveView]:
        """The current state and its live rows (assembled once per state)."""
        while True:
            snapshot, cached = self._snapshot, self._live
            if cached is not None and cached[0] is snapshot:
                return cached
            segments = snapshot.segments if snapshot.segments is not None else self._read_segments(snapshot)
            if segments is not None:
                pair = (snapshot, live_view(segments, snapshot.manifest.tombstones))
                self._live = pair
                return pair

    def _read_segments(self, snapshot: _Snapshot) -> tuple[Segment, ...] | None:
        """`snapshot`'s segments from disk; None when a newer state of this object replaced (and deleted) them."""
        try:
            return tuple(read_segment(self.root, s.name, s.seq) for s in snapshot.manifest.segments)
        except FileNotFoundError:
            if self._snapshot is snapshot:
                raise
            return None

    def _view(self) -> LiveView:
        return self._snapshot_view()[1]

    def count(self) -> int:
        """Number of live passages."""
        return len(self._view().passages)

    def content_hashes(self) -> dict[str, str]:
        """Live passage id -> content hash (read from the segment files when the rows are not in memory)."""
        snapshot, cached = self._snapshot, self._live
        if snapshot.segments is not None or (cached is not None and cached[0] is snapshot):
            return {p.id: p.content_hash for p in self._view().passages}
        latest: dict[str, tuple[int, str]] = {}
        for ref in snapshot.manifest.segments:
            for pid, digest in read_segment_hashes(self.root, ref.name):
                latest[pid] = (ref.seq, digest)
        tombstones = snapshot.manifest.tombstones
        return {pid: digest for pid, (seq, digest) in latest.items() if tombstones.get(pid, -1) <= seq}

    def get_passages(self, passage_ids: Sequence[str]) -> list[Passage]:
        """Live passages with these ids, in the order asked."""
        view = self._view()
        return [view.passages[view.row_of[i]] for i in passage_ids if i in view.row_of]

    def get_vectors(self, passage_ids: Sequence[str]) -> dict[str, dict[str, float]]:
        """Stored vectors of these passages."""
        view = self._view()
        return {i: view.row_vector(view.row_of[i]) for i in passage_ids if i in view.row_of}

    def search(self, query_tokens: Mapping[str, float], k: int = 10, *, filters: SearchFilters | None = None,
               per_document: bool = True) -> list[Hit]:
        """Top-k passages (or documents) by sparse dot product; zero scores do not match.

        The approximate index's candidates scored exactly when it is current (see the module doc), else exact over
        every posting: a search never builds or writes anything."""
        snapshot, view = self._snapshot_view()
        if self.approximate_above is not None and len(view.passages) >= self.approximate_above:
            scorer = self.approximate.scorer(snapshot.manifest, view, self.approximate_above)
            found = approximate_top_k(view, scorer, query_tokens, k, filters, per_document) if scorer else None
            if found is not None:
                return view.hits(*found)
        scores = posting_scores(view.postings, *view.query_columns(query_tokens))
        rows = top_k_rows(scores, view.candidates(filters) & (scores > 0), k, view.doc_codes if per_document else None)
        return view.hits(rows, scores)

    def approximate_status(self) -> AnnStatus:
        """Whether sparse searches use the approximate index now, and if they answer exactly against the settings, why."""
        snapshot, view = self._snapshot_view()
        return self.approximate.status(snapshot.manifest, len(view.passages), self.approximate_above)

    def search_notice(self) -> str | None:
        """Why sparse searches answer exactly although approximate search is configured (None when they do not)."""
        return self.approximate_status().notice()

    def _bm25_scores(self, snapshot: _Snapshot, view: LiveView, text: str) -> np.ndarray:
        ids = [p.id for p in view.passages]
        if self._bm25 is None or self._bm25.passage_ids != ids:
            stored = snapshot.manifest.bm25 if self._bm25_current(snapshot.manifest) else None
            try:
                self._bm25 = BM25Index.load(self.root / stored.name) if stored else None
            except FileNotFoundError:  # a later writer replaced it; this state's BM25 is rebuilt below
                self._bm25 = None
            if self._bm25 is None or self._bm25.passage_ids != ids:
                log.warning("BM25 of index %s is not stored for these passages (an interrupted ingest, or replaced by a "
                            "later one): rebuilding it in memory; reopen the index, or run `ksearch ingest` again",
                            self.root.name)
                self._bm25 = BM25Index.build(ids, view.morphemes)
        return self._bm25.scores(text)

    def search_bm25(self, text: str, k: int = 10, *, filters: SearchFilters | None = None,
                    per_document: bool = True) -> list[Hit]:
        """Top-k passages (or documents) by BM25 over content morphemes."""
        snapshot, view = self._snapshot_view()
        scores = self._bm25_scores(snapshot, view, text)
        rows = top_k_rows(scores, view.candidates(filters) & (scores > 0), k, view.doc_codes if per_document else None)
        return view.hits(rows, scores)

    def stats(self) -> IndexStats:
        """Live passages, documents and mean non-zero weights per passage."""
        return self._view().stats()

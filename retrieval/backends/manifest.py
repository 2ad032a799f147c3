"""The manifest of an embedded index: the one file whose replacement commits a write.

Everything an index consists of is named here; files and folders it does not name (left by a
killed writer) are ignored by readers and removed by the next writer.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ValidationError

from retrieval.backends.atomic_files import write_json_atomic
from retrieval.errors import IndexFormatError, IndexNotFoundError
from retrieval.index_meta import FORMAT_VERSION, IndexMeta

MANIFEST_FILE = "manifest.json"


class SegmentRef(BaseModel):
    """A committed segment folder and its sequence number (later segments win for the same id)."""

    name: str
    seq: int
    rows: int


class BM25Ref(BaseModel):
    """The committed BM25 folder and the write sequence number it reflects."""

    name: str
    seq: int


class AnnRef(BaseModel):
    """The committed approximate index (a folder of impact-ordered postings), the write it reflects and how it was built.

    Its name is unique to one build, so files a manifest names never change while a reader may map them.
    """

    name: str
    seq: int
    params: dict  # impact.build_settings() of the build and its rows per block (an earlier ksearch's: Seismic's)
    passages: int
    build_seconds: float


class Manifest(BaseModel):
    """Index metadata, segments, tombstones (passage id -> seq of its deletion), the BM25 folder and the approximate index."""

    meta: IndexMeta
    segments: list[SegmentRef] = []
    tombstones: dict[str, int] = {}  # a deletion at seq s hides versions of the id in segments with seq < s
    next_seq: int = 1
    bm25: BM25Ref | None = None
    ann: AnnRef | None = None  # absent until an ingest with approximate search on (or build-ann) built one

    @property
    def last_seq(self) -> int:
        """The sequence number of the latest committed write."""
        return self.next_seq - 1


def read_manifest(root: Path) -> Manifest:
    """Read `root/manifest.json`; clear errors for a missing index or a broken file."""
    path = root / MANIFEST_FILE
    if not path.is_file():
        raise IndexNotFoundError(f"no index at {root} (no {MANIFEST_FILE}): run `ksearch ingest PATH --index {root.name}` first")
    try:
        manifest = Manifest.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, ValidationError, UnicodeDecodeError) as exc:
        raise IndexFormatError(f"{path}: unreadable index manifest ({exc})") from None
    if manifest.meta.format_version != FORMAT_VERSION:
        raise IndexFormatError(f"{path}: index format {manifest.meta.format_version}, this ksearch reads "
                               f"format {FORMAT_VERSION}; re-ingest into a new index")
    return manifest


def write_manifest(root: Path, manifest: Manifest) -> None:
    """Commit `manifest` (atomic replace)."""
    write_json_atomic(root / MANIFEST_FILE, manifest.model_dump(mode="json"))

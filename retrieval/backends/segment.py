"""An immutable segment of the embedded index: passages + their vectors as CSR arrays.

Layout of `seg-NNNNNN/`: `passages.jsonl` (one `Passage` record per row), `morphemes.jsonl` (the
row's Kiwi content morphemes, so BM25 can be rebuilt without re-analysing), `features.json`
(column -> feature name, local to the segment) and `indptr.npy`, `indices.npy`, `data.npy`.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse

from retrieval.backends.atomic_files import install_directory, read_jsonl, temp_path_for, write_jsonl, write_npy
from retrieval.passage import Passage


@dataclass
class Segment:
    """One segment loaded in memory."""

    name: str
    seq: int
    passages: list[Passage]
    morphemes: list[list[str]]
    features: list[str]
    matrix: sparse.csr_matrix  # rows x len(features), float32


def build_segment(name: str, seq: int, passages: Sequence[Passage], vectors: Sequence[Mapping[str, float]],
                  morphemes: Sequence[list[str]]) -> Segment:
    """Assemble a segment from passages and their vectors."""
    features: dict[str, int] = {}
    indptr, indices, data = [0], [], []
    for vector in vectors:
        for feature, weight in vector.items():
            indices.append(features.setdefault(feature, len(features)))
            data.append(weight)
        indptr.append(len(indices))
    matrix = sparse.csr_matrix(
        (np.asarray(data, dtype=np.float32), np.asarray(indices, dtype=np.int32), np.asarray(indptr, dtype=np.int64)),
        shape=(len(passages), len(features)),
    )
    return Segment(name, seq, list(passages), [list(m) for m in morphemes], list(features), matrix)


def write_segment(root: Path, segment: Segment) -> None:
    """Write `segment` under `root/<name>` via a temporary directory (never half-visible)."""
    final = root / segment.name
    tmp = temp_path_for(final)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    write_jsonl(tmp / "passages.jsonl", (p.to_record() for p in segment.passages))
    write_jsonl(tmp / "morphemes.jsonl", segment.morphemes)
    write_jsonl(tmp / "features.json", [segment.features])
    m = segment.matrix
    write_npy(tmp / "indptr.npy", np.asarray(m.indptr, dtype=np.int64))
    write_npy(tmp / "indices.npy", np.asarray(m.indices, dtype=np.int32))
    write_npy(tmp / "data.npy", np.asarray(m.data, dtype=np.float32))
    install_directory(tmp, final)


def read_segment(root: Path, name: str, seq: int) -> Segment:
    """Load a segment written by `write_segment` (plain arrays, never pickle)."""
    folder = root / name
    passages = [Passage.from_record(r) for r in read_jsonl(folder / "passages.jsonl")]
    # one str object per distinct morpheme, not per occurrence: morphemes are most of an index's memory otherwise
    morphemes = [[sys.intern(m) for m in row] for row in read_jsonl(folder / "morphemes.jsonl")]
    features = json.loads((folder / "features.json").read_text(encoding="utf-8"))
    indptr = np.load(folder / "indptr.npy", allow_pickle=False)
    indices = np.load(folder / "indices.npy", allow_pickle=False)
    data = np.load(folder / "data.npy", allow_pickle=False)
    if len(indptr) != len(passages) + 1 or len(morphemes) != len(passages):
        raise ValueError(f"{folder}: {len(passages)} passages but {len(indptr) - 1} vector rows / {len(morphemes)} morpheme rows")
    matrix = sparse.csr_matrix((data, indices, indptr), shape=(len(passages), len(features)))
    return Segment(name, seq, passages, morphemes, features, matrix)


def read_segment_hashes(root: Path, name: str) -> Iterator[tuple[str, str]]:
    """(passage id, content hash) of every row of a segment, read one line at a time (no vectors, nothing kept)."""
    with open(root / name / "passages.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                record = json.loads(line)
                yield record["id"], record.get("content_hash", "")

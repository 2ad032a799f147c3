"""BM25 over Kiwi content morphemes (`bm25s`), saved as bm25s' own json + npy files."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from collections.abc import Sequence

import numpy as np

from retrieval.morphemes import content_morphemes

IDS_FILE = "passage_ids.json"
# Lucene's BM25 with OpenSearch's default similarity parameters, so both backends' BM25 rank alike
# (bm25s defaults to k1 = 1.5)
K1, B = 1.2, 0.75


class BM25Index:
    """A bm25s index whose rows are passages, in the order of `passage_ids`."""

    def __init__(self, retriever, passage_ids: list[str]) -> None:
        self.retriever = retriever
        self.passage_ids = passage_ids

    @classmethod
    def build(cls, passage_ids: Sequence[str], morphemes: Sequence[list[str]]) -> "BM25Index":
        """Index passages already split into content morphemes (`retrieval.morphemes`)."""
        import bm25s

        retriever = bm25s.BM25(method="lucene", k1=K1, b=B)
        # bm25s needs at least one token per document to build its vocabulary; an empty passage gets none. The rows
        # are passed as they are (bm25s only reads them), not copied: an index's morphemes are most of its memory.
        retriever.index(list(morphemes) or [[]], show_progress=False)
        return cls(retriever, list(passage_ids))

    def scores(self, text: str) -> np.ndarray:
        """BM25 score of every passage (row order of `passage_ids`) for the query `text`."""
        ids = self.retriever.get_tokens_ids(content_morphemes(text))
        if not ids or not self.passage_ids:
            return np.zeros(len(self.passage_ids), dtype=np.float32)
        return np.asarray(self.retriever.get_scores_from_ids(ids), dtype=np.float32)[: len(self.passage_ids)]

    def save(self, directory: Path) -> None:
        """Write bm25s' files and the passage id order into `directory` (created)."""
        directory.mkdir(parents=True, exist_ok=True)
        self.retriever.save(str(directory), show_progress=False)
        (directory / IDS_FILE).write_text(json.dumps(self.passage_ids, ensure_ascii=False), encoding="utf-8")
        for name in os.listdir(directory):
            with open(directory / name, "rb") as fh:
                os.fsync(fh.fileno())

    def install(self, final: Path, tmp: Path) -> None:
        """Save into the temporary folder `tmp`, then rename it to `final` (replacing a folder a killed writer left)."""
        shutil.rmtree(tmp, ignore_errors=True)
        self.save(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)

    @classmethod
    def load(cls, directory: Path) -> "BM25Index":
        """Read an index written by `save` (never unpickles)."""
        import bm25s

        retriever = bm25s.BM25.load(str(directory), allow_pickle=False, show_progress=False)
        ids = json.loads((directory / IDS_FILE).read_text(encoding="utf-8"))
        return cls(retriever, ids)

"""Retrieval parity of an encoder variant: sparse nDCG@10 of an index built and queried with it, on judged queries."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from ingest import ingest_path
from retrieval.backends import EmbeddedIndex
from retrieval.evaluation import evaluate_modes, read_qrels, read_queries, read_split
from retrieval.index_meta import IndexMeta
from retrieval.searcher import Searcher


@dataclass(frozen=True)
class ParityData:
    """The corpus and judged queries a variant is evaluated on (the same ones `ksearch eval` uses)."""

    corpus: Path
    queries: Path
    qrels: Path
    splits: Path | None
    split: str = "test"

    @classmethod
    def sample(cls, root: Path = Path("sample_data"), split: str = "test") -> "ParityData | None":
        """The sample corpus's test split, or None when its files are not there."""
        data = cls(root / "corpus.jsonl", root / "queries.jsonl", root / "qrels.tsv", root / "splits.json", split)
        return data if all(p.is_file() for p in (data.corpus, data.queries, data.qrels)) else None

    def ndcg_at_10(self, encoder) -> float:
        """Index the corpus with `encoder` in a temporary folder and return sparse nDCG@10 on the split."""
        judged = read_queries(self.queries)
        if self.splits is not None and self.splits.is_file() and self.split != "all":
            wanted = read_split(self.splits, self.split)
            judged = [q for q in judged if q.id in wanted]
        with tempfile.TemporaryDirectory(prefix="ksearch-parity-") as tmp:
            index = EmbeddedIndex.create(Path(tmp) / "parity", IndexMeta.for_encoder("parity", encoder))
            try:
                ingest_path(self.corpus, index, encoder, progress=False)
                result = evaluate_modes(Searcher(encoder, index), judged, read_qrels(self.qrels), modes=("sparse",))
            finally:
                index.close()
        return result.metrics["sparse"]["ndcg@10"]

    def describe(self) -> dict:
        """What the parity figures were measured on, for the results document."""
        return {"corpus": str(self.corpus), "queries": str(self.queries), "qrels": str(self.qrels), "split": self.split,
                "metric": "sparse nDCG@10 (documents), index built and queried with the variant"}

"""`ksearch bench adapt`: how long `ksearch adapt` takes on a corpus of N passages, phase by phase.

The first documents of a corpus are taken until they make N passages (as the ingest splitter cuts them), adapted
into a model in a temporary models folder, and every phase is timed: reading, pseudo-queries, BM25 and model
mining, Kiwi neighbours, segmentation, training (bounded by --minutes) and saving (with the ONNX export).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from encoder.training.data import pair_file_triples
from ingest.chunking import PassageSplitter
from ingest.readers import ColumnMapping, SourceDocument
from ingest.worker import SPLIT_BATCH, IngestReport, collect_documents
from ksearch.adaptation import adapt_corpus
from ksearch.benchmarks.encode import hardware_string


def _documents(path: Path) -> list[SourceDocument]:
    """A corpus's documents as ingest reads them; a training-pair file (`query`/`positive` rows, no `text`) gives one
    document per distinct passage it holds, so the written training data can make a corpus of realistic size."""
    first = path.open(encoding="utf-8").readline() if path.suffix == ".jsonl" else ""
    row = json.loads(first) if first.strip() else {}
    if "positive" in row and "text" not in row:
        passages = dict.fromkeys(t for pair in pair_file_triples([path]) for t in (pair.positive, pair.negative) if t)
        return [SourceDocument(doc_id=f"{path.stem}-{n:05d}", text=t, title="", domain=row.get("domain", ""))
                for n, t in enumerate(passages)]
    return collect_documents(path, None, ColumnMapping(), IngestReport())


def write_passage_subset(corpora: Sequence[Path], encoder, passages: int, out: Path) -> tuple[int, int]:
    """The first documents of `corpora`, in order, that make at least `passages` passages, as JSONL in `out`:
    (documents, passages)."""
    splitter = PassageSplitter(encoder)
    taken, count = [], 0
    for corpus in corpora:
        documents = _documents(corpus)
        for begin in range(0, len(documents), SPLIT_BATCH):
            if count >= passages:
                break
            chunk = documents[begin: begin + SPLIT_BATCH]
            for doc, pieces in zip(chunk, splitter.split_many([d.text for d in chunk])):
                if count >= passages:
                    break
                taken.append(doc)
                count += len(pieces)
    with out.open("w", encoding="utf-8") as f:
        for doc in taken:
            f.write(json.dumps({"id": doc.doc_id, "title": doc.title, "text": doc.text, "domain": doc.domain, **doc.extra},
                               ensure_ascii=False) + "\n")
    return len(taken), count


def run_adapt_bench(encoder, corpora: Sequence[Path], *, passages: int, minutes: float | None, progress: bool = True,
                    work_dir: Path | None = None) -> dict:
    """Adapt `encoder`'s model to the first `passages` passages of `corpora` in a temporary folder; phase timings."""
    import torch

    load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        subset = Path(tmp) / "subset.jsonl"
        documents, count = write_passage_subset(corpora, encoder, passages, subset)
        start = time.perf_counter()
        report = adapt_corpus(subset, "bench-adapt", encoder, models_dir=Path(tmp) / "models", minutes=minutes,
                              progress=progress)
        total = time.perf_counter() - start
        model_mb = sum(p.stat().st_size for p in report.target.iterdir()) / 2**20
    fit = report.fit
    return {"benchmark": "adapt", "model": encoder.model_id, "hardware": hardware_string(),
            "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "device": fit.device,
            "corpus": [str(c) for c in corpora], "documents": documents, "passages": count,
            "requested_passages": passages, "minutes_budget": round(report.minutes, 2),
            "minutes_given": minutes,
            "pairs": report.pairs, "negatives": report.negatives, "training_rows": fit.rows,
            "steps": fit.steps, "planned_steps": fit.max_steps, "stopped_by_budget": fit.stopped_by_budget,
            "train_loop_seconds": round(fit.seconds, 1),
            "seconds_per_step": round(fit.seconds / fit.steps, 2) if fit.steps else None,
            "first_loss": fit.losses[0] if fit.losses else None, "last_loss": fit.losses[-1] if fit.losses else None,
            "phases_seconds": report.phases, "total_seconds": round(total, 1), "onnx_error": report.onnx_error,
            "model_folder_mb": round(model_mb, 1), "load_average_at_start": round(load_at_start, 2),
            "load_average_at_end": round(os.getloadavg()[0], 2)}

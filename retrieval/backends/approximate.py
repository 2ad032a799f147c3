"""Approximate sparse top-k with Seismic (`pyseismic-lsr`, optional: `pip install -e .[bench]`).

Seismic keeps each token's heaviest postings in blocks with summary vectors and skips blocks
whose summary cannot beat the current top k; `query_cut` and `heap_factor` trade recall for speed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import sparse

# Further search settings (query_cut, heap_factor) `ksearch bench scale` measures on the same Seismic index.
OPERATING_POINTS = ((10, 1.0), (10, 0.8), (20, 0.9), (40, 0.7))


@dataclass
class SeismicParams:
    """Build and search settings of the Seismic index (names as in pyseismic-lsr).

    The defaults reached recall@10 0.975-0.982 against exact scoring on 1M synthetic passages shaped like an
    earlier model's vectors (144 non-zeros per passage); on the shipped model's (69 non-zeros, ~25 query tokens)
    they reach 0.90 at 1M (docs/benchmarks.md), where impact-ordered postings (`impact.py`) reach 0.986.
    """

    n_postings: int = 8000  # postings kept per token (highest weights)
    centroid_fraction: float = 0.1
    summary_energy: float = 0.4
    query_cut: int = 20  # heaviest query tokens searched
    heap_factor: float = 0.7  # lower: more blocks scanned, higher recall

    def to_json(self) -> dict:
        """Plain dict for the results document."""
        return asdict(self)

    def build_settings(self) -> dict:
        """The settings baked into a built index (the others only steer searches)."""
        return {name: getattr(self, name) for name in BUILD_SETTINGS}


BUILD_SETTINGS = ("n_postings", "centroid_fraction", "summary_energy")
ROWS_PER_REPORT = 10_000  # how often a build reports the rows it has handed to Seismic


def seismic_available() -> str | None:
    """None when pyseismic-lsr imports, else why not."""
    try:
        import seismic  # noqa: F401
    except ImportError as exc:
        return f"pyseismic-lsr not installed ({exc}); `pip install -e .[bench]`"
    return None


class SeismicScorer:
    """A Seismic index over the rows of a CSR matrix; columns become token names, rows become document ids."""

    def __init__(self, csr: sparse.csr_matrix, params: SeismicParams, *, index=None,
                 on_rows: Callable[[int], None] | None = None) -> None:
        """Build the index of `csr`'s rows in this process (or wrap a loaded `index`); `on_rows(done)` reports progress.

        The build holds the GIL until it returns: an index that other threads search builds it in a child process
        (`seismic_build.build_seismic_file`)."""
        from seismic import SeismicDataset, SeismicIndex, get_seismic_string

        self.params = params
        self._names = np.array([str(c) for c in range(csr.shape[1])], dtype=get_seismic_string())
        if index is not None:
            self.index = index
            return
        dataset = SeismicDataset()
        indptr, indices, data = csr.indptr, csr.indices, csr.data.astype(np.float32)
        for r in range(csr.shape[0]):
            s, e = indptr[r], indptr[r + 1]
            if e > s:
                dataset.add_document(str(r), self._names[indices[s:e]], data[s:e])
            if on_rows is not None and (r + 1) % ROWS_PER_REPORT == 0:
                on_rows(r + 1)
        if on_rows is not None:
            on_rows(csr.shape[0])
        self.index = SeismicIndex.build_from_dataset(dataset, n_postings=params.n_postings,
                                                     centroid_fraction=params.centroid_fraction,
                                                     summary_energy=params.summary_energy)

    SUFFIX = ".index.seismic"  # Seismic appends it to the path it saves to

    def save(self, path: Path) -> Path:
        """Write the index to `path` (which must end in `SUFFIX`); return it."""
        self.index.save(str(path)[: -len(self.SUFFIX)])
        return path

    @classmethod
    def load(cls, path: Path, csr: sparse.csr_matrix, params: SeismicParams) -> "SeismicScorer":
        """An index saved by `save` for the rows of `csr`."""
        from seismic import SeismicIndex

        return cls(csr, params, index=SeismicIndex.load(str(path)))

    def top_k(self, cols: np.ndarray, weights: np.ndarray, k: int, *, query_cut: int | None = None,
              heap_factor: float | None = None) -> list[int]:
        """Approximate top-k rows for one query (search settings default to the params')."""
        hits = self.index.search("q", self._names[cols], weights.astype(np.float32), k=k,
                                 query_cut=query_cut or self.params.query_cut,
                                 heap_factor=heap_factor or self.params.heap_factor)
        return [int(doc) for _, _, doc in hits]

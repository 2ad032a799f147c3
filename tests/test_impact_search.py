"""Impact-ordered approximate top-k (retrieval/backends/impact.py): exact when it scores every posting, exact scores
always, fewer candidates and postings when asked, and safe to search from several threads at once."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from scipy import sparse

import retrieval.backends.impact as impact
from retrieval.backends.impact import ImpactParams, ImpactScorer


def _matrix(rows: int = 3000, cols: int = 300, seed: int = 1) -> sparse.csr_matrix:
    m = sparse.random(rows, cols, density=0.04, random_state=seed, format="csr", dtype=np.float32)
    m.data += 0.01  # stored weights are > 0
    return m


def _exact_top(m: sparse.csr_matrix, cols: np.ndarray, w: np.ndarray, k: int) -> list[int]:
    scores = np.asarray(m[:, cols] @ w).ravel()
    order = np.lexsort((np.arange(m.shape[0]), -scores))[:k]
    return [int(r) for r in order if scores[r] > 0]


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(impact, "BLOCK_ROWS", 256)  # several accumulator blocks on a small matrix


def test_scoring_every_posting_gives_the_exact_top_k_across_blocks(small_blocks):
    m = _matrix()
    scorer = ImpactScorer(m)
    assert scorer.postings.starts.shape[1] - 1 == -(-m.shape[0] // 256)  # really several blocks
    rng = np.random.default_rng(0)
    for _ in range(40):
        cols = rng.choice(m.shape[1], 8, replace=False)
        w = rng.random(8) + 0.1
        assert scorer.top_k(cols, w, 10, posting_fraction=1.0, candidates=m.shape[0]) == _exact_top(m, cols, w, 10)


def test_candidates_carry_exact_scores_and_respect_the_limit(small_blocks):
    m = _matrix()
    scorer = ImpactScorer(m)
    cols, w = np.array([3, 17, 42, 99, 150]), np.array([1.0, 0.5, 0.8, 0.2, 1.5])
    rows, scores = scorer.candidates(cols, w, posting_fraction=0.2, candidates=25)
    assert 0 < len(rows) <= 25 and len(set(rows.tolist())) == len(rows)
    np.testing.assert_allclose(scores, np.asarray(m[rows][:, cols] @ w).ravel(), rtol=1e-5)


def test_candidate_scores_are_the_exact_kernels_scores_of_the_whole_query(small_blocks):
    """What the index re-scores: every query weight counts (a negative one too), as in the exact search's kernel."""
    from retrieval.backends.postings import posting_scores

    m = _matrix()
    scorer = ImpactScorer(m)
    cols, w = np.array([3, 17, 42, 99, 150]), np.array([1.0, 0.5, 0.8, -0.2, 1.5])
    rows, scores = scorer.candidates(cols, w, posting_fraction=0.5, candidates=40)
    assert 0 < len(rows) <= 40
    np.testing.assert_allclose(scores, posting_scores(m.tocsc(), cols, w)[rows], rtol=1e-12)


def test_postings_built_into_given_arrays_search_the_same(small_blocks, tmp_path):
    """The index builds into memory-mapped files and searches them read-only: the same answers as in memory."""
    m = _matrix()
    files = {}

    def allocate(name, shape, dtype):
        files[name] = np.lib.format.open_memmap(tmp_path / f"{name}.npy", mode="w+", dtype=dtype, shape=shape)
        return files[name]

    built = impact.build_postings(m.tocsc(), allocate=allocate)
    for array in files.values():
        array.flush()
    mapped = impact.ImpactPostings(**{n: np.load(tmp_path / f"{n}.npy", mmap_mode="r") for n in impact.ARRAYS},
                                   block_rows=built.block_rows, n_rows=built.n_rows)
    in_memory, on_disk = ImpactScorer(m), ImpactScorer(m, postings=mapped)
    rng = np.random.default_rng(4)
    for _ in range(20):
        cols, w = rng.choice(m.shape[1], 8, replace=False), rng.random(8) + 0.1
        assert on_disk.top_k(cols, w, 10) == in_memory.top_k(cols, w, 10)
    with pytest.raises(ValueError, match="do not fit"):
        ImpactScorer(m[:100], postings=mapped)


def test_a_smaller_posting_fraction_keeps_the_heaviest_impacts(small_blocks):
    m = _matrix()
    scorer = ImpactScorer(m)
    cols, w = np.array([5, 6, 7]), np.array([1.0, 1.0, 1.0])
    few, _ = scorer.candidates(cols, w, posting_fraction=0.05, candidates=m.shape[0])
    every, _ = scorer.candidates(cols, w, posting_fraction=1.0, candidates=m.shape[0])
    assert 0 < len(few) < len(every) == len(set(np.flatnonzero(np.asarray(m[:, cols].sum(axis=1)).ravel())))
    heaviest = int(np.argmax(np.asarray(m[:, cols].max(axis=1).todense()).ravel()))
    assert heaviest in set(few.tolist())  # the single heaviest posting is always scored


def test_recall_grows_with_the_postings_scored_and_is_complete_with_all_of_them():
    m = _matrix(rows=20_000, cols=500, seed=3)
    scorer = ImpactScorer(m, ImpactParams())
    rng = np.random.default_rng(1)
    queries = [(c, rng.random(20) + 0.05) for c in (rng.choice(m.shape[1], 20, replace=False) for _ in range(30))]
    exact = [set(_exact_top(m, c, w, 10)) for c, w in queries]

    def recall(fraction: float) -> float:
        return float(np.mean([len(e & set(scorer.top_k(c, w, 10, posting_fraction=fraction, candidates=200))) / len(e)
                              for (c, w), e in zip(queries, exact)]))

    low, mid, full = recall(0.02), recall(0.3), recall(1.0)
    assert low < mid <= full == 1.0


def test_non_positive_query_weights_and_empty_inputs_match_nothing():
    m = _matrix()
    scorer = ImpactScorer(m)
    assert scorer.top_k(np.array([1, 2]), np.array([0.0, -1.0]), 10) == []
    assert scorer.top_k(np.array([], dtype=np.int64), np.array([]), 10) == []
    assert ImpactScorer(sparse.csr_matrix((0, 5), dtype=np.float32)).top_k(np.array([1]), np.array([1.0]), 10) == []
    with_negative = scorer.top_k(np.array([1, 2]), np.array([1.0, -1.0]), 5, posting_fraction=1.0, candidates=m.shape[0])
    assert with_negative == _exact_top(m, np.array([1]), np.array([1.0]), 5)


def test_threads_searching_at_once_get_the_sequential_results(small_blocks):
    m = _matrix()
    scorer = ImpactScorer(m)
    rng = np.random.default_rng(2)
    queries = [(rng.choice(m.shape[1], 10, replace=False), rng.random(10) + 0.1) for _ in range(60)]
    expected = [scorer.top_k(c, w, 10) for c, w in queries]
    got: dict[int, list[list[int]]] = {}

    def run(t: int) -> None:
        got[t] = [scorer.top_k(c, w, 10) for c, w in queries for _ in range(3)][::3]

    threads = [threading.Thread(target=run, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(got[t] == expected for t in range(4))


def test_the_candidate_cut_keeps_the_best_partial_sums_ties_included():
    """`_best_rows` after `_compact` keeps what one selection over every partial sum keeps: values above the n-th
    largest, then the first rows tied with it (in the order collected)."""
    rng = np.random.default_rng(7)
    for n_out, wanted in ((5000, 100), (5000, 4999), (300, 1000), (20_000, 1), (20_000, 700)):
        partial = np.round(rng.gamma(2.0, 1.0, n_out), 1).astype(np.float32) + np.float32(0.1)  # many ties
        rows = rng.permutation(10 * n_out)[:n_out].astype(np.int64)
        rows_out, partial_out = rows.copy(), partial.copy()
        kept = n_out
        if n_out > wanted:  # what the kernel does between blocks: drop what is below the n-th best so far
            floor = np.partition(partial, n_out - wanted)[n_out - wanted]
            kept = impact._compact(rows_out, partial_out, n_out, floor)
            assert kept >= wanted and (partial_out[:kept] >= floor).all()
        got = impact._best_rows(rows_out, partial_out, kept, wanted).tolist()
        if n_out <= wanted:
            assert got == rows.tolist()
            continue
        cut = np.sort(partial)[::-1][wanted - 1]
        above = rows[partial > cut]
        ties = rows[partial == cut][: wanted - above.size]
        assert got == above.tolist() + ties.tolist()


def test_candidates_are_the_rows_with_the_best_partial_sums_across_blocks(small_blocks):
    """The kernel's candidates (a floor raised between blocks, rows recorded when their sums cross it) are the rows
    with the best partial sums over the postings it scores: at posting_fraction 1.0, the best exact scores."""
    m = _matrix()
    scorer = ImpactScorer(m)
    rng = np.random.default_rng(5)
    for wanted in (1, 7, 60, 400):
        cols, w = rng.choice(m.shape[1], 12, replace=False), rng.random(12) + 0.1
        rows, scores = scorer.candidates(cols, w, posting_fraction=1.0, candidates=wanted)
        exact = np.asarray(m[:, cols] @ w).ravel()
        best = np.sort(exact[exact > 0])[::-1][: wanted]
        assert len(rows) == min(wanted, int((exact > 0).sum())) == len(set(rows.tolist()))
        np.testing.assert_allclose(np.sort(scores)[::-1], best, rtol=1e-5)


def test_a_block_whose_rows_are_all_touched_stays_inside_its_buffers(tmp_path):
    """Every row of a block touched, then touched again, where an earlier kernel overran a buffer by one (heap
    corruption on small indexes). Run with numba's bounds checks, in a fresh cache, so that an overrun raises instead
    of corrupting memory."""
    import os
    import subprocess
    import sys

    code = ("import numpy as np; from scipy import sparse; from retrieval.backends.impact import ImpactScorer\n"
            "m = sparse.csr_matrix(np.ones((30, 4), dtype=np.float32))\n"
            "print(ImpactScorer(m).top_k(np.arange(4), np.ones(4), 5, posting_fraction=1.0, candidates=30))")
    env = {**os.environ, "NUMBA_BOUNDSCHECK": "1", "NUMBA_CACHE_DIR": str(tmp_path),
           "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "[0, 1, 2, 3, 4]"

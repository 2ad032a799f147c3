"""The embedded index's approximate index (impact-ordered postings in files) is writer's work: built at the end of an
ingest or by `ksearch index build-ann`, never by a search; readers map its files; a stale or missing one makes
searches answer exactly (and say so); files are replaced atomically and writers take turns."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import retrieval.backends.impact as impact
from retrieval.backends import EmbeddedIndex, SearchFilters
from retrieval.backends.approximate_state import AnnState
from retrieval.backends.impact import ImpactParams
from retrieval.backends.impact_file import ImpactFile, load_postings
from retrieval.backends.manifest import read_manifest, write_manifest
from retrieval.errors import RetrievalError
from retrieval.index_meta import IndexMeta
from retrieval.passage import Passage
from retrieval.settings import get_settings
from cli_runs import invoke_ok, write_corpus

ROOT = Path(__file__).resolve().parents[1]
META = IndexMeta(name="t", model_id="model-a", vocab_hash="vocab-a")
VOCAB = 60
CASES = [dict(k=10, per_document=False), dict(k=5), dict(k=5, filters=SearchFilters(domain="legal"))]
GENEROUS = ImpactParams(posting_fraction=1.0, candidates=100_000)  # every posting scored, every row kept: exact


def _corpus(n: int, seed: int = 3, prefix: str = "D"):
    rng = np.random.default_rng(seed)
    passages, vectors = [], []
    for i in range(n):
        doc = f"{prefix}{i // 3}"
        passages.append(Passage(id=f"{doc}#{i % 3}", doc_id=doc, text=f"문서 {i}", domain="legal" if i % 2 else "medical"))
        chosen = rng.choice(VOCAB, size=rng.integers(1, 10), replace=False)
        vectors.append({f"tok{j}": float(rng.uniform(0.1, 3)) for j in chosen})
    return passages, vectors


def _queries(n: int = 8, seed: int = 5):
    rng = np.random.default_rng(seed)
    return [{f"tok{j}": float(rng.uniform(0.1, 2)) for j in rng.choice(VOCAB, size=8, replace=False)} for _ in range(n)]


def _results(index: EmbeddedIndex, queries) -> list:
    return [[(h.id, round(h.score, 5)) for h in index.search(q, **c)] for q in queries for c in CASES]


def _exact(index: EmbeddedIndex, queries) -> list:
    """Brute force: what the index answers with approximate search off."""
    saved, index.approximate_above = index.approximate_above, None
    try:
        return _results(index, queries)
    finally:
        index.approximate_above = saved


def _files(root: Path) -> dict[str, int]:
    """Every file under the index folder with its mtime (ns): what a search must leave as it was."""
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*"))}


def _forbid_builds(monkeypatch) -> list:
    """From here on, building impact-ordered postings in this process fails the test (and is counted)."""
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise AssertionError("an approximate index was built")

    monkeypatch.setattr("retrieval.backends.impact_file.write_postings_folder", refuse)
    monkeypatch.setattr(impact, "build_postings", refuse)  # also what ImpactScorer builds in memory without files
    return calls


def _reader(root: Path, params: ImpactParams | None = None) -> EmbeddedIndex:
    """A new reader of `root` that searches approximately from 100 passages (with `params`, else the defaults)."""
    reader = EmbeddedIndex.open(root)
    reader.approximate_above = 100
    if params is not None:
        reader.approximate = ImpactFile(root, params)
    return reader


def _built_index(root: Path, n: int = 300, above: int | None = 100) -> EmbeddedIndex:
    index = EmbeddedIndex.create(root, META)
    index.approximate_above = above
    passages, vectors = _corpus(n)
    index.add(passages[: n // 2], vectors[: n // 2])
    index.add(passages[n // 2 :], vectors[n // 2 :])
    index.finish_writes()
    return index


def test_finish_writes_builds_the_approximate_index_as_files(tmp_path):
    root = tmp_path / "t"
    writer = _built_index(root)
    manifest = read_manifest(root)
    assert manifest.ann is not None and manifest.ann.seq == manifest.last_seq == 2 and manifest.ann.passages == 300
    assert manifest.ann.params["method"] == "impact-ordered postings"
    assert sorted(p.name for p in (root / manifest.ann.name).iterdir()) == sorted(f"{a}.npy" for a in impact.ARRAYS)
    assert writer.approximate_status().state is AnnState.READY
    writer.close()


def _search_with_builds_forbidden(root: Path, monkeypatch, caplog, params: ImpactParams | None = None):
    """Open the index at `root` as a reader that searches approximately from 100 passages, with builds forbidden,
    and run the test queries; returns (reader, queries, results, builds attempted, files before)."""
    no_builds = _forbid_builds(monkeypatch)
    before = _files(root)
    reader = _reader(root, params)
    queries = _queries()
    with caplog.at_level(logging.WARNING):
        results = _results(reader, queries)
    return reader, queries, results, no_builds, before


def test_approximate_equals_exact_at_generous_settings_and_readers_map_the_files(tmp_path, monkeypatch, caplog):
    root = tmp_path / "t"
    _built_index(root).close()
    reader, queries, approx, no_builds, before = _search_with_builds_forbidden(root, monkeypatch, caplog, GENEROUS)
    assert approx == _exact(reader, queries)  # every posting scored, every row a candidate: the exact top k
    name, scorer = reader.approximate._loaded  # the answers came through the approximate index
    assert name == read_manifest(root).ann.name
    for array in (scorer.postings.indices, scorer.postings.weights, scorer.postings.starts):
        assert isinstance(array, np.memmap) and not array.flags.writeable  # mapped from the files, not copied
        assert Path(array.filename).parent == root / name
    assert reader.search_notice() is None and not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert _files(root) == before and not no_builds


def test_searches_use_the_approximate_index_at_its_settings(tmp_path, monkeypatch, caplog):
    """Default settings on this small index; then settings too tight to be exact, so that the answers visibly come
    from the candidates (scored exactly, filtered), and a filter that leaves fewer than k of them falls back to exact."""
    root = tmp_path / "t"
    _built_index(root).close()
    reader, queries, default, no_builds, _ = _search_with_builds_forbidden(root, monkeypatch, caplog)
    exact = _exact(reader, queries)
    recall = np.mean([len({i for i, _ in a} & {i for i, _ in e}) / len(e) for a, e in zip(default, exact) if e])
    assert recall >= 0.9 and reader.approximate._loaded is not None
    tight = _reader(root, ImpactParams(posting_fraction=0.3, candidates=10))
    legal = SearchFilters(domain="legal")
    reader.approximate_above = None  # the reader answers exactly from here on
    differs = 0
    for q in queries:
        every = {h.id: h.score for h in reader.search(q, k=1000, per_document=False)}
        got = tight.search(q, k=10, per_document=False)
        assert all(h.score == pytest.approx(every[h.id], rel=1e-12) for h in got)
        differs += [h.id for h in got] != [h.id for h in reader.search(q, k=10, per_document=False)]
        assert all(h.domain == "legal" for h in tight.search(q, k=3, filters=legal))
        # far fewer than 50 rows are candidates at these settings: the exact search answers
        assert [h.id for h in tight.search(q, k=50, filters=legal, per_document=False)] == [
            h.id for h in reader.search(q, k=50, filters=legal, per_document=False)]
    assert differs and tight.approximate._loaded is not None and not no_builds


def test_threshold_off_or_unmet_builds_nothing(tmp_path):
    for above, state in ((None, AnnState.OFF), (10_000, AnnState.SMALL)):
        root = tmp_path / f"t{above}"
        _built_index(root, above=above).close()
        assert read_manifest(root).ann is None and not list(root.glob("approx-*"))
        reader = EmbeddedIndex.open(root)
        reader.approximate_above = above
        assert reader.approximate_status().state is state and reader.search_notice() is None


def test_a_stale_index_answers_exactly_and_says_so_once(tmp_path, monkeypatch, caplog):
    root = tmp_path / "t"
    writer = _built_index(root)
    more, more_vectors = _corpus(30, seed=9, prefix="E")
    writer.add(more, more_vectors)  # a write without finish_writes (an ingest still running, or killed)
    writer.delete([more[0].id])
    writer.close()
    reader, queries, stale, no_builds, before = _search_with_builds_forbidden(root, monkeypatch, caplog)
    assert stale == _exact(reader, queries)
    assert reader.approximate._loaded is None  # the old postings (of other rows) were not used
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "answers exactly" in warnings[0] and "build-ann --index t" in warnings[0]
    status = reader.approximate_status()
    assert status.state is AnnState.STALE and "built at write 2 and the index is at write 4" in reader.search_notice()
    assert _files(root) == before and not no_builds


def test_an_index_written_before_has_none_and_answers_exactly(tmp_path, monkeypatch):
    root = tmp_path / "t"
    _built_index(root, above=None).close()  # as an index written with approximate search off
    no_builds = _forbid_builds(monkeypatch)
    reader = _reader(root)
    queries = _queries()
    assert _results(reader, queries) == _exact(reader, queries)
    assert reader.approximate_status().state is AnnState.MISSING
    assert "no approximate index yet" in reader.search_notice()
    assert not no_builds and not list(root.glob("approx-*"))


def test_compaction_keeps_a_current_approximate_index_valid(tmp_path, monkeypatch):
    root = tmp_path / "t"
    index = EmbeddedIndex.create(root, META)
    index.approximate_above = 100
    passages, vectors = _corpus(300)
    for start in range(0, 300, 100):
        index.add(passages[start : start + 100], vectors[start : start + 100])
    index.delete([passages[0].id, passages[150].id])
    index.finish_writes()
    name = read_manifest(root).ann.name
    queries = _queries()
    exact = _exact(index, queries)
    builds = _forbid_builds(monkeypatch)
    index.compact()  # new segment, new write number: same rows, same feature columns
    manifest = read_manifest(root)
    assert manifest.ann.name == name and manifest.ann.seq == manifest.last_seq and len(manifest.segments) == 1
    reader = _reader(root, GENEROUS)
    assert reader.approximate_status().state is AnnState.READY
    assert _results(reader, queries) == exact and reader.approximate._loaded is not None and not builds
    index.close()


def test_the_folder_appears_whole_under_its_final_name_only_before_its_commit(tmp_path, monkeypatch):
    root = tmp_path / "t"
    index = _built_index(root)
    old = read_manifest(root).ann
    renames = []
    real_replace = os.replace

    def watching_replace(src, dst, *args, **kwargs):
        dst = Path(dst)
        if dst.name.startswith("approx-impact-"):
            assert Path(src).name.startswith(".tmp-") and not dst.exists()  # a new name: never one a reader may map
            view = index._view()
            load_postings(Path(src), view, min(impact.BLOCK_ROWS, len(view.passages)))  # complete before it is visible
            assert read_manifest(root).ann == old  # and readers are not pointed at it yet
            renames.append(dst.name)
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", watching_replace)
    more, more_vectors = _corpus(30, seed=9, prefix="E")
    index.add(more, more_vectors)
    index.finish_writes()
    new = read_manifest(root).ann
    assert renames == [new.name] and new.name != old.name and new.seq == 3
    assert not (root / old.name).exists() and not list(root.glob(".tmp-*"))
    index.close()


def test_a_failed_build_leaves_the_committed_state_and_no_files(tmp_path, monkeypatch):
    root = tmp_path / "t"
    index = _built_index(root)
    before = read_manifest(root)

    def crash(postings, *, allocate, on_postings=None):
        allocate("indices", (postings.nnz,), np.int32)[:10] = 1  # half written
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(impact, "build_postings", crash)
    with pytest.raises(RetrievalError, match="No space left on device"):
        index.build_approximate(force=True)
    assert read_manifest(root) == before
    assert sorted(p.name for p in root.glob("approx-*")) == [before.ann.name] and not list(root.glob(".tmp-*"))
    index.close()


def test_a_reader_keeps_its_state_while_a_writer_replaces_the_files(tmp_path):
    root = tmp_path / "t"
    writer = _built_index(root)
    queries = _queries()
    early = _reader(root, GENEROUS)  # maps the first postings before the writer replaces them
    early_exact = _exact(early, queries)
    assert _results(early, queries) == early_exact and early.approximate._loaded is not None
    late = _reader(root, GENEROUS)  # opened on the same state, but maps nothing before the replacement
    more, more_vectors = _corpus(30, seed=9, prefix="E")
    writer.add(more, more_vectors)
    writer.finish_writes()
    writer.close()
    assert not (root / early.manifest.ann.name).exists()  # deleted by the writer: the mapping keeps the data
    assert _results(early, queries) == early_exact  # its own state, from the files it mapped
    assert _results(late, queries) == early_exact  # its own state, answered exactly (its folder is gone)
    assert late.approximate_status().state is AnnState.UNREADABLE and "reopening" in late.search_notice()
    fresh = _reader(root, GENEROUS)
    assert _results(fresh, queries) == _exact(fresh, queries) and fresh.count() == 330
    assert fresh.approximate._loaded is not None


def test_a_second_writer_cannot_start_while_the_first_builds(tmp_path):
    root = tmp_path / "t"
    first = _built_index(root)  # holds the writer lock until close
    second = EmbeddedIndex.open(root)
    second.approximate_above = 100
    with pytest.raises(RetrievalError, match="being written by another process"):
        second.build_approximate(force=True)
    code = ("import sys; from pathlib import Path; from retrieval.backends import EmbeddedIndex; from retrieval.passage "
            "import Passage\ntry:\n    EmbeddedIndex.open(Path(sys.argv[1])).add([Passage('z#0', 'z', 'x')], [{'tok1': 1.0}])\n"
            "except Exception as exc:\n    print(exc)\n    sys.exit(3)")
    other = subprocess.run([sys.executable, "-c", code, str(root)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                           env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})
    assert other.returncode == 3 and "being written by another process" in other.stdout
    first.close()
    second.build_approximate(force=True)  # now it may
    second.close()


def _words(out: str) -> str:
    """The console wraps long lines: compare words."""
    return " ".join(out.split())


def _approximate_above(monkeypatch, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv("KSEARCH_APPROXIMATE_ABOVE", raising=False)
    else:
        monkeypatch.setenv("KSEARCH_APPROXIMATE_ABOVE", value)
    get_settings.cache_clear()


def test_cli_ingest_builds_it_and_build_ann_serves_indexes_written_before(tmp_path, home, tiny_model_dir, monkeypatch):
    corpus = write_corpus(tmp_path / "c.jsonl", 30)
    # an index written without approximate search: no approximate index
    _approximate_above(monkeypatch, None)
    invoke_ok("ingest", str(corpus), "--model", str(tiny_model_dir), "-q", "--index", "old")
    assert read_manifest(home / "old").ann is None
    # searched with approximate search on: exact answers and a notice, nothing built
    _approximate_above(monkeypatch, "5")
    before = _files(home / "old")
    payload = json.loads(invoke_ok("search", "전세 보증금", "--index", "old", "--json", "--passages"))
    assert "build-ann --index old" in payload["notice"] and payload["hits"]
    assert _files(home / "old") == before
    status = _words(invoke_ok("index", "status", "--index", "old"))
    assert "no approximate index yet" in status
    built = _words(invoke_ok("index", "build-ann", "--index", "old", "-q"))
    assert "built the approximate index of 'old'" in built and "sparse search is approximate" in built
    again = json.loads(invoke_ok("search", "전세 보증금", "--index", "old", "--json", "--passages"))
    assert again["notice"] is None and [h["id"] for h in again["hits"]] == [h["id"] for h in payload["hits"]]
    assert "is current" in _words(invoke_ok("index", "build-ann", "--index", "old", "-q"))
    # an ingest with approximate search on builds it at its end
    invoke_ok("ingest", str(corpus), "--model", str(tiny_model_dir), "-q", "--index", "new")
    manifest = read_manifest(home / "new")
    assert manifest.ann is not None and manifest.ann.seq == manifest.last_seq
    assert "sparse search is approximate" in _words(invoke_ok("index", "status", "--index", "new"))
    bm25 = json.loads(invoke_ok("search", "전세 보증금", "--index", "old", "--json", "--mode", "bm25"))
    assert bm25["notice"] is None
    _approximate_above(monkeypatch, None)


def test_a_writer_that_loads_another_writers_commit_keeps_its_settings(tmp_path):
    """Taking the lock reloads what another writer committed; it used to re-run __init__ and drop approximate_above."""
    root = tmp_path / "t"
    _built_index(root, above=None).close()
    late = EmbeddedIndex.open(root)
    late.approximate_above = 100
    other = EmbeddedIndex.open(root)
    more, more_vectors = _corpus(30, seed=9, prefix="E")
    other.add(more, more_vectors)
    other.finish_writes()
    other.close()
    late.add(more[:3], more_vectors[:3])  # takes the lock: loads the other's commit first
    late.finish_writes()
    late.close()
    assert late.approximate_above == 100 and late.count() == 330
    manifest = read_manifest(root)
    assert manifest.ann is not None and manifest.ann.seq == manifest.last_seq


def test_a_seismic_file_of_an_earlier_ksearch_answers_exactly_until_rebuilt(tmp_path, caplog):
    """Indexes built while the approximate index was a Seismic file: searches answer exactly and say so; an ingest or
    build-ann replaces it with impact-ordered postings and deletes the file."""
    root = tmp_path / "t"
    index = _built_index(root)
    manifest = read_manifest(root)
    old = root / "approx-seismic-000002-0123abcd.index.seismic"
    old.write_bytes(b"seismic")
    manifest.ann = manifest.ann.model_copy(update={"name": old.name, "params": {"n_postings": 8000, "query_cut": 20}})
    write_manifest(root, manifest)
    index.close()
    reader = _reader(root)
    queries = _queries()
    with caplog.at_level(logging.WARNING):
        assert _results(reader, queries) == _exact(reader, queries)
    assert reader.approximate_status().state is AnnState.STALE and "Seismic by an earlier ksearch" in reader.search_notice()
    writer = EmbeddedIndex.open(root)
    writer.approximate_above = 100
    writer.finish_writes()  # what the next ingest does
    writer.close()
    assert not old.exists() and read_manifest(root).ann.name.startswith("approx-impact-")
    assert _reader(root).approximate_status().state is AnnState.READY


def test_a_build_compiles_the_search_kernel_the_first_search_needs(tmp_path):
    """The build compiles the search kernel for a reader's array types, so the first search after it (in that process,
    or from numba's cache in another) compiles nothing: in a fresh cache the search adds no signature."""
    code = ("import sys; from pathlib import Path; sys.path.insert(0, sys.argv[2])\n"
            "import test_approximate_index as t; import retrieval.backends.impact as impact\n"
            "t._built_index(Path(sys.argv[1]))\n"
            "before = list(impact._search.signatures)\n"
            "reader = t._reader(Path(sys.argv[1])); hits = reader.search(t._queries()[0], k=5)\n"
            "print(len(before), len(impact._search.signatures), len(hits), reader.approximate._loaded is not None)")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
           "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path / "t"), str(ROOT / "tests")], cwd=ROOT,
                         capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["1", "1", "5", "True"]  # one signature, the search's: it took the approximate path

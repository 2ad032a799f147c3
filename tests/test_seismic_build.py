"""The embedded index's Seismic file is writer's work: built at the end of an ingest or by `ksearch index build-ann`,
never by a search; a stale or missing one makes searches answer exactly (and say so); files are replaced atomically
and writers take turns."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

if os.environ.get("CI", "").lower() == "true":
    import seismic  # noqa: F401  (the dev extra: missing in CI fails the run instead of skipping these tests)
else:
    pytest.importorskip("seismic", reason="pyseismic-lsr (the dev extra) builds the Seismic index")

from retrieval.backends import EmbeddedIndex, SearchFilters  # noqa: E402
from retrieval.backends import seismic_build  # noqa: E402
from retrieval.backends.approximate import SeismicScorer  # noqa: E402
from retrieval.backends.approximate_state import AnnState  # noqa: E402
from retrieval.backends.manifest import read_manifest  # noqa: E402
from retrieval.errors import RetrievalError  # noqa: E402
from retrieval.index_meta import IndexMeta  # noqa: E402
from retrieval.passage import Passage  # noqa: E402
from retrieval.settings import get_settings  # noqa: E402
from cli_runs import invoke_ok, write_corpus  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
META = IndexMeta(name="t", model_id="model-a", vocab_hash="vocab-a")
VOCAB = 60
CASES = [dict(k=10, per_document=False), dict(k=5), dict(k=5, filters=SearchFilters(domain="legal"))]


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
    """From here on, building a Seismic index in this process fails the test (and is counted)."""
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise AssertionError("a Seismic index was built")

    monkeypatch.setattr("retrieval.backends.seismic_file.build_seismic_file", refuse)
    real_init = SeismicScorer.__init__

    def init(self, csr, params, *, index=None, on_rows=None):
        if index is None:
            refuse()
        real_init(self, csr, params, index=index)

    monkeypatch.setattr(SeismicScorer, "__init__", init)
    return calls


def _built_index(root: Path, n: int = 300, above: int | None = 100) -> EmbeddedIndex:
    index = EmbeddedIndex.create(root, META)
    index.approximate_above = above
    passages, vectors = _corpus(n)
    index.add(passages[: n // 2], vectors[: n // 2])
    index.add(passages[n // 2 :], vectors[n // 2 :])
    index.finish_writes()
    return index


def test_finish_writes_builds_the_seismic_index(tmp_path):
    root = tmp_path / "t"
    writer = _built_index(root)
    manifest = read_manifest(root)
    assert manifest.ann is not None and manifest.ann.seq == manifest.last_seq == 2 and manifest.ann.passages == 300
    assert (root / manifest.ann.name).is_file()
    assert writer.approximate_status().state is AnnState.READY
    writer.close()


def _search_with_builds_forbidden(root: Path, monkeypatch, caplog):
    """Open the index at `root` as a reader that searches approximately from 100 passages, with Seismic builds
    forbidden, and run the test queries; returns (reader, queries, results, builds attempted, files before)."""
    no_builds = _forbid_builds(monkeypatch)
    before = _files(root)
    reader = EmbeddedIndex.open(root)
    reader.approximate_above = 100
    queries = _queries()
    with caplog.at_level(logging.WARNING):
        results = _results(reader, queries)
    return reader, queries, results, no_builds, before


def test_searches_after_an_ingest_load_the_file_and_never_build(tmp_path, monkeypatch, caplog):
    root = tmp_path / "t"
    _built_index(root).close()
    reader, queries, approx, no_builds, before = _search_with_builds_forbidden(root, monkeypatch, caplog)
    assert approx == _exact(reader, queries)  # every posting is kept at this size: Seismic finds the true top k
    assert reader.seismic._loaded is not None  # the answers came through Seismic
    assert reader.search_notice() is None and not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert _files(root) == before and not no_builds


def test_threshold_off_or_unmet_builds_nothing(tmp_path):
    for above, state in ((None, AnnState.OFF), (10_000, AnnState.SMALL)):
        root = tmp_path / f"t{above}"
        _built_index(root, above=above).close()
        assert read_manifest(root).ann is None and not list(root.glob("approx-seismic-*"))
        reader = EmbeddedIndex.open(root)
        reader.approximate_above = above
        assert reader.approximate_status().state is state and reader.search_notice() is None


def test_a_stale_index_answers_exactly_and_says_so_once(tmp_path, monkeypatch, caplog):
    root = tmp_path / "t"
    writer = _built_index(root)
    more, more_vectors = _corpus(30, seed=9, prefix="E")
    writer.add(more, more_vectors)  # a write without finish_writes (an ingest still running, or killed)
    writer.close()
    reader, queries, stale, no_builds, before = _search_with_builds_forbidden(root, monkeypatch, caplog)
    assert stale == _exact(reader, queries)
    assert reader.seismic._loaded is None  # the old file (of other rows) was not used
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "answers exactly" in warnings[0] and "build-ann --index t" in warnings[0]
    status = reader.approximate_status()
    assert status.state is AnnState.STALE and "built at write 2 and the index is at write 3" in reader.search_notice()
    assert _files(root) == before and not no_builds


def test_an_index_written_before_has_none_and_answers_exactly(tmp_path, monkeypatch):
    root = tmp_path / "t"
    _built_index(root, above=None).close()  # as an index written before ingests built Seismic
    no_builds = _forbid_builds(monkeypatch)
    reader = EmbeddedIndex.open(root)
    reader.approximate_above = 100
    queries = _queries()
    assert _results(reader, queries) == _exact(reader, queries)
    assert reader.approximate_status().state is AnnState.MISSING and "no Seismic index yet" in reader.search_notice()
    assert not no_builds and not list(root.glob("approx-seismic-*"))


def test_compaction_keeps_a_current_seismic_index_valid(tmp_path, monkeypatch):
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
    reader = EmbeddedIndex.open(root)
    reader.approximate_above = 100
    assert reader.approximate_status().state is AnnState.READY
    assert _results(reader, queries) == exact and reader.seismic._loaded is not None and not builds
    index.close()


def test_the_file_appears_whole_under_its_final_name_only_before_its_commit(tmp_path, monkeypatch):
    root = tmp_path / "t"
    index = _built_index(root)
    old = read_manifest(root).ann
    renames = []
    real_replace = os.replace

    def watching_replace(src, dst, *args, **kwargs):
        dst = Path(dst)
        if dst.name.startswith("approx-seismic-"):
            assert Path(src).name.startswith(".tmp-") or Path(src).parent.name.startswith(".tmp-")
            assert not dst.exists()  # a new name: never the file a reader may be loading
            SeismicScorer.load(Path(src), index._view().matrix, index.seismic.params)  # complete before it is visible
            assert read_manifest(root).ann == old  # and readers are not pointed at it yet
            renames.append(dst.name)
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(seismic_build.os, "replace", watching_replace)
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

    def crash(work, rows, progress):
        (work / "index.index.seismic").write_bytes(b"half a file")
        raise RetrievalError("building the Seismic index failed (exit code -9): killed")

    monkeypatch.setattr(seismic_build, "_run_child", crash)
    with pytest.raises(RetrievalError, match="exit code -9"):
        index.build_approximate(force=True)
    assert read_manifest(root) == before
    assert sorted(p.name for p in root.glob("approx-seismic-*")) == [before.ann.name] and not list(root.glob(".tmp-*"))
    index.close()


def test_a_reader_keeps_its_state_while_a_writer_replaces_the_file(tmp_path):
    root = tmp_path / "t"
    writer = _built_index(root)
    queries = _queries()
    early = EmbeddedIndex.open(root)  # loads the first file before the writer replaces it
    early.approximate_above = 100
    early_exact = _exact(early, queries)
    assert _results(early, queries) == early_exact and early.seismic._loaded is not None
    late = EmbeddedIndex.open(root)  # opened on the same state, but loads nothing before the replacement
    late.approximate_above = 100
    more, more_vectors = _corpus(30, seed=9, prefix="E")
    writer.add(more, more_vectors)
    writer.finish_writes()
    writer.close()
    assert _results(early, queries) == early_exact  # its own state, from the file it holds
    assert _results(late, queries) == early_exact  # its own state, answered exactly (its file is gone)
    assert late.approximate_status().state is AnnState.UNREADABLE and "reopening" in late.search_notice()
    fresh = EmbeddedIndex.open(root)
    fresh.approximate_above = 100
    assert _results(fresh, queries) == _exact(fresh, queries) and fresh.count() == 330


def test_threads_sharing_one_index_write_in_turn(tmp_path):
    """Without the per-object write lock two threads read the same next_seq and one segment overwrites the other."""
    root = tmp_path / "t"
    index = EmbeddedIndex.create(root, META)
    passages, vectors = _corpus(240)
    errors = []

    def write(part: int) -> None:
        try:
            for start in range(part * 10, 240, 40):
                index.add(passages[start : start + 10], vectors[start : start + 10])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(p,)) for p in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    manifest = read_manifest(root)
    assert [s.seq for s in manifest.segments] == list(range(1, 25)) and manifest.next_seq == 25
    assert index.count() == 240
    index.close()
    assert EmbeddedIndex.open(root).content_hashes() == {p.id: p.content_hash for p in passages}


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
    # an index written without approximate search: no Seismic file
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
    assert "no Seismic index yet" in status
    built = _words(invoke_ok("index", "build-ann", "--index", "old", "-q"))
    assert "built the Seismic index of 'old'" in built and "sparse search is approximate" in built
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


def test_without_pyseismic_an_ingest_skips_the_build_and_searches_say_why(tmp_path, caplog):
    root = tmp_path / "t"
    index = EmbeddedIndex.create(root, META)
    index.approximate_above = 100
    index.seismic._missing = "pyseismic-lsr not installed (test)"  # what seismic_available() says without it
    passages, vectors = _corpus(300)
    index.add(passages, vectors)
    with caplog.at_level(logging.WARNING):
        index.finish_writes()
        queries = _queries()
        assert _results(index, queries) == _exact(index, queries)
    assert read_manifest(root).ann is None and read_manifest(root).bm25 is not None
    assert index.approximate_status().state is AnnState.UNAVAILABLE and "not installed (test)" in index.search_notice()
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    with pytest.raises(RetrievalError, match="not installed"):
        index.build_approximate()
    index.close()

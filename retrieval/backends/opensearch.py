"""`OpenSearchIndex`: the OpenSearch backend (rank_features + neural_sparse / rank_feature, BM25 on Korean text).

An index `NAME` is an alias pointing at one concrete index `NAME-<UTC timestamp>`. A normal ingest
writes through the alias; a rebuild (`rebuild=True`) writes a new concrete index and, in
`finish_writes`, swaps the alias to it in one atomic `_aliases` call and deletes the old one, so
searches never see a half-built index. Passage `_id` = passage id, so re-writing is idempotent.

Ranking: `search` sends `neural_sparse` with raw `query_tokens`, `search_rank_feature` the bool of
linear `rank_feature` clauses, `search_bm25` a `match` on the Korean text field (bodies from
`retrieval.query`). Per-document results use `collapse` on `doc_id` (each document's best passage).
Hybrid is fused client-side by `Searcher` (`retrieval.hybrid.fuse`) from the sparse and BM25 lists,
exactly as for the embedded index, rather than by an OpenSearch search pipeline. Stored weights keep
9 significant bits, so scores differ from the embedded index's exact dot products by < 0.4 %;
`explain` uses the stored `_source` vector (the weights as sent).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from retrieval.backends.base import IndexStats, RejectedWrite, SearchBackend, SearchFilters
from retrieval.backends.config import BackendConfig
from retrieval.backends.opensearch_bulk import BulkWriter, delete_passages
from retrieval.backends.opensearch_stats import index_stats
from retrieval.backends.opensearch_connection import (
    OpenSearchBadRequestError,
    OpenSearchConnection,
    missing_index_message,
    translated_errors,
)
from retrieval.backends.opensearch_mapping import (
    BM25_KIWI,
    BM25_NORI,
    index_body,
    morpheme_terms,
    passage_from_source,
)
from retrieval.backends.opensearch_seismic import SeismicTokens
from retrieval.errors import IndexFormatError, IndexNotFoundError, RetrievalError
from retrieval.hits import Hit
from retrieval.index_meta import FORMAT_VERSION, IndexMeta
from retrieval.passage import Passage
from retrieval.query import SPARSE_FIELD, TEXT_FIELD, bm25_body, neural_sparse_body, prepare_query_tokens, rank_feature_body

log = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")
ANALYZERS = ("auto", BM25_NORI, BM25_KIWI)
MGET_CHUNK = 500
SCAN_ATTEMPTS = 4  # scans of the content hashes that may meet failed shards (a node just lost) before giving up


def _wait_for_status(client, conn: OpenSearchConnection, index: str, status: str) -> dict[str, Any] | None:
    """Cluster health of `index` once it is `status` or OpenSearch's default 30 s have passed; None when the
    health API refuses (no cluster-monitor privilege, or a node still answering 503)."""
    from opensearchpy import exceptions as ex

    try:  # `timeout=` would be taken by opensearch-py as the HTTP timeout, so the server's default 30 s applies
        return client.cluster.health(index=index, wait_for_status=status, request_timeout=conn.timeout + 30,
                                     ignore=[408])
    except ex.TransportError as exc:
        log.info("could not wait for %s to be %s (%s)", index, status, exc)
        return None


def _wait_for_replicas(client, conn: OpenSearchConnection, concrete: str) -> None:
    """Wait (30 s at most) until every copy of a new index has started; best effort.

    A bulk is acknowledged once its primary has it, so a node lost while a replica was still recovering takes its
    primaries with it (red until it returns): waiting here lets the first writes reach both copies."""
    health = _wait_for_status(client, conn, concrete, "green")
    if health is not None and health.get("status") != "green":
        log.warning("the replicas of %s have not all started (%s, %s unassigned shards); until they do, a node "
                    "lost takes the writes only it holds", concrete, health.get("status"),
                    health.get("unassigned_shards"))


def _timestamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S%f")


def _check_name(name: str) -> None:
    if not NAME_PATTERN.match(name):
        raise ValueError(f"OpenSearch index name {name!r} must be lowercase letters, digits, '-' or '_' "
                         f"(and not start with '-' or '_')")


class OpenSearchIndex(SearchBackend):
    """A ksearch index in OpenSearch; see the module docstring."""

    def __init__(self, conn: OpenSearchConnection, name: str, concrete: str, meta: IndexMeta, bm25_field: str,
                 *, client=None, rebuild_of: list[str] | None = None, dead_letter_dir: Path | None = None,
                 seismic: SeismicTokens | None = None) -> None:
        self.conn = conn
        self.seismic = seismic  # a sparse_vector + SEISMIC index (`--ann`): token-id keys; None: rank_features
        self.name = name  # the alias
        self.concrete = concrete  # the concrete index reads and writes go to
        self.meta = meta
        self.bm25_field = bm25_field
        self.client = client if client is not None else conn.client()
        self._rebuild_of = rebuild_of  # concrete indices the alias points at before a rebuild's swap (None: no rebuild)
        self._dead_letter_dir = dead_letter_dir
        self._writer: BulkWriter | None = None
        self._rejected: list[RejectedWrite] = []
        self.dead_letter_file: Path | None = None  # where the rejected passages of the last writes were written

    # ---------------------------------------------------------------- opening
    # Each opened index owns one client (closed by `close()` or the `with` block); an `open` or `open_or_create`
    # that fails closes the client it made.
    @classmethod
    def open(cls, name: str, *, conn: OpenSearchConnection, dead_letter_dir: Path | None = None) -> "OpenSearchIndex":
        """Open the index behind alias `name` (`IndexNotFoundError` when there is none)."""
        _check_name(name)
        client = conn.client()
        try:
            return cls._open_with(client, conn, name, dead_letter_dir)
        except BaseException:
            client.close()
            raise

    @classmethod
    def _open_with(cls, client, conn: OpenSearchConnection, name: str, dead_letter_dir: Path | None) -> "OpenSearchIndex":
        concrete = cls._alias_target(client, conn, name)
        if concrete is None:
            raise IndexNotFoundError(missing_index_message(name, conn.url))
        with translated_errors(conn, f"reading the mapping of {name!r}", name):
            mapping = client.indices.get_mapping(index=concrete)[concrete]["mappings"]
        meta_block = mapping.get("_meta") or {}
        if "ksearch" not in meta_block:
            raise IndexFormatError(f"OpenSearch index {concrete!r} has no ksearch metadata in its mapping's _meta: "
                                   f"it was not built by `ksearch ingest`")
        meta = IndexMeta.model_validate(meta_block["ksearch"])
        if meta.format_version > FORMAT_VERSION:
            raise IndexFormatError(f"OpenSearch index {concrete!r} has format version {meta.format_version}; this "
                                   f"ksearch reads up to {FORMAT_VERSION}: upgrade ksearch")
        return cls(conn, name, concrete, meta, meta_block.get("bm25_field", TEXT_FIELD), client=client,
                   dead_letter_dir=dead_letter_dir, seismic=SeismicTokens.from_meta(meta_block, meta.vocab_hash, concrete))

    @classmethod
    def open_or_create(cls, name: str, meta: IndexMeta, *, conn: OpenSearchConnection, rebuild: bool = False,
                       analyzer: str = "auto", dead_letter_dir: Path | None = None,
                       seismic: SeismicTokens | None = None, shards: int = 1,
                       replicas: int | None = None) -> "OpenSearchIndex":
        """Open alias `name`, or create `NAME-<timestamp>` behind it; `rebuild` writes a new one swapped in by `finish_writes`;
        `seismic`: create it with a `sparse_vector` + SEISMIC field (`opensearch_seismic`; OpenSearch 3.3+); `shards`,
        `replicas`: of a new index (an existing one keeps its own)."""
        _check_name(name)
        if analyzer not in ANALYZERS:
            raise ValueError(f"BM25 analyzer must be one of {', '.join(ANALYZERS)}, not {analyzer!r}")
        client = conn.client()
        try:
            return cls._open_or_create_with(client, conn, name, meta, rebuild, analyzer, dead_letter_dir, seismic,
                                            (shards, replicas))
        except BaseException:
            client.close()
            raise

    @classmethod
    def _open_or_create_with(cls, client, conn: OpenSearchConnection, name: str, meta: IndexMeta, rebuild: bool,
                             analyzer: str, dead_letter_dir: Path | None,
                             seismic: SeismicTokens | None = None,
                             layout: tuple[int, int | None] = (1, None)) -> "OpenSearchIndex":
        current = cls._alias_target(client, conn, name)
        if current is not None and not rebuild:
            opened = cls._open_with(client, conn, name, dead_letter_dir)
            if seismic is not None and opened.seismic is None:
                raise RetrievalError(f"OpenSearch index {name!r} exists with a rank_features field: add --rebuild to "
                                     "rebuild it as sparse_vector + SEISMIC (--ann)")
            return opened
        with translated_errors(conn, f"checking index {name!r}"):
            if current is None and client.indices.exists(index=name):
                raise RetrievalError(f"OpenSearch has a concrete index named {name!r} (not an alias); ksearch keeps "
                                     f"NAME as an alias of NAME-<timestamp>: delete or rename that index first")
        if analyzer == "auto":
            analyzer = BM25_NORI if has_nori(client, conn) else BM25_KIWI
        concrete = f"{name}-{_timestamp()}"
        body = index_body(meta.model_copy(update={"name": name}), analyzer, shards=layout[0], replicas=layout[1])
        if seismic is not None:
            body = seismic.apply(body)
        with translated_errors(conn, f"creating index {concrete!r}"):
            client.indices.create(index=concrete, body=body)
            if current is None:
                client.indices.update_aliases(body={"actions": [{"add": {"index": concrete, "alias": name}}]})
        if layout[1] != 0:
            _wait_for_replicas(client, conn, concrete)
        log.info("created OpenSearch index %s (alias %s, BM25 analyzer %s)", concrete, name, analyzer)
        return cls(conn, name, concrete, meta.model_copy(update={"name": name}),
                   body["mappings"]["_meta"]["bm25_field"], client=client,
                   rebuild_of=cls._alias_indices(client, conn, name) if current is not None else None,
                   dead_letter_dir=dead_letter_dir, seismic=seismic)

    @staticmethod
    def _alias_indices(client, conn: OpenSearchConnection, name: str) -> list[str]:
        with translated_errors(conn, f"looking up alias {name!r}"):
            if not client.indices.exists_alias(name=name):
                return []
            return sorted(client.indices.get_alias(name=name))

    @classmethod
    def _alias_target(cls, client, conn: OpenSearchConnection, name: str) -> str | None:
        indices = cls._alias_indices(client, conn, name)
        if len(indices) > 1:
            raise RetrievalError(f"OpenSearch alias {name!r} points at several indices ({', '.join(indices)}); "
                                 f"ksearch expects one: fix it with the _aliases API")
        return indices[0] if indices else None

    def _errors(self, what: str):
        return translated_errors(self.conn, what, self.name)

    # ---------------------------------------------------------------- writing
    def _dead_letter_path(self) -> Path:
        directory = self._dead_letter_dir if self._dead_letter_dir is not None else BackendConfig().dead_letter_dir
        return Path(directory) / f"{self.name}-{_timestamp()}.jsonl"

    def _bm25_morphemes(self):  # -> Callable[[list[str]], list[str]] | None
        """What fills `text_morphemes` when BM25 runs on Kiwi morphemes (no nori), else None."""
        if self.bm25_field == TEXT_FIELD:
            return None
        from retrieval.morphemes import content_morphemes_many

        return content_morphemes_many

    def add(self, passages: Sequence[Passage], vectors: Sequence[Mapping[str, float]]) -> None:
        """Queue passages for background bulk indexing (`_id` = passage id); see `finish_writes`."""
        if len(passages) != len(vectors):
            raise ValueError(f"{len(passages)} passages but {len(vectors)} vectors")
        if not passages:
            return
        if self._writer is None:
            self._writer = BulkWriter(self.client, self.concrete, self._dead_letter_path(), self._bm25_morphemes())
        if self.seismic is not None:
            vectors = [self.seismic.to_ids(v) for v in vectors]
        with self._errors(f"indexing into {self.concrete!r}"):
            self._writer.submit(passages, vectors)

    def _drain(self) -> None:
        if self._writer is None:
            return
        writer, self._writer = self._writer, None
        try:
            with self._errors(f"indexing into {self.concrete!r}"):
                writer.drain()
        finally:
            self._rejected += writer.rejected
            if writer.rejected:
                self.dead_letter_file = writer.dead_letter_path

    def rejected_writes(self) -> list[RejectedWrite]:
        """Passages OpenSearch refused, or the client did (invalid vectors, status None); also in the dead-letter file."""
        return list(self._rejected)

    def delete(self, passage_ids: Iterable[str]) -> int:
        """Delete passages by id; return how many were stored (failures raise: see `opensearch_bulk.delete_passages`)."""
        self._drain()
        return delete_passages(self.client, self.conn, self.concrete, passage_ids, alias=self.name)

    def finish_writes(self, *, progress: bool = False) -> None:
        """Wait for queued writes, refresh, and (rebuild) swap the alias to the new index atomically (`progress`: unused)."""
        self._drain()
        with self._errors(f"refreshing {self.concrete!r}"):
            self.client.indices.refresh(index=self.concrete)
        if self._rebuild_of is not None:
            actions: list[dict[str, Any]] = [{"remove": {"index": old, "alias": self.name}} for old in self._rebuild_of]
            actions.append({"add": {"index": self.concrete, "alias": self.name}})
            with self._errors(f"swapping alias {self.name!r} to {self.concrete!r}"):
                self.client.indices.update_aliases(body={"actions": actions})
                for old in self._rebuild_of:
                    self.client.indices.delete(index=old, ignore_unavailable=True)
            log.info("alias %s now points at %s (was %s)", self.name, self.concrete, ", ".join(self._rebuild_of))
            self._rebuild_of = None

    def close(self) -> None:
        """Finish queued writes and close the HTTP connections."""
        try:
            self._drain()
        finally:
            self.client.close()

    # ---------------------------------------------------------------- reading
    def count(self) -> int:
        """Number of stored passages."""
        with self._errors(f"counting {self.name!r}"):
            return int(self.client.count(index=self.concrete)["count"])

    def content_hashes(self) -> dict[str, str]:
        """Stored passage id -> content hash (a scan of `content_hash` only)."""
        from opensearchpy.helpers import ScanError

        what = f"reading the content hashes of {self.name!r}"
        with self._errors(what):
            for attempt in range(1, SCAN_ATTEMPTS):
                try:
                    return self._scan_hashes()
                except ScanError:
                    # Shards of a node that just left are failed until their replicas are promoted (seconds): a
                    # re-run ingest after a node loss reads the hashes then, so wait for that instead of failing.
                    log.warning("some shards of %s failed while %s; waiting for them (attempt %d of %d)",
                                self.concrete, what, attempt, SCAN_ATTEMPTS)
                    self._wait_for_primaries()
            return self._scan_hashes()

    def _scan_hashes(self) -> dict[str, str]:
        from opensearchpy.helpers import scan

        return {h["_id"]: h["_source"].get("content_hash", "") for h in
                scan(self.client, index=self.concrete, query={"_source": ["content_hash"]}, size=2000)}

    def _wait_for_primaries(self) -> None:
        """Wait (30 s at most) until every primary shard of the index is assigned; best effort."""
        if _wait_for_status(self.client, self.conn, self.concrete, "yellow") is None:
            time.sleep(10)  # plain back-off
        time.sleep(1)  # yellow is reported a moment before searches stop routing to the lost copies

    def _mget(self, passage_ids: Sequence[str], **source: Any) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        ids = list(dict.fromkeys(passage_ids))
        with self._errors(f"reading passages of {self.name!r}"):
            for start in range(0, len(ids), MGET_CHUNK):
                res = self.client.mget(index=self.concrete, body={"ids": ids[start:start + MGET_CHUNK]}, **source)
                found.update({d["_id"]: d.get("_source", {}) for d in res["docs"] if d.get("found")})
        return found

    def get_passages(self, passage_ids: Sequence[str]) -> list[Passage]:
        """Stored passages with these ids, in the order asked."""
        found = self._mget(passage_ids, _source_excludes=[SPARSE_FIELD, "text_morphemes"])
        return [passage_from_source(i, found[i]) for i in passage_ids if i in found]

    def get_vectors(self, passage_ids: Sequence[str]) -> dict[str, dict[str, float]]:
        """Stored vectors (from `_source`: the weights as sent, before 9-bit truncation)."""
        found = self._mget(passage_ids, _source_includes=[SPARSE_FIELD])
        if self.seismic is not None:
            return {i: self.seismic.to_tokens(s.get(SPARSE_FIELD) or {}) for i, s in found.items()}
        return {i: {k: float(v) for k, v in (s.get(SPARSE_FIELD) or {}).items()} for i, s in found.items()}

    def _run_search(self, body: dict[str, Any], per_document: bool, offset: int, what: str) -> list[Hit]:
        body = dict(body, **{"from": offset, "track_total_hits": False})
        body["_source"] = {"excludes": [SPARSE_FIELD, "text_morphemes"]}
        if per_document:
            body["collapse"] = {"field": "doc_id"}
        with self._errors(what):
            res = self.client.search(index=self.concrete, body=body)
        hits = []
        for h in res["hits"]["hits"]:
            p = passage_from_source(h["_id"], h["_source"])
            hits.append(Hit(id=p.id, doc_id=p.doc_id, score=float(h["_score"]), title=p.title, domain=p.domain,
                            text=p.text, extra=p.extra))
        return hits

    def search(self, query_tokens: Mapping[str, float], k: int = 10, *, filters: SearchFilters | None = None,
               per_document: bool = True, offset: int = 0) -> list[Hit]:
        """Top-k by `neural_sparse` with raw `query_tokens` (dot product); `offset` pages (`from`)."""
        if not prepare_query_tokens(query_tokens):
            return []
        domain = filters.domain if filters else None
        if self.seismic is not None:
            body = self.seismic.query_body(query_tokens, size=k, offset=offset, per_document=per_document, domain=domain)
            if body is None:
                return []
            return self._run_search(body, per_document, offset, f"searching {self.name!r} (neural_sparse, SEISMIC)")
        return self._run_search(neural_sparse_body(query_tokens, size=k, domain=domain), per_document, offset,
                                f"searching {self.name!r} (neural_sparse)")

    def search_rank_feature(self, query_tokens: Mapping[str, float], k: int = 10, *, filters: SearchFilters | None = None,
                            per_document: bool = True, offset: int = 0) -> list[Hit]:
        """Top-k by a bool of linear `rank_feature` clauses (the same dot product, no plugin needed)."""
        if self.seismic is not None:
            raise RetrievalError(f"index {self.name!r} keeps its vectors in a sparse_vector field (--ann, SEISMIC), "
                                 "which rank_feature queries cannot read: use --mode neural_sparse")
        if not prepare_query_tokens(query_tokens):
            return []
        domain = filters.domain if filters else None
        return self._run_search(rank_feature_body(query_tokens, size=k, domain=domain), per_document, offset,
                                f"searching {self.name!r} (rank_feature)")

    def search_bm25(self, text: str, k: int = 10, *, filters: SearchFilters | None = None,
                    per_document: bool = True, offset: int = 0) -> list[Hit]:
        """Top-k by BM25 on the Korean text field (nori, or Kiwi morphemes analysed client-side)."""
        if self.bm25_field != TEXT_FIELD:
            from retrieval.morphemes import content_morphemes

            text = morpheme_terms(content_morphemes(text))
        if not text.strip():
            return []
        domain = filters.domain if filters else None
        return self._run_search(bm25_body(text, size=k, domain=domain, field=self.bm25_field), per_document, offset,
                                f"searching {self.name!r} (BM25)")

    def stats(self) -> IndexStats:
        """Passages, documents, by domain, and mean non-zero weights (documents exact up to
        `opensearch_stats.EXACT_DOCUMENTS_UP_TO`, estimated above it: `documents_approximate`)."""
        with self._errors(f"reading the stats of {self.name!r}"):
            return index_stats(self.client, self.concrete)

    def delete_index(self) -> None:
        """Delete the alias and every concrete index behind it (tests, `--rebuild` leftovers)."""
        self._drain()
        with self._errors(f"deleting index {self.name!r}"):
            for concrete in set(self._alias_indices(self.client, self.conn, self.name)) | {self.concrete}:
                self.client.indices.delete(index=concrete, ignore_unavailable=True)


def has_nori(client, conn: OpenSearchConnection) -> bool:
    """True when the node has the `nori` analyzer (analysis-nori); a node without it answers HTTP 400."""
    try:
        with translated_errors(conn, "checking for the nori analyzer"):
            client.indices.analyze(body={"analyzer": "nori", "text": "보증금"})
    except OpenSearchBadRequestError:
        return False
    return True

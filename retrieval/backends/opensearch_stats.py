"""`index_stats`: passage and document counts of one OpenSearch index, exact up to a size, then labelled approximate.

Passages are counted exactly (`track_total_hits`, a `terms` aggregation per domain). Documents are passages
grouped by `doc_id`: a `cardinality` aggregation (HyperLogLog++, one request, but an estimate: hash
collisions can miss a few documents even below its precision threshold) says roughly how many there are;
up to `EXACT_DOCUMENTS_UP_TO` documents they are then counted exactly by paging a `composite` aggregation
over (doc_id, domain), a few requests. Above it the estimates are returned with `documents_approximate=True`
(HyperLogLog's error grows with the count; OpenSearch gives no bound), so the cost stays bounded.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from retrieval.backends.base import IndexStats

EXACT_DOCUMENTS_UP_TO = 50_000  # above this many documents, the cardinality estimate is returned
CARDINALITY_PRECISION = 40_000  # the largest precision_threshold OpenSearch accepts
COMPOSITE_PAGE = 10_000  # buckets per composite page (below the default search.max_buckets, 65,535)


def index_stats(client, index: str, *, exact_up_to: int = EXACT_DOCUMENTS_UP_TO) -> IndexStats:
    """Counts of concrete `index` (the caller translates transport errors)."""
    res = client.search(index=index, body={
        "size": 0, "track_total_hits": True,
        "aggs": {"nnz": {"avg": {"field": "nnz"}},
                 "documents": {"cardinality": {"field": "doc_id", "precision_threshold": CARDINALITY_PRECISION}},
                 "domains": {"terms": {"field": "domain", "size": 1000, "missing": ""},
                             "aggs": {"documents": {"cardinality": {"field": "doc_id",
                                                                    "precision_threshold": CARDINALITY_PRECISION}}}}}})
    aggs = res["aggregations"]
    passages = int(res["hits"]["total"]["value"])
    passages_by_domain = {b["key"]: int(b["doc_count"]) for b in aggs["domains"]["buckets"]}
    estimate = int(aggs["documents"]["value"])
    if estimate <= exact_up_to:
        documents_by_domain: Counter[str] = Counter()
        doc_ids: set[str] = set()  # a document whose passages differ in domain counts once in each domain
        for key in _composite(client, index, [{"doc": {"terms": {"field": "doc_id"}}},
                                              {"domain": {"terms": {"field": "domain", "missing_bucket": True}}}]):
            documents_by_domain[key["domain"] or ""] += 1
            doc_ids.add(key["doc"])
        documents, approximate = len(doc_ids), False
    else:
        documents_by_domain = Counter({b["key"]: int(b["documents"]["value"]) for b in aggs["domains"]["buckets"]})
        documents, approximate = estimate, True
    return IndexStats(passages=passages, documents=documents, avg_nonzero_weights=float(aggs["nnz"]["value"] or 0.0),
                      documents_by_domain=dict(sorted(documents_by_domain.items())),
                      passages_by_domain=dict(sorted(passages_by_domain.items())), documents_approximate=approximate)


def _composite(client, index: str, sources: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The keys of every bucket of a composite aggregation over `sources`, page by page."""
    after = None
    while True:
        agg: dict[str, Any] = {"size": COMPOSITE_PAGE, "sources": sources}
        if after is not None:
            agg["after"] = after
        res = client.search(index=index, body={"size": 0, "aggs": {"c": {"composite": agg}}})
        buckets = res["aggregations"]["c"]["buckets"]
        yield from (b["key"] for b in buckets)
        after = res["aggregations"]["c"].get("after_key")
        if not buckets or after is None:
            return

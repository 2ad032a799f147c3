"""`Passage`: the unit that is encoded, stored and ranked (a document or one chunk of it)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

PASSAGE_ID_SEPARATOR = "#"  # passage ids are DOCID#N, N counted from 0


def passage_id(doc_id: str, number: int) -> str:
    """The id of chunk `number` of document `doc_id`: `DOCID#N`."""
    return f"{doc_id}{PASSAGE_ID_SEPARATOR}{number}"


def doc_id_of(passage_id_: str) -> str:
    """The document id of a passage id (`DOCID#N` -> `DOCID`; document ids may contain '#')."""
    return passage_id_.rsplit(PASSAGE_ID_SEPARATOR, 1)[0]


@dataclass(frozen=True)
class Passage:
    """A passage of text with the metadata of its document."""

    id: str  # DOCID#N
    doc_id: str
    text: str
    title: str = ""
    domain: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # category, source_type and other input columns
    content_hash: str = ""  # hash of text + metadata + model (see `content_hash`), used to resume ingests

    def to_record(self) -> dict[str, Any]:
        """A JSON-serialisable dict (one JSONL line of a segment)."""
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "Passage":
        """The inverse of `to_record`."""
        return cls(**{k: record[k] for k in ("id", "doc_id", "text", "title", "domain", "extra", "content_hash") if k in record})


def content_hash(passage: Passage, model_fingerprint: str) -> str:
    """SHA-256 over the passage's text, metadata and the model that encodes it."""
    payload = json.dumps(
        [passage.id, passage.doc_id, passage.text, passage.title, passage.domain, passage.extra, model_fingerprint],
        ensure_ascii=False, sort_keys=True, default=str,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]

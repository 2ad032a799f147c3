"""Which document ids an ingest has seen, kept as digests so that a corpus larger than memory can be streamed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import TypeVar

from ingest.readers import SourceDocument

T = TypeVar("T")


def document_digest(doc: SourceDocument) -> bytes:
    """16 bytes that differ when a document's text, title, domain or extra columns differ."""
    payload = json.dumps([doc.text, doc.title, doc.domain, doc.extra], ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.blake2b(payload.encode("utf-8", "surrogatepass"), digest_size=16).digest()


@dataclass(frozen=True)
class FirstSeen:
    """The digest of the first document with an id, and where it was (its line, else its file)."""

    digest: bytes
    where: int | str


class SeenDocuments:
    """Document id -> `FirstSeen`: about 250 bytes a document plus its id, never its text."""

    def __init__(self) -> None:
        self._seen: dict[str, FirstSeen] = {}

    def first_seen(self, doc: SourceDocument) -> FirstSeen | None:
        """The earlier document with `doc`'s id, or None (and `doc` is remembered) when it is the first."""
        first = self._seen.get(doc.doc_id)
        if first is None:
            self._seen[doc.doc_id] = FirstSeen(document_digest(doc), doc.line if doc.line is not None else doc.file)
        return first

    def __len__(self) -> int:
        return len(self._seen)


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of `size` items (the last one shorter)."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk

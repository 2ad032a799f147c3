"""Which document ids an ingest has seen, kept in a temporary SQLite database so that a corpus larger than memory can be
streamed: what is held per document does not grow with the corpus."""

from __future__ import annotations

import hashlib
import json
import sqlite3
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
    """Document id -> `FirstSeen`, in a private temporary SQLite database (an empty file name: SQLite keeps its page
    cache, about 2 MB, in memory, spills the rest to a file in the temporary folder and deletes it on `close`).

    A dict held ~240 bytes a document (its id, digest and line): ~600 MB for the ~2.5 million documents of the 2 GiB
    synthetic JSONL of `ksearch bench ingest-memory`. SQLite costs ~10 µs a document, against milliseconds to split
    and encode it."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("", isolation_level=None)
        self._db.execute("PRAGMA journal_mode=OFF")  # nothing to roll back: the table only lives for this ingest
        self._db.execute("PRAGMA synchronous=OFF")
        # ids and file names as UTF-8 bytes (lone surrogates kept): SQLite text must be valid UTF-8
        self._db.execute("CREATE TABLE seen (id BLOB PRIMARY KEY, digest BLOB NOT NULL, line INTEGER, file BLOB) "
                         "WITHOUT ROWID")
        self._db.execute("BEGIN")  # one transaction, never committed: no commit cost per document
        self._count = 0

    def first_seen(self, doc: SourceDocument) -> FirstSeen | None:
        """The earlier document with `doc`'s id, or None (and `doc` is remembered) when it is the first."""
        key = _utf8(doc.doc_id)
        line, file = (doc.line, None) if doc.line is not None else (None, _utf8(doc.file))
        if self._db.execute("INSERT OR IGNORE INTO seen VALUES (?, ?, ?, ?)",
                            (key, document_digest(doc), line, file)).rowcount:
            self._count += 1
            return None
        digest, line, file = self._db.execute("SELECT digest, line, file FROM seen WHERE id = ?", (key,)).fetchone()
        return FirstSeen(digest, line if line is not None else file.decode("utf-8", "surrogatepass"))

    def __len__(self) -> int:
        return self._count

    def close(self) -> None:
        """Delete the database."""
        self._db.close()

    def __enter__(self) -> "SeenDocuments":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of `size` items (the last one shorter)."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk

"""`PassageSpool`: passages waiting to be encoded, in an anonymous temporary file instead of memory.

An ingest learns which passages to write (and which stored chunks are stale) before it writes any, without holding
the corpus: each passage is appended as one JSON line, then read back `write_batch` at a time. The file lives in the
system's temporary folder (`TMPDIR`), is about the size of the passages' text and metadata, and disappears when the
spool is closed (also when the process dies).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator

from retrieval.passage import Passage


class PassageSpool:
    """Append passages, then read them back in batches, in order."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(mode="w+b", prefix="ksearch-ingest-")
        self._count = 0

    def append(self, passage: Passage) -> None:
        """Add one passage at the end."""
        line = json.dumps(passage.to_record(), ensure_ascii=False, default=str)
        self._file.write(line.encode("utf-8", "surrogatepass") + b"\n")
        self._count += 1

    def __len__(self) -> int:
        return self._count

    def batches(self, size: int) -> Iterator[list[Passage]]:
        """Every passage appended, `size` at a time (the last batch shorter)."""
        self._file.flush()
        self._file.seek(0)
        batch: list[Passage] = []
        for raw in self._file:
            batch.append(Passage.from_record(json.loads(raw.decode("utf-8", "surrogatepass"))))
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch

    def close(self) -> None:
        """Delete the file."""
        self._file.close()

    def __enter__(self) -> "PassageSpool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

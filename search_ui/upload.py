"""Uploaded corpus files: checked, written to a temporary file the app creates, and ingested by the ingest worker."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ingest import ColumnMapping, IngestReport, InputFileError, ingest_path
from retrieval.errors import RetrievalError

MAX_UPLOAD_MB = 20  # also `server.maxUploadSize` in .streamlit/config.toml
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024
UPLOAD_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".parquet": "parquet", ".txt": "txt"}
UI_WRITE_BATCH = 64  # passages per durable write: small enough for a moving progress bar


class UploadError(ValueError):
    """An upload the app refuses (size, type) or cannot read; the message says why."""


@dataclass
class UploadOutcome:
    """What ingesting one upload did: the worker's report, with bad rows named after the uploaded file."""

    report: IngestReport
    problems: list[str] = field(default_factory=list)


def upload_format(filename: str) -> str:
    """The ingest format of an uploaded file, from its extension (`UploadError` for any other)."""
    suffix = Path(filename).suffix.lower()
    if suffix not in UPLOAD_FORMATS:
        raise UploadError(f"{filename!r}: unsupported file type; upload a .csv, .jsonl, .parquet or .txt file")
    return UPLOAD_FORMATS[suffix]


def check_size(size: int) -> None:
    """Refuse empty uploads and uploads over `MAX_UPLOAD_MB`."""
    if size == 0:
        raise UploadError("the uploaded file is empty")
    if size > MAX_UPLOAD_BYTES:
        raise UploadError(f"the uploaded file is {size / 1024 / 1024:.1f} MB; the limit is {MAX_UPLOAD_MB} MB")


def safe_stem(filename: str) -> str:
    """The uploaded name's stem reduced to letters, digits, Hangul, '-' and '_' (a .txt document's id)."""
    stem = re.sub(r"[^0-9A-Za-z가-힣_-]+", "_", Path(filename).stem).strip("_")
    return stem[:80] or "upload"


def write_upload(data: bytes, filename: str, directory: Path) -> Path:
    """Write the uploaded bytes into `directory` (a folder the app created) under a name the app chooses."""
    fmt = upload_format(filename)
    check_size(len(data))
    name = f"{safe_stem(filename)}.txt" if fmt == "txt" else f"upload.{fmt}"
    path = Path(directory) / name
    path.write_bytes(data)
    return path


def ingest_upload(data: bytes, filename: str, store, encoder, *, columns: ColumnMapping = ColumnMapping(),
                  on_progress: Callable[[int, int], None] | None = None) -> UploadOutcome:
    """Ingest an uploaded file's bytes into `store` through the ingest worker (`UploadError` when unreadable)."""
    fmt = upload_format(filename)
    with tempfile.TemporaryDirectory(prefix="ksearch-upload-") as tmp:
        path = write_upload(data, filename, Path(tmp))
        try:
            report = ingest_path(path, store, encoder, fmt=fmt, columns=columns, write_batch=UI_WRITE_BATCH,
                                 progress=False, on_progress=on_progress)
        except (InputFileError, RetrievalError) as exc:
            raise UploadError(str(exc).replace(str(path), filename)) from None
        problems = [str(p).replace(str(path), filename) for p in report.problems]
    return UploadOutcome(report, problems)

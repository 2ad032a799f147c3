"""What an ingest run reports: bad rows (file + line) and whole-file errors."""

from __future__ import annotations

from dataclasses import dataclass


class InputFileError(RuntimeError):
    """A file that cannot be read at all (the message names it)."""


@dataclass(frozen=True)
class RowProblem:
    """One bad input row, skipped."""

    file: str
    line: int | None  # 1-based line (CSV, JSONL, .txt) or row (Parquet); None when unknown
    reason: str
    unit: str = "line"  # "line" or "row"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.unit == "line" and self.line is not None else (
            f"{self.file} row {self.line}" if self.line is not None else self.file)
        return f"{where}: {self.reason}"

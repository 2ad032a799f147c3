"""Corpus readers: CSV, JSON Lines, Parquet and folders of .txt files -> `SourceDocument`s + `RowProblem`s.

CSV is read with the `csv` module one record at a time (every cell a string, exact line numbers
even across quoted newlines, ragged rows and broken UTF-8 reported per row, a byte-order mark dropped), Parquet with pandas/pyarrow (types kept,
so wrong types are reported), and JSON Lines one line at a time with `json` so that one broken
line (bad JSON, broken UTF-8) is reported with its number instead of failing the whole file.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.problems import InputFileError, RowProblem

FORMATS = ("csv", "jsonl", "parquet", "txt")
_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet",
               ".pq": "parquet", ".txt": "txt"}


@dataclass(frozen=True)
class ColumnMapping:
    """Which input columns hold what; `domain` is used when there is no domain column."""

    id: str = "id"
    text: str = "text"
    title: str = "title"
    domain_col: str = "domain"
    domain: str | None = None


@dataclass(frozen=True)
class SourceDocument:
    """A valid input document, with where it came from."""

    doc_id: str
    text: str
    title: str
    domain: str
    extra: dict[str, Any] = field(default_factory=dict)
    file: str = ""
    line: int | None = None


def infer_format(path: Path, given: str | None) -> str:
    """The format named, else the one the extension (or a folder: txt) implies."""
    if given:
        if given not in FORMATS:
            raise InputFileError(f"unknown format {given!r}: use one of {', '.join(FORMATS)}")
        return given
    if path.is_dir():
        return "txt"
    fmt = _EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise InputFileError(f"{path}: cannot tell the format from the extension {path.suffix!r}; pass --format {'|'.join(FORMATS)}")
    return fmt


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _plain(value: Any) -> Any:
    """numpy/pyarrow scalars -> Python values (JSON-serialisable)."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            return value.item()
        except (ValueError, AttributeError):
            pass
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def _has_broken_utf8(value: str) -> bool:
    return any("\udc80" <= c <= "\udcff" for c in value)


def validate_row(row: dict[str, Any], cols: ColumnMapping, file: str, line: int | None, unit: str = "line") -> SourceDocument | RowProblem:
    """Check one input row; return the document or the reason it is bad."""
    bad = lambda reason: RowProblem(file, line, reason, unit)  # noqa: E731
    raw_id = _plain(row.get(cols.id))
    if _is_missing(raw_id) or (isinstance(raw_id, str) and not raw_id.strip()):
        return bad(f"missing {cols.id!r}")
    if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)):
        return bad(f"{cols.id!r} is {type(raw_id).__name__}, expected a string or an integer")
    doc_id = str(raw_id).strip()
    text = _plain(row.get(cols.text))
    if _is_missing(text):
        return bad(f"missing {cols.text!r}")
    if not isinstance(text, str):
        return bad(f"{cols.text!r} is {type(text).__name__}, expected a string")
    if _has_broken_utf8(text) or _has_broken_utf8(doc_id):
        return bad("broken UTF-8")
    if not text.strip():
        return bad(f"empty {cols.text!r}")
    title = _plain(row.get(cols.title))
    title = "" if _is_missing(title) else str(title)
    domain = _plain(row.get(cols.domain_col))
    domain = (cols.domain or "") if _is_missing(domain) or domain == "" else str(domain)
    used = {cols.id, cols.text, cols.title, cols.domain_col}
    extra = {}
    for key, value in row.items():
        value = _plain(value)
        if key in used or _is_missing(value) or value == "":
            continue
        if isinstance(value, str) and _has_broken_utf8(value):
            return bad(f"broken UTF-8 in {key!r}")
        extra[str(key)] = value if isinstance(value, (str, int, float, bool, list, dict)) else str(value)
    return SourceDocument(doc_id, text, title.strip(), domain, extra, file, line)


def _require_columns(path: Path, columns: list[str], cols: ColumnMapping) -> None:
    for name, option in ((cols.id, "--id-col"), (cols.text, "--text-col")):
        if name not in columns:
            raise InputFileError(f"{path}: no column {name!r} (columns: {', '.join(map(str, columns)) or 'none'}); "
                                 f"name the right one with {option}")


CSV_FIELD_LIMIT = 64 * 1024 * 1024  # characters per cell (the csv module's default, 128 KiB, refuses long documents)
_OTHER_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}


def _delimiter_hint(header: list[str]) -> str:
    if len(header) == 1:
        for char, name in _OTHER_DELIMITERS.items():
            if char in header[0]:
                return f"; the header looks {name}-separated, but CSV files must be comma-separated"
    return ""


def read_csv_rows(path: Path, cols: ColumnMapping, problems: list[RowProblem]) -> Iterator[tuple[dict[str, Any], int]]:
    """(row, line) pairs of a comma-separated file with a header line; ragged rows go to `problems`.

    Read with the `csv` module, one record at a time: a UTF-8 byte-order mark is dropped, broken UTF-8 is
    kept as surrogates (reported per row by `validate_row`), blank lines are skipped, and a row with more
    or fewer fields than the header is reported with its first line number instead of failing the file.
    """
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader, None)
        except csv.Error as exc:
            raise InputFileError(f"{path}:1: cannot parse the CSV header: {exc}") from None
        if not header or not any(h.strip() for h in header):
            raise InputFileError(f"{path}: cannot parse as CSV: the file is empty or has no header line")
        header = [h.strip() for h in header]
        try:
            _require_columns(path, header, cols)
        except InputFileError as exc:
            raise InputFileError(f"{exc}{_delimiter_hint(header)}") from None
        start = reader.line_num + 1
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise InputFileError(f"{path}:{start}: cannot parse as CSV: {exc}") from None
            line, start = start, reader.line_num + 1
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue  # a blank line
            if len(fields) != len(header):
                problems.append(RowProblem(str(path), line, f"{len(fields)} fields where the header has {len(header)} "
                                                            f"(ragged row; quote cells that contain commas)"))
                continue
            yield dict(zip(header, fields)), line


def read_jsonl_rows(path: Path, cols: ColumnMapping, problems: list[RowProblem]) -> Iterator[tuple[dict[str, Any], int]]:
    """(row, line) pairs of a JSON Lines file; undecodable lines go to `problems`."""
    parsed = failed = 0
    first_error = ""
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                problems.append(RowProblem(str(path), number, f"broken UTF-8 ({exc.reason} at byte {exc.start})"))
                failed += 1
                continue
            except json.JSONDecodeError as exc:
                problems.append(RowProblem(str(path), number, f"invalid JSON ({exc.msg})"))
                failed += 1
                first_error = first_error or f"line {number}: {exc.msg}"
                continue
            if not isinstance(record, dict):
                problems.append(RowProblem(str(path), number, f"expected a JSON object, got {type(record).__name__}"))
                failed += 1
                continue
            parsed += 1
            yield record, number
    if failed and not parsed:
        raise InputFileError(f"{path}: not a JSON Lines file (no line parses; {first_error or 'see the errors above'})")


def read_parquet_rows(path: Path, cols: ColumnMapping) -> Iterator[tuple[dict[str, Any], int]]:
    """(row, row number) pairs of a Parquet file."""
    import pandas as pd

    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ... for a non-Parquet file
        raise InputFileError(f"{path}: cannot read as Parquet: {type(exc).__name__}: {exc}") from None
    _require_columns(path, list(frame.columns), cols)
    for number, record in enumerate(frame.to_dict(orient="records"), start=1):
        yield record, number


def read_txt_documents(path: Path, cols: ColumnMapping) -> Iterator[SourceDocument | RowProblem]:
    """One document per .txt file (id = file stem; title = first line when more lines follow, else the stem)."""
    files = sorted(path.glob("*.txt")) if path.is_dir() else [path]
    if path.is_dir() and not files:
        raise InputFileError(f"{path}: folder has no .txt files")
    for file in files:
        raw = file.read_bytes()
        try:
            content = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            yield RowProblem(str(file), raw[: exc.start].count(b"\n") + 1, f"broken UTF-8 ({exc.reason})")
            continue
        lines = content.strip().splitlines()
        if len(lines) > 1 and lines[0].strip():
            title, text = lines[0].strip(), "\n".join(lines[1:]).strip()
        else:
            title, text = file.stem, content.strip()
        row = {"id": file.stem, "text": text, "title": title, "domain": cols.domain}
        yield validate_row(row, ColumnMapping(domain=cols.domain), str(file), 1)


def read_documents(path: Path, fmt: str | None, cols: ColumnMapping) -> Iterator[SourceDocument | RowProblem]:
    """Every row of `path` as a `SourceDocument` or a `RowProblem`, in file order."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: no such file or folder")
    fmt = infer_format(path, fmt)
    if fmt == "txt":
        yield from read_txt_documents(path, cols)
        return
    problems: list[RowProblem] = []
    if fmt == "csv":
        rows, unit = read_csv_rows(path, cols, problems), "line"
    elif fmt == "jsonl":
        rows, unit = read_jsonl_rows(path, cols, problems), "line"
    else:
        rows, unit = read_parquet_rows(path, cols), "row"
    for row, line in rows:
        yield from problems
        problems.clear()
        yield validate_row(row, cols, str(path), line, unit)
    yield from problems

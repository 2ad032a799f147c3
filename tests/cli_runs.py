"""Running `ksearch` in-process for tests: a small Korean corpus file and a CLI call that must succeed."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ksearch.cli import app
from tiny_models import KOREAN_SENTENCES

runner = CliRunner()


def write_corpus(path: Path, n: int) -> Path:
    """A JSONL corpus of `n` short Korean documents (ids D000…, alternating domains) at `path`."""
    rows = [{"id": f"D{i:03d}", "domain": "legal" if i % 2 else "medical", "title": f"문서 {i}",
             "text": f"{KOREAN_SENTENCES[i % len(KOREAN_SENTENCES)]} 번호 {i}"} for i in range(n)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def invoke_ok(*args: str) -> str:
    """Run `ksearch ARGS…` and return its stdout; fail the test with the output unless it exits 0."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout

"""Security basics: secrets stay out of git and out of messages and logs; uploads are size-limited data, never run
or opened by a path they name; hostile document text is escaped (see also test_ui_app / test_ui_browser)."""

from __future__ import annotations

import logging
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from ksearch.opensearch_node import free_port
from search_ui.upload import MAX_UPLOAD_BYTES, MAX_UPLOAD_MB, UploadError, ingest_upload, write_upload

ROOT = Path(__file__).resolve().parents[1]
SECRET = "s3cret-Pw-9f1c"


def test_dotenv_is_ignored_by_git(tmp_path):
    """The project's .gitignore, in a fresh repository (so this runs the same in a checkout, an export or CI)."""
    git = shutil.which("git")
    assert git is not None, "git is needed to check .gitignore"
    shutil.copy(ROOT / ".gitignore", tmp_path / ".gitignore")
    subprocess.run([git, "init", "-q", str(tmp_path)], check=True, capture_output=True)
    for name, ignored in ((".env", True), ("sub/.env", True), (".env.example", False)):
        result = subprocess.run([git, "check-ignore", "-q", "--no-index", name], cwd=tmp_path, capture_output=True)
        assert (result.returncode == 0) is ignored, f"{name}: ignored by git should be {ignored} ({result.stderr.decode()})"


def test_streamlit_upload_limit_matches_the_apps():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"]["maxUploadSize"] == MAX_UPLOAD_MB


def test_oversized_upload_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(UploadError, match=f"limit is {MAX_UPLOAD_MB} MB"):
        write_upload(b"x" * (MAX_UPLOAD_BYTES + 1), "big.csv", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_uploads_are_parsed_as_data_never_run_or_opened_by_path(tmp_path, tiny_model_dir):
    from encoder import SparseEncoder
    from retrieval.backends import BackendConfig, open_or_create_index
    from retrieval.index_meta import IndexMeta

    marker = tmp_path / "executed"
    code = f"import pathlib; pathlib.Path({str(marker)!r}).write_text('ran')"
    encoder = SparseEncoder.load(tiny_model_dir)
    with open_or_create_index("sec", IndexMeta.for_encoder("sec", encoder), config=BackendConfig(home=tmp_path)) as store:
        ingest_upload(code.encode(), "payload.py.txt", store, encoder)
        ingest_upload("/etc/passwd".encode(), "passwd.txt", store, encoder)
        csv = f'id,text\nF1,"=cmd|\' /C calc\'!A0"\nF2,"__import__(\'os\').system(\'touch {marker}\')"\n'
        outcome = ingest_upload(csv.encode(), "formula.csv", store, encoder)
        assert outcome.report.written == 2
        texts = {p.doc_id: p.text for p in store.get_passages(sorted(store.content_hashes()))}
    assert not marker.exists()  # nothing was executed
    assert texts["payload_py"] == code and texts["passwd"] == "/etc/passwd"  # a path in the content stays text
    assert texts["F1"].startswith("=cmd") and texts["F2"].startswith("__import__")
    with pytest.raises(UploadError, match="unsupported"):
        ingest_upload(b"print(1)", "run.py", None, encoder)


def test_credentials_never_appear_in_errors_or_logs(caplog):
    from retrieval.backends.opensearch import OpenSearchIndex
    from retrieval.backends.opensearch_connection import OpenSearchConnection, OpenSearchUnavailableError

    port = free_port()
    caplog.set_level(logging.DEBUG)
    for conn in (OpenSearchConnection(url=f"http://admin:{SECRET}@127.0.0.1:{port}", timeout=2),
                 OpenSearchConnection(url=f"http://127.0.0.1:{port}", user="admin", password=SECRET, timeout=2)):
        with pytest.raises(OpenSearchUnavailableError) as err:
            OpenSearchIndex.open("sample", conn=conn)
        assert SECRET not in str(err.value) and SECRET not in repr(conn) and SECRET not in conn.safe_url
    logged = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    assert "127.0.0.1" in logged  # the client did log its failed requests...
    assert SECRET not in logged  # ...without the password


def test_settings_hold_the_password_as_a_secret(monkeypatch):
    from retrieval.settings import get_settings

    monkeypatch.setenv("KSEARCH_OPENSEARCH_PASSWORD", SECRET)
    get_settings.cache_clear()
    try:
        settings = get_settings()
        assert SECRET not in repr(settings) and SECRET not in str(settings.model_dump())
        assert settings.opensearch_password.get_secret_value() == SECRET
    finally:
        get_settings.cache_clear()

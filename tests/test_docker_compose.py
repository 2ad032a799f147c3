"""`docker-compose.yml`: `docker compose config` when the compose plugin is present, else a YAML check."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"


def _compose_available() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0


def test_compose_file_is_valid_and_complete():
    if _compose_available():
        env = {**os.environ, "OPENSEARCH_INITIAL_ADMIN_PASSWORD": "Test-only-pw-1!"}
        result = subprocess.run(["docker", "compose", "-f", str(COMPOSE), "--profile", "dashboards", "config", "-q"],
                                cwd=ROOT, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    spec = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    services = spec["services"]
    assert set(services) == {"opensearch", "ingest", "app", "dashboards"}
    for name in ("opensearch", "app", "dashboards"):
        assert services[name]["healthcheck"]["test"], name
    assert services["dashboards"]["profiles"] == ["dashboards"]
    assert "opensearch-data" in spec["volumes"]
    opensearch = services["opensearch"]
    assert "OPENSEARCH_INITIAL_ADMIN_PASSWORD" in opensearch["environment"]
    assert "opensearch-data:/usr/share/opensearch/data" in opensearch["volumes"]
    dockerfile = (ROOT / opensearch["build"]["dockerfile"]).read_text(encoding="utf-8")
    assert "opensearch:2.19.1" in dockerfile  # the version the local test node runs
    from ksearch.opensearch_node import OPENSEARCH_VERSION

    assert OPENSEARCH_VERSION == "2.19.1"
    assert services["ingest"]["command"][:2] == ["ksearch", "ingest"] and "opensearch" in services["ingest"]["command"]
    assert services["ingest"]["restart"] == "no"
    assert services["app"]["depends_on"]["opensearch"]["condition"] == "service_healthy"
    app_env = services["app"]["environment"]
    assert app_env["KSEARCH_OPENSEARCH_URL"].startswith("https://opensearch:")
    assert "encoder/models/ksearch-ko-sparse" in app_env["KSEARCH_MODEL"]
    assert (ROOT / "encoder/models/ksearch-ko-sparse").is_dir()
    assert "streamlit" in (ROOT / "Dockerfile").read_text(encoding="utf-8")
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    assert "OPENSEARCH_INITIAL_ADMIN_PASSWORD=" in example

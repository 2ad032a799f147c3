"""`docker-compose.yml`: valid under the Compose Specification's JSON schema (what `docker compose` checks, vendored
in tests/compose_spec/ so the test is the same with or without Docker), and holding what the README promises."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft7Validator

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
SCHEMA = Path(__file__).with_name("compose_spec") / "compose-spec.json"


def _schema_errors(spec: dict) -> list[str]:
    validator = Draft7Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    return sorted(f"{'/'.join(map(str, e.path)) or '(top)'}: {e.message}" for e in validator.iter_errors(spec))


def test_compose_file_follows_the_compose_specification():
    assert _schema_errors(yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))) == []


@pytest.mark.parametrize("path, bad", [(("services", "app", "depends_on", "opensearch", "condition"), "when_ready"),
                                       (("services", "ingest", "restart"), 7),
                                       (("services", "opensearch", "healtcheck"), {"test": ["CMD", "true"]})])
def test_the_schema_check_catches_a_broken_file(path, bad):
    spec = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    parent = spec
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = bad
    assert _schema_errors(spec), path


def test_compose_file_is_complete():
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
    for name in ("KSEARCH_PRECISION", "KSEARCH_APPROXIMATE_ABOVE", "KSEARCH_HYBRID_WEIGHT"):  # optional: passed through
        assert f"# {name}=" in example and name in app_env and app_env[name] is None, name

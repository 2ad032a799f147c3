"""What the backends need from a deployment, passed in by the caller (the CLI, the app, a benchmark, a test).

Library code never reads the environment: `retrieval.settings.Settings.backend_config()` turns the
KSEARCH_* settings into a `BackendConfig`, and a benchmark or test builds its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from retrieval.backends.opensearch_connection import OpenSearchConnection

DEFAULT_HOME = Path(".ksearch")


@dataclass(frozen=True)
class BackendConfig:
    """Where the embedded indexes live, when they search approximately, and how to reach OpenSearch."""

    home: Path = DEFAULT_HOME  # embedded indexes are folders home/<name>; rejected OpenSearch writes go to home/dead-letters
    approximate_above: int | None = None  # embedded: approximate candidates from this many live passages (None: always exact)
    opensearch: OpenSearchConnection = field(default_factory=OpenSearchConnection)
    bm25_analyzer: str = "auto"  # OpenSearch BM25 analysis of new indexes: auto (nori when the node has it) | nori | kiwi
    shards: int = 1  # OpenSearch: primary shards of a new index
    replicas: int | None = None  # OpenSearch: replicas of a new index; None -> 1 when a second node is there, else 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "home", Path(self.home))

    @property
    def dead_letter_dir(self) -> Path:
        """Where the OpenSearch backend writes the passages it refused."""
        return self.home / "dead-letters"

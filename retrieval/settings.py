"""The KSEARCH_* settings (environment and an optional .env file), read by the applications only.

The CLI (`ksearch/`) and the app (`search_ui/`) read them with `get_settings()` and pass what a library
needs as arguments (`backend_config()`, `retrieval.opening`); no module of `encoder/`, `ingest/` or
`retrieval/` reads them itself, so a benchmark or test steers a backend by what it passes, not by
rewriting the environment.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from retrieval.backends.opensearch_state import running_node_url
from retrieval.query import HYBRID_SPARSE_WEIGHT

DEFAULT_OPENSEARCH_URL = "http://127.0.0.1:9200"


def _default_opensearch_url() -> str:
    """The node `ksearch opensearch start` runs, else localhost:9200 (used only when KSEARCH_OPENSEARCH_URL is unset)."""
    return running_node_url() or DEFAULT_OPENSEARCH_URL

if TYPE_CHECKING:
    from retrieval.backends.config import BackendConfig
    from retrieval.backends.opensearch_connection import OpenSearchConnection


class Settings(BaseSettings):
    """Everything a deployment may change; defaults run the embedded demo offline."""

    model_config = SettingsConfigDict(env_prefix="KSEARCH_", env_file=".env", extra="ignore")

    home: Path = Path(".ksearch")  # data directory of the embedded indexes
    model: str | None = None  # model id or folder; None -> production model if cached, else the shipped one
    index: str = "sample"
    document_pruning: str | None = None  # e.g. "max_ratio:0.05"; None -> the model folder's default
    query_pruning: str | None = None
    batch_size: int = 32
    approximate_above: int | None = None  # embedded: approximate (impact-ordered) candidates from this many passages
    precision: str | None = None  # fp32 | bf16 | int8; None -> ONNX fp32 (model.onnx), else the folder's measured CPU default
    encoder_backend: str | None = None  # auto | onnx | torch; None (auto) -> the folder's model.onnx when usable
    hybrid_weight: float = Field(default=HYBRID_SPARSE_WEIGHT, ge=0.0, le=1.0)  # hybrid: w·sparse + (1−w)·BM25

    # KSEARCH_OPENSEARCH_URL (or .env) wins; unset, the node `ksearch opensearch start` recorded while it runs.
    # Several nodes of one cluster: comma-separated (http://h1:9200,http://h2:9200), requests then survive a node down
    opensearch_url: str = Field(default_factory=_default_opensearch_url)
    opensearch_user: str | None = None
    opensearch_password: SecretStr | None = None
    opensearch_verify_certs: bool = True
    opensearch_ca_file: Path | None = None
    opensearch_timeout: float = 30.0
    opensearch_bm25_analyzer: str = "auto"  # auto (nori when the node has it) | nori | kiwi (Kiwi morphemes, whitespace)
    opensearch_shards: int = Field(default=1, ge=1)  # primary shards of an index ksearch creates
    opensearch_replicas: int | None = Field(default=None, ge=0)  # unset: 1 replica when the cluster has a second node

    @property
    def models_dir(self) -> Path:
        """Where named models live (`ksearch adapt --out NAME` writes `models_dir/NAME`; `--model NAME` finds it)."""
        return Path(self.home) / "models"

    def opensearch_connection(self) -> "OpenSearchConnection":
        """The connection the KSEARCH_OPENSEARCH_* settings describe."""
        from retrieval.backends.opensearch_connection import OpenSearchConnection

        password = self.opensearch_password.get_secret_value() if self.opensearch_password else None
        url = ",".join(u.strip().rstrip("/") for u in self.opensearch_url.split(",") if u.strip())
        return OpenSearchConnection(url=url, user=self.opensearch_user, password=password,
                                    verify_certs=self.opensearch_verify_certs, ca_file=self.opensearch_ca_file,
                                    timeout=self.opensearch_timeout)

    def backend_config(self, *, home: Path | None = None) -> "BackendConfig":
        """What the backends need from these settings (`home` overrides KSEARCH_HOME, e.g. for benchmarks)."""
        from retrieval.backends.config import BackendConfig

        return BackendConfig(home=Path(home or self.home), approximate_above=self.approximate_above,
                             opensearch=self.opensearch_connection(), bm25_analyzer=self.opensearch_bm25_analyzer,
                             shards=self.opensearch_shards, replicas=self.opensearch_replicas)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once (tests call `get_settings.cache_clear()` after changing the environment)."""
    return Settings()

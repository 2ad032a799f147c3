"""A model served inside OpenSearch by ml-commons: register a model zip, deploy it, encode text with it.

The zip is uploaded in chunks (``_register_meta`` + ``upload_chunk``), so it works with any node that allows
``plugins.ml_commons.allow_registering_model_via_local_file`` (the local node from `ksearch opensearch start --ml`
does), not only one that can read the client's files. Every call takes an ``opensearchpy.OpenSearch`` client
(`OpenSearchConnection.client()`); a request answered with HTTP 429 (a memory breaker, a busy node) is retried
after a pause, and ml-commons' refusals and failed tasks become `MLCommonsError`s that say why.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from retrieval.errors import RetrievalError

from retrieval.backends.ml_commons_bodies import UPLOAD_CHUNK_BYTES as CHUNK_BYTES

ML_API = "/_plugins/_ml"
THROTTLED_PAUSES = (0.5, 1.0, 2.0, 4.0)  # seconds before each retry of a request ml-commons answered with HTTP 429


class MLCommonsError(RetrievalError):
    """ml-commons refused a request, or one of its tasks (register, deploy) failed."""


def model_zip_facts(zip_path: Path) -> tuple[int, str]:
    """(size in bytes, SHA-256 hex) of a model zip: the ``model_content_*`` fields of a register request."""
    from encoder.torchscript_export import file_sha256

    return Path(zip_path).stat().st_size, file_sha256(zip_path)


def _call(client, method: str, path: str, what: str, body: Any = None) -> dict:
    """One ml-commons request; HTTP 429 (its memory circuit breakers, a busy node) is retried with a growing pause,
    as opensearch-py's own retries cover only connection errors and 502-504."""
    from opensearchpy import exceptions as ex

    pauses = iter(THROTTLED_PAUSES)
    while True:
        try:
            return client.transport.perform_request(method, path, body=body) or {}
        except ex.TransportError as exc:
            pause = next(pauses, None) if exc.status_code == 429 else None
            if pause is not None:
                time.sleep(pause)
                continue
            info = getattr(exc, "info", None)
            reason = info.get("error", info) if isinstance(info, dict) else getattr(exc, "error", exc)
            if isinstance(reason, dict):
                reason = reason.get("reason") or (reason.get("root_cause") or [{}])[0].get("reason") or reason
            tries = f", {len(THROTTLED_PAUSES) + 1} tries over {sum(THROTTLED_PAUSES):g} s" if exc.status_code == 429 else ""
            raise MLCommonsError(f"ml-commons refused {what} (HTTP {exc.status_code}{tries}): {str(reason)[:800]}") from None


def register_model_zip(client, zip_path: Path, *, name: str, version: str = "1.0.0",
                       function_name: str = "SPARSE_ENCODING", model_format: str = "TORCH_SCRIPT",
                       model_config: dict | None = None, description: str | None = None,
                       chunk_bytes: int = CHUNK_BYTES, timeout: float = 120.0) -> str:
    """Upload `zip_path` (one model file + ``tokenizer.json``) in chunks; return the model id once registered."""
    zip_path = Path(zip_path)
    if not zip_path.is_file():
        raise MLCommonsError(f"model zip {zip_path} does not exist")
    if not 0 < chunk_bytes <= CHUNK_BYTES:
        raise ValueError(f"chunk_bytes must be in (0, {CHUNK_BYTES}], not {chunk_bytes}")
    size, sha256 = model_zip_facts(zip_path)
    meta: dict[str, Any] = {
        "name": name, "version": version, "function_name": function_name, "model_format": model_format,
        "model_content_size_in_bytes": size, "model_content_hash_value": sha256,
        "total_chunks": max(1, math.ceil(size / chunk_bytes)),
    }
    if model_config is not None:
        meta["model_config"] = model_config
    if description:
        meta["description"] = description
    model_id = _call(client, "POST", f"{ML_API}/models/_register_meta", f"registering {zip_path.name}", meta)["model_id"]
    with open(zip_path, "rb") as fh:
        for n in range(meta["total_chunks"]):
            _call(client, "POST", f"{ML_API}/models/{model_id}/upload_chunk/{n}",
                  f"chunk {n + 1}/{meta['total_chunks']} of {zip_path.name}", fh.read(chunk_bytes))
    # the last chunk's answer comes before the model is marked REGISTERED
    if not _wait_for(lambda: model_state(client, model_id) == "REGISTERED", timeout):
        raise MLCommonsError(f"model {model_id} ({zip_path.name}) was not REGISTERED within {timeout:g} s "
                             f"(state: {model_state(client, model_id)})")
    return model_id


def get_model(client, model_id: str) -> dict:
    """The model's record (name, algorithm, model_state, model_config, ...); `MLCommonsError` when there is none."""
    return _call(client, "GET", f"{ML_API}/models/{model_id}", f"reading model {model_id}")


def model_state(client, model_id: str) -> str | None:
    """The model's ``model_state`` (REGISTERED, DEPLOYED, DEPLOY_FAILED, ...)."""
    return get_model(client, model_id).get("model_state")


def find_models(client, name: str) -> list[str]:
    """Ids of the registered models (not their chunks) named exactly `name`, newest first."""
    body = {"query": {"bool": {"filter": [{"term": {"name.keyword": name}}],
                               "must_not": [{"exists": {"field": "chunk_number"}}]}},
            "sort": [{"created_time": {"order": "desc"}}], "size": 100, "_source": ["name"]}
    try:
        res = _call(client, "POST", f"{ML_API}/models/_search", f"searching models named {name!r}", body)
    except MLCommonsError as exc:
        if "(HTTP 404)" in str(exc):  # no model was ever registered: ml-commons' model index does not exist yet
            return []
        raise
    return [h["_id"] for h in res.get("hits", {}).get("hits", [])]


def deploy_model(client, model_id: str, timeout: float = 300.0) -> None:
    """Load the model into the node's memory; raise `MLCommonsError` with ml-commons' reason if that fails."""
    task_id = _call(client, "POST", f"{ML_API}/models/{model_id}/_deploy", f"deploying model {model_id}")["task_id"]
    task: dict = {}

    def done() -> bool:
        nonlocal task
        task = _call(client, "GET", f"{ML_API}/tasks/{task_id}", f"reading deploy task {task_id}")
        return task.get("state") in ("COMPLETED", "FAILED", "COMPLETED_WITH_ERROR")

    if not _wait_for(done, timeout):
        raise MLCommonsError(f"deploying model {model_id} did not finish within {timeout:g} s (task {task_id})")
    if task.get("state") != "COMPLETED":
        raise MLCommonsError(f"deploying model {model_id} failed ({task.get('state')}): {task.get('error', task)}")


def predict_sparse(client, model_id: str, texts: list[str]) -> list[dict[str, float]]:
    """Each text's sparse vector (token -> weight) as the deployed SPARSE_ENCODING model computes it."""
    res = _call(client, "POST", f"{ML_API}/_predict/sparse_encoding/{model_id}", f"encoding with model {model_id}",
                {"text_docs": list(texts)})
    try:
        return [r["output"][0]["dataAsMap"]["response"][0] for r in res["inference_results"]]
    except (KeyError, IndexError, TypeError):
        raise MLCommonsError(f"unexpected _predict answer from model {model_id}: {str(res)[:500]}") from None


def undeploy_model(client, model_id: str) -> None:
    """Unload the model from the node's memory."""
    _call(client, "POST", f"{ML_API}/models/{model_id}/_undeploy", f"undeploying model {model_id}")


def delete_model(client, model_id: str) -> None:
    """Delete a registered (not deployed) model and its chunks."""
    _call(client, "DELETE", f"{ML_API}/models/{model_id}", f"deleting model {model_id}")


def _wait_for(ready, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True

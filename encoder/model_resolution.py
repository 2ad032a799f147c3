"""Which model to load when none is named, without ever touching the network."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

PRODUCTION_MODEL_ID = "sewoong/korean-neural-sparse-encoder-v1"
SHIPPED_MODEL_DIR = Path(__file__).resolve().parent / "models" / "ksearch-ko-sparse"
SHIPPED_MODEL_ID = f"ksearch/{SHIPPED_MODEL_DIR.name}"  # how indexes record the shipped model
MODEL_ENV_VAR = "KSEARCH_MODEL"
MODEL_SETTINGS_FILE = "ksearch.json"  # optional, in a model folder: {"max_length": 64, "pre_segmentation": ...}

MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # a model under the models folder: one path segment

# Max sequence lengths that the models' own configs do not state (the card fixes 64).
KNOWN_MAX_LENGTHS = {PRODUCTION_MODEL_ID: 64}


class ModelNotFoundError(RuntimeError):
    """No usable model: the message says how to get one."""


def _hub_cache_dirs() -> list[Path]:
    """Where huggingface_hub keeps its cache (HF_HUB_CACHE, HF_HOME/hub, XDG_CACHE_HOME or ~/.cache)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return [Path(os.environ[var]).expanduser()]
    if os.environ.get("HF_HOME"):
        return [Path(os.environ["HF_HOME"]).expanduser() / "hub"]
    return [Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "huggingface" / "hub"]


def cached_hub_snapshot(model_id: str) -> Path | None:
    """The local Hugging Face cache folder of `model_id`, or None if it was never downloaded."""
    folder = "models--" + model_id.replace("/", "--")
    if not any((cache / folder).is_dir() for cache in _hub_cache_dirs()):
        return None  # never downloaded: no need to import huggingface_hub (~0.5 s of a cold command)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(model_id, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None


def is_model_name(name: str) -> bool:
    """Whether `name` can name a model folder under a models folder (letters, digits, `.`, `_`, `-`; no path)."""
    return bool(MODEL_NAME.fullmatch(name)) and name not in (".", "..")


def named_model_dir(models_dir: str | os.PathLike | None, name: str) -> Path | None:
    """`models_dir/name` when `name` is a plain model name and that folder exists (e.g. written by `ksearch adapt`)."""
    if models_dir is None or not is_model_name(name):
        return None
    folder = Path(models_dir).expanduser() / name
    return folder if folder.is_dir() else None


def resolve_model(name_or_path: str | os.PathLike | None,
                  models_dir: str | os.PathLike | None = None) -> tuple[str, Path | str]:
    """Return (model_id, what to load): an explicit name, $KSEARCH_MODEL, the cached
    production model, or the shipped offline model, in that order.

    A name is a local folder first, then `models_dir/NAME` (the application passes $KSEARCH_HOME/models, where
    `ksearch adapt` writes), then a cached Hugging Face id; the model id stays the name as given."""
    if name_or_path is None:
        name_or_path = os.environ.get(MODEL_ENV_VAR) or None
    if name_or_path is not None and str(name_or_path) == SHIPPED_MODEL_ID:
        return SHIPPED_MODEL_ID, SHIPPED_MODEL_DIR
    if name_or_path is not None:
        path = Path(name_or_path).expanduser()
        if path.is_dir():
            return str(name_or_path), path.resolve()
        named = named_model_dir(models_dir, str(name_or_path))
        if named is not None:
            return str(name_or_path), named.resolve()
        snapshot = cached_hub_snapshot(str(name_or_path))
        if snapshot is None:
            raise ModelNotFoundError(
                f"model {str(name_or_path)!r} is neither a local folder nor in the Hugging Face cache"
                + (f" nor a model under {models_dir}" if models_dir is not None and is_model_name(str(name_or_path)) else "")
                + ". "
                f"Download it once with `ksearch model pull {name_or_path}` (needs network) "
                f"or point KSEARCH_MODEL at a local model folder."
            )
        return str(name_or_path), snapshot
    snapshot = cached_hub_snapshot(PRODUCTION_MODEL_ID)
    if snapshot is not None:
        return PRODUCTION_MODEL_ID, snapshot
    if (SHIPPED_MODEL_DIR / "config.json").is_file():
        return SHIPPED_MODEL_ID, SHIPPED_MODEL_DIR
    raise ModelNotFoundError(
        "no sparse encoder model is available offline: the production model "
        f"{PRODUCTION_MODEL_ID!r} is not in the Hugging Face cache and the project's own model "
        f"is missing at {SHIPPED_MODEL_DIR}. Set KSEARCH_MODEL to a local masked-LM folder, "
        f"pass --model PATH, or run `ksearch model pull {PRODUCTION_MODEL_ID}` with network."
    )


def read_model_settings(source: Path | str) -> dict:
    """A model folder's `ksearch.json` settings ({} when it has none)."""
    path = Path(source) / MODEL_SETTINGS_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: invalid JSON ({exc})") from None

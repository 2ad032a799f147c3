"""The light runtime: a model folder's `model.onnx` (written by `ksearch model export-onnx`) run by
ONNX Runtime on the CPU, without torch.

The graph returns the pooled SPLADE vector [batch, vocab]; `SparseEncoder` zeroes the special
tokens and reads the weights as it does for torch. A graph is used only while the hash it records
(`ksearch.weights_sha256`) equals `weights_fingerprint` of its folder: weights replaced without
a new export are never silently served by an old graph (see `SparseEncoder.load`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

import numpy as np

ONNX_FILE = "model.onnx"
FINGERPRINT_KEY = "ksearch.weights_sha256"
INPUTS_KEY = "ksearch.input_names"
FORMAT_KEY = "ksearch.format"
FORMAT_VERSION = "splade-pooled-v1"  # output: max over real tokens of log1p(relu(logits)), [batch, vocab]
_WEIGHT_SUFFIXES = (".safetensors", ".bin")
_LOGITS_BUDGET_BYTES = 256 * 2**20  # one run's [rows x length x vocab] float32 logits inside the graph


class StaleOnnxError(RuntimeError):
    """The folder's model.onnx was exported from other weights than the folder holds now."""


def onnxruntime_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def weights_fingerprint(folder: str | os.PathLike) -> str:
    """sha256 of the folder's config.json and weight files (name and bytes, in name order)."""
    folder = Path(folder)
    digest = hashlib.sha256()
    files = sorted(p for p in folder.iterdir() if p.is_file() and (p.suffix in _WEIGHT_SUFFIXES or p.name == "config.json"))
    for path in files:
        digest.update(path.name.encode("utf-8") + b"\0")
        with path.open("rb") as f:
            while chunk := f.read(4 * 2**20):
                digest.update(chunk)
    return digest.hexdigest()


def cpu_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class OnnxModel:
    """An ONNX Runtime session of a pooled SPLADE graph (CPU, intra-op threads = the cores this process may use)."""

    def __init__(self, path: str | os.PathLike, *, threads: int | None = None) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or cpu_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get(FORMAT_KEY) != FORMAT_VERSION:
            raise ValueError(f"{self.path} is not a ksearch pooled SPLADE graph (format {meta.get(FORMAT_KEY)!r}); "
                             "write it with `ksearch model export-onnx`")
        self.fingerprint = meta.get(FINGERPRINT_KEY, "")
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.vocab_size = int(self.session.get_outputs()[0].shape[-1])

    def check_fingerprint(self, folder: str | os.PathLike) -> None:
        """Raise `StaleOnnxError` unless the graph was exported from `folder`'s present weights."""
        if self.fingerprint != weights_fingerprint(folder):
            raise StaleOnnxError(
                f"{self.path} was exported from other weights than {Path(folder)} holds now; re-export it with "
                f"`ksearch model export-onnx {folder}` (needs `pip install -e .[train]`)")

    def pooled(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """[batch, vocab] float32 SPLADE weights of a padded batch (sliced so the graph's logits stay bounded)."""
        ids = inputs["input_ids"]
        feeds = {name: np.ascontiguousarray(inputs.get(name, np.zeros_like(ids)), dtype=np.int64)
                 for name in self.input_names}
        rows = max(1, _LOGITS_BUDGET_BYTES // max(1, ids.shape[1] * self.vocab_size * 4))
        if ids.shape[0] <= rows:
            return self.session.run(None, feeds)[0]
        parts = [self.session.run(None, {k: v[s : s + rows] for k, v in feeds.items()})[0]
                 for s in range(0, ids.shape[0], rows)]
        return np.concatenate(parts)


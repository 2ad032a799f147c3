"""SPLADE sparse encoder: any Hugging Face masked-LM -> {feature name: weight}."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from encoder.expansion_gate import ExpansionGate
from encoder.feature_names import feature_to_token, token_to_feature
from encoder.model_resolution import KNOWN_MAX_LENGTHS, ModelNotFoundError, read_model_settings, resolve_model
from encoder.pruning import Pruning
from encoder.segmentation import KiwiSegmenter

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16", "int8")  # bf16: autocast; int8: dynamic quantisation of every Linear (CPU only)
BACKENDS = ("auto", "onnx", "torch")  # auto: the folder's model.onnx when it is usable, else torch
TRAIN_EXTRA_HINT = "pip install -e .[train]"


class SparseEncoder:
    """Encodes texts into sparse lexical vectors with the SPLADE formula
    max over tokens of log(1 + ReLU(logits)), special tokens and zeros removed."""

    def __init__(
        self,
        model,
        tokenizer,
        *,
        model_id: str,
        max_length: int,
        device: str = "cpu",
        document_pruning: Pruning | None = None,
        query_pruning: Pruning | None = None,
        batch_size: int = 32,
        segmenter: KiwiSegmenter | None = None,
        precision: str = "fp32",
        query_expansion: bool = True,
        expansion_gate: ExpansionGate | None = None,
        revision: str | None = None,
    ) -> None:
        """`model`: a Hugging Face masked-LM (torch, any device and precision) or an `OnnxModel` (CPU, fp32)."""
        from encoder.onnx_runtime import OnnxModel

        self.precision = _check_precision(precision, device)
        self.segmenter = segmenter  # applied before the tokenizer when the model folder asks for it
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.max_length = int(max_length)
        self.document_pruning = document_pruning or Pruning()
        self.query_pruning = query_pruning or Pruning()
        self.batch_size = batch_size
        # False: a query keeps the weights of its own tokens only (no expansion on the query side; documents still expand)
        self.query_expansion = query_expansion
        self.expansion_gate = expansion_gate  # keeps only expansions near the query's own words (expansion_gate.py)
        self._neighbours = None  # the gate's Kiwi lookup, made on the first gated query
        # ksearch.json's "revision" (ksearch adapt writes the weights' hash): a model replaced under the same name gets
        # a new one, so ingest re-encodes what the earlier weights encoded
        self.revision = revision
        self.truncated_count = 0  # texts cut at max_length since load (the ingest worker chunks first)
        if isinstance(model, OnnxModel):
            if self.precision != "fp32" or _device_type(device) != "cpu":
                raise ValueError("an ONNX model runs fp32 on the CPU; use the torch backend for other precisions or a GPU")
            self.backend, self._runner, self.device = "onnx", model, "cpu"
        else:
            from encoder.torch_backend import TorchModel

            self.backend = "torch"
            self._runner = TorchModel(model, tokenizer, device, self.precision)
            self.device = self._runner.device
        self.model = getattr(self._runner, "model", model)
        self.vocab_size = self._runner.vocab_size
        vocab = tokenizer.get_vocab()
        id_to_token = {i: t for t, i in vocab.items()}
        self.feature_names = [token_to_feature(id_to_token.get(i, f"[id{i}]")) for i in range(self.vocab_size)]
        self._special_ids = sorted({i for i in tokenizer.all_special_ids if i is not None and i < self.vocab_size})

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(
        cls,
        name_or_path: str | os.PathLike | None = None,
        device: str | None = None,
        *,
        max_length: int | None = None,
        document_pruning: Pruning | str | None = None,
        query_pruning: Pruning | str | None = None,
        batch_size: int = 32,
        precision: str | None = None,
        backend: str | None = None,
        models_dir: str | os.PathLike | None = None,
    ) -> "SparseEncoder":
        """Load a masked-LM and its tokenizer from a local folder or the local HF cache (never the network).

        `backend` "auto" (None) runs the folder's `model.onnx` with ONNX Runtime when it is there, onnxruntime is
        installed, it was exported from the folder's present weights and nothing asks for torch (a `device` other
        than cpu, a `precision` other than fp32); torch is then never imported. Otherwise the model runs with
        torch (the `train` extra): `precision` None takes the folder's measured CPU default (`cpu_precision` in
        ksearch.json, used only where this CPU runs it natively), else fp32. A model.onnx whose weights
        fingerprint no longer matches is skipped with a warning (an error without torch, or with backend "onnx").
        A plain name may also be a folder under `models_dir` (see `resolve_model`).
        """
        if precision is not None:  # a bad setting fails before the model is read
            _check_precision(precision, device or "cpu")
        if backend not in (None, *BACKENDS):
            raise ValueError(f"unknown encoder backend {backend!r} (known: {', '.join(BACKENDS)}; "
                             "set by backend= or $KSEARCH_ENCODER_BACKEND)")
        model_id, source = resolve_model(name_or_path, models_dir)
        settings = read_model_settings(source)
        onnx_model = _usable_onnx(Path(source), backend or "auto", device, precision)
        if onnx_model is not None:
            from encoder.light_tokenizer import LightTokenizer

            model, tokenizer, device, precision = onnx_model, LightTokenizer(source), "cpu", "fp32"
            config_max = _config_max_length(tokenizer.model_max_length, source)
        else:
            _require_torch(Path(source), device, precision)
            from encoder.torch_backend import cuda_available, load_masked_lm

            model, tokenizer, config_max = load_masked_lm(source, settings)
            if device is None:
                device = "cuda" if cuda_available() else "cpu"
            precision = precision or default_precision(settings.get("cpu_precision"), device)
        if max_length is None:
            max_length = settings.get("max_length") or KNOWN_MAX_LENGTHS.get(model_id) or config_max
        as_pruning = lambda p, key: p if isinstance(p, Pruning) else Pruning.parse(p or settings.get(key))  # noqa: E731
        return cls(
            model,
            tokenizer,
            model_id=model_id,
            max_length=max_length,
            device=device,
            document_pruning=as_pruning(document_pruning, "document_pruning"),
            query_pruning=as_pruning(query_pruning, "query_pruning"),
            batch_size=batch_size,
            segmenter=KiwiSegmenter.from_config(settings.get("pre_segmentation")),
            precision=precision,
            query_expansion=settings.get("query_expansion", True),
            expansion_gate=ExpansionGate.parse(settings.get("expansion_gate")),
            revision=settings.get("revision"),
        )

    # ------------------------------------------------------------------ public API
    def encode_documents(self, texts: Sequence[str], *, batch_size: int | None = None) -> list[dict[str, float]]:
        """Encode passages (already chunked to fit max_length) with the document pruning."""
        return [self.document_pruning.apply(v) for v in self._encode(texts, batch_size)]

    def encode_queries(self, texts: Sequence[str], *, batch_size: int | None = None) -> list[dict[str, float]]:
        """Encode queries with the query pruning (without expansions when `query_expansion` is off, only those near
        the query's words with an `expansion_gate`)."""
        vectors = self._encode(texts, batch_size)
        if not self.query_expansion:
            vectors = [self._own_tokens_only(text, v) for text, v in zip(texts, vectors)]
        elif self.expansion_gate is not None:
            if self._neighbours is None:
                self._neighbours = self.expansion_gate.lookup(self.feature_names)
            vectors = [self.expansion_gate.apply(v, self._own_features(text), self._neighbours)
                       for text, v in zip(texts, vectors)]
        return [self.query_pruning.apply(v) for v in vectors]

    def _own_features(self, text: str) -> set[str]:
        ids = self.tokenizer(self.model_text([text]), add_special_tokens=False, truncation=True,
                             max_length=self.max_length)["input_ids"][0]
        return {self.feature_names[i] for i in ids if i < self.vocab_size}

    def _own_tokens_only(self, text: str, vector: dict[str, float]) -> dict[str, float]:
        own = self._own_features(text)
        return {name: w for name, w in vector.items() if name in own}

    def display_token(self, feature: str) -> str:
        """A feature name as a reader sees it, decoded as the model card does (`tokenizer.decode`)."""
        token_id = self.tokenizer.convert_tokens_to_ids(feature_to_token(feature))
        text = self.tokenizer.decode([token_id]).strip() if token_id is not None else ""
        return text or feature_to_token(feature)

    def model_text(self, texts: Sequence[str]) -> list[str]:
        """The texts as the tokenizer sees them (pre-segmented when the model asks for it)."""
        return self.segmenter.segment(texts) if self.segmenter else list(texts)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Model tokens per text, special tokens included: what must fit max_length."""
        if not texts:
            return []
        return [len(ids) for ids in self.tokenizer(self.model_text(texts), add_special_tokens=True, verbose=False)["input_ids"]]

    @property
    def vocab_hash(self) -> str:
        """Hash of the id->token vocabulary: an index built with another vocabulary is refused."""
        return hashlib.sha256("\n".join(self.feature_names).encode("utf-8")).hexdigest()[:16]

    # ------------------------------------------------------------------ internals
    def _encode(self, texts: Sequence[str], batch_size: int | None) -> list[dict[str, float]]:
        if isinstance(texts, str):
            raise TypeError("expected a list of strings, got a single str: wrap it in a list")
        texts = list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text #{i} is {type(text).__name__}, expected str")
        results: list[dict[str, float]] = [{} for _ in texts]
        # Empty and whitespace-only texts have no content, hence no vector (documented).
        todo = [i for i, t in enumerate(texts) if t.strip()]
        if not todo:
            return results
        model_texts = dict(zip(todo, self.model_text([texts[i] for i in todo])))
        lengths = [len(ids) for ids in self.tokenizer(list(model_texts.values()), add_special_tokens=True, verbose=False)["input_ids"]]
        truncated = sum(n > self.max_length for n in lengths)
        if truncated:
            self.truncated_count += truncated
            log.warning("%d of %d texts exceed %d tokens and were truncated", truncated, len(todo), self.max_length)
        order = [todo[j] for j in sorted(range(len(todo)), key=lambda j: -lengths[j])]
        for batch in _batches(order, batch_size or self.batch_size):
            for i, vector in zip(batch, self._encode_batch([model_texts[i] for i in batch])):
                results[i] = vector
        return results

    def _encode_batch(self, texts: list[str]) -> list[dict[str, float]]:
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="np")
        weights = self._runner.pooled(enc)
        weights[:, self._special_ids] = 0
        return [self._to_dict(row) for row in weights]

    def _to_dict(self, row: np.ndarray) -> dict[str, float]:
        ids = np.flatnonzero(row > 0)
        values = row[ids]
        order = np.argsort(-values, kind="stable")
        names = self.feature_names
        return {names[i]: float(v) for i, v in zip(ids[order].tolist(), values[order].tolist())}


def native_bf16(device: str = "cpu") -> bool:
    """Whether `device` runs bf16 matrix products natively (CPUs with AVX512-BF16/AMX, CUDA GPUs with bf16)."""
    if _device_type(device) == "cuda":
        from encoder.torch_backend import cuda_bf16

        return cuda_bf16()
    # oneDNN also "supports" bf16 on plain AVX-512 by emulation, slower than fp32: ask the CPU itself (Linux).
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags))


def native_int8() -> bool:
    """Whether torch has a CPU backend for int8 dynamic quantisation here (fbgemm/x86 or qnnpack)."""
    from encoder.torch_backend import native_int8 as torch_native_int8

    return torch_native_int8()


def default_precision(model_default: str | Sequence[str] | None, device) -> str:
    """The first of the model folder's measured CPU precisions that this machine runs natively, else fp32."""
    if _device_type(device) != "cpu" or not model_default:
        return "fp32"
    runs_natively = {"fp32": lambda: True, "bf16": lambda: native_bf16("cpu"), "int8": native_int8}
    for precision in [model_default] if isinstance(model_default, str) else model_default:
        if precision in runs_natively and runs_natively[precision]():
            return precision
    return "fp32"


def _device_type(device) -> str:
    """"cpu" for "cpu", None and torch.device("cpu"); "cuda" for "cuda:1"."""
    return getattr(device, "type", None) or str(device or "cpu").split(":", 1)[0]


def _check_precision(precision: str, device) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r} (known: {', '.join(PRECISIONS)}; "
                         "set by precision= or $KSEARCH_PRECISION)")
    if precision == "int8" and _device_type(device) != "cpu":
        raise ValueError("int8 dynamic quantisation runs on CPU only; use fp32 or bf16 on a GPU")
    return precision


def _usable_onnx(source: Path, backend: str, device: str | None, precision: str | None):
    """The folder's `OnnxModel` when `backend` and the request allow it and it is usable, else None (see `load`)."""
    from encoder.onnx_runtime import ONNX_FILE, OnnxModel, StaleOnnxError, onnxruntime_available, torch_available

    if backend == "torch":
        return None
    path = source / ONNX_FILE
    wants_torch = _device_type(device) != "cpu" or precision not in (None, "fp32")
    if backend == "onnx":
        if wants_torch:
            raise ValueError("the onnx encoder backend runs fp32 on the CPU only (asked: "
                             f"device {device or 'cpu'}, precision {precision})")
        if not path.is_file():
            raise ModelNotFoundError(f"{source} has no {ONNX_FILE}: write it with `ksearch model export-onnx {source}` "
                                     f"(needs `{TRAIN_EXTRA_HINT}`)")
        if not onnxruntime_available():
            raise ModelNotFoundError("the onnx encoder backend needs onnxruntime: `pip install onnxruntime`")
    elif wants_torch or not path.is_file() or not onnxruntime_available():
        return None
    model = OnnxModel(path)
    try:
        model.check_fingerprint(source)
    except StaleOnnxError as exc:
        if backend == "onnx" or not torch_available():
            raise ModelNotFoundError(str(exc)) from None
        log.warning("%s; running the model with torch meanwhile", exc)
        return None
    return model


def _require_torch(source: Path, device: str | None, precision: str | None) -> None:
    """Raise a `ModelNotFoundError` that says how to get torch when it is not installed."""
    from encoder.onnx_runtime import ONNX_FILE, onnxruntime_available, torch_available

    if torch_available():
        return
    if _device_type(device) != "cpu" or precision not in (None, "fp32"):
        why = f"device {device or 'cpu'} / precision {precision} needs torch"
    elif not (source / ONNX_FILE).is_file():
        why = f"{source} has no {ONNX_FILE} for the light runtime"
    elif not onnxruntime_available():
        why = "onnxruntime is not installed"
    else:
        why = "torch is needed"
    raise ModelNotFoundError(f"{why}, and torch is not installed: install the training extra with "
                             f"`{TRAIN_EXTRA_HINT}` (an arbitrary Hugging Face model runs with torch; "
                             f"`ksearch model export-onnx MODEL` then writes a {ONNX_FILE} that runs without it)")


def _batches(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _config_max_length(tokenizer_max: int | None, source: Path | str) -> int:
    if tokenizer_max and tokenizer_max < 100_000:
        return int(tokenizer_max)
    config = Path(source) / "config.json"
    positions = json.loads(config.read_text(encoding="utf-8")).get("max_position_embeddings") if config.is_file() else None
    return int(positions or 512)

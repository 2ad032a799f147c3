"""SPLADE sparse encoder: any Hugging Face masked-LM -> {feature name: weight}."""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch import nn

from encoder.feature_names import feature_to_token, token_to_feature
from encoder.model_resolution import KNOWN_MAX_LENGTHS, resolve_model
from encoder.pruning import Pruning
from encoder.segmentation import KiwiSegmenter

log = logging.getLogger(__name__)

MODEL_SETTINGS_FILE = "ksearch.json"  # optional, in a model folder: {"max_length": 64, "pre_segmentation": ...}
PRECISIONS = ("fp32", "bf16", "int8")  # bf16: autocast; int8: dynamic quantisation of every Linear (CPU only)
_LOGIT_CHUNK_BYTES = 64 * 2**20  # memory for one slice of [positions x vocab] logits


class _DeferredProjection(nn.Module):
    """Stands in for the MLM output projection so the model returns pre-projection states.

    The projection to the vocabulary is then applied in slices and max-pooled as it goes,
    so memory never holds a whole batch x seq_len x vocab logits tensor.
    """

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.linear = linear

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden


def _defer_output_projection(model: nn.Module) -> nn.Linear | None:
    """Swap the model's output embedding for `_DeferredProjection`; return the original."""
    out = model.get_output_embeddings()
    if not isinstance(out, nn.Linear):
        return None
    for name, module in model.named_modules():
        for child_name, child in module.named_children():
            if child is out:
                setattr(module, child_name, _DeferredProjection(out))
                return out
    return None


class SparseEncoder:
    """Encodes texts into sparse lexical vectors with the SPLADE formula
    max over tokens of log(1 + ReLU(logits)), special tokens and zeros removed."""

    def __init__(
        self,
        model: nn.Module,
        tokenizer,
        *,
        model_id: str,
        max_length: int,
        device: str | torch.device = "cpu",
        document_pruning: Pruning | None = None,
        query_pruning: Pruning | None = None,
        batch_size: int = 32,
        segmenter: KiwiSegmenter | None = None,
        precision: str = "fp32",
        query_expansion: bool = True,
    ) -> None:
        self.precision = _check_precision(precision, torch.device(device))
        self.model = model.eval().to(device)
        self.segmenter = segmenter  # applied before the tokenizer when the model folder asks for it
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.max_length = int(max_length)
        self.device = torch.device(device)
        self.document_pruning = document_pruning or Pruning()
        self.query_pruning = query_pruning or Pruning()
        self.batch_size = batch_size
        # False: a query keeps the weights of its own tokens only (no expansion on the query side; documents still expand)
        self.query_expansion = query_expansion
        self.truncated_count = 0  # texts cut at max_length since load (the ingest worker chunks first)
        self._projection = _defer_output_projection(self.model)
        if self.precision == "int8":
            self._quantize_int8()
        accepted = inspect.signature(self.model.forward).parameters
        self._input_names = [n for n in tokenizer.model_input_names if n in accepted]
        vocab = tokenizer.get_vocab()
        id_to_token = {i: t for t, i in vocab.items()}
        self.vocab_size = self.model.config.vocab_size
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
    ) -> "SparseEncoder":
        """Load a masked-LM and its tokenizer from a local folder or the local HF cache (never the network).

        `precision` None takes the model folder's measured CPU default (`cpu_precision` in ksearch.json,
        used only where this CPU runs it natively), else fp32.
        """
        from transformers import AutoModelForMaskedLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        if precision is not None:  # a bad setting fails before the model is read
            _check_precision(precision, torch.device(device or "cpu"))
        model_id, source = resolve_model(name_or_path)
        settings = _read_model_settings(source)
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
        model = AutoModelForMaskedLM.from_pretrained(source, local_files_only=True, dtype=torch.float32)
        if max_length is None:
            max_length = settings.get("max_length") or KNOWN_MAX_LENGTHS.get(model_id) or _config_max_length(tokenizer, model)
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
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
            precision=precision or default_precision(settings.get("cpu_precision"), device),
            query_expansion=settings.get("query_expansion", True),
        )

    # ------------------------------------------------------------------ public API
    def encode_documents(self, texts: Sequence[str], *, batch_size: int | None = None) -> list[dict[str, float]]:
        """Encode passages (already chunked to fit max_length) with the document pruning."""
        return [self.document_pruning.apply(v) for v in self._encode(texts, batch_size)]

    def encode_queries(self, texts: Sequence[str], *, batch_size: int | None = None) -> list[dict[str, float]]:
        """Encode queries with the query pruning (and without expansions when `query_expansion` is off)."""
        vectors = self._encode(texts, batch_size)
        if not self.query_expansion:
            vectors = [self._own_tokens_only(text, v) for text, v in zip(texts, vectors)]
        return [self.query_pruning.apply(v) for v in vectors]

    def _own_tokens_only(self, text: str, vector: dict[str, float]) -> dict[str, float]:
        ids = self.tokenizer(self.model_text([text]), add_special_tokens=False, truncation=True,
                             max_length=self.max_length)["input_ids"][0]
        own = {self.feature_names[i] for i in ids if i < self.vocab_size}
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

    def _quantize_int8(self) -> None:
        """Replace every Linear (the deferred vocabulary projection included) by its int8 dynamic version."""
        import warnings

        with warnings.catch_warnings():  # torch.ao.quantization announces a move to torchao; it still works
            warnings.simplefilter("ignore")
            self.model = torch.ao.quantization.quantize_dynamic(self.model, {nn.Linear}, dtype=torch.qint8)
        deferred = [m for m in self.model.modules() if isinstance(m, _DeferredProjection)]
        self._projection = deferred[0].linear if deferred else None

    @torch.inference_mode()
    def _encode_batch(self, texts: list[str]) -> list[dict[str, float]]:
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        inputs = {k: enc[k].to(self.device) for k in self._input_names if k in enc}
        mask = inputs["attention_mask"].bool()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            states = self.model(**inputs).logits
            if self._projection is not None and states.shape[-1] == self._projection.in_features:
                pooled = self._max_pool_projected(states, mask)
            else:  # a model whose head we could not split: plain logits, masked max
                pooled = states.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1)
        weights = torch.log1p(torch.relu(pooled.float()))  # monotone, so max-then-activate == activate-then-max
        weights[:, self._special_ids] = 0
        return [self._to_dict(row) for row in weights.cpu()]

    def _max_pool_projected(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Max over each text's real tokens of the vocabulary logits, computed in row slices."""
        rows = states[mask]  # [real tokens, hidden]: padding never reaches the projection
        owner = torch.arange(mask.shape[0], device=mask.device).repeat_interleave(mask.sum(1))
        pooled = torch.full((mask.shape[0], self.vocab_size), float("-inf"), device=states.device, dtype=states.dtype)
        step = max(1, _LOGIT_CHUNK_BYTES // (self.vocab_size * states.element_size()))
        for start in range(0, rows.shape[0], step):
            logits = self._projection(rows[start : start + step])
            index = owner[start : start + step].unsqueeze(1).expand_as(logits)
            pooled.scatter_reduce_(0, index, logits, reduce="amax")
        return pooled

    def _to_dict(self, row: torch.Tensor) -> dict[str, float]:
        ids = torch.nonzero(row > 0).squeeze(1)
        values = row[ids]
        order = torch.argsort(values, descending=True)
        names = self.feature_names
        return {names[i]: float(v) for i, v in zip(ids[order].tolist(), values[order].tolist())}


def native_bf16(device: torch.device | str) -> bool:
    """Whether `device` runs bf16 matrix products natively (CPUs with AVX512-BF16/AMX, CUDA GPUs with bf16)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    # oneDNN also "supports" bf16 on plain AVX-512 by emulation, slower than fp32: ask the CPU itself (Linux).
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags))


def native_int8() -> bool:
    """Whether torch has a CPU backend for int8 dynamic quantisation here (fbgemm/x86 or qnnpack)."""
    return any(e in torch.backends.quantized.supported_engines for e in ("x86", "fbgemm", "qnnpack"))


def default_precision(model_default: str | Sequence[str] | None, device: torch.device | str) -> str:
    """The first of the model folder's measured CPU precisions that this machine runs natively, else fp32."""
    if torch.device(device).type != "cpu" or not model_default:
        return "fp32"
    runs_natively = {"fp32": lambda: True, "bf16": lambda: native_bf16("cpu"), "int8": native_int8}
    for precision in [model_default] if isinstance(model_default, str) else model_default:
        if precision in runs_natively and runs_natively[precision]():
            return precision
    return "fp32"


def _check_precision(precision: str, device: torch.device) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r} (known: {', '.join(PRECISIONS)}; "
                         "set by precision= or $KSEARCH_PRECISION)")
    if precision == "int8" and device.type != "cpu":
        raise ValueError("int8 dynamic quantisation runs on CPU only; use fp32 or bf16 on a GPU")
    return precision


def _batches(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _read_model_settings(source: Path | str) -> dict:
    path = Path(source) / MODEL_SETTINGS_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: invalid JSON ({exc})") from None


def _config_max_length(tokenizer, model: nn.Module) -> int:
    tok_max = getattr(tokenizer, "model_max_length", None)
    if tok_max and tok_max < 100_000:
        return int(tok_max)
    return int(getattr(model.config, "max_position_embeddings", 512))

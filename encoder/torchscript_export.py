"""`ksearch model export-opensearch`: a model folder as a TorchScript zip for a server that runs it with libtorch.

The zip is what OpenSearch ml-commons serves as a `TORCH_SCRIPT` `SPARSE_ENCODING` model (this module knows
nothing of OpenSearch requests; `retrieval.backends.ml_commons_bodies` builds those):

* `<name>.pt`: the masked-LM traced with eager attention (libtorch 1.13.1, which OpenSearch 2.19 runs, has no
  `scaled_dot_product_attention`). `forward` takes one `Dict[str, Tensor]` with `input_ids` and
  `attention_mask` ([batch, length], int64) and returns `{"output": [batch, vocab]}`: the max over real tokens
  of log1p(relu(logits)), zero for the special tokens and for ids the tokenizer cannot name. ml-commons'
  translator sends its inputs named `input1.input_ids` / `input1.attention_mask`, which DJL passes as one dict.
  A query export (`queries=True`) also applies the folder's query pruning and, when the folder turns query
  expansion off, keeps only the query's own tokens.
* `tokenizer.json`: the model's tokenizer, truncating at the model's max length (DJL reads it from the file
  and caps it at 512), with a decoder that spells `decode([id])` as ksearch's feature name of `id`
  (`encoder.token_to_feature`): the translator keys each weight by that decode, so vectors made in the cluster
  and by `SparseEncoder` share their keys.
* `ksearch.json`: what the export was made from and for (model id, max length, pre-segmentation, pruning).

The vectors are `SparseEncoder`'s for the same token ids (tests/test_torchscript_export.py). A model whose
folder asks for Kiwi pre-segmentation reads segmented text: the server cannot run Kiwi, so clients send
`SparseEncoder.model_text` / `KiwiSegmenter.segment` output, never raw text. Needs torch (`.[train]`).
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from encoder.feature_names import escape_character, unsafe_characters
from encoder.pruning import Pruning, PruneType

OUTPUT_KEY = "output"
INPUT_NAMES = ("input_ids", "attention_mask")
RECORD_FILE = "ksearch.json"
TOKENIZER_FILE = "tokenizer.json"
DJL_MAX_LENGTH = 512  # DJL's HuggingFaceTokenizer truncates at min(file's max_length, modelMaxLength=512)
_EXAMPLES = ("임대인 보증금 반환 청구", "당뇨병 혈당 HbA1c 6.5% 진단 기준과 치료 방법")


@dataclass(frozen=True)
class TorchScriptExport:
    """What `export_torchscript` wrote: the zip, its hash and size, and what clients must know to use it."""

    path: Path
    model_id: str
    model_type: str
    sha256: str
    size_bytes: int
    vocab_size: int
    max_length: int  # where the zip's tokenizer truncates
    role: str  # "documents" (no pruning in the graph) or "queries" (the folder's query pruning applied)
    pruning: str  # applied inside the graph
    document_pruning: str  # the folder's: for the ingest processor
    query_pruning: str
    query_expansion: bool
    pre_segmentation: dict | None  # clients must send text segmented this way
    unnamed_ids: list[int] = field(default_factory=list)  # ids the tokenizer cannot name: zero in the graph

    def record(self) -> dict:
        """The `ksearch.json` stored in the zip (everything but the zip's own path, hash and size)."""
        out = asdict(self)
        for key in ("path", "sha256", "size_bytes"):
            out.pop(key)
        out["token_keys"] = "ksearch feature names (encoder.token_to_feature of the vocabulary token)"
        return out


def export_torchscript(name_or_path: str | os.PathLike | None, out: str | os.PathLike, *,
                       queries: bool = False, models_dir: str | os.PathLike | None = None) -> TorchScriptExport:
    """Write the zip `out` for the model `name_or_path` (default: the model `SparseEncoder.load()` picks; a plain
    name may be a folder under `models_dir`)."""
    import torch
    from transformers import AutoModelForMaskedLM

    from encoder.sparse_encoder import SparseEncoder

    out = Path(out)
    if out.suffix != ".zip":
        raise ValueError(f"{out}: the output must be a .zip file")
    encoder = SparseEncoder.load(name_or_path, device="cpu", backend="torch", precision="fp32", models_dir=models_dir)
    if queries and encoder.expansion_gate is not None:
        raise ValueError(f"{encoder.model_id}: its expansion_gate looks up Kiwi's neighbours, which a server-side query "
                         "model cannot run; encode queries client-side (the default) or drop the gate")
    source = _model_source(name_or_path, models_dir)
    max_length = min(encoder.max_length, DJL_MAX_LENGTH)
    tokenizer_json, unnamed = server_tokenizer_json(encoder, max_length)
    pruning = encoder.query_pruning if queries else Pruning()
    own_tokens_only = queries and not encoder.query_expansion
    model = AutoModelForMaskedLM.from_pretrained(source, local_files_only=True, dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    module = _pooled_sparse_class()(model, sorted(set(encoder._special_ids) | set(unnamed)), pruning, own_tokens_only).eval()
    examples = [_inputs(encoder, text, max_length) for text in encoder.model_text(list(_EXAMPLES))]
    traced = _trace(module, examples[0])
    _check_trace(module, traced, examples)

    out.parent.mkdir(parents=True, exist_ok=True)
    stem = _file_stem(encoder.model_id)
    partial = out.with_name(out.name + ".partial")
    pt_file = out.with_name(stem + ".pt.partial")
    try:
        _save(traced, pt_file)
        info = dict(model_id=encoder.model_id, model_type=str(model.config.model_type), vocab_size=encoder.vocab_size,
                    max_length=max_length, role="queries" if queries else "documents", pruning=str(pruning),
                    document_pruning=str(encoder.document_pruning), query_pruning=str(encoder.query_pruning),
                    query_expansion=bool(encoder.query_expansion),
                    pre_segmentation=encoder.segmenter.config() if encoder.segmenter else None, unnamed_ids=unnamed)
        record = TorchScriptExport(path=out, sha256="", size_bytes=0, **info).record()
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.write(pt_file, arcname=stem + ".pt", compress_type=zipfile.ZIP_STORED)  # deflate: 11 s for 40%
            zf.writestr(TOKENIZER_FILE, tokenizer_json)
            zf.writestr(RECORD_FILE, json.dumps(record, ensure_ascii=False, indent=2) + "\n")
        partial.replace(out)
    finally:
        pt_file.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)
    return TorchScriptExport(path=out, sha256=file_sha256(out), size_bytes=out.stat().st_size, **info)


def read_export(path: str | os.PathLike) -> TorchScriptExport:
    """The `TorchScriptExport` of a zip written earlier (from its ksearch.json; hash and size measured now)."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            record = json.loads(zf.read(RECORD_FILE))
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not a zip written by `ksearch model export-opensearch` ({exc})") from None
    fields = {f for f in TorchScriptExport.__dataclass_fields__ if f not in ("path", "sha256", "size_bytes")}
    missing = fields - set(record)
    if missing:
        raise ValueError(f"{path}: {RECORD_FILE} lacks {sorted(missing)}: export it again")
    return TorchScriptExport(path=path, sha256=file_sha256(path), size_bytes=path.stat().st_size,
                             **{k: record[k] for k in fields})


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file (ml-commons' `model_content_hash_value`)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def server_tokenizer_json(encoder, max_length: int) -> tuple[str, list[int]]:
    """(tokenizer.json text, ids it cannot name) for the server: `encoder`'s tokenizer truncating at `max_length`,
    without padding, whose `decode([id], skip_special_tokens=True)` is the feature name of every nameable id."""
    from tokenizers import Tokenizer, decoders

    tokenizer = Tokenizer.from_str(encoder.tokenizer.backend_tokenizer.to_str())
    tokenizer.enable_truncation(max_length)
    tokenizer.no_padding()
    vocab = {i: t for t, i in tokenizer.get_vocab(with_added_tokens=True).items()}
    tokenizer.decoder = decoders.Sequence([decoders.Replace(c, escape_character(c))
                                           for c in unsafe_characters(vocab.values())])
    special = set(encoder._special_ids)
    unnamed, wrong = [], []
    for i in range(encoder.vocab_size):
        if i in special:
            continue
        key = tokenizer.decode([i], skip_special_tokens=True)
        if key == "" or i not in vocab:
            unnamed.append(i)  # ml-commons drops empty keys; an id past the vocabulary has no token
        elif key != encoder.feature_names[i]:
            wrong.append((i, key, encoder.feature_names[i]))
    if wrong:
        raise RuntimeError(f"{len(wrong)} token ids would be keyed differently from ksearch's feature names "
                           f"(id, server key, feature name): {wrong[:5]}")
    return tokenizer.to_str(), unnamed


def _model_source(name_or_path, models_dir=None) -> Path:
    from encoder.model_resolution import resolve_model

    return Path(resolve_model(name_or_path, models_dir)[1])


def _file_stem(model_id: str) -> str:
    stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in Path(str(model_id)).name).strip("-")
    return stem or "model"


def _inputs(encoder, text: str, max_length: int):
    """input_ids and attention_mask [1, length] of `text` as the server's tokenizer makes them."""
    import torch

    enc = encoder.tokenizer([text], truncation=True, max_length=max_length, return_tensors="np")
    return {name: torch.from_numpy(enc[name]).long() for name in INPUT_NAMES}


def _trace(module, example):
    import warnings

    import torch

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # torch.jit is deprecated in favour of torch.export; libtorch needs jit
        return torch.jit.trace(module, (example,), strict=False, check_trace=False)


def _save(traced, path: Path) -> None:
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(traced, str(path))


def _check_trace(module, traced, examples) -> None:
    """The traced graph gives the eager vectors on inputs of other lengths (else tracing baked in a shape)."""
    import torch

    with torch.no_grad():
        for example in examples:
            diff = float((traced(example)[OUTPUT_KEY] - module(example)[OUTPUT_KEY]).abs().max())
            if diff > 1e-4:
                raise RuntimeError(f"the traced graph differs from eager torch by {diff:.2e} (> 1e-4) on an input "
                                   f"of {example['input_ids'].shape[1]} tokens; nothing written")


def _pooled_sparse_class():
    """The torch module class (built on use, so importing this module does not import torch)."""
    import torch

    class _PooledSparse(torch.nn.Module):
        """A masked-LM -> {"output": pooled SPLADE weights [batch, vocab]}, optionally pruned."""

        def __init__(self, model, zeroed_ids: list[int], pruning: Pruning, own_tokens_only: bool) -> None:
            super().__init__()
            self.model = model
            self.register_buffer("zeroed_ids", torch.tensor(zeroed_ids, dtype=torch.long), persistent=False)
            self.pruning = pruning
            self.own_tokens_only = own_tokens_only

        def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            input_ids, attention_mask = inputs["input_ids"], inputs["attention_mask"]
            logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits
            mask = attention_mask.unsqueeze(-1).to(logits.dtype)
            # relu >= 0, so zeroing padding positions never beats a real token's max; log1p is monotone
            weights = torch.log1p(torch.amax(torch.relu(logits) * mask, dim=1))
            weights = weights.index_fill(1, self.zeroed_ids, 0.0)
            if self.own_tokens_only:
                own = torch.zeros_like(weights).scatter(1, input_ids, attention_mask.to(weights.dtype))
                weights = weights * (own > 0).to(weights.dtype)
            return {OUTPUT_KEY: _prune(weights, self.pruning)}

    return _PooledSparse


def _prune(weights, pruning: Pruning):
    """`Pruning.apply` on every row of a dense [batch, vocab] tensor (zeros stay zero)."""
    import torch

    t, r = pruning.type, pruning.ratio
    if t is PruneType.NONE:
        return weights
    if t is PruneType.TOP_K:
        k = min(int(r), weights.shape[1])
        keep = weights >= torch.topk(weights, k, dim=1).values[:, -1:]
    elif t is PruneType.MAX_RATIO:
        keep = weights >= weights.amax(dim=1, keepdim=True) * r
    elif t is PruneType.ABS_VALUE:
        keep = weights >= r
    else:  # ALPHA_MASS: the heaviest weights while their running sum stays within r * total
        ordered, order = torch.sort(weights, dim=1, descending=True)
        kept = ordered.cumsum(dim=1) <= ordered.sum(dim=1, keepdim=True) * r
        keep = torch.zeros_like(kept).scatter(1, order, kept)
    return weights * keep.to(weights.dtype)

"""`ksearch model export-onnx`: a model folder's masked-LM as one ONNX graph that returns SPLADE vectors.

The graph takes the tokenizer's inputs (input_ids, attention_mask and, for models that accept it,
token_type_ids) and returns the pooled vector [batch, vocab] = max over real tokens of
log1p(relu(logits)) (padding masked), so the light runtime (`encoder.onnx_runtime`) only zeroes the
special tokens and reads the non-zero weights. Weights that are exact float16 values (a model saved
in fp16, as the shipped one) are stored as float16 with a Cast, so the file is half the size and
the vectors are those of fp32 torch.

The graph records `ksearch.weights_sha256`, the hash of the folder's weights and config
(`weights_fingerprint`); `SparseEncoder.load` uses the graph only while that hash matches, so a
model folder whose weights were replaced needs this command again (tests/test_onnx_runtime.py
fails for the shipped folder until it is re-run). Needs torch, onnx and onnxscript (`.[train]`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from encoder.onnx_runtime import (
    FINGERPRINT_KEY,
    FORMAT_KEY,
    FORMAT_VERSION,
    INPUTS_KEY,
    ONNX_FILE,
    weights_fingerprint,
)

OPSET = 18


def export_onnx(name_or_path: str | os.PathLike | None = None, out_dir: str | os.PathLike | None = None, *,
                models_dir: str | os.PathLike | None = None) -> Path:
    """Export the model folder `name_or_path` (default: the model `SparseEncoder.load()` picks; a plain name may be a
    folder under `models_dir`) to `out_dir/model.onnx` (default: the model folder itself); return the file written."""
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from encoder.model_resolution import resolve_model

    _, source = resolve_model(name_or_path, models_dir)
    source = Path(source)
    out = Path(out_dir) if out_dir is not None else source
    out.mkdir(parents=True, exist_ok=True)
    model = AutoModelForMaskedLM.from_pretrained(source, local_files_only=True, dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
    import inspect

    accepted = inspect.signature(model.forward).parameters
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids")
             if n in tokenizer.model_input_names and n in accepted]
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if "token_type_ids" in names else [])

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                kwargs["token_type_ids"] = token_type_ids
            logits = self.model(**kwargs).logits
            mask = kwargs["attention_mask"].unsqueeze(-1).to(logits.dtype)
            # relu >= 0, so zeroing padding positions never beats a real token's max; log1p is monotone
            return torch.log1p(torch.amax(torch.relu(logits) * mask, dim=1))

    example_texts = ["임대인 보증금 반환", "당뇨병"]
    enc = tokenizer(example_texts, padding=True, return_tensors="pt")
    inputs = tuple(enc[n] if n in enc else torch.zeros_like(enc["input_ids"]) for n in names)
    target = out / ONNX_FILE
    tmp = out / (ONNX_FILE + ".tmp")
    with torch.inference_mode():
        reference = Pooled()(*inputs)
    batch, length = torch.export.Dim("batch"), torch.export.Dim("length", max=4096)
    _torch_export(Pooled(), inputs, names, tmp, {n: {0: batch, 1: length} for n in names})
    _finish(tmp, target, source, names)
    tmp.unlink(missing_ok=True)
    _check(target, inputs, names, reference.numpy())
    return target


def _torch_export(module, inputs, names, path: Path, dynamic_shapes) -> None:
    import warnings

    import torch

    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, inputs, str(path), input_names=names, output_names=["sparse"],
                          dynamic_shapes=dynamic_shapes, opset_version=OPSET,
                          dynamo=True, external_data=False, optimize=True, verbose=False)


def _finish(tmp: Path, target: Path, source: Path, names: list[str]) -> None:
    """Store exact-fp16 weights as fp16 + Cast, record the fingerprint, write `target` atomically."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    graph_model = onnx.load(str(tmp))
    graph = graph_model.graph
    casts = []
    for init in graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT:
            continue
        values = numpy_helper.to_array(init)
        if values.size < 1024:
            continue
        half = values.astype(np.float16)
        if not np.array_equal(half.astype(np.float32), values):
            continue
        name = init.name
        init.CopyFrom(numpy_helper.from_array(half, name + "__fp16"))
        casts.append(helper.make_node("Cast", [name + "__fp16"], [name], to=onnx.TensorProto.FLOAT,
                                      name=name + "__cast"))
    for i, node in enumerate(casts):
        graph.node.insert(i, node)
    del graph_model.metadata_props[:]
    for key, value in ((FINGERPRINT_KEY, weights_fingerprint(source)), (INPUTS_KEY, json.dumps(names)),
                       (FORMAT_KEY, FORMAT_VERSION)):
        graph_model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(graph_model)
    partial = target.with_suffix(".onnx.partial")
    onnx.save(graph_model, str(partial))
    partial.replace(target)


def _check(target: Path, inputs, names, reference) -> None:
    """The written graph gives the torch vectors on the export example (else the file is removed)."""
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    got = session.run(None, {n: t.numpy() for n, t in zip(names, inputs)})[0]
    diff = float(np.abs(got - reference).max())
    if diff > 1e-4:
        target.unlink()
        raise RuntimeError(f"the exported graph differs from torch by {diff:.2e} (> 1e-4); nothing written")

"""The torch runtime of `SparseEncoder`: any Hugging Face masked-LM, on CPU or GPU, fp32, bf16 or int8.

Imported only when a model is run with torch (no usable model.onnx, an explicit backend or
precision that asks for it, a GPU, training); needs the `train` extra.
"""

from __future__ import annotations

import inspect

import numpy as np
import torch
from torch import nn

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


class TorchModel:
    """A masked-LM that returns pooled SPLADE weights [batch, vocab] of a tokenised batch."""

    def __init__(self, model: nn.Module, tokenizer, device: str | torch.device, precision: str) -> None:
        self.device = torch.device(device)
        self.precision = precision
        self.model = model.eval().to(self.device)
        self._projection = _defer_output_projection(self.model)
        if precision == "int8":
            self._quantize_int8()
        accepted = inspect.signature(self.model.forward).parameters
        self.input_names = [n for n in tokenizer.model_input_names if n in accepted]
        self.vocab_size = self.model.config.vocab_size

    def _quantize_int8(self) -> None:
        """Replace every Linear (the deferred vocabulary projection included) by its int8 dynamic version."""
        import warnings

        with warnings.catch_warnings():  # torch.ao.quantization announces a move to torchao; it still works
            warnings.simplefilter("ignore")
            self.model = torch.ao.quantization.quantize_dynamic(self.model, {nn.Linear}, dtype=torch.qint8)
        deferred = [m for m in self.model.modules() if isinstance(m, _DeferredProjection)]
        self._projection = deferred[0].linear if deferred else None

    @torch.inference_mode()
    def pooled(self, enc: dict[str, np.ndarray]) -> np.ndarray:
        inputs = {k: torch.from_numpy(enc[k]).to(self.device) for k in self.input_names if k in enc}
        mask = inputs["attention_mask"].bool()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            states = self.model(**inputs).logits
            if self._projection is not None and states.shape[-1] == self._projection.in_features:
                pooled = self._max_pool_projected(states, mask)
            else:  # a model whose head we could not split: plain logits, masked max
                pooled = states.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1)
        weights = torch.log1p(torch.relu(pooled.float()))  # monotone, so max-then-activate == activate-then-max
        return weights.cpu().numpy()

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


def load_masked_lm(source, settings: dict):
    """(model, tokenizer, max_length from the config) of a model folder, read with transformers."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
    model = AutoModelForMaskedLM.from_pretrained(source, local_files_only=True, dtype=torch.float32)
    tok_max = getattr(tokenizer, "model_max_length", None)
    config_max = int(tok_max) if tok_max and tok_max < 100_000 else int(getattr(model.config, "max_position_embeddings", 512))
    return model, tokenizer, config_max


def cuda_available() -> bool:
    return torch.cuda.is_available()


def cuda_bf16() -> bool:
    return torch.cuda.is_bf16_supported()


def native_int8() -> bool:
    """Whether torch has a CPU backend for int8 dynamic quantisation here (fbgemm/x86 or qnnpack)."""
    return any(e in torch.backends.quantized.supported_engines for e in ("x86", "fbgemm", "qnnpack"))

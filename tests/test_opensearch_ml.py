"""ml-commons on a real node: a TorchScript SPARSE_ENCODING model is uploaded in chunks, deployed on the PyTorch
runtime that `ksearch opensearch install --ml` pre-fills (nothing is downloaded at deploy), and its `_predict`
equals the same model run in Python."""

from __future__ import annotations

import os
import uuid
import zipfile
from pathlib import Path

import pytest
import torch

from retrieval.backends.ml_commons_client import (MLCommonsError, delete_model, deploy_model, model_state, predict_sparse,
                                              register_model_zip, undeploy_model)

pytestmark = pytest.mark.opensearch

TEXTS = [
    "임대인은 계약이 끝나면 임차인에게 보증금을 반환해야 합니다.",
    "두통",
    "HbA1c 6.5% 이상이면 당뇨병으로 진단합니다. 처음 보는 글자: 龘",
]


class PooledSparse(torch.nn.Module):
    """What ml-commons' sparse-encoding translator calls: one dict of ``input_ids`` and ``attention_mask`` in (DJL
    passes inputs named ``input1.<key>`` as one dict), ``{"output": [batch, vocab]}`` out: max over the sequence of
    log(1 + relu(MLM logits)), special tokens zeroed."""

    def __init__(self, mlm, special_ids: list[int]) -> None:
        super().__init__()
        self.mlm = mlm
        keep = torch.ones(mlm.config.vocab_size)
        keep[special_ids] = 0
        self.register_buffer("keep", keep)

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        mask = inputs["attention_mask"]
        logits = self.mlm(input_ids=inputs["input_ids"], attention_mask=mask)[0]
        weights = torch.log1p(torch.relu(logits)) * mask.unsqueeze(-1).to(logits.dtype)
        return {"output": weights.max(dim=1).values * self.keep}


@pytest.fixture(scope="module")
def sparse_model(tiny_model_dir, tmp_path_factory):
    """(zip for ml-commons, the eager module, the tokenizer the zip carries)."""
    from tokenizers import Tokenizer
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    hf_tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    # eager attention: the node's libtorch must not meet scaled_dot_product_attention from a newer torch
    mlm = AutoModelForMaskedLM.from_pretrained(tiny_model_dir, attn_implementation="eager").eval()
    module = PooledSparse(mlm, sorted(set(hf_tok.all_special_ids))).eval()
    example = hf_tok([TEXTS[0]], return_tensors="pt", return_token_type_ids=False)
    out = tmp_path_factory.mktemp("ml-model")
    with torch.no_grad():
        torch.jit.trace(module, (dict(example),), strict=False).save(str(out / "tiny-sparse.pt"))
    hf_tok.backend_tokenizer.save(str(out / "tokenizer.json"))
    zip_path = out / "tiny-sparse.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(out / "tiny-sparse.pt", "tiny-sparse.pt")
        zf.write(out / "tokenizer.json", "tokenizer.json")
    return zip_path, module, Tokenizer.from_file(str(out / "tokenizer.json"))


def python_vector(module, tokenizer, text: str) -> dict[str, float]:
    """The vector as ml-commons builds it: non-zero entries keyed by ``decode([id])``, empty keys dropped, a later
    id overwriting an earlier one with the same key."""
    enc = tokenizer.encode(text)
    with torch.no_grad():
        vec = module({"input_ids": torch.tensor([enc.ids]), "attention_mask": torch.tensor([enc.attention_mask])})
    vec = vec["output"][0]
    out = {}
    for i in torch.nonzero(vec).flatten().tolist():
        key = tokenizer.decode([i], skip_special_tokens=True)
        if key:
            out[key] = float(vec[i])
    return out


def assert_nothing_downloaded(client) -> None:
    """DJL keeps what it downloads under ml-commons' cache (``<path.data>/ml_cache/pytorch``): after a deploy on a
    node whose data folder is on this machine, that cache holds the tokenizer library only."""
    nodes = client.nodes.info(metric="settings")["nodes"]
    data = next(iter(nodes.values()))["settings"]["path"]["data"]
    ml_cache = Path(data[0] if isinstance(data, list) else data) / "ml_cache"
    if not ml_cache.is_dir():
        message = f"the node's data folder {ml_cache.parent} is not on this machine"
        if os.environ.get("CI", "").lower() == "true":  # CI runs its ML node here: the check must run
            pytest.fail(message)
        pytest.skip(message)
    assert (ml_cache / "tokenizers").is_dir()
    assert not (ml_cache / "pytorch").exists(), sorted(p.name for p in (ml_cache / "pytorch").iterdir())


@pytest.fixture(scope="module")
def ml_client(opensearch_ml_url):
    from opensearchpy import OpenSearch

    client = OpenSearch(hosts=[opensearch_ml_url], timeout=120, http_compress=False)
    yield client
    client.close()


def test_a_deployed_model_encodes_like_python(ml_client, sparse_model):
    zip_path, module, tokenizer = sparse_model
    chunk = 64 * 1024
    assert zip_path.stat().st_size > 2 * chunk  # so the upload really comes in several chunks
    model_id = register_model_zip(ml_client, zip_path, name=f"ksearch-test-{uuid.uuid4().hex[:8]}", chunk_bytes=chunk)
    try:
        deploy_model(ml_client, model_id)
        assert model_state(ml_client, model_id) == "DEPLOYED"
        got = predict_sparse(ml_client, model_id, TEXTS)
        assert len(got) == len(TEXTS)
        for text, server in zip(TEXTS, got):
            local = python_vector(module, tokenizer, text)
            assert len(local) > 10
            assert set(server) == set(local), text
            worst = max(abs(server[k] - local[k]) for k in local)
            assert worst <= 1e-5, (text, worst)
        assert_nothing_downloaded(ml_client)
    finally:
        undeploy_model(ml_client, model_id)
        delete_model(ml_client, model_id)


def test_a_zip_with_two_models_fails_to_deploy_with_ml_commons_reason(ml_client, sparse_model, tmp_path):
    zip_path = tmp_path / "two-models.zip"
    with zipfile.ZipFile(sparse_model[0]) as src, zipfile.ZipFile(zip_path, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, src.read(name))
        dst.writestr("another.pt", src.read("tiny-sparse.pt"))
    model_id = register_model_zip(ml_client, zip_path, name=f"ksearch-test-{uuid.uuid4().hex[:8]}")
    try:
        with pytest.raises(MLCommonsError, match="multiple models") as failure:
            deploy_model(ml_client, model_id)
        assert model_id in str(failure.value)
    finally:
        undeploy_model(ml_client, model_id)
        delete_model(ml_client, model_id)


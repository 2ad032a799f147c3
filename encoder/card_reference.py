"""The model card's encode(), as the card writes it: full logits, one text at a time, fp32.

`SparseEncoder` must give exactly these vectors (tests/test_encoder.py) and is measured against this loop's speed
(`ksearch bench encode`); neither the product nor the benchmark uses it to encode.
"""

from __future__ import annotations

import torch


def card_encode(model, tokenizer, texts: list[str], max_length: int) -> list[dict[str, float]]:
    """{token: weight} of each text: log(1 + relu(logits)), masked, max-pooled over positions; special tokens dropped."""
    out = []
    vocab = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    special = set(tokenizer.all_special_ids)
    for text in texts:
        inputs = tokenizer(text, return_tensors="pt", padding=True, truncation=True, max_length=max_length)
        inputs = {k: v for k, v in inputs.items() if k in tokenizer.model_input_names}
        with torch.no_grad():
            logits = model(**inputs).logits
            scores = torch.log1p(torch.relu(logits))
            mask = inputs["attention_mask"].unsqueeze(-1).float()
            sparse = (scores * mask).max(dim=1).values[0]
        ids = torch.nonzero(sparse > 0).squeeze(1).tolist()
        out.append({vocab[i]: float(sparse[i]) for i in ids if i not in special})
    return out

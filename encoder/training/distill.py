"""Stage 1: distil Kiwi's morpheme neighbours into the masked-LM as SPLADE expansions.

The student's SPLADE vector (max over tokens of log(1 + ReLU(logits))) is regressed onto the
teacher's target vector: each input word plus its Kiwi neighbours, every other weight 0. Half
of the batches are real sentences, half random bags of vocabulary words, so that words the
training texts never use still learn their neighbours. Hand-written: no library has this loss.
"""

from __future__ import annotations

import random

import torch
from tqdm import tqdm

from encoder.training.kiwi_teacher import ExpansionTeacher


def splade_vectors(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, columns: torch.Tensor | None = None) -> torch.Tensor:
    """[batch, vocab or len(columns)] SPLADE vectors with gradients.

    With `columns`, only those vocabulary rows of the (tied) output projection are computed:
    the regression loss is per column, so sampling columns is exact for them and makes a step
    several times cheaper on a CPU.
    """
    if columns is None:
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
    else:
        decoder = model.get_output_embeddings()
        hidden = model.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        hidden = model.cls.predictions.transform(hidden) if hasattr(model, "cls") else hidden
        logits = hidden @ decoder.weight[columns].T + (decoder.bias[columns] if decoder.bias is not None else 0)
    scores = torch.log1p(torch.relu(logits)) * attention_mask.unsqueeze(-1)
    return scores.amax(dim=1)


def distill_expansions(model, tokenizer, teacher: ExpansionTeacher, texts: list[str], *, steps: int, batch_size: int,
                       learning_rate: float, random_bag_share: float, max_length: int, seed: int, device: str,
                       sampled_columns: int | None = None) -> list[float]:
    """Train `model` in place; returns the loss curve (one value per step)."""
    rng = random.Random(seed)
    vocab = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    words = [w for w in vocab if not w.startswith(("[", "##")) and len(w) > 1]
    model.to(device).train()
    teacher.to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=learning_rate, total_steps=steps, pct_start=0.1)
    losses = []
    progress = tqdm(range(steps), desc="stage 1: Kiwi expansions", unit="step")
    for _ in progress:
        if rng.random() < random_bag_share:
            batch = [" ".join(rng.choices(words[: rng.choice([2000, 8000, len(words)])], k=rng.randint(2, 12))) for _ in range(batch_size)]
        else:
            batch = rng.sample(texts, min(batch_size, len(texts)))
        enc = tokenizer(batch, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)
        target = teacher.targets(ids, mask)
        columns = None
        if sampled_columns and sampled_columns < target.shape[1]:
            positive = torch.nonzero(target.amax(0) > 0).squeeze(1)
            extra = torch.randint(0, target.shape[1], (sampled_columns,), device=target.device)
            columns = torch.unique(torch.cat([positive, extra]))
            target = target[:, columns]
        pred = splade_vectors(model, ids, mask, columns)
        weight = 1.0 + 9.0 * (target > 0)  # targets are few among 24k zeros: weigh them up
        loss = (weight * (pred - target) ** 2).mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        losses.append(loss.item())
        if len(losses) % 50 == 0:
            nonzero = (pred > 0).sum(dim=1).float().mean().item()
            progress.set_postfix(loss=f"{sum(losses[-50:]) / 50:.4f}", nonzero=f"{nonzero:.0f}")
    model.eval()
    return losses

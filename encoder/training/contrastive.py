"""Stage 2: contrastive SPLADE training with sentence-transformers' sparse trainer.

SpladeLoss wraps SparseMultipleNegativesRankingLoss (in-batch negatives, plus one hard negative
per query in the hard phase) and adds FLOPS regularisation on queries and documents. The
curriculum runs an easy phase (in-batch negatives only) before the hard phase.
"""

from __future__ import annotations

from pathlib import Path

import torch

from encoder.training.config import ContrastiveConfig
from encoder.training.data import Triple


def training_dataset(triples: list[Triple], with_negatives: bool):
    """The triples as the trainer's Dataset: anchor, positive (and negative: only the triples that have one)."""
    from datasets import Dataset

    rows = [t for t in triples if t.negative] if with_negatives else triples
    data = {"anchor": [t.query for t in rows], "positive": [t.positive for t in rows]}
    if with_negatives:
        data["negative"] = [t.negative for t in rows]
    return Dataset.from_dict(data)


def train_contrastive(model_dir: Path, out_dir: Path, triples: list[Triple], config: ContrastiveConfig, *, seed: int,
                      max_length: int, evaluator=None, anchor_teacher=None) -> Path:
    """Fine-tune the masked-LM in model_dir; save the final HF model folder to out_dir and return it."""
    from sentence_transformers.sparse_encoder import SparseEncoder, SparseEncoderTrainer, SparseEncoderTrainingArguments
    from sentence_transformers.training_args import BatchSamplers

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = SparseEncoder(str(model_dir), device=device, model_kwargs={"dtype": torch.float32})
    model.max_seq_length = max_length
    loss = splade_loss(model, config, anchor_teacher)
    for phase, epochs, with_negatives in (("easy", config.easy_epochs, False), ("hard", config.hard_epochs, True)):
        if epochs <= 0:
            continue
        args = SparseEncoderTrainingArguments(
            output_dir=str(out_dir.parent / f"checkpoints-{phase}"),
            num_train_epochs=epochs,
            max_steps=config.max_steps,
            per_device_train_batch_size=config.batch_size,
            learning_rate=config.learning_rate,
            warmup_ratio=config.warmup_ratio,
            batch_sampler=BatchSamplers.NO_DUPLICATES,
            seed=seed,
            data_seed=seed,
            bf16=device == "cuda" and torch.cuda.is_bf16_supported(),
            save_strategy="epoch",
            save_total_limit=1,
            logging_steps=20,
            eval_strategy="epoch" if evaluator is not None else "no",
            report_to="none",
            disable_tqdm=False,
        )
        trainer = SparseEncoderTrainer(model=model, args=args, train_dataset=training_dataset(triples, with_negatives),
                                       loss=loss, evaluator=evaluator)
        trainer.train()
    out_dir.mkdir(parents=True, exist_ok=True)
    transformer = model[0]
    transformer.auto_model.save_pretrained(out_dir, safe_serialization=True)
    transformer.tokenizer.save_pretrained(out_dir)
    return out_dir


def splade_loss(model, config: ContrastiveConfig, anchor_teacher=None, ranking_loss=None):
    """SpladeLoss(ranking_loss, default SparseMultipleNegativesRankingLoss) with the config's FLOPS weights;
    AnchoredSpladeLoss when a Kiwi-neighbour teacher is given (`ksearch train` and `ksearch adapt` share it)."""
    from sentence_transformers.sparse_encoder.losses import SparseMultipleNegativesRankingLoss, SpladeLoss

    ranking_loss = ranking_loss if ranking_loss is not None else SparseMultipleNegativesRankingLoss(model)

    regularizers = {"query_regularizer_weight": config.query_regularizer_weight,
                    "document_regularizer_weight": config.document_regularizer_weight}
    if anchor_teacher is not None:
        from encoder.training.anchored_loss import AnchoredSpladeLoss

        return AnchoredSpladeLoss(model, ranking_loss, teacher=anchor_teacher,
                                  query_anchor_weight=config.query_anchor_weight,
                                  document_anchor_weight=config.document_anchor_weight, **regularizers)
    return SpladeLoss(model, ranking_loss, **regularizers)


def dev_evaluator(queries: dict[str, str], corpus: dict[str, str], relevant: dict[str, set[str]], name: str = "dev"):
    """sentence-transformers' sparse IR evaluator (nDCG@10, MRR@10, Recall@k) on the dev split."""
    from sentence_transformers.sparse_encoder.evaluation import SparseInformationRetrievalEvaluator

    return SparseInformationRetrievalEvaluator(queries=queries, corpus=corpus, relevant_docs=relevant, name=name,
                                               show_progress_bar=False, batch_size=64)

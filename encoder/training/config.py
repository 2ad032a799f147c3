"""Training configuration, read from a TOML file (`ksearch train --config FILE`)."""

from __future__ import annotations

import tomllib
from typing import Literal
from pathlib import Path

from pydantic import BaseModel, Field, field_validator


class BaseModelConfig(BaseModel):
    """Either fine-tune an existing masked-LM (`from_model`) or build the Korean morpheme model."""

    from_model: str | None = None  # HF id (cached) or folder, e.g. sewoong/korean-neural-sparse-encoder-v1
    vocab_size: int = 24_000
    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 1024
    max_length: int = 64


class DataConfig(BaseModel):
    pair_files: list[Path] = Field(default_factory=list)  # JSONL {"query", "positive", "hard_negative"?}
    doc_query_files: list[Path] = Field(default_factory=list)  # JSONL {"doc_id", "query"} for sample corpus documents
    sample_dir: Path | None = Path("sample_data")  # corpus + queries + qrels + splits
    train_splits: list[str] = ["train"]  # never "test"
    eval_split: str | None = "dev"
    title_pairs: bool = True  # corpus (title -> text) pairs: document-side signal, no queries involved
    # JSONL {"title", "sections": [...], "queries": [{"query", "section"}]}: the answering section is the positive,
    # another section of the same document the hard negative (passage-level training on long documents)
    long_document_files: list[Path] = Field(default_factory=list)
    # sample_dir/answer_spans.jsonl on the train splits: the passage holding the answer vs the document's other passages
    answer_passages: bool = False
    # BM25-mined negatives for the sample train queries: often unjudged answers (measured on dev), so off by default;
    # the hard phase then uses the written and structural negatives only
    mined_negatives: bool = False

    @field_validator("sample_dir", "eval_split", mode="before")
    @classmethod
    def _empty_is_none(cls, value):
        return None if value == "" else value  # TOML has no null: "" switches the option off


class DistillConfig(BaseModel):
    """Stage 1: teach Kiwi's morpheme neighbours as expansions (only for a built model)."""

    steps: int = 2000
    batch_size: int = 64
    learning_rate: float = 5e-4
    random_bag_share: float = 0.5  # share of batches made of random vocabulary words (covers the lexicon)
    sampled_columns: int | None = None  # vocabulary columns per step besides the targets (None: all; CPU: ~2048)
    neighbours: int = 10
    min_score: float = 0.6


class ContrastiveConfig(BaseModel):
    """Stage 2: SpladeLoss(SparseMultipleNegativesRankingLoss) + FLOPS, easy then hard negatives."""

    easy_epochs: float = 1.0  # in-batch negatives only
    hard_epochs: float = 2.0  # plus one mined or written hard negative per query
    batch_size: int = 64
    learning_rate: float = 2e-4
    query_regularizer_weight: float = 5e-4
    document_regularizer_weight: float = 3e-4
    warmup_ratio: float = 0.1
    # Expansion anchor (AnchoredSpladeLoss): penalise weight outside a text's own tokens and their Kiwi neighbours
    query_anchor_weight: float = 0.0
    document_anchor_weight: float = 0.0
    max_steps: int = -1  # > 0: stop each phase after this many steps (a CPU budget)

    @property
    def anchored(self) -> bool:
        """Whether the loss has an expansion anchor (and training needs Kiwi neighbours)."""
        return self.query_anchor_weight > 0 or self.document_anchor_weight > 0


class TrainConfig(BaseModel):
    seed: int = 13
    output_dir: Path
    work_dir: Path = Path(".ksearch/train")
    base: BaseModelConfig = BaseModelConfig()
    data: DataConfig = DataConfig()
    distill: DistillConfig = DistillConfig()
    contrastive: ContrastiveConfig = ContrastiveConfig()
    document_pruning: str | None = None  # saved in the model folder as its default
    query_pruning: str | None = None
    # CPU precisions to try in order where the CPU runs them natively; list only those whose nDCG@10 parity
    # `ksearch bench encode` measured at >= 0.99 of fp32 for this model.
    cpu_precision: list[Literal["fp32", "bf16", "int8"]] = []

    @classmethod
    def from_file(cls, path: Path) -> "TrainConfig":
        """Load and validate a TOML config; relative paths stay relative to the working directory."""
        with path.open("rb") as f:
            config = cls.model_validate(tomllib.load(f))
        if "test" in config.data.train_splits or config.data.eval_split == "test":
            raise ValueError(f"{path}: the test split is never used for training or tuning")
        return config

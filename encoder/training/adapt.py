"""`ksearch adapt`'s training part: the recipe, the triples, fine-tuning within a time budget, the model folder.

The corpus side (reading, splitting, pseudo-queries, mining) is put together by `ksearch.adaptation`; this module
only needs passages as text. The starting ("parent") model is fine-tuned with MarginMSE toward teacher scores
(`teacher_scores`; the default) or `ksearch train`'s ranking loss, inside `contrastive.splade_loss`'s FLOPS
regularisation and expansion anchor at the parent's own loss weights and learning rate when its folder records them
(training_recipe.json). The contrastive loss on these lexical pseudo-queries collapses the vectors (README).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, Field

from encoder.model_resolution import MODEL_SETTINGS_FILE
from encoder.training.config import ContrastiveConfig
from encoder.training.data import Triple
from encoder.training.model_install import MARKER_FILE, WRITER
from encoder.training.teacher_scores import ScoredRow

log = logging.getLogger(__name__)

RECIPE_FILE = "training_recipe.json"  # what `ksearch train` records in a model folder
FINE_TUNE_LEARNING_RATE = 5e-5  # for a parent that records no recipe: a fine-tuning rate, not a from-scratch one


class AdaptRecipe(BaseModel):
    """Everything that decides what `ksearch adapt` trains (recorded in the model folder's adapt.json)."""

    seed: int = 13
    max_passages: int = 20_000  # a larger corpus is sampled down to this many passages (mining cost grows with it)
    max_pairs: int = 12_000  # pseudo-queries kept; more than a CPU budget of 30 minutes gets through
    negative_depth: int = 30  # passages each miner ranks per query
    negative_window: int = 10  # the negative is drawn from the first this many admissible candidates
    near_duplicate: float = 0.7  # content-morpheme Jaccard at which a candidate counts as the source passage again
    # Passes over the pairs; the time budget usually ends training first. The learning rate is constant after
    # warm-up, so a run stopped by the budget is not left halfway down a decay schedule.
    epochs: float = 2.0
    batch_size: int = 32  # in-batch negatives plus one mined negative each; 32 keeps a CPU step at a few seconds
    checkpoint_minutes: float = 3.0  # an interrupted run resumes from the last checkpoint
    contrastive: ContrastiveConfig = Field(default_factory=ContrastiveConfig)  # losses and learning rate
    # "distill": MarginMSE toward teacher scores of each pseudo-query's candidates (`teacher_scores`); "contrastive":
    # `ksearch train`'s ranking loss on (pseudo-query, positive, one mined negative), which collapses the vectors
    objective: Literal["distill", "contrastive"] = "distill"
    negatives: int = Field(3, ge=1)  # mined negatives per pseudo-query for distillation (contrastive: always one)
    bm25_share: float = Field(0.5, ge=0.0, le=1.0)  # BM25's weight in the teacher's per-query min-max mix
    regularizer_scale: float = Field(1.0, ge=0.0)  # times the parent's FLOPS weights
    # > 0: keep a pseudo-query only when BM25 or the parent ranks its source passage within this depth (round trip)
    round_trip_depth: int = Field(0, ge=0)

    def resume_key(self) -> dict:
        """What this recipe trains with (recorded in adapt.json; equal keys make prepared pairs and checkpoints
        reusable): not the checkpoint rhythm, nor the contrastive fields adaptation does not use (its epochs and
        batch size are the recipe's own)."""
        unused = {"easy_epochs", "hard_epochs", "batch_size", "max_steps"}
        return json.loads(self.model_dump_json(exclude={"checkpoint_minutes": True, "contrastive": unused}))


def recipe_for(parent_dir: Path, **overrides) -> AdaptRecipe:
    """The default recipe with the parent's loss weights and learning rate (from its training_recipe.json, when it has
    one that `ksearch train` wrote), else ContrastiveConfig's loss weights at a fine-tuning learning rate."""
    contrastive = ContrastiveConfig(learning_rate=FINE_TUNE_LEARNING_RATE)
    recipe_file = parent_dir / RECIPE_FILE
    if recipe_file.is_file():
        try:
            recorded = json.loads(recipe_file.read_text(encoding="utf-8"))["config"]["contrastive"]
            contrastive = ContrastiveConfig.model_validate(recorded)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("%s: no usable contrastive settings (%s); using the defaults", recipe_file, exc)
    return AdaptRecipe(**{"contrastive": contrastive, **overrides})  # an override may replace the loss settings too


@dataclass
class FitResult:
    """What training did."""

    model_dir: Path
    steps: int
    max_steps: int
    resumed_from_step: int
    stopped_by_budget: bool
    seconds: float
    device: str
    rows: int
    with_negatives: bool
    losses: list[float] = field(default_factory=list)
    objective: str = "contrastive"  # the loss trained with (distillation falls back when there are no negatives)


def training_rows(triples: list[Triple]) -> tuple[list[Triple], bool]:
    """The triples trained on and whether with a negative column: those with a mined negative when at least half
    have one (a tiny or one-topic corpus may have none), else all of them with in-batch negatives only."""
    with_negative = [t for t in triples if t.negative]
    if with_negative and len(with_negative) * 2 >= len(triples):
        return with_negative, True
    return triples, False


def distill_rows(rows: list[ScoredRow]) -> list[ScoredRow]:
    """The scored rows trained on, all with the same number of negatives (MarginMSE needs fixed columns): the
    largest count at least half the rows have, the rows with fewer left out; none when no row has a negative."""
    counts = sorted((len(r.passages) - 1 for r in rows), reverse=True)
    keep = counts[(len(counts) - 1) // 2] if counts else 0
    if keep < 1:
        return []
    return [ScoredRow(r.query, r.passages[: keep + 1], r.scores[: keep + 1], r.source)
            for r in rows if len(r.passages) > keep]


def distill_dataset(rows: list[ScoredRow]):
    """The scored rows as the trainer's Dataset: query, positive, negative_1..n and the teacher's scores (label)."""
    from datasets import Dataset

    data = {"query": [r.query for r in rows], "positive": [r.passages[0] for r in rows]}
    for n in range(1, len(rows[0].passages)):
        data[f"negative_{n}"] = [r.passages[n] for r in rows]
    data["label"] = [list(map(float, r.scores)) for r in rows]
    return Dataset.from_dict(data)


def _dataset_and_loss(model, rows: list, recipe: AdaptRecipe, anchor_teacher):
    """(dataset, loss, rows trained on, with mined negatives, objective run) for the recipe's objective; distillation
    falls back to the contrastive loss with in-batch negatives when no pseudo-query has a mined negative."""
    from encoder.training.contrastive import splade_loss, training_dataset

    scale = recipe.regularizer_scale
    config = recipe.contrastive.model_copy(update={
        "query_regularizer_weight": recipe.contrastive.query_regularizer_weight * scale,
        "document_regularizer_weight": recipe.contrastive.document_regularizer_weight * scale})
    if rows and isinstance(rows[0], ScoredRow):
        scored = distill_rows(rows)
        if scored:
            from sentence_transformers.sparse_encoder.losses import SparseMarginMSELoss

            loss = splade_loss(model, config, anchor_teacher, ranking_loss=SparseMarginMSELoss(model))
            return distill_dataset(scored), loss, len(scored), True, "distill"
        rows = [Triple(r.query, r.passages[0], None, r.source) for r in rows]
    triples, with_negatives = training_rows(rows)
    return (training_dataset(triples, with_negatives), splade_loss(model, config, anchor_teacher), len(triples),
            with_negatives, "contrastive")


def fit_within_budget(parent_dir: Path, rows: list[Triple] | list[ScoredRow], recipe: AdaptRecipe, work: Path, *,
                      seconds: float, max_length: int, anchor_teacher=None, progress: bool = True) -> FitResult:
    """Fine-tune the parent on the rows (triples: contrastive; scored rows: distillation) for at most `seconds`;
    resume from work/checkpoints when there is one.

    Writes the final HF folder to work/final and returns it. An exception (or Ctrl-C) leaves the checkpoints.
    """
    from sentence_transformers.sparse_encoder import SparseEncoder, SparseEncoderTrainer, SparseEncoderTrainingArguments
    from sentence_transformers.sparse_encoder.callbacks import SpladeRegularizerWeightSchedulerCallback
    from sentence_transformers.training_args import BatchSamplers
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from transformers.trainer_utils import get_last_checkpoint

    from encoder.training.recipe import seed_everything
    from encoder.training.time_budget import TimeBudget

    seed_everything(recipe.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if not progress:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # the weight loading and saving bars too
    model = SparseEncoder(str(parent_dir), device=device, model_kwargs={"dtype": torch.float32})
    model.max_seq_length = max_length
    dataset, loss, trained_rows, with_negatives, objective = _dataset_and_loss(model, rows, recipe, anchor_teacher)
    checkpoints = work / "checkpoints"
    last = get_last_checkpoint(str(checkpoints)) if checkpoints.is_dir() else None
    batch_size = min(recipe.batch_size, trained_rows)
    planned_steps = math.ceil(math.ceil(trained_rows / batch_size) * recipe.epochs)
    args = SparseEncoderTrainingArguments(
        output_dir=str(checkpoints),
        num_train_epochs=recipe.epochs,
        per_device_train_batch_size=batch_size,
        learning_rate=recipe.contrastive.learning_rate,
        warmup_steps=int(recipe.contrastive.warmup_ratio * planned_steps),
        lr_scheduler_type="constant_with_warmup",
        # in-batch negatives must not be a query's own positive; distillation has none
        batch_sampler=BatchSamplers.NO_DUPLICATES if objective == "contrastive" else BatchSamplers.BATCH_SAMPLER,
        seed=recipe.seed,
        data_seed=recipe.seed,
        bf16=device == "cuda" and torch.cuda.is_bf16_supported(),
        save_strategy="no",  # the budget callback asks for checkpoints by the clock
        save_total_limit=1,
        logging_steps=5,  # the losses adapt.json records (first and last)
        report_to="none",
    )
    budget = TimeBudget(seconds, checkpoint_seconds=recipe.checkpoint_minutes * 60, progress=progress)
    # The parent is already sparse, so the FLOPS weights apply in full from the second step. sentence-transformers'
    # default ramps them up from 0 over a third of the planned steps (for a dense masked-LM start); a run stopped by
    # the budget would then have trained with little regularisation and come out denser than its parent.
    full_regularisation = SpladeRegularizerWeightSchedulerCallback(loss, warmup_ratio=1e-9)  # ramp: one step
    trainer = SparseEncoderTrainer(model=model, args=args, train_dataset=dataset, loss=loss,
                                   callbacks=[budget, full_regularisation])
    trainer.remove_callback(PrinterCallback)  # our own bar instead of the trainer's log lines and epoch bar
    trainer.remove_callback(ProgressCallback)
    resumed = int(last.rsplit("-", 1)[-1]) if last else 0
    if last:
        log.info("resuming from %s", last)
    trainer.train(resume_from_checkpoint=last)
    final = work / "final"
    model[0].auto_model.save_pretrained(final, safe_serialization=True)
    model[0].tokenizer.save_pretrained(final)
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return FitResult(final, trainer.state.global_step, trainer.state.max_steps, resumed, budget.stopped_by_budget,
                     budget.elapsed, device, trained_rows, with_negatives, losses, objective)


def write_model_folder(fit: FitResult, parent_dir: Path, staging: Path, record: dict, *, max_length: int) -> None:
    """The model folder in `staging`: fp16 weights and tokenizer, the parent's ksearch.json settings, adapt.json."""
    import shutil

    from encoder.onnx_runtime import weights_fingerprint
    from encoder.training.recipe import copy_model_files

    if staging.exists():
        shutil.rmtree(staging)
    copy_model_files(fit.model_dir, staging)
    settings_file = parent_dir / MODEL_SETTINGS_FILE
    settings = json.loads(settings_file.read_text(encoding="utf-8")) if settings_file.is_file() else {}
    # measured for the parent's weights only (`ksearch bench encode` parity); the adapted model runs fp32 until measured
    settings.pop("cpu_precision", None)
    settings.setdefault("max_length", max_length)
    # new weights, new revision: an index ingested with the earlier model of this name is re-encoded, not kept
    settings["revision"] = weights_fingerprint(staging)[:16]
    (staging / MODEL_SETTINGS_FILE).write_text(json.dumps(settings, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    marker = {"written_by": WRITER, **record,
              "training": {"steps": fit.steps, "planned_steps": fit.max_steps, "resumed_from_step": fit.resumed_from_step,
                           "stopped_by_budget": fit.stopped_by_budget, "seconds": round(fit.seconds, 1),
                           "device": fit.device, "rows": fit.rows, "with_mined_negatives": fit.with_negatives,
                           "objective": fit.objective,
                           "first_loss": fit.losses[0] if fit.losses else None,
                           "last_loss": fit.losses[-1] if fit.losses else None, "torch": torch.__version__},
              "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    (staging / MARKER_FILE).write_text(json.dumps(marker, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

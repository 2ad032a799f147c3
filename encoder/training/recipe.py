"""`ksearch train`: the whole recipe, from a config file to a model folder SparseEncoder.load() reads."""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from encoder.segmentation import KiwiSegmenter
from encoder.model_resolution import MODEL_SETTINGS_FILE
from encoder.training.config import TrainConfig
from encoder.training.contrastive import dev_evaluator, train_contrastive
from encoder.training.data import (
    SampleCollection,
    Triple,
    answer_passage_triples,
    doc_query_triples,
    long_document_triples,
    mine_negatives,
    pair_file_triples,
    passage_text,
    sample_triples,
    title_triples,
)

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def prepare(config: TrainConfig) -> Path:
    """Everything that needs Kiwi or BM25 (CPU): segmented triples, dev set, vocabulary, Kiwi neighbours.

    Written to `work_dir/prepared/`, so the torch-only `fit` can run anywhere (e.g. on a GPU machine).
    """
    from encoder.training.kiwi_teacher import neighbour_graph
    from encoder.training.vocabulary import build_tokenizer, build_vocabulary

    seed_everything(config.seed)
    out = config.work_dir / "prepared"
    out.mkdir(parents=True, exist_ok=True)
    building = config.base.from_model is None
    segmenter = KiwiSegmenter() if building else segmenter_of(config.base.from_model)
    segment = segmenter.segment if segmenter else (lambda texts: list(texts))
    triples, collection = collect_triples(config, segment)
    log.info("%d training triples (%d with a hard negative)", len(triples), sum(t.negative is not None for t in triples))
    with (out / "triples.jsonl").open("w", encoding="utf-8") as f:
        for t in segment_triples(triples, segment):
            f.write(json.dumps(t.__dict__, ensure_ascii=False) + "\n")
    if collection and config.data.eval_split:
        qids = collection.splits[config.data.eval_split]
        doc_ids = list(collection.docs)
        dev = {
            "queries": dict(zip(qids, segment([collection.queries[q]["text"] for q in qids]))),
            "corpus": dict(zip(doc_ids, segment([passage_text(collection.docs[d]) for d in doc_ids]))),
            "relevant": {q: sorted(d for d, g in collection.qrels.get(q, {}).items() if g > 0) for q in qids},
        }
        (out / "dev.json").write_text(json.dumps(dev, ensure_ascii=False), encoding="utf-8")
    manifest = {"building": building, "segmentation": segmenter.config() if segmenter else None}
    if config.contrastive.anchored and not building:  # the anchor needs Kiwi neighbours of the existing vocabulary
        from transformers import AutoTokenizer

        from encoder.model_resolution import resolve_model

        tokenizer = AutoTokenizer.from_pretrained(resolve_model(config.base.from_model)[1], local_files_only=True)
        vocab = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        graph = neighbour_graph(vocab, top_n=config.distill.neighbours, min_score=config.distill.min_score)
        (out / "neighbours.json").write_text(json.dumps(graph), encoding="utf-8")
    if building:
        texts = [t.query for t in triples] + [t.positive for t in triples] + [t.negative for t in triples if t.negative]
        if collection:
            texts += [passage_text(d) for d in collection.docs.values()]
        vocab = build_vocabulary(texts, config.base.vocab_size)
        build_tokenizer(vocab, config.base.max_length).save_pretrained(out / "tokenizer")
        graph = neighbour_graph(vocab, top_n=config.distill.neighbours, min_score=config.distill.min_score)
        (out / "neighbours.json").write_text(json.dumps(graph), encoding="utf-8")
        (out / "distill_texts.json").write_text(json.dumps([t for t in segment(texts) if t], ensure_ascii=False), encoding="utf-8")
        log.info("vocabulary %d words, %d with Kiwi neighbours", len(vocab), len(graph))
    (out / "prepared.json").write_text(json.dumps(manifest), encoding="utf-8")
    return out


def fit(config: TrainConfig, prepared: Path) -> Path:
    """The torch part: build + distil (stage 1) when asked, contrastive (stage 2), export the model folder."""
    started = time.time()
    seed_everything(config.seed)
    manifest = json.loads((prepared / "prepared.json").read_text(encoding="utf-8"))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if manifest["building"]:
        start_dir = _stage1(config, prepared, device)
    else:
        from encoder.model_resolution import resolve_model

        start_dir = Path(resolve_model(config.base.from_model)[1])
    triples = [Triple(**json.loads(line)) for line in (prepared / "triples.jsonl").open(encoding="utf-8")]
    evaluator = None
    if (prepared / "dev.json").is_file():
        dev = json.loads((prepared / "dev.json").read_text(encoding="utf-8"))
        evaluator = dev_evaluator(dev["queries"], dev["corpus"], {q: set(d) for q, d in dev["relevant"].items()},
                                  name=config.data.eval_split or "dev")
    teacher = None
    if config.contrastive.anchored and (prepared / "neighbours.json").is_file():
        from transformers import AutoTokenizer

        teacher = expansion_teacher(prepared, AutoTokenizer.from_pretrained(start_dir))
    final = train_contrastive(start_dir, config.work_dir / "final", triples, config.contrastive, seed=config.seed,
                              max_length=config.base.max_length, evaluator=evaluator, anchor_teacher=teacher)
    segmentation = manifest["segmentation"]
    export_model(final, config, KiwiSegmenter.from_config(segmentation), started)
    return config.output_dir


def _stage1(config: TrainConfig, prepared: Path, device: str) -> Path:
    """Build the BERT and distil Kiwi expansions into it; reuse a checkpoint made with the same settings."""
    start_dir = config.work_dir / "stage1"
    marker = start_dir / "stage1.json"
    stage1_key = json.loads(config.base.model_dump_json()) | json.loads(config.distill.model_dump_json()) | {"seed": config.seed}
    if marker.is_file() and json.loads(marker.read_text(encoding="utf-8")) == stage1_key:
        log.info("stage 1 checkpoint %s matches the config: reusing it", start_dir)
        return start_dir
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    from encoder.training.distill import distill_expansions

    base = config.base
    tokenizer = AutoTokenizer.from_pretrained(prepared / "tokenizer")
    bert = BertConfig(vocab_size=len(tokenizer), hidden_size=base.hidden_size, num_hidden_layers=base.num_layers,
                      num_attention_heads=base.num_heads, intermediate_size=base.intermediate_size,
                      max_position_embeddings=max(128, base.max_length), pad_token_id=tokenizer.pad_token_id,
                      type_vocab_size=1, tie_word_embeddings=True)
    model = BertForMaskedLM(bert)
    teacher = expansion_teacher(prepared, tokenizer)
    texts = json.loads((prepared / "distill_texts.json").read_text(encoding="utf-8"))
    distill_expansions(model, tokenizer, teacher, texts, steps=config.distill.steps,
                       batch_size=config.distill.batch_size, learning_rate=config.distill.learning_rate,
                       random_bag_share=config.distill.random_bag_share, max_length=base.max_length,
                       seed=config.seed, device=device, sampled_columns=config.distill.sampled_columns)
    model.cpu().save_pretrained(start_dir, safe_serialization=True)
    tokenizer.save_pretrained(start_dir)
    marker.write_text(json.dumps(stage1_key), encoding="utf-8")
    return start_dir


def expansion_teacher(prepared: Path, tokenizer):
    """The Kiwi-neighbour teacher (stage 1's targets, stage 2's anchor) from the prepared neighbour graph."""
    from encoder.training.kiwi_teacher import ExpansionTeacher

    raw_graph = json.loads((prepared / "neighbours.json").read_text(encoding="utf-8"))
    graph = {int(k): [tuple(x) for x in v] for k, v in raw_graph.items()}
    return ExpansionTeacher(graph, len(tokenizer), tokenizer.all_special_ids)


def collect_triples(config: TrainConfig, segment) -> tuple[list[Triple], SampleCollection | None]:
    """Every training triple the config names: pair files, the sample train split, corpus titles."""
    rng = random.Random(config.seed)
    triples = pair_file_triples(config.data.pair_files)
    triples += long_document_triples(config.data.long_document_files, rng)
    collection = None
    if config.data.sample_dir:
        collection = SampleCollection.load(config.data.sample_dir)
        qids = [q for split in config.data.train_splits for q in collection.splits[split]]
        mined = mine_negatives(collection, qids, segment) if config.data.mined_negatives else {}
        triples += sample_triples(collection, config.data.train_splits, mined, rng)
        triples += doc_query_triples(collection, config.data.doc_query_files)
        if config.data.title_pairs:
            triples += title_triples(collection)
        if config.data.answer_passages:
            triples += answer_passage_triples(collection, config.data.sample_dir / "answer_spans.jsonl",
                                              config.data.train_splits, rng)
    rng.shuffle(triples)
    return triples, collection


def export_model(model_dir: Path, config: TrainConfig, segmenter: KiwiSegmenter | None, started: float) -> None:
    """Copy the HF files to output_dir and record max length, segmentation, pruning, CPU precision and the recipe."""
    out = config.output_dir
    if out.exists():
        shutil.rmtree(out)
    copy_model_files(model_dir, out)
    settings = {"max_length": config.base.max_length}
    if segmenter:
        settings["pre_segmentation"] = segmenter.config()
    if config.document_pruning:
        settings["document_pruning"] = config.document_pruning
    if config.query_pruning:
        settings["query_pruning"] = config.query_pruning
    if config.cpu_precision:
        settings["cpu_precision"] = config.cpu_precision
    (out / MODEL_SETTINGS_FILE).write_text(json.dumps(settings, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    recipe = {"config": json.loads(config.model_dump_json()), "train_seconds": round(time.time() - started),
              "device": "cuda" if torch.cuda.is_available() else "cpu", "torch": torch.__version__}
    (out / "training_recipe.json").write_text(json.dumps(recipe, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def copy_model_files(model_dir: Path, out: Path) -> None:
    """The HF files of `model_dir` into a new folder `out`, with the weights stored as float16 (half the size;
    SparseEncoder loads them as float32)."""
    from safetensors.torch import load_file, save_file

    out.mkdir(parents=True)
    for path in model_dir.iterdir():
        if path.is_file() and not path.name.startswith("training_args") and path.suffix != ".safetensors":
            shutil.copy2(path, out / path.name)
    weights = load_file(model_dir / "model.safetensors")
    save_file({k: v.half().contiguous() if v.is_floating_point() else v for k, v in weights.items()},
              out / "model.safetensors", metadata={"format": "pt"})


def segmenter_of(name_or_path: str | Path) -> KiwiSegmenter | None:
    """The Kiwi pre-segmentation a model folder asks for (None when it reads raw text)."""
    from encoder.model_resolution import resolve_model

    settings_file = Path(resolve_model(name_or_path)[1]) / MODEL_SETTINGS_FILE
    if not settings_file.is_file():
        return None
    return KiwiSegmenter.from_config(json.loads(settings_file.read_text(encoding="utf-8")).get("pre_segmentation"))


def segment_triples(triples: list[Triple], segment) -> list[Triple]:
    """The triples as the model's tokenizer sees them (`segment`: the model's Kiwi pre-segmentation)."""
    queries = segment([t.query for t in triples])
    positives = segment([t.positive for t in triples])
    negatives = segment([t.negative or "" for t in triples])
    return [Triple(q, p, n or None, t.source) for q, p, n, t in zip(queries, positives, negatives, triples)]

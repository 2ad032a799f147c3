"""SpladeLoss plus an expansion anchor: weight on words far from the text's meaning is penalised.

Contrastive training alone lets a small model carry ranking signal in arbitrary vocabulary
entries (엘리베이터, 목걸이 on a query about arrest); they help on the training corpus and
are noise elsewhere. The anchor allows, for each text, its own tokens and their Kiwi morpheme
neighbours, and adds `weight x (sum of the vector's weights outside that set)` to the loss,
for queries and documents separately. Hand-written: sentence-transformers has no such loss.
"""

from __future__ import annotations

import torch
from sentence_transformers.sparse_encoder.losses import SpladeLoss

from encoder.training.kiwi_teacher import ExpansionTeacher


class AnchoredSpladeLoss(SpladeLoss):
    """`SpladeLoss` whose loss dict also has `query_anchor_loss` and `document_anchor_loss`."""

    def __init__(self, model, loss, *, teacher: ExpansionTeacher, query_anchor_weight: float,
                 document_anchor_weight: float, **splade_kwargs) -> None:
        super().__init__(model, loss, **splade_kwargs)
        self.teacher = teacher
        self.query_anchor_weight = query_anchor_weight
        self.document_anchor_weight = document_anchor_weight

    def forward(self, sentence_features, labels=None) -> dict[str, torch.Tensor]:
        features = list(sentence_features)
        captured: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

        def keep(_module, args, output):  # every model call of the loss: its inputs and pooled vectors
            captured.append((args[0]["input_ids"], args[0]["attention_mask"], output["sentence_embedding"]))

        handle = self.model.register_forward_hook(keep)
        try:
            losses = super().forward(features, labels)
        finally:
            handle.remove()
        if not captured:
            return losses
        ids = [c[0] for c in captured]
        masks = [c[1] for c in captured]
        vectors = [c[2] for c in captured]
        queries = len(features[0]["input_ids"])  # the anchors come first, alone or as the first rows
        outside = self._outside_mass(ids, masks, vectors)
        losses["query_anchor_loss"] = self.query_anchor_weight * outside[:queries].mean()
        if outside.shape[0] > queries:
            losses["document_anchor_loss"] = self.document_anchor_weight * outside[queries:].mean()
        return losses

    def _outside_mass(self, ids: list[torch.Tensor], masks: list[torch.Tensor], vectors: list[torch.Tensor]) -> torch.Tensor:
        """Per text, the sum of its vector's weights on tokens that are neither its own nor their neighbours."""
        teacher = self.teacher.to(vectors[0].device)
        out = []
        for input_ids, mask, vector in zip(ids, masks, vectors):
            allowed = teacher.targets(input_ids, mask) > 0
            out.append((vector * ~allowed).sum(dim=1))
        return torch.cat(out)

"""Expansion teacher from Kiwi's morpheme embeddings (learned on a large Korean corpus).

For every vocabulary word that Kiwi knows, its nearest morphemes that are also vocabulary
words (집주인 -> 세입자, 임대인; 돌려주 -> 돌려받, 환급) become weighted expansion targets.
No library offers this: it is how an offline project can teach a small model real Korean
expansions without a pretrained Korean masked-LM.
"""

from __future__ import annotations


import torch
from tqdm import tqdm

from encoder.kiwi_neighbours import KiwiNeighbours


def neighbour_graph(vocab: list[str], *, top_n: int = 12, min_score: float = 0.6,
                    progress: bool = True) -> dict[int, list[tuple[int, float]]]:
    """token id -> [(neighbour token id, cosine score)] for vocabulary words Kiwi knows."""
    neighbours = KiwiNeighbours(vocab, top_n=top_n, min_score=min_score)
    index = {w: i for i, w in enumerate(vocab)}
    graph: dict[int, list[tuple[int, float]]] = {}
    for token_id, word in enumerate(tqdm(vocab, desc="kiwi neighbours", unit="word", disable=not progress)):
        out = [(index[w], score) for w, score in neighbours.of(word)]
        if out:
            graph[token_id] = out
    return graph


class ExpansionTeacher:
    """Target sparse vectors: each input word at `self_weight`, its Kiwi neighbours scaled by similarity.

    Neighbour lists are held as [vocab, K] tables, so a batch's targets are two scatter-max operations.
    """

    def __init__(self, graph: dict[int, list[tuple[int, float]]], vocab_size: int, special_ids: list[int],
                 self_weight: float = 2.0, expansion_weight: float = 1.2, score_floor: float = 0.55) -> None:
        k = max((len(v) for v in graph.values()), default=1)
        self.neighbour_ids = torch.zeros(vocab_size, k, dtype=torch.long)
        self.neighbour_weights = torch.zeros(vocab_size, k)
        for token_id, neighbours in graph.items():
            for j, (n, score) in enumerate(neighbours):
                self.neighbour_ids[token_id, j] = n
                self.neighbour_weights[token_id, j] = expansion_weight * (score - score_floor) / (1 - score_floor)
        self.special = torch.tensor(sorted(set(special_ids)), dtype=torch.long)
        self.vocab_size, self.self_weight = vocab_size, self_weight

    def to(self, device: str | torch.device) -> "ExpansionTeacher":
        self.neighbour_ids = self.neighbour_ids.to(device)
        self.neighbour_weights = self.neighbour_weights.to(device)
        self.special = self.special.to(device)
        return self

    def targets(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """[batch, vocab] target weights for a batch of token id sequences."""
        batch = input_ids.shape[0]
        valid = attention_mask.bool() & ~torch.isin(input_ids, self.special)
        out = torch.zeros(batch, self.vocab_size, device=input_ids.device)
        out.scatter_reduce_(1, input_ids, valid.float() * self.self_weight, reduce="amax")
        ids = self.neighbour_ids[input_ids]  # [batch, length, K]
        weights = self.neighbour_weights[input_ids] * valid.unsqueeze(-1)
        out.scatter_reduce_(1, ids.reshape(batch, -1), weights.reshape(batch, -1), reduce="amax")
        out[:, self.special] = 0
        return out

"""RelationNet for zero-shot learning (Sung et al., "Learning to Compare: Relation Network
for Few-Shot Learning", CVPR 2018, zero-shot part), on skeleton features.

No skeleton implementation exists (the SynSE repository does not contain one); the modules
follow the original method and its authors' zero-shot code
(``lzrobots/LearningToCompare_ZSL@ff01fa3f``, AwA/CUB scripts), sizes adapted to skeleton
features:

* semantic embedding ``f(t) = ReLU(W2 ReLU(W1 t + b1) + b2)`` maps a class text into the
  skeleton-feature space (hidden width 1024 in the AwA script, 1200 for CUB);
* relation module ``g([f(t_c), x]) = sigmoid(w4 ReLU(W3 [f(t_c), x] + b3) + b4)``, a score
  in (0, 1) per (sample, class) pair (hidden width 400 for AwA, 1200 for CUB);
* loss: mean squared error between the relation scores of every (sample, class) pair and
  the one-hot indicator ``1[y_i = c]`` (``nn.MSELoss``, i.e. the mean over the B x K
  matrix), K = the distinct classes of the batch in the authors' code.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


class SemanticEmbedding(nn.Module):
    def __init__(self, text_dim: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(text_dim, hidden)
        self.fc2 = nn.Linear(hidden, out_dim)

    def forward(self, t: Tensor) -> Tensor:
        return torch.relu(self.fc2(torch.relu(self.fc1(t))))


class RelationModule(nn.Module):
    """``(B, D)`` features x ``(K, D)`` class embeddings -> ``(B, K)`` relation scores."""

    def __init__(self, feature_dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(2 * feature_dim, hidden)
        self.fc2 = nn.Linear(hidden, 1)

    def forward(self, x: Tensor, class_emb: Tensor) -> Tensor:
        """``fc1`` of the concatenated pair ``[f(t_c), x_i]`` computed as ``W_t f(t_c) +
        W_x x_i + b`` (``W = [W_t | W_x]``, the same weights): K + B products instead of
        B x K, the same values up to float rounding."""
        d = class_emb.shape[1]
        w, bias = self.fc1.weight, self.fc1.bias
        by_class = class_emb @ w[:, :d].t()                       # (K, H)
        by_sample = torch.addmm(bias, x, w[:, d:].t())            # (B, H)
        hidden = torch.relu(by_sample.unsqueeze(1) + by_class.unsqueeze(0))
        return torch.sigmoid(self.fc2(hidden)).squeeze(-1)


class RelationNet(nn.Module):
    def __init__(self, feature_dim: int, text_dim: int, semantic_hidden: int = 1024,
                 relation_hidden: int = 400) -> None:
        super().__init__()
        self.semantic = SemanticEmbedding(text_dim, semantic_hidden, feature_dim)
        self.relation = RelationModule(feature_dim, relation_hidden)

    def forward(self, x: Tensor, class_text: Tensor) -> Tensor:
        return self.relation(x, self.semantic(class_text))


def relation_mse(relations: Tensor, target_cols: Tensor) -> Tensor:
    """Mean over the (B, K) matrix of ``(r_ic - 1[y_i = c])^2``; ``target_cols`` (B,) are
    column indices into the K classes scored."""
    one_hot = torch.zeros_like(relations).scatter_(1, target_cols[:, None], 1.0)
    return (relations - one_hot).pow(2).mean()

"""JPoSE building blocks for skeleton features (SynSE repository, ``jpose/alignment_module.py``
and ``jpose/zsl_fgar.py``).

One embedding space per part of speech p in {verb, noun} (the repository's ``Mmen``):
skeleton branch ``Linear(D, 50) + Tanh``; text branch ``Linear(T, 512) + Tanh +
Linear(512, 50) + ReLU`` for Sentence-BERT texts, ``Linear(T, 50) + Tanh`` for word2vec
ones. A joint space (``JPosMmen``) maps the concatenation ``[verb, noun]`` of the
L2-normalised part-of-speech embeddings through ``Linear(100, 50) + Tanh`` per modality.
Every embedding is L2-normalised, the skeleton feature too.

Loss of one batch, margin m = 0.3 everywhere::

    L = H_verb + H_noun + 0.01 (T_verb + T_noun) + H_joint
    H(a, b; E) = 1/B sum_i sum_c max(0, m + <a_i, E_c> - <a_i, b_i>)     (cross-modal)
    T(a; g)    = 1/B sum_i sum_j max(0, m + <a_i, n_j> - <a_i, p_j>)      (within-modality)

``E`` are the embeddings of every seen class's text (computed without gradient); ``p_j`` /
``n_j`` are the batch-hard positive / negative mined for sample j among the batch's skeleton
embeddings by the group ``g`` (the sample's verb, resp. noun): the same-group sample with
the lowest and the other-group sample with the highest dot product with ``a_j`` (as the
code executes it, the negative is mined among all samples; see :func:`batch_hard_triplet`).
The mined samples carry no gradient. The repository sums over every pair (i, j) (``all_pairs=True``);
the usual batch-hard triplet uses j = i only.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zsbench_revise.modules import multiclass_hinge

POS = ("verb", "noun")


def text_branch(in_dim: int, out_dim: int, hidden: int | None) -> nn.Sequential:
    """``Linear + Tanh + Linear + ReLU`` with a hidden layer, ``Linear + Tanh`` without."""
    if hidden is None:
        return nn.Sequential(nn.Linear(in_dim, out_dim), nn.Tanh())
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.Tanh(), nn.Linear(hidden, out_dim), nn.ReLU())


class PosSpace(nn.Module):
    """One part-of-speech embedding space (un-normalised outputs)."""

    def __init__(self, vis_dim: int, text_dim: int, out_dim: int = 50,
                 text_hidden: int | None = 512) -> None:
        super().__init__()
        self.visual = nn.Sequential(nn.Linear(vis_dim, out_dim), nn.Tanh())
        self.text = text_branch(text_dim, out_dim, text_hidden)


class JointSpace(nn.Module):
    def __init__(self, in_dim: int, out_dim: int = 50) -> None:
        super().__init__()
        self.visual = nn.Sequential(nn.Linear(in_dim, out_dim), nn.Tanh())
        self.text = nn.Sequential(nn.Linear(in_dim, out_dim), nn.Tanh())


def l2n(x: Tensor) -> Tensor:
    return F.normalize(x, dim=-1)


def batch_hard_triplet(emb: Tensor, groups: Tensor, margin: float = 0.3,
                       all_pairs: bool = True, negatives: str = "any") -> Tensor:
    """Within-modality triplet loss with batch-hard mining (module docstring).

    ``negatives="other_group"`` mines the hardest negative among samples of other groups
    (what the repository's code intends); samples with no other group in the batch get no
    negative and, with a single group, the loss is 0. ``negatives="any"`` mines it among
    all batch samples, the sample itself included, which is what the repository's code
    executes: its set difference of candidate indices removes nothing (it subtracts a set
    of 0-d tensors, hashed by identity, from a set of integers), so the hardest "negative"
    of a unit-norm embedding is the sample itself."""
    if negatives not in ("any", "other_group"):
        raise ValueError(f"negatives must be 'any' or 'other_group', got {negatives!r}")
    b = emb.shape[0]
    with torch.no_grad():
        sim = emb @ emb.T
        same = groups[:, None] == groups[None, :]
        pos_idx = sim.masked_fill(~same, float("inf")).argmin(dim=1)
        if negatives == "any":
            has_neg = torch.ones_like(same[:, 0])
            neg_idx = sim.argmax(dim=1)
        else:
            has_neg = (~same).any(dim=1)
            neg_idx = sim.masked_fill(same, float("-inf")).argmax(dim=1)
        pos, neg = emb[pos_idx], emb[neg_idx]
    if not bool(has_neg.any()):
        return emb.sum() * 0.0
    if all_pairs:
        pos, neg = pos[has_neg], neg[has_neg]
        viol = margin + emb @ neg.T - emb @ pos.T          # (B anchors, J mined pairs)
    else:
        anchor, pos, neg = emb[has_neg], pos[has_neg], neg[has_neg]
        viol = margin + (anchor * neg).sum(1) - (anchor * pos).sum(1)
    return viol.clamp(min=0).sum() / b


class JPoseNet(nn.Module):
    """Verb space, noun space and joint space (``verb``, ``noun``, ``joint``)."""

    def __init__(self, vis_dim: int, text_dims: dict[str, int], out_dim: int = 50,
                 joint_dim: int = 50, text_hidden: dict[str, int | None] | None = None) -> None:
        super().__init__()
        hidden = text_hidden or {p: 512 for p in POS}
        self.verb = PosSpace(vis_dim, text_dims["verb"], out_dim, hidden["verb"])
        self.noun = PosSpace(vis_dim, text_dims["noun"], out_dim, hidden["noun"])
        self.joint = JointSpace(2 * out_dim, joint_dim)

    def space(self, pos: str) -> PosSpace:
        return self.verb if pos == "verb" else self.noun

    def text_embeddings(self, verb: Tensor, noun: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Normalised (verb, noun, joint) text embeddings of classes or samples."""
        v, n = l2n(self.verb.text(verb)), l2n(self.noun.text(noun))
        return v, n, l2n(self.joint.text(torch.cat([v, n], dim=1)))

    def visual_embeddings(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Normalised (verb, noun, joint) embeddings of raw skeleton features."""
        x = l2n(x)
        v, n = l2n(self.verb.visual(x)), l2n(self.noun.visual(x))
        return v, n, l2n(self.joint.visual(torch.cat([v, n], dim=1)))

    def losses(self, x: Tensor, rows: Tensor, verb_group: Tensor, noun_group: Tensor,
               class_verb: Tensor, class_noun: Tensor, *,
               margin: float = 0.3, triplet_weight: float = 0.01,
               all_pairs: bool = True, negatives: str = "any") -> dict[str, Tensor]:
        """All loss terms of one batch: ``x`` (B, D) raw features, ``rows`` (B,) each
        sample's row in ``class_verb``/``class_noun`` (C, T), the texts of every seen class,
        ``*_group`` (B,) verb / noun identities.

        A sample's text is its class's text, so the text branch runs once per class (C rows
        instead of B + C): the samples' text embeddings are rows of the class embeddings
        (their gradients summed per class by the gather, in a fixed order), and the hinges' class embeddings
        are the same rows without gradient. Same function and gradients as embedding every
        sample's text (the repository's code), to float rounding."""
        tv_all, tn_all, tj_all = self.text_embeddings(class_verb, class_noun)
        cv, cn, cj = tv_all.detach(), tn_all.detach(), tj_all.detach()
        vv, vn, vj = self.visual_embeddings(x)
        # index_select, not tv_all[rows]: the backward of advanced indexing accumulates
        # repeated rows with parallel atomic adds on CPU (run-to-run different rounding);
        # index_select's backward (index_add_) sums them in a fixed order
        tv, tn, tj = (e.index_select(0, rows) for e in (tv_all, tn_all, tj_all))
        out = {"hinge_verb": multiclass_hinge(vv, tv, cv, margin),
               "hinge_noun": multiclass_hinge(vn, tn, cn, margin),
               "triplet_verb": batch_hard_triplet(vv, verb_group, margin, all_pairs, negatives),
               "triplet_noun": batch_hard_triplet(vn, noun_group, margin, all_pairs, negatives),
               "hinge_joint": multiclass_hinge(vj, tj, cj, margin)}
        out["total"] = (out["hinge_verb"] + out["hinge_noun"] + out["hinge_joint"]
                        + triplet_weight * (out["triplet_verb"] + out["triplet_noun"]))
        return out

    def scores(self, x: Tensor, class_verb: Tensor, class_noun: Tensor) -> Tensor:
        """Cosine of the joint embeddings: (N, C)."""
        return self.visual_embeddings(x)[2] @ self.text_embeddings(class_verb, class_noun)[2].T

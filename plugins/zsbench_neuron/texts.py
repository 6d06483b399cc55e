"""Phase-wise side information as the network consumes it: for each of the three spatial
and temporal phases, one (n_k, D) float tensor of description embeddings per class.

Kinds (``NeuronConfig.spatial_kinds`` / ``temporal_kinds``) hold ``n_k`` descriptions per
class (Neuron's files: 10 "by different individuals"; the embedded benchmark: 4).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from zsbench.api import ClassTexts, ZsbenchError

from .config import NeuronConfig

PhaseTexts = list[list[Tensor]]   # [phase][class] -> (n_k, D)


def _kind(bank: ClassTexts, kind: str) -> list[Tensor]:
    if kind not in bank.embeddings:
        raise ZsbenchError(f"Neuron needs the text kind {kind!r} (per class, several "
                           f"descriptions of one phase); loaded kinds: {bank.kinds}. The "
                           "'neuron' text source reads Neuron's semantics/<dataset> folder "
                           "(--set text.neuron.path=...); the embedded benchmark ships them")
    return [torch.as_tensor(np.asarray(e), dtype=torch.float32) for e in bank.embeddings[kind]]


def cumulative(phases: list[list[Tensor]]) -> list[Tensor]:
    """Per class: description ``a`` of the cumulative text = the normalised sum of the
    normalised descriptions ``a`` of every phase given (rows beyond the shortest phase's
    count are dropped)."""
    out = []
    for per_phase in zip(*phases):
        n = min(t.shape[0] for t in per_phase)
        total = sum(F.normalize(t[:n], p=2, dim=-1) for t in per_phase)
        out.append(F.normalize(total, p=2, dim=-1))
    return out


def spatial_texts(bank: ClassTexts, cfg: NeuronConfig) -> PhaseTexts:
    """Coarse, medium, fine texts (granularity_update) or the fine texts three times."""
    if not cfg.granularity_update:
        fine = _kind(bank, cfg.spatial_kinds[-1])
        return [fine, fine, fine]
    return [_kind(bank, k) for k in cfg.spatial_kinds]


def temporal_texts(bank: ClassTexts, cfg: NeuronConfig) -> PhaseTexts:
    """Texts of temporal phases 1-3: per phase (``phase``) or phases 1..e
    (``cumulative``); without phase evolving the last one in every phase."""
    raw = [_kind(bank, k) for k in cfg.temporal_kinds]
    if cfg.temporal_text_context == "cumulative":
        per_phase = [cumulative(raw[:e + 1]) for e in range(3)]
    else:
        per_phase = raw
    if not cfg.phase_evolving:
        return [per_phase[-1]] * 3
    return per_phase


def _stack(phase: list[Tensor], device: torch.device) -> Tensor | list[Tensor]:
    """One (K, n, D) tensor when every class has n descriptions (one batched product),
    else the per-class list."""
    if len({t.shape for t in phase}) == 1:
        return torch.stack(phase).to(device)
    return [t.to(device) for t in phase]


def phase_texts(bank: ClassTexts, cfg: NeuronConfig, device: torch.device
                ) -> tuple[list[Tensor | list[Tensor]], list[Tensor | list[Tensor]]]:
    """Spatial and temporal texts of phases 1-3 on ``device``."""
    spatial, temporal = spatial_texts(bank, cfg), temporal_texts(bank, cfg)
    dims = {int(t.shape[1]) for p in spatial + temporal for t in p}
    if len(dims) != 1:
        raise ZsbenchError(f"Neuron: text kinds have different embedding sizes {sorted(dims)}")
    return ([_stack(p, device) for p in spatial], [_stack(p, device) for p in temporal])


def text_dim(texts: list[Tensor | list[Tensor]]) -> int:
    """Embedding size of phase texts made by ``phase_texts`` (checked there)."""
    first = texts[0]
    return int((first if isinstance(first, Tensor) else first[0]).shape[-1])

"""MSF: the CADA-VAE pipeline of the SynSE repository with one text VAE over the fused
class-label (LB), action-description (AD) and motion-description (MD) embeddings
(official train.py: concatenation in --tm order, then one L2 normalisation), and text KL
from the third cycle on."""
from __future__ import annotations

import numpy as np

from zsbench.api import ClassTexts, ZsbenchError
from zsbench_cada_vae.method import CrossAlignedVAEMethod, unit_rows

from .config import MSFConfig


def fuse_texts(parts: list[np.ndarray], normalize_after_concat: bool = True) -> np.ndarray:
    """(K, sum D_i): concatenation of the per-kind class embeddings, L2-normalised once
    (``normalize_after_concat``) or part by part."""
    if normalize_after_concat:
        return unit_rows(np.concatenate([np.asarray(p, dtype=np.float32) for p in parts], axis=1))
    return np.concatenate([unit_rows(p) for p in parts], axis=1)


class MSF(CrossAlignedVAEMethod):
    """Li et al., "Multi-semantic fusion model for generalized zero-shot skeleton-based
    action recognition", ICIG 2023."""

    config: MSFConfig
    name = "msf"

    def text_rows(self, texts: ClassTexts) -> np.ndarray:
        missing = [k for k in self.config.kinds() if k not in texts.embeddings]
        if missing:
            raise ZsbenchError(f"msf: text kinds {missing} are not loaded (text_mode "
                               f"{self.config.text_mode!r}, kind_map {self.config.kind_map})")
        return fuse_texts([texts.matrix(k) for k in self.config.kinds()],
                          self.config.normalize_after_concat)

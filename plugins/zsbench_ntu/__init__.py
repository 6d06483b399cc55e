"""Real datasets for zsbench: NTU RGB+D 60/120 and PKU-MMD Parts I and II.

* ``plugin`` registers the datasets (cheap to import: pydantic only).
* ``prepare`` turns raw ``.skeleton`` / PKU text files into a memory-mapped store
  (``zsbench data prepare``).
* ``datasets`` loads a prepared store, or a preprocessed form a user already holds
  (CTR-GCN npz, SMIE/CrossCLR 50-frame npy, PYSKL pickles), as a ``SkeletonDataset``.
* ``features`` reads pre-extracted skeleton features (SynSE/MSF, SMIE/DVTA, Flora).

Nothing here imports torch.
"""
from __future__ import annotations

__version__ = "0.1.0"

"""``load_synthetic``: the synthetic dataset as a ``SkeletonDataset``, generated once and
then read from a verified cache (memory-mapped)."""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from zsbench.api import SkeletonDataset, ZsbenchError

from . import cache
from .config import SyntheticConfig
from .folds import builtin_splits
from .generate import generate, xsub_train_subjects
from .texts import TEXT_KINDS

NAME = "synthetic"


def cache_root(data_root: str | os.PathLike | None = None) -> Path:
    """``data_root`` or ``$ZSBENCH_CACHE`` or ``~/.cache/zsbench``, then ``synthetic``."""
    base = data_root or os.environ.get("ZSBENCH_CACHE") or Path.home() / ".cache" / "zsbench"
    return Path(base).expanduser() / NAME


def cache_folder(config: SyntheticConfig, data_root: str | os.PathLike | None = None) -> Path:
    return cache_root(data_root) / cache.fingerprint(config)[:16]


def _open(folder: Path, cfg: SyntheticConfig, fp: str) -> SkeletonDataset:
    arrays = {name: np.load(folder / f"{name}.npy", allow_pickle=False,
                            mmap_mode="r" if name == "data" else None)
              for name in cache.ARRAYS}
    classes = json.loads((folder / cache.CLASSES).read_text(encoding="utf-8"))
    data = arrays["data"]
    want = (cfg.sequences, 3, cfg.frames, 25, 2)
    if data.shape != want or data.dtype != np.float32:
        raise ValueError(f"{folder / 'data.npy'} has shape {data.shape} {data.dtype}, "
                         f"expected {want} float32")
    meta = {k: np.asarray(arrays[k], dtype=np.int64)
            for k in ("subject", "camera", "setup", "replication")}
    partitions = {
        "xsub": np.isin(meta["subject"], xsub_train_subjects(cfg.num_subjects)),
        "xview": meta["camera"] != 1,
        "xset": meta["setup"] % 2 == 0,
    }
    return SkeletonDataset(
        name=NAME, class_names=list(classes["class_names"]), labels=arrays["labels"],
        data=data, fingerprint=fp, meta=meta, partitions=partitions,
        texts={kind: folder / cache.text_file(kind) for kind in TEXT_KINDS},
        builtin_splits=builtin_splits(classes["class_primitives"], cfg.seed),
        layout="ntu25")


def load_synthetic(config: SyntheticConfig,
                   data_root: str | os.PathLike | None = None) -> SkeletonDataset:
    """Load (generating and caching on first use) the synthetic dataset for ``config``.

    The cache folder is ``cache_root(data_root) / fingerprint[:16]``. Its files are
    checked against the manifest's sha256 sums on every load; a damaged cache is reported
    with a warning and regenerated, never trusted.
    """
    cfg = config
    fp = cache.fingerprint(cfg)
    folder = cache_folder(cfg, data_root)
    problem = cache.verify(folder, fp) if folder.exists() else "not generated yet"
    if problem is None:
        try:
            return _open(folder, cfg, fp)
        except (OSError, ValueError, KeyError) as exc:
            problem = f"cannot be read ({exc})"
    if folder.exists():
        warnings.warn(f"synthetic dataset cache {folder} is invalid: {problem}; regenerating",
                      RuntimeWarning, stacklevel=2)
    cache.write(folder, cfg, fp, generate(cfg))
    try:
        return _open(folder, cfg, fp)
    except (OSError, ValueError, KeyError) as exc:
        raise ZsbenchError(f"synthetic: the freshly written cache {folder} cannot be read: "
                           f"{exc}") from exc

"""Serve pre-extracted features for a fold, with the leakage check."""
from __future__ import annotations

from typing import Any

import numpy as np

from zsbench.api import Fold, LeakageError, SkeletonDataset, ZsbenchError

from .config import PrecomputedConfig


def _check_trained_on(trained_on: list[int], fold: Fold, where: str) -> None:
    leaked = sorted(set(int(c) for c in trained_on) & set(int(c) for c in fold.unseen))
    if leaked:
        raise LeakageError(f"{where}: the feature extractor was trained on classes {leaked}, "
                           f"which are unseen in fold {fold.name}")


def fold_features(config: PrecomputedConfig, dataset: SkeletonDataset, fold: Fold
                  ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None, dict[str, Any]]:
    """Returns (features per set, labels per set or None = the dataset's, info)."""
    if config.path is None:
        raise ZsbenchError("encoder 'precomputed' needs a feature file: --set encoder.path=FILE")
    if config.layout == "aligned":
        if config.trained_on is None:
            raise ZsbenchError(f"{config.path}: declare the classes the features' extractor was "
                               "trained on: --set 'encoder.trained_on=[...]'")
        try:
            feats = np.load(config.path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ZsbenchError(f"{config.path}: cannot read a numeric .npy array ({exc})") from None
        if feats.ndim != 2 or feats.shape[0] != len(dataset):
            raise ZsbenchError(f"{config.path}: expected shape ({len(dataset)}, D) aligned with "
                               f"dataset {dataset.name!r}, got {feats.shape}")
        _check_trained_on(config.trained_on, fold, str(config.path))
        sets = {k: np.asarray(feats[np.asarray(getattr(fold, k))], dtype=np.float32)
                for k in ("train", "test_seen", "test_unseen")}
        return sets, None, {"name": "precomputed", "path": str(config.path),
                            "trained_on": sorted(config.trained_on)}
    from zsbench_ntu.features import load_precomputed_features

    pf = load_precomputed_features(config.path, layout=config.layout,
                                   num_classes=dataset.num_classes, trained_on=config.trained_on)
    pf.check_split(fold.unseen)
    _check_trained_on(list(pf.trained_on), fold, str(config.path))
    if pf.gzsl_x is not None:
        seen_rows = ~np.isin(pf.gzsl_y, fold.unseen)
        ts_x, ts_y = pf.gzsl_x[seen_rows], pf.gzsl_y[seen_rows]
    else:
        ts_x, ts_y = pf.zsl_x[:0], pf.zsl_y[:0]
    sets = {"train": pf.train_x, "test_seen": ts_x, "test_unseen": pf.zsl_x}
    labels = {"train": pf.train_y, "test_seen": ts_y, "test_unseen": pf.zsl_y}
    return ({k: np.asarray(v, dtype=np.float32) for k, v in sets.items()}, labels,
            {"name": "precomputed", **pf.split_info()})

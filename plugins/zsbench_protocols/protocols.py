"""Protocol implementations ``(spec, dataset, config) -> list[Fold]``."""
from __future__ import annotations

from typing import Any

import numpy as np

from zsbench.api import Fold, SkeletonDataset, ZsbenchError
from zsbench.splits import load_split_file

from .config import OneShotConfig
from .folds import (build_fold, builtin_splits, file_infos, pick_support, rule_for, select,
                    size_label, standard_folds)


def synse(spec: Any, dataset: SkeletonDataset, config: Any) -> list[Fold]:
    """SynSE fixed splits (NTU-60 55/5, 48/12; NTU-120 110/10, 96/24) with validation classes."""
    return standard_folds(spec, dataset, config)


def smie(spec: Any, dataset: SkeletonDataset, config: Any) -> list[Fold]:
    """SMIE three random folds per dataset (xsub); mean over the folds of a dataset."""
    return standard_folds(spec, dataset, config)


def sa_dvae(spec: Any, dataset: SkeletonDataset, config: Any) -> list[Fold]:
    """SA-DVAE three random folds per dataset (xsub, no validation classes); mean over the
    folds of a dataset."""
    return standard_folds(spec, dataset, config)


def purls(spec: Any, dataset: SkeletonDataset, config: Any) -> list[Fold]:
    """PURLS splits (SynSE sizes plus 40/20, 30/30, 80/40, 60/60)."""
    return standard_folds(spec, dataset, config)


def star(spec: Any, dataset: SkeletonDataset, config: Any) -> list[Fold]:
    """STAR/Neuron fixed or random splits under xsub / xview / xset."""
    want = config.split_set

    def keep(info) -> bool:
        random = "random" in info.group
        return want == "all" or (want == "random") == random
    return standard_folds(spec, dataset, config, keep)


def one_shot(spec: Any, dataset: SkeletonDataset, config: Any) -> list[Fold]:
    """One-shot: one labelled support sample per novel class, given at test time (Fold.support)
    and excluded from scoring."""
    assert isinstance(config, OneShotConfig)
    family = spec.family
    if family in dataset.builtin_splits:
        splits = select(builtin_splits(spec, dataset, family), config.splits,
                        lambda s: (s.id, s.name, size_label(s)), f"protocol {spec.name!r}")
        items = [(s, config.sample_rule or "xsub", None, size_label(s)) for s in splits]
        path = f"dataset {dataset.name!r} builtin_splits[{family!r}]"
    else:
        infos = select(file_infos(spec, dataset, config), config.splits,
                       lambda i: (i.split.id, i.split.name, i.group),
                       f"protocol {spec.name!r} on {dataset.name!r}")
        path = str(load_split_file(family).path)
        items = [(i.split, rule_for(i, config.sample_rule, path),
                  i.exemplars if config.use_listed_exemplars else None,
                  i.group) for i in infos]
    folds = []
    for split, rule, exemplars, group in items:
        base = build_fold(dataset, split, rule, group=group)
        support = pick_support(dataset, split, base.test_unseen, exemplars, config.support_seed,
                               f"{path}: split {split.id!r}")
        folds.append(build_fold(dataset, split, rule, group=group, support=support))
    return folds


def check_no_leak(fold: Fold, labels: np.ndarray) -> None:
    """Invariants every fold satisfies (used by tests and available to the core)."""
    unseen = set(fold.split.unseen)
    seen = set(fold.split.seen_classes)
    if any(int(c) in unseen for c in labels[fold.train]):
        raise ZsbenchError(f"fold {fold.name!r}: unseen-class sample in train")
    if any(int(c) not in unseen for c in labels[fold.test_unseen]):
        raise ZsbenchError(f"fold {fold.name!r}: seen-class sample in test_unseen")
    if any(int(c) not in seen for c in labels[fold.test_seen]):
        raise ZsbenchError(f"fold {fold.name!r}: unseen-class sample in test_seen")
    if fold.support is not None and np.intersect1d(fold.support, fold.test_unseen).size:
        raise ZsbenchError(f"fold {fold.name!r}: support sample scored in test_unseen")
    if np.intersect1d(fold.train, np.concatenate([fold.test_unseen, fold.test_seen])).size:
        raise ZsbenchError(f"fold {fold.name!r}: a sample is both train and test")

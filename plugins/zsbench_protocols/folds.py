"""Turning class splits and sample rules into folds (shared by every protocol).

A fold = ClassSplit + sample rule applied to ``dataset.partitions``:

* ``train``       = training-part samples of seen classes only,
* ``test_unseen`` = test-part samples of unseen classes (minus one-shot support samples),
* ``test_seen``   = test-part samples of seen classes (GZSL adds them),
* classes in neither set (``ClassSplit.seen`` given explicitly) are dropped everywhere.

The rule ``all`` (official NTU-120 one-shot) has no partition: every sample is a training
sample (seen classes) or a test sample (unseen classes).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from zsbench.api import ClassSplit, Fold, SkeletonDataset, ZsbenchError
from zsbench.splits import (SplitInfo, canonical_dataset, check_class_names, load_split_file)

EMPTY = np.zeros(0, dtype=np.int64)


def size_label(split: ClassSplit) -> str:
    return f"{len(split.seen_classes)}/{len(split.unseen)}"


def partition(dataset: SkeletonDataset, rule: str, where: str) -> np.ndarray:
    """The boolean training-part mask of ``rule`` (True = training part)."""
    if rule not in dataset.partitions:
        raise ZsbenchError(f"{where}: dataset {dataset.name!r} has no sample partition {rule!r}; "
                           f"available: {sorted(dataset.partitions) or 'none'}")
    part = np.asarray(dataset.partitions[rule])
    if part.dtype != bool or part.shape != (len(dataset),):
        raise ZsbenchError(f"dataset {dataset.name!r}: partitions[{rule!r}] must be a boolean "
                           f"array of length {len(dataset)}, got {part.dtype} {part.shape}")
    return part


def build_fold(dataset: SkeletonDataset, split: ClassSplit, rule: str, *, group: str = "",
               name: str | None = None, part: np.ndarray | None = None,
               support: Sequence[int] | None = None) -> Fold:
    """Apply a class split and a sample rule to a dataset. ``part`` overrides the partition
    mask (True = training part); ``support`` indices are removed from ``test_unseen``."""
    name = name or f"{split.id}/{rule}"
    where = f"fold {name!r}"
    if split.num_classes != dataset.num_classes:
        raise ZsbenchError(f"{where}: split {split.id!r} has {split.num_classes} classes, "
                           f"dataset {dataset.name!r} has {dataset.num_classes}")
    split.validate(where)
    if part is None:
        part = (np.ones(len(dataset), dtype=bool) if rule == "all"
                else partition(dataset, rule, where))
    labels = dataset.labels
    seen = np.isin(labels, np.asarray(split.seen_classes, dtype=np.int64))
    unseen = np.isin(labels, np.asarray(split.unseen, dtype=np.int64))
    if rule == "all":
        train, test_unseen, test_seen = seen, unseen, np.zeros(len(dataset), dtype=bool)
    else:
        train, test_unseen, test_seen = part & seen, ~part & unseen, ~part & seen
    test_unseen_idx = np.flatnonzero(test_unseen).astype(np.int64)
    sup = None
    if support is not None:
        sup = np.asarray(support, dtype=np.int64)
        test_unseen_idx = np.setdiff1d(test_unseen_idx, sup)
    fold = Fold(name=name, dataset=dataset.name, split=split,
                train=np.flatnonzero(train).astype(np.int64), test_unseen=test_unseen_idx,
                test_seen=np.flatnonzero(test_seen).astype(np.int64), sample_rule=rule,
                support=sup, group=group)
    if not len(fold.train):
        raise ZsbenchError(f"{where}: no training samples of seen classes under rule {rule!r}")
    if not len(fold.test_unseen):
        raise ZsbenchError(f"{where}: no test samples of unseen classes under rule {rule!r}")
    return fold


def select(items: Sequence[Any], wanted: Iterable[str] | None, keys, what: str) -> list[Any]:
    """Items whose keys (id, name, group...) match one of ``wanted`` (None = all)."""
    if wanted is None:
        return list(items)
    wanted = [str(w) for w in wanted]
    out = [it for it in items if any(k in wanted for k in keys(it))]
    matched = {k for it in out for k in keys(it)}
    unknown = [w for w in wanted if w not in matched]
    if unknown:
        avail = sorted({k for it in items for k in keys(it) if k})
        raise ZsbenchError(f"{what}: unknown split selection {unknown}; available: {avail}")
    return out


def unsupported(spec: Any, dataset: SkeletonDataset) -> ZsbenchError:
    return ZsbenchError(
        f"protocol {spec.name!r} does not support dataset {dataset.name!r}: it runs on "
        f"{', '.join(spec.datasets)} (splits/{spec.family}.json) and on datasets that define "
        f"builtin_splits[{spec.family!r}] (the embedded benchmark)")


def builtin_splits(spec: Any, dataset: SkeletonDataset, family: str) -> list[ClassSplit]:
    where = f"dataset {dataset.name!r} builtin_splits[{family!r}]"
    splits = list(dataset.builtin_splits.get(family) or [])
    if not splits:
        raise ZsbenchError(f"{where}: empty")
    for s in splits:
        s.validate(where)
        if s.num_classes != dataset.num_classes:
            raise ZsbenchError(f"{where}: split {s.id!r} has {s.num_classes} classes, the "
                               f"dataset {dataset.num_classes}")
    return splits


def file_infos(spec: Any, dataset: SkeletonDataset, config: Any) -> list[SplitInfo]:
    """The split-file entries for a real dataset, class names checked."""
    key = dataset.split_key or canonical_dataset(dataset.name)
    fam = load_split_file(spec.family)
    infos = [i for i in fam.infos if key is not None and i.split.dataset == key]
    if not infos:
        raise unsupported(spec, dataset)
    if getattr(config, "check_class_names", True):
        for info in infos:
            check_class_names(info, dataset.class_names,
                              f"dataset {dataset.name!r} vs {fam.path.name}")
    return infos


def rule_for(info: SplitInfo, requested: str | None, path: str) -> str:
    rule = requested or info.default_rule
    if rule not in info.sample_rules:
        raise ZsbenchError(f"{path}: split {info.split.id!r}: field 'sample_rules' allows "
                           f"{list(info.sample_rules)}, not {rule!r}")
    return rule


def standard_folds(spec: Any, dataset: SkeletonDataset, config: Any,
                   keep=lambda info: True) -> list[Fold]:
    """Folds of a split-file family: builtin splits for the embedded benchmark, the split
    file (filtered by ``keep``) for real datasets."""
    family = spec.family
    if family in dataset.builtin_splits:
        splits = select(builtin_splits(spec, dataset, family), config.splits,
                        lambda s: (s.id, s.name, size_label(s)), f"protocol {spec.name!r}")
        rule = config.sample_rule or "xsub"
        return [build_fold(dataset, s, rule, group=size_label(s)) for s in splits]
    infos = [i for i in file_infos(spec, dataset, config) if keep(i)]
    infos = select(infos, config.splits, lambda i: (i.split.id, i.split.name, i.group),
                   f"protocol {spec.name!r} on {dataset.name!r}")
    path = str(load_split_file(family).path)
    folds = []
    for info in infos:
        split = info.split
        if not getattr(config, "use_validation", True):
            split = replace(split, validation_unseen=None)
        folds.append(build_fold(dataset, split, rule_for(info, config.sample_rule, path),
                                group=info.group))
    return folds


def stem(name: str) -> str:
    return Path(str(name)).name.split(".")[0]


def pick_support(dataset: SkeletonDataset, split: ClassSplit, candidates: np.ndarray,
                 exemplars: Sequence[str] | None, seed: int | None, where: str) -> np.ndarray:
    """One support sample per unseen class (in sorted class order)."""
    labels = dataset.labels
    if exemplars is not None:
        if dataset.sample_names is None:
            raise ZsbenchError(f"{where}: field 'exemplars' names samples, but dataset "
                               f"{dataset.name!r} has no sample_names")
        pos = {stem(n): i for i, n in enumerate(dataset.sample_names)}
        out = {}
        for k, (cls, ex) in enumerate(zip(split.unseen, exemplars)):
            if stem(ex) not in pos:
                raise ZsbenchError(f"{where}: field 'exemplars[{k}]': sample {ex!r} is not in "
                                   f"dataset {dataset.name!r}")
            idx = pos[stem(ex)]
            if labels[idx] != cls:
                raise ZsbenchError(f"{where}: field 'exemplars[{k}]': sample {ex!r} has class "
                                   f"{int(labels[idx])}, expected {cls}")
            out[cls] = idx
        return np.asarray([out[c] for c in sorted(out)], dtype=np.int64)
    rng = np.random.default_rng(seed) if seed is not None else None
    chosen = []
    for cls in sorted(split.unseen):
        cand = candidates[labels[candidates] == cls]
        if len(cand) < 2:
            raise ZsbenchError(f"{where}: novel class {cls} has {len(cand)} candidate samples; "
                               "one-shot needs a support sample and at least one test sample")
        chosen.append(int(cand[0] if rng is None else rng.choice(cand)))
    return np.asarray(chosen, dtype=np.int64)

"""The cross-dataset protocol (PGFA Table X) and its embedded-benchmark analogue.

Real datasets (NTU-60 <-> PKU-MMD I): the given dataset and its partner (loaded through
``config.loader``) are merged into one ``SkeletonDataset`` named ``ntu60+pku_mmd1``-style
(NTU-60 classes 0..59, PKU classes 60..110; data concatenated lazily). A fold trains on the
source dataset's training-part samples of its seen classes and tests on the target dataset's
test-part samples of its unseen classes; ``Fold.data_source`` is the merged dataset.

Embedded benchmark: there is one dataset, so the two "datasets" are the two parts of a
partition (``domain_rule``, default xview: training cameras vs the test camera). Forward
trains on domain A (training part) and tests on domain B; backward the reverse. Class splits:
``builtin_splits['cross_dataset']`` if the dataset defines it, else its SMIE-style folds.
"""
from __future__ import annotations

import hashlib
from typing import Any, Sequence

import numpy as np

from zsbench.api import Fold, SkeletonDataset, ZsbenchError
from zsbench.splits import canonical_dataset, class_names, load_split_file, normalise_name

from .folds import EMPTY, build_fold, builtin_splits, partition, select, size_label, unsupported

ORDER = ("ntu60", "pku_mmd1")
# registry names of the partner datasets (zsbench_ntu registers PKU-MMD Part I as pku_mmd)
PARTNER_NAMES = {"ntu60": "ntu60", "pku_mmd1": "pku_mmd"}


class ConcatArray:
    """Read-only concatenation of sample arrays along axis 0 without copying them (parts may
    be ``np.memmap``). Supports integer, slice, integer-array and boolean-mask indexing."""

    def __init__(self, parts: Sequence[Any]) -> None:
        tails = {tuple(p.shape[1:]) for p in parts}
        if len(tails) != 1:
            raise ZsbenchError(f"cannot merge sample arrays of shapes {[p.shape for p in parts]}: "
                               "prepare both datasets with the same frames/joints/bodies")
        self.parts = list(parts)
        self.offsets = np.cumsum([0] + [len(p) for p in parts])
        self.shape = (int(self.offsets[-1]),) + tails.pop()
        self.dtype = np.result_type(*[p.dtype for p in parts])
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def _rows(self, idx: np.ndarray) -> np.ndarray:
        out = np.empty((len(idx),) + self.shape[1:], dtype=self.dtype)
        which = np.searchsorted(self.offsets, idx, side="right") - 1
        for k, part in enumerate(self.parts):
            m = which == k
            if m.any():
                out[m] = np.asarray(part[idx[m] - self.offsets[k]])
        return out

    def __getitem__(self, key: Any) -> np.ndarray:
        rest: tuple = ()
        if isinstance(key, tuple):
            key, rest = key[0], key[1:]
        if isinstance(key, (int, np.integer)):
            i = int(key) + (len(self) if key < 0 else 0)
            if not 0 <= i < len(self):
                raise IndexError(f"index {key} out of range for {len(self)} samples")
            k = int(np.searchsorted(self.offsets, i, side="right") - 1)
            row = np.asarray(self.parts[k][i - self.offsets[k]])
            return row[rest] if rest else row
        if isinstance(key, slice):
            idx = np.arange(len(self))[key]
        else:
            idx = np.asarray(key)
            if idx.dtype == bool:
                idx = np.flatnonzero(idx)
            idx = np.where(idx < 0, idx + len(self), idx).astype(np.int64)
        out = self._rows(idx)
        return out[(slice(None),) + rest] if rest else out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self._rows(np.arange(len(self)))
        return out.astype(dtype) if dtype is not None else out


def merge_datasets(first: SkeletonDataset, second: SkeletonDataset) -> SkeletonDataset:
    """One dataset holding both: labels of ``second`` offset by ``first.num_classes``; meta
    columns and partitions both have are concatenated; meta gains ``domain`` (0/1)."""
    if first.layout != second.layout:
        raise ZsbenchError(f"cannot merge {first.name!r} ({first.layout}) and {second.name!r} "
                           f"({second.layout}): different skeleton layouts")
    n1, n2 = len(first), len(second)
    meta = {k: np.concatenate([np.asarray(first.meta[k]), np.asarray(second.meta[k])])
            for k in first.meta if k in second.meta}
    meta["domain"] = np.concatenate([np.zeros(n1, np.int64), np.ones(n2, np.int64)])
    parts = {k: np.concatenate([np.asarray(first.partitions[k], bool),
                                np.asarray(second.partitions[k], bool)])
             for k in first.partitions if k in second.partitions}
    names = None
    if first.sample_names is not None and second.sample_names is not None:
        names = list(first.sample_names) + list(second.sample_names)
    fp = hashlib.sha256(f"{first.fingerprint}+{second.fingerprint}".encode()).hexdigest()[:16]
    return SkeletonDataset(
        name=f"{first.name}+{second.name}", class_names=first.class_names + second.class_names,
        labels=np.concatenate([first.labels, second.labels + first.num_classes]),
        data=ConcatArray([first.data, second.data]), fingerprint=fp, meta=meta,
        partitions=parts, sample_names=names, layout=first.layout)


def _check_names(ds: SkeletonDataset, key: str) -> None:
    ref = class_names(key)
    if len(ds.class_names) != len(ref):
        raise ZsbenchError(f"dataset {ds.name!r}: {len(ds.class_names)} classes, "
                           f"splits/cross_dataset.json expects {len(ref)} ({key})")
    for i, (a, b) in enumerate(zip(ds.class_names, ref)):
        if normalise_name(a) != normalise_name(b):
            raise ZsbenchError(f"dataset {ds.name!r}: class {i} is {a!r}, splits/classes "
                               f"list of {key} has {b!r}")


def _real(spec: Any, dataset: SkeletonDataset, config: Any, key: str) -> list[Fold]:
    fam = load_split_file("cross_dataset")
    partner_key = ORDER[1] if key == ORDER[0] else ORDER[0]
    partner_name = config.partner or PARTNER_NAMES[partner_key]
    if config.loader is None:
        raise ZsbenchError(f"protocol {spec.name!r} on {dataset.name!r} needs the partner "
                           f"dataset {partner_name!r}: set config.loader (a callable "
                           "name -> SkeletonDataset; the runner provides it)")
    partner = config.loader(partner_name)
    if (partner.split_key or canonical_dataset(partner.name)) != partner_key:
        raise ZsbenchError(f"protocol {spec.name!r}: loader returned {partner.name!r} for "
                           f"{partner_name!r}, expected a {partner_key} dataset")
    for ds, k in ((dataset, key), (partner, partner_key)):
        _check_names(ds, k)
    first, second = (dataset, partner) if key == ORDER[0] else (partner, dataset)
    merged = merge_datasets(first, second)
    pairs = [p for p in fam.pairs if config.direction == "both"
             or (config.direction == "forward") == (p.source == key)]
    pairs = select(pairs, config.splits,
                   lambda p: (p.id, str(p.raw.get("class_split")), str(p.raw.get("name", ""))),
                   f"protocol {spec.name!r}")
    drop = config.name_overlap == "drop_from_train"
    folds = []
    for p in pairs:
        split = p.class_split(ORDER, drop_overlap=drop)
        fold = build_fold(merged, split, config.sample_rule,
                          group=p.group + (" drop_overlap" if drop else ""),
                          name=f"{split.id}/{config.sample_rule}")
        fold.test_seen, fold.data_source = EMPTY, merged
        folds.append(fold)
    return folds


def _analogue(spec: Any, dataset: SkeletonDataset, config: Any, splits: list) -> list[Fold]:
    rule = config.domain_rule
    part = partition(dataset, rule, f"protocol {spec.name!r}")
    splits = select(splits, config.splits, lambda s: (s.id, s.name, size_label(s)),
                    f"protocol {spec.name!r}")
    dirs = {"both": ("A->B", "B->A"), "forward": ("A->B",), "backward": ("B->A",)}
    folds = []
    for s in splits:
        for d in dirs[config.direction]:
            fold = build_fold(dataset, s, rule, group=f"{rule}:{d}", name=f"{s.id}/{rule}:{d}",
                              part=part if d == "A->B" else ~part)
            fold.test_seen = EMPTY
            folds.append(fold)
    return folds


def cross_dataset(spec: Any, dataset: SkeletonDataset, config: Any) -> list[Fold]:
    """Train on one dataset's seen classes, test on the other's unseen classes (ZSL)."""
    key = dataset.split_key or canonical_dataset(dataset.name)
    if key in ORDER:
        return _real(spec, dataset, config, key)
    for family in ("cross_dataset", "smie"):
        if dataset.builtin_splits.get(family):
            return _analogue(spec, dataset, config, builtin_splits(spec, dataset, family))
    raise unsupported(spec, dataset)

"""Sample rules (xsub / xview / xset) from ``splits/sample_rules.json`` and class lists."""
from __future__ import annotations

from functools import lru_cache
from typing import Mapping

import numpy as np

from zsbench.api import ZsbenchError
from zsbench.resources import load_json, splits_path

from .config import DatasetInfo

_RULE_COLUMNS = {"xsub": ("subject", "train_subject_ids"),
                 "xview": ("camera", "train_camera_ids"),
                 "xset": ("setup", "train_setup_ids")}


@lru_cache(maxsize=None)
def class_names(info: DatasetInfo) -> tuple[str, ...]:
    path = splits_path(info.classes_file)
    names = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if len(names) != info.num_classes:
        raise ZsbenchError(f"{path}: {len(names)} class names, {info.title} has {info.num_classes}")
    return tuple(names)


def ntu_rule_partitions(info: DatasetInfo, samples: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Training-part masks of the dataset's benchmarks computed from the NTU name fields."""
    rules = load_json("sample_rules.json").get(info.name)
    if not isinstance(rules, dict):
        raise ZsbenchError(f"sample_rules.json has no entry for {info.name}")
    out = {}
    for bench in info.benchmarks:
        column, key = _RULE_COLUMNS[bench]
        ids = rules.get(bench, {}).get(key)
        if ids is None:
            raise ZsbenchError(f"sample_rules.json: {info.name}.{bench}.{key} missing")
        if column in samples:
            out[bench] = np.isin(samples[column], np.asarray(ids, dtype=np.int64))
    return out


def apply_sample_rule(dataset: str, rule: str, meta: Mapping[str, np.ndarray]) -> np.ndarray:
    """Training-part mask of an NTU benchmark (``dataset``: ``ntu60``/``ntu120``) from
    per-sample id columns (``subject``, ``camera``, ``setup``; 1-based as in file names).
    PKU-MMD partitions come from the release's video lists, not from ids."""
    rules = load_json("sample_rules.json")
    if dataset not in ("ntu60", "ntu120"):
        raise ZsbenchError(f"sample rules from ids exist for ntu60/ntu120 only, not {dataset!r}")
    if rule not in rules[dataset] or rule not in _RULE_COLUMNS:
        have = [r for r in _RULE_COLUMNS if r in rules[dataset]]
        raise ZsbenchError(f"sample_rules.json: {dataset} has no rule {rule!r}; available: {have}")
    column, ids_key = _RULE_COLUMNS[rule]
    if column not in meta:
        raise ZsbenchError(f"dataset {dataset!r}: meta column {column!r} needed by {rule}")
    return np.isin(np.asarray(meta[column]), rules[dataset][rule][ids_key])


def ntu_sample_names(dataset: str, usable: bool = True) -> list[str]:
    """Every NTU sample name of ``ntu60``/``ntu120`` (sorted), from the shipped inventory;
    ``usable`` drops the official missing-skeleton list."""
    if dataset not in ("ntu60", "ntu120"):
        raise ZsbenchError(f"NTU inventory covers ntu60/ntu120 only, not {dataset!r}")
    inv = load_json("ntu_inventory.json")
    names = []
    for s, performers in inv["setups"].items():
        setup = int(s)
        if dataset == "ntu60" and setup > 17:
            continue
        acts = range(1, 61) if setup <= 17 else range(61, 121)
        names += [f"S{setup:03d}C{c:03d}P{p:03d}R{r:03d}A{a:03d}" for p in performers
                  for c in inv["cameras"] for r in inv["replications"] for a in acts]
    if usable:
        missing = set(inv["missing"][dataset])
        names = [n for n in names if n not in missing]
    return sorted(names)


def partitions(info: DatasetInfo, samples: dict[str, np.ndarray]
               ) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Stored ``train_<bench>`` columns win (PKU split files, PYSKL split lists, a CTR-GCN
    file's own parts); NTU benchmarks without one are computed from the rules. Also returns
    the number of samples where a stored column disagrees with the NTU rule."""
    rule = ntu_rule_partitions(info, samples) if info.family == "ntu" else {}
    out, disagree = {}, {}
    for bench in info.benchmarks:
        stored = samples.get(f"train_{bench}")
        if stored is not None:
            out[bench] = np.asarray(stored, dtype=bool)
            if bench in rule:
                disagree[bench] = int((rule[bench] != out[bench]).sum())
        elif bench in rule:
            out[bench] = rule[bench]
    return out, disagree

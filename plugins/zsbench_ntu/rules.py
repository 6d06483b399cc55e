"""Sample rules (xsub / xview / xset) from ``splits/sample_rules.json`` and class lists."""
from __future__ import annotations

from functools import lru_cache

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

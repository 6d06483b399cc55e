"""Registration of the real datasets: NTU RGB+D 60/120 and PKU-MMD Parts I/II.

Importing this module is cheap (pydantic config models only); the loaders, the raw
preparation and the readers are referenced lazily.
"""
from __future__ import annotations

import zsbench
from zsbench.specs import DatasetSpec

from .config import DATASETS, DatasetConfig

_DESCRIPTIONS = {
    "ntu60": "NTU RGB+D 60: 56,578 usable samples, 60 classes, benchmarks xsub and xview.",
    "ntu120": "NTU RGB+D 120: 113,945 usable samples, 120 classes, benchmarks xsub and xset.",
    "pku_mmd": "PKU-MMD Part I: clips cut from 1,076 videos by the label files, 51 classes, "
               "benchmarks xsub and xview (official split files).",
    "pku_mmd2": "PKU-MMD Part II: clips cut from the Part II videos, 51-class id space, "
                "benchmarks xsub and xview (split files from the release).",
}
_CLASS_REFS = {"ntu60": "NTU60", "ntu120": "NTU120", "pku_mmd": "PKU_MMD", "pku_mmd2": "PKU_MMD"}
_FAMILY = {"ntu60": "ntu60", "ntu120": "ntu120", "pku_mmd": "pku_mmd", "pku_mmd2": "pku_mmd"}
_SPLIT_KEY = {"ntu60": "ntu60", "ntu120": "ntu120", "pku_mmd": "pku_mmd1", "pku_mmd2": "pku_mmd2"}
_RAW = {"ntu": "the folder(s) holding the .skeleton files (searched recursively)",
        "pku": "the release folder holding the skeleton, label and Split folders"}


@zsbench.hookimpl
def zsbench_datasets() -> list[DatasetSpec]:
    specs = []
    for name, info in DATASETS.items():
        specs.append(DatasetSpec(
            name=name, impl=f"zsbench_ntu.datasets:{name}", config=DatasetConfig,
            class_names_ref=f"zsbench_ntu.classlists:{_CLASS_REFS[name]}", real=True,
            family=_FAMILY[name], split_key=_SPLIT_KEY[name],
            prepare="zsbench_ntu.prepare:prepare",
            prepare_hint=f"zsbench data prepare {name} --raw DIR [--out DATA_ROOT] "
                         f"[--frames 50|64|300]  (DIR: {_RAW[info.family]}; "
                         "see docs/datasets.md)",
            description=_DESCRIPTIONS[name]))
    return specs

"""Class-name lists (``DatasetSpec.class_names_ref`` points here): read from the product's
``splits/classes/*.txt`` when this module is imported (small text files, no heavy imports)."""
from __future__ import annotations

from .config import DATASETS
from .rules import class_names

NTU60: list[str] = list(class_names(DATASETS["ntu60"]))
NTU120: list[str] = list(class_names(DATASETS["ntu120"]))
PKU_MMD: list[str] = list(class_names(DATASETS["pku_mmd"]))

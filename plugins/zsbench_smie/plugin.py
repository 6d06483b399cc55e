"""Registers SMIE (sequences, full method) and smie_features (pooled features, MI term only);
no torch at import time."""
from __future__ import annotations

import zsbench
from zsbench.specs import MethodSpec

from .config import SMIEConfig, SMIEFeaturesConfig

PAPER = ("Y. Zhou, W. Qiang, A. Rao, N. Lin, B. Su, J. Wang, \"Zero-shot Skeleton-based Action "
         "Recognition via Mutual Information Estimation and Maximization\", ACM MM 2023, "
         "pp. 5302-5310 (arXiv 2308.03950); code YujieOuO/SMIE")


@zsbench.hookimpl
def zsbench_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="smie", smoke_overrides={'epochs': 2, 'warmup_epochs': 0, 'pretrain_epochs': 2}, impl="zsbench_smie.method:SMIE", config=SMIEConfig,
            inputs="sequences", text_kinds=["name"], transductive=False,
            default_encoder="stgcn", paper=PAPER, reported="zsbench_smie:reported.csv",
            description="JSD mutual-information critic between frozen seen-class-pretrained "
                        "skeleton features and class texts, plus the temporal constraint on "
                        "motion-masked sequences (official main track)"),
        MethodSpec(
            name="smie_features", impl="zsbench_smie.method:SMIE", config=SMIEFeaturesConfig,
            inputs="features", text_kinds=["name"], transductive=False,
            default_encoder="stgcn", paper=PAPER, reported="zsbench_smie:reported.csv",
            description="SMIE's MI critic alone on the run's pooled features (official "
                        "Setting II track; no temporal constraint)"),
    ]

"""Registration of the built-in protocols (entry point ``protocols``)."""
from __future__ import annotations

import zsbench
from zsbench.specs import ProtocolSpec

from .config import CrossDatasetConfig, OneShotConfig, ProtocolConfig, StarConfig, SynseConfig

_IMPL = "zsbench_protocols.protocols:"


@zsbench.hookimpl
def zsbench_protocols() -> list[ProtocolSpec]:
    return [
        ProtocolSpec(
            name="synse", family="synse", impl=_IMPL + "synse", config=SynseConfig,
            datasets=["ntu60", "ntu120"], settings=["zsl", "gzsl"],
            description="SynSE fixed splits: NTU-60 55/5, 48/12; NTU-120 110/10, 96/24 "
                        "(one fold per size, validation classes for GZSL calibration)",
            sources=["skelemoa/synse-zsl:README.md@90f39a118170d708843c5d4305bd807905cb4c54",
                     "EHZ9NIWI7/MSF-GZSSAR:label_splits@e647095eda88bd7aeaeaad54db79dc5a7824ec89"]),
        ProtocolSpec(
            name="smie", family="smie", impl=_IMPL + "smie", config=ProtocolConfig,
            datasets=["ntu60", "ntu120", "pku_mmd1"], settings=["zsl"],
            description="SMIE random splits: 3 folds each of NTU-60 55/5, NTU-120 110/10, "
                        "PKU-MMD I 46/5 (xsub); mean over the folds of a dataset",
            sources=["YujieOuO/SMIE:split.py@fa41f1d218621ab220c1b2186b513c0bcdee88c6",
                     "kaai520/PGFA:config.py@3e09542b98ac3af8a1ec84df85247c060d0932b8"]),
        ProtocolSpec(
            name="star", family="star", impl=_IMPL + "star", config=StarConfig,
            datasets=["ntu60", "ntu120", "pku_mmd1", "pku_mmd2"], settings=["zsl", "gzsl"],
            description="STAR/Neuron splits: NTU-60 55/5, 48/12 (xsub, xview); NTU-120 110/10, "
                        "96/24 (xsub, xset); PKU-MMD 46/5, 39/12 (xsub, xview); random splits",
            sources=["cseeyangchen/STAR:feeders/feeder_ntu.py@917ca673162e344f65b50328f2d4d7a1fe58bc7b",
                     "cseeyangchen/Neuron:feeders/feeder_pku.py@7939873c2f63c24e591bca65de8fabc2b3ac90d6"]),
        ProtocolSpec(
            name="purls", family="purls", impl=_IMPL + "purls", config=ProtocolConfig,
            datasets=["ntu60", "ntu120"], settings=["zsl"],
            description="PURLS splits: NTU-60 55/5, 48/12, 40/20, 30/30; NTU-120 110/10, "
                        "96/24, 80/40, 60/60",
            sources=["azzh1/PURLS:supplements/label_splits@7198fe74ac114b37dd93d57a6946034d24ac1aff"]),
        ProtocolSpec(
            name="one_shot", family="one_shot", impl=_IMPL + "one_shot", config=OneShotConfig,
            datasets=["ntu60", "ntu120", "pku_mmd1"], settings=["zsl"],
            description="One-shot: NTU-60 50/10, NTU-120 100/20 (official), PKU-MMD I 41/10; "
                        "one support sample per novel class (Fold.support, not scored)",
            sources=["shahroudy/NTURGB-D:README.md@ac2ebc87e6e9777ea6bac67e65e53b325b903f74",
                     "kaai520/PGFA:one_shot_config.py@3e09542b98ac3af8a1ec84df85247c060d0932b8"]),
        ProtocolSpec(
            name="sa_dvae", family="sa_dvae", impl=_IMPL + "sa_dvae", config=ProtocolConfig,
            datasets=["ntu60", "ntu120", "pku_mmd1"], settings=["zsl"],
            description="SA-DVAE random splits: 3 folds each of NTU-60 55/5, NTU-120 110/10, "
                        "PKU-MMD I 46/5 (xsub); mean over the folds of a dataset; ZSL only (no "
                        "validation classes published); single source (Flora's copy), NTU "
                        "split numbering unverified; not SMIE's splits",
            sources=["pha123661/SA-DVAE:scripts/train_eval_average_random_split.sh@"
                     "90d99b837d7d24cc414f77ea121621982d52cf41",
                     "cseeyangchen/Flora:utils/utils.py@5ce56fdafd58a5cdd144554b2b381c19855e52d7"]),
        ProtocolSpec(
            name="cross_dataset", family="cross_dataset",
            impl="zsbench_protocols.cross:cross_dataset", config=CrossDatasetConfig,
            datasets=["ntu60", "pku_mmd1"], settings=["zsl"],
            description="Cross-dataset (PGFA): train on NTU-60 (PKU-MMD I) seen classes, test on "
                        "PKU-MMD I (NTU-60) unseen classes; 3 class splits per direction",
            sources=["paper: PGFA (IEEE TIP 2025) Sec. IV-F.3, Table X",
                     "kaai520/PGFA:config.py@3e09542b98ac3af8a1ec84df85247c060d0932b8"]),
    ]

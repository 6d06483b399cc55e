"""Dataset implementations: ``(config, data_root) -> SkeletonDataset``.

The data is always a memory-mapped store (``np.load(mmap_mode="r")``): the prepared one,
or one converted once from a preprocessed form the user holds. Missing data is an error
that says where it looked and the exact command to prepare it; nothing else is ever
substituted.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from zsbench.api import SkeletonDataset, ZsbenchError

from .config import DATASETS, DatasetConfig, DatasetInfo
from .rules import class_names, partitions
from .store import StoreMissing, dataset_dir, default_data_root, load_store, store_dir

RAW_HINT = {"ntu": "nturgb+d_skeletons", "pku": "PKU-MMD"}
FORM_DEFAULT_DIR = {"ctrgcn_npz": "ctrgcn", "smie_npy": "frame50", "pyskl": "pyskl"}
PYSKL_FILES = {"ntu60": ("ntu60_3danno.pkl", "ntu60_3d.pkl", "ntu120_3danno.pkl", "ntu120_3d.pkl"),
               "ntu120": ("ntu120_3danno.pkl", "ntu120_3d.pkl")}


def prepare_command(info: DatasetInfo, root: Path, frames: int) -> str:
    return (f"zsbench data prepare {info.name} --raw /path/to/{RAW_HINT[info.family]} "
            f"--out {root} --frames {frames}")


def _missing_message(info: DatasetInfo, root: Path, frames: int, looked: Path) -> str:
    base = looked.parent
    others = sorted(p.name for p in base.glob("frames*")
                    if (p / "manifest.json").is_file()) if base.is_dir() else []
    msg = (f"{info.title} is not prepared for {frames} frames: no store at {looked} "
           f"(manifest.json missing).\nPrepare it from the raw files with:\n  "
           f"{prepare_command(info, root, frames)}")
    if others:
        msg += f"\nPrepared copies exist for: {', '.join(others)} (choose that frames value)."
    msg += ("\nIf you hold a preprocessed copy (CTR-GCN npz, SMIE 50-frame npy"
            f"{', PYSKL pickle' if info.family == 'ntu' else ''}), set the dataset option "
            "form=... instead; see docs/datasets.md.")
    return msg


def _source_path(info: DatasetInfo, cfg: DatasetConfig, root: Path) -> Path:
    base = Path(cfg.path).expanduser() if cfg.path else \
        dataset_dir(root, info.name) / FORM_DEFAULT_DIR[cfg.form]
    bench = cfg.benchmark or "xsub"
    if bench not in info.benchmarks:
        raise ZsbenchError(f"{info.title} has no benchmark {bench!r} "
                           f"(has {', '.join(info.benchmarks)})")
    if cfg.form == "ctrgcn_npz":
        from .forms import CTRGCN_FILES

        names = CTRGCN_FILES[info.name][bench]
        cands = [base] if base.is_file() else [base / n for n in names]
    elif cfg.form == "smie_npy":
        cands = [base / bench, base] if base.is_dir() else []
    else:
        if info.family != "ntu":
            raise ZsbenchError(f"form=pyskl is for NTU RGB+D; {info.title} has no PYSKL file")
        cands = [base] if base.is_file() else [base / n for n in PYSKL_FILES[info.name]]
    for c in cands:
        if (cfg.form == "smie_npy" and (c / "train_position.npy").is_file()) or \
                (cfg.form != "smie_npy" and c.is_file()):
            return c
    where = ", ".join(str(c) for c in cands) or str(base)
    raise ZsbenchError(
        f"{info.title}, form={cfg.form}: no files found; looked for {where}. Put the files "
        f"there or set the dataset option path=...; see docs/datasets.md. To prepare from the "
        f"raw files instead:\n  {prepare_command(info, root, cfg.frames)}")


def load_dataset(name: str, config: DatasetConfig,
                 data_root: Path | str | None) -> SkeletonDataset:
    info = DATASETS[name]
    cfg = config
    root = Path(data_root).expanduser() if data_root else default_data_root()
    if cfg.form == "prepared":
        folder = store_dir(root, name, cfg.frames)
        try:
            data, samples, manifest = load_store(folder)
        except StoreMissing:
            raise ZsbenchError(_missing_message(info, root, cfg.frames, folder)) from None
    else:
        src = _source_path(info, cfg, root)
        cache = Path(cfg.cache).expanduser() if cfg.cache else dataset_dir(root, name) / "imported"
        bench = cfg.benchmark or "xsub"
        if cfg.form == "ctrgcn_npz":
            from .forms import convert_ctrgcn

            folder = convert_ctrgcn(info, src, bench, cfg.frames, cache)
        elif cfg.form == "smie_npy":
            if cfg.frames != 50:
                raise ZsbenchError("form=smie_npy holds 50-frame arrays; set frames=50 "
                                   f"(got {cfg.frames})")
            from .forms import convert_smie

            folder = convert_smie(info, src, bench, cache)
        else:
            from .pyskl import convert_pyskl

            folder = convert_pyskl(info, src, cfg.frames, cache)
        data, samples, manifest = load_store(folder)
    return build_dataset(info, data, samples, manifest)


def build_dataset(info: DatasetInfo, data: np.ndarray, samples: dict[str, np.ndarray],
                  manifest: dict) -> SkeletonDataset:
    if manifest.get("dataset") != info.name:
        raise ZsbenchError(f"store of {manifest.get('dataset')!r} found where {info.name!r} "
                           "was expected")
    parts, _ = partitions(info, samples)
    meta_cols = ("subject", "camera", "setup", "replication", "video", "row", "length")
    meta = {c: np.asarray(samples[c], dtype=np.int64) for c in meta_cols if c in samples}
    names = [str(n) for n in samples["name"]] if "name" in samples else None
    return SkeletonDataset(
        name=info.name, class_names=list(class_names(info)), labels=samples["label"],
        data=data, fingerprint=manifest["fingerprint"], meta=meta, partitions=parts,
        sample_names=names, layout="ntu25")


def ntu60(config: DatasetConfig, data_root: Path | None) -> SkeletonDataset:
    return load_dataset("ntu60", config, data_root)


def ntu120(config: DatasetConfig, data_root: Path | None) -> SkeletonDataset:
    return load_dataset("ntu120", config, data_root)


def pku_mmd(config: DatasetConfig, data_root: Path | None) -> SkeletonDataset:
    return load_dataset("pku_mmd", config, data_root)


def pku_mmd2(config: DatasetConfig, data_root: Path | None) -> SkeletonDataset:
    return load_dataset("pku_mmd2", config, data_root)


def class_names_ntu60() -> list[str]:
    return list(class_names(DATASETS["ntu60"]))


def class_names_ntu120() -> list[str]:
    return list(class_names(DATASETS["ntu120"]))


def class_names_pku() -> list[str]:
    return list(class_names(DATASETS["pku_mmd"]))

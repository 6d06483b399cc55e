"""PYSKL / MMAction2 skeleton annotation pickles (DATA_FORMATS_PYSKL.md).

``ntu60_3danno.pkl`` / ``ntu120_3danno.pkl`` (PYSKL), ``ntu60_3d.pkl`` / ``ntu120_3d.pkl``
(MMAction2 1.x): ``{"split": {name: [frame_dir, ...]}, "annotations": [dict, ...]}``, or a
bare list of annotation dicts (MMAction2 0.x). Loaded with the restricted unpickler,
validated, and converted once into a store: keypoints (M, T, 25, 3) float16 become
(3, T', 25, 2) float32 (T' = 300: first 300 frames, zero-padded; T' = 50/64: all T frames
resized with half-pixel linear interpolation). No centring or rotation is applied (the
files hold raw camera coordinates; encoders apply their own transforms).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from zsbench.api import ZsbenchError

from .config import DatasetInfo
from .forms import _manifest, cached_store, source_digest
from .names import is_ntu_stem, parse_ntu_stem
from .resample import resize_time
from .safe_pickle import safe_load
from .store import StoreWriter

SPLIT_KEYS = {"xsub": ("xsub_train", "xsub_val"), "xview": ("xview_train", "xview_val"),
              "xset": ("xset_train", "xset_val")}


def load_annotations(path: Path) -> tuple[list[dict], dict[str, list[str]], int]:
    """(annotations, split lists, number of non-dict entries skipped)."""
    obj = safe_load(path, allow_numpy=True)
    if isinstance(obj, dict):
        if "annotations" not in obj or not isinstance(obj["annotations"], list):
            raise ZsbenchError(f"{path}: a dict without an 'annotations' list "
                               f"(keys: {sorted(map(str, obj))})")
        split = obj.get("split", {}) or {}
        if not isinstance(split, dict) or not all(
                isinstance(k, str) and isinstance(v, list) and all(isinstance(x, str) for x in v)
                for k, v in split.items()):
            raise ZsbenchError(f"{path}: 'split' must map split names to lists of sample names")
        annos = obj["annotations"]
    elif isinstance(obj, list):
        split, annos = {}, obj
    else:
        raise ZsbenchError(f"{path}: expected a dict with 'split' and 'annotations' or a list, "
                           f"got {type(obj).__name__}")
    good = [a for a in annos if isinstance(a, dict)]
    return good, split, len(annos) - len(good)


def validate_annotation(a: dict, i: int, path: Path, num_classes: int) -> tuple[str, int, np.ndarray]:
    where = f"{path}: annotation {i}"
    name = a.get("frame_dir", a.get("filename"))
    if not isinstance(name, str):
        raise ZsbenchError(f"{where}: 'frame_dir' must be a string")
    label = a.get("label")
    if isinstance(label, np.integer):
        label = int(label)
    if not isinstance(label, int) or isinstance(label, bool) or not 0 <= label < 10**6:
        raise ZsbenchError(f"{where} ({name}): 'label' must be a non-negative integer, got {label!r}")
    kp = a.get("keypoint")
    if not isinstance(kp, np.ndarray) or kp.dtype.kind != "f" or kp.ndim != 4 or \
            kp.shape[2:] != (25, 3) or kp.shape[0] < 1 or kp.shape[1] < 1:
        shape = getattr(kp, "shape", None)
        raise ZsbenchError(f"{where} ({name}): 'keypoint' must be a float array (M, T, 25, 3) "
                           f"with M, T >= 1 (3D NTU), got {type(kp).__name__} {shape}")
    total = a.get("total_frames", kp.shape[1])
    if int(total) != kp.shape[1]:
        raise ZsbenchError(f"{where} ({name}): total_frames {total} != keypoint frames {kp.shape[1]}")
    kp = kp.astype(np.float32)
    if not np.isfinite(kp).all():
        raise ZsbenchError(f"{where} ({name}): non-finite keypoint values")
    return name, label, kp


def to_sequence(kp: np.ndarray, frames: int) -> np.ndarray:
    """(M, T, 25, 3) -> (3, frames, 25, 2) float32 (see module docstring)."""
    m = min(kp.shape[0], 2)
    seq = np.zeros((3, kp.shape[1], 25, 2), dtype=np.float32)
    seq[..., :m] = kp[:m].transpose(3, 1, 2, 0)
    if frames == 300:
        out = np.zeros((3, 300, 25, 2), dtype=np.float32)
        t = min(300, seq.shape[1])
        out[:, :t] = seq[:, :t]
        return out
    return resize_time(seq, frames)


def convert_pyskl(info: DatasetInfo, path: Path, frames: int, cache: Path) -> Path:
    key = f"pyskl-f{frames}-{source_digest([path], [info.name, frames])}"
    hit = cached_store(cache, key)
    if hit:
        return hit
    annos, split, non_dict = load_annotations(path)
    rows: list[tuple[str, int, np.ndarray]] = []
    outside = 0
    for i, a in enumerate(annos):
        name, label, kp = validate_annotation(a, i, path, info.num_classes)
        if not is_ntu_stem(name):
            raise ZsbenchError(f"{path}: annotation {i}: {name!r} is not an NTU sample name")
        n = parse_ntu_stem(name)
        if n.label != label:
            raise ZsbenchError(f"{path}: annotation {i} ({name}): label {label} but the name "
                               f"says action {n.action} (label {n.label})")
        if label >= info.num_classes or n.setup > info.max_setup:
            outside += 1
            continue
        rows.append((name, label, kp))
    if not rows:
        raise ZsbenchError(f"{path}: no {info.title} samples")
    rows.sort(key=lambda r: r[0])
    names = [r[0] for r in rows]
    samples: dict[str, Any] = {"name": np.asarray(names, dtype=str),
                               "label": np.asarray([r[1] for r in rows], dtype=np.int64)}
    parsed = [parse_ntu_stem(n) for n in names]
    for col in ("setup", "camera", "subject", "replication"):
        samples[col] = np.asarray([getattr(p, col) for p in parsed], dtype=np.int64)
    samples["length"] = np.asarray([r[2].shape[1] for r in rows], dtype=np.int64)
    split_report = {}
    for bench in info.benchmarks:
        tr, te = SPLIT_KEYS[bench]
        if tr in split:
            train = set(split[tr])
            samples[f"train_{bench}"] = np.asarray([n in train for n in names], dtype=bool)
            split_report[bench] = f"from the file's {tr!r} list"
    writer = StoreWriter(cache / key, len(rows), frames)
    try:
        for i, (_, _, kp) in enumerate(rows):
            writer.write(i, to_sequence(kp, frames)[None])
        manifest = _manifest(info, "pyskl", [path], frames, samples["label"], key,
                             {"resample": "none" if frames == 300 else "linear_all_frames"})
        manifest["report"].update(non_dict_entries_skipped=non_dict,
                                  outside_dataset=outside, splits=split_report,
                                  longer_than_300=int((samples["length"] > 300).sum()))
        return writer.commit(samples, manifest)
    except BaseException:
        writer.abort()
        raise

"""Preprocessed forms users already hold, converted once into a store.

* ``ctrgcn_npz``: ``NTU60_CS.npz``/``NTU60_CV.npz``/``NTU120_CSub.npz``/``NTU120_CSet.npz``
  (``x_*`` (N, 300, 150) float32, ``y_*`` one-hot) and Flora/STAR ``pkuv1_{xsub,xview}.npz``
  (``x_*`` (N, 3, 64, 25, 2), ``y_*`` (N, 1)). Members are streamed from the zip, so a
  7 GB member never has to fit in memory.
* ``smie_npy``: CrossCLR/AimCLR/SMIE ``<bench>/{train,val}_position.npy`` (N, 3, 50, 25, 2)
  with ``{train,val}_label.pkl`` = (sample names, labels), read by the restricted
  unpickler.

The converted store lives in a cache folder keyed by the source files' size and mtime and
is memory-mapped like a prepared one.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from zsbench.api import DataFileError, ZsbenchError

from . import __version__
from .config import DatasetInfo
from .names import is_ntu_stem, parse_ntu_stem, parse_pku_clip
from .resample import crop_resize
from .safe_pickle import safe_load
from .store import (READ_ERRORS, StoreMissing, StoreWriter, new_hasher, read_manifest, read_npy,
                    unreadable_file)

CTRGCN_FILES = {
    "ntu60": {"xsub": ["NTU60_CS.npz"], "xview": ["NTU60_CV.npz"]},
    "ntu120": {"xsub": ["NTU120_CSub.npz"], "xset": ["NTU120_CSet.npz"]},
    "pku_mmd": {"xsub": ["pkuv1_xsub.npz"], "xview": ["pkuv1_xview.npz"]},
    "pku_mmd2": {"xsub": ["pkuv2_xsub.npz", "pkuv1_xsub.npz"],
                 "xview": ["pkuv2_xview.npz", "pkuv1_xview.npz"]},
}
BLOCK = 256


def source_digest(files: list[Path], extra: Any) -> str:
    h = new_hasher()
    for f in files:
        st = f.stat()
        h.update(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode("utf-8"))
    h.update(json.dumps([extra, __version__], sort_keys=True).encode("utf-8"))
    return h.hexdigest()[:16]


def cached_store(cache: Path, key: str) -> Path | None:
    folder = cache / key
    try:
        read_manifest(folder)
    except StoreMissing:
        return None
    return folder


# ---------------------------------------------------------------------------------------
# Streaming .npy members of an npz
# ---------------------------------------------------------------------------------------
SOURCE_TODO = "copy the file again (it is truncated or damaged)"


def npz_member(path: Path, key: str) -> tuple[tuple[int, ...], np.dtype, zipfile.ZipFile, Any]:
    """Open member ``key`` of an npz for streaming: (shape, dtype, zipfile, stream)."""
    try:
        zf = zipfile.ZipFile(path)
    except READ_ERRORS as exc:
        raise unreadable_file(path, ".npz file", exc, SOURCE_TODO) from exc
    member = f"{key}.npy"
    if member not in zf.namelist():
        zf.close()
        raise DataFileError(f"{path}: no array {key!r} (found "
                            f"{sorted(n[:-4] for n in zf.namelist())})")
    try:
        fh = zf.open(member)
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    except READ_ERRORS as exc:
        zf.close()
        raise unreadable_file(path, f".npz file (member {member})", exc, SOURCE_TODO) from exc
    if dtype.hasobject or fortran:
        zf.close()
        what = "objects" if dtype.hasobject else "a Fortran-order array"
        raise DataFileError(f"{path}: {member} holds {what}; refused")
    return tuple(shape), dtype, zf, fh


def iter_rows(path: Path, key: str, block: int = BLOCK) -> Iterator[np.ndarray]:
    shape, dtype, zf, fh = npz_member(path, key)
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
    try:
        done = 0
        while done < shape[0]:
            k = min(block, shape[0] - done)
            try:
                buf = fh.read(k * row_bytes)
            except READ_ERRORS as exc:
                raise unreadable_file(path, f".npz file (member {key}.npy, after {done} of "
                                      f"{shape[0]} rows)", exc, SOURCE_TODO) from exc
            if len(buf) != k * row_bytes:
                raise DataFileError(f"{path}: {key} ends after {done} of {shape[0]} rows "
                                    f"(truncated file); {SOURCE_TODO}")
            yield np.frombuffer(buf, dtype=dtype).reshape((k,) + shape[1:])
            done += k
    finally:
        fh.close()
        zf.close()


def read_member(path: Path, key: str) -> np.ndarray:
    blocks = list(iter_rows(path, key, block=1 << 30))
    shape, dtype, zf, fh = npz_member(path, key)
    fh.close()
    zf.close()
    return np.concatenate(blocks) if blocks else np.zeros(shape, dtype)


def _labels_from_y(path: Path, key: str, num_classes: int) -> np.ndarray:
    y = read_member(path, key)
    if y.ndim == 2 and y.shape[1] == num_classes:
        hot = y > 0
        bad = np.flatnonzero(hot.sum(axis=1) != 1)
        if len(bad):
            raise ZsbenchError(f"{path}: {key} row {int(bad[0])} is not one-hot")
        return hot.argmax(axis=1).astype(np.int64)
    if y.ndim in (1, 2) and (y.ndim == 1 or y.shape[1] == 1):
        lab = y.reshape(-1)
        if not np.issubdtype(lab.dtype, np.integer):
            raise ZsbenchError(f"{path}: {key} labels have dtype {lab.dtype}, integers expected")
        return lab.astype(np.int64)
    raise ZsbenchError(f"{path}: {key} has shape {y.shape}; expected (N, {num_classes}) one-hot "
                       "or (N, 1) labels")


def convert_ctrgcn(info: DatasetInfo, npz: Path, bench: str, frames: int, cache: Path) -> Path:
    key = f"ctrgcn-{bench}-f{frames}-{source_digest([npz], [info.name, bench, frames])}"
    hit = cached_store(cache, key)
    if hit:
        return hit
    parts = []
    for part in ("train", "test"):
        shape, dtype, zf, fh = npz_member(npz, f"x_{part}")
        fh.close()
        zf.close()
        labels = _labels_from_y(npz, f"y_{part}", info.num_classes)
        if len(labels) != shape[0]:
            raise ZsbenchError(f"{npz}: x_{part} has {shape[0]} rows, y_{part} {len(labels)}")
        parts.append((part, shape, labels))
    src_frames = parts[0][1][2] if len(parts[0][1]) == 5 else parts[0][1][1]
    for part, shape, _ in parts:
        if shape[1:] not in ((300, 150), (3, src_frames, 25, 2)):
            raise ZsbenchError(f"{npz}: x_{part} has shape {shape}; expected (N, 300, 150) "
                               "(CTR-GCN) or (N, 3, T, 25, 2)")
    if frames != src_frames and not (src_frames == 300 and frames == 64):
        raise ZsbenchError(
            f"{npz} holds {src_frames}-frame sequences; it can be loaded with frames="
            f"{src_frames}{' or 64' if src_frames == 300 else ''}, not {frames} (50-frame "
            "SMIE arrays come from another pipeline: use form=smie_npy or prepare the raw files)")
    total = sum(p[1][0] for p in parts)
    writer = StoreWriter(cache / key, total, frames)
    try:
        row = 0
        for part, shape, _ in parts:
            for blk in iter_rows(npz, f"x_{part}"):
                x = blk.astype(np.float32, copy=False)
                if x.ndim == 3:
                    x = x.reshape(len(x), 300, 2, 25, 3).transpose(0, 4, 1, 3, 2)
                if frames != x.shape[2]:
                    x = np.stack([crop_resize(s, frames, 1.0, f"{npz}:x_{part}[{row + i}]")
                                  for i, s in enumerate(x)])
                writer.write(row, np.ascontiguousarray(x, dtype=np.float32))
                row += len(x)
        labels = np.concatenate([p[2] for p in parts])
        train = np.concatenate([np.full(p[1][0], p[0] == "train") for p in parts])
        samples = {"label": labels, f"train_{bench}": train}
        resample = "crop_resize" if frames != src_frames else "none"
        return writer.commit(samples, _manifest(info, "ctrgcn_npz", [npz], frames, labels,
                                                key, {"benchmark": bench, "resample": resample}))
    except BaseException:
        writer.abort()
        raise


def _manifest(info: DatasetInfo, form: str, files: list[Path], frames: int,
              labels: np.ndarray, key: str, extra: dict) -> dict:
    return {"dataset": info.name, "title": info.title, "source": form,
            "source_files": [str(f) for f in files], "num_classes": info.num_classes,
            "fingerprint": f"{info.name}-{form}-f{frames}-{key.rsplit('-', 1)[-1]}",
            "pipeline": extra, "deviations": [], "report": {"samples": int(len(labels))},
            "zsbench_ntu_version": __version__}


def read_label_pickle(path: Path) -> tuple[list[str], list[int]]:
    """A CrossCLR/SMIE ``*_label.pkl``: (sample names, labels), plain data only (numpy
    integer labels from re-exports are accepted and converted)."""
    obj = safe_load(path, allow_numpy=True)
    if not (isinstance(obj, (tuple, list)) and len(obj) == 2):
        raise ZsbenchError(f"{path}: expected a pickled 2-tuple (sample_names, labels), got "
                           f"{type(obj).__name__}")
    names, labels = obj
    names = [str(n) for n in (names.tolist() if isinstance(names, np.ndarray) else names)]
    labels = np.asarray(labels).reshape(-1)
    if not np.issubdtype(labels.dtype, np.integer):
        raise ZsbenchError(f"{path}: labels must be integers, got {labels.dtype}")
    if len(names) != len(labels):
        raise ZsbenchError(f"{path}: {len(names)} names but {len(labels)} labels")
    return names, labels.astype(np.int64).tolist()


def convert_smie(info: DatasetInfo, folder: Path, bench: str, cache: Path) -> Path:
    files = []
    for part in ("train", "val"):
        files += [folder / f"{part}_position.npy", folder / f"{part}_label.pkl"]
    absent = [str(f) for f in files if not f.is_file()]
    if absent:
        raise ZsbenchError(f"SMIE/CrossCLR 50-frame files missing: {', '.join(absent)}")
    key = f"smie-{bench}-f50-{source_digest(files, [info.name, bench])}"
    hit = cached_store(cache, key)
    if hit:
        return hit
    arrays, names, labels, train = [], [], [], []
    for part in ("train", "val"):
        x = read_npy(folder / f"{part}_position.npy", "SMIE/CrossCLR .npy array", SOURCE_TODO)
        if x.ndim != 5 or x.shape[1:] != (3, 50, 25, 2):
            raise ZsbenchError(f"{folder / f'{part}_position.npy'}: shape {x.shape}, expected "
                               "(N, 3, 50, 25, 2)")
        n, lab = read_label_pickle(folder / f"{part}_label.pkl")
        if len(n) != len(x):
            raise ZsbenchError(f"{folder / f'{part}_label.pkl'}: {len(n)} samples, the array "
                               f"has {len(x)}")
        arrays.append(x)
        names += n
        labels += lab
        train += [part == "train"] * len(x)
    samples, disagreements = _meta_from_names(info, names, np.asarray(labels, np.int64))
    samples[f"train_{bench}"] = np.asarray(train, dtype=bool)
    writer = StoreWriter(cache / key, len(names), 50)
    try:
        row = 0
        for x in arrays:
            for k in range(0, len(x), BLOCK):
                writer.write(row + k, np.asarray(x[k: k + BLOCK], dtype=np.float32))
            row += len(x)
        manifest = _manifest(info, "smie_npy", files, 50, samples["label"], key,
                             {"benchmark": bench})
        manifest["report"]["label_disagreements_with_names"] = disagreements
        return writer.commit(samples, manifest)
    except BaseException:
        writer.abort()
        raise


def _meta_from_names(info: DatasetInfo, names: list[str], labels: np.ndarray):
    """Sample columns from names; the label implied by a name wins over a stored label
    (SMIE's min-shift can renumber a part's labels). Returns (samples, disagreements)."""
    stems = [n[: -len(".skeleton")] if n.endswith(".skeleton") else n for n in names]
    samples: dict[str, np.ndarray] = {"name": np.asarray(stems, dtype=str)}
    if info.family == "ntu" and all(is_ntu_stem(s) for s in stems):
        parsed = [parse_ntu_stem(s) for s in stems]
        for col in ("setup", "camera", "subject", "replication"):
            samples[col] = np.asarray([getattr(p, col) for p in parsed], dtype=np.int64)
        implied = np.asarray([p.label for p in parsed], dtype=np.int64)
    elif info.family == "pku":
        parsed_pku = [parse_pku_clip(s) for s in stems]
        samples["video"] = np.asarray([p[0] for p in parsed_pku], dtype=np.int64)
        samples["camera"] = np.asarray([p[1] for p in parsed_pku], dtype=np.int64)
        samples["row"] = np.asarray([p[3] for p in parsed_pku], dtype=np.int64)
        implied = np.asarray([p[2] - 1 for p in parsed_pku], dtype=np.int64)
    else:
        raise ZsbenchError(f"sample names such as {stems[0]!r} are not {info.title} names")
    disagreements = int((implied != labels).sum())
    samples["label"] = implied
    return samples, disagreements

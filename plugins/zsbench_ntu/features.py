"""Pre-extracted skeleton features as a source for two-stage methods (DATA_FORMATS.md §5).

Layouts:

* ``synse`` – a split folder of SynSE / MSF ``sk_feats`` / SA-DVAE / TDSM:
  ``train.npy`` + ``train_label.npy`` (seen classes, training part), ``ztest.npy`` +
  ``z_label.npy`` (unseen classes, test part), ``gtest.npy`` + ``g_label.npy`` (whole test
  part), optional ``gtest_out.npy`` (seen-class classifier outputs for the GZSL gate).
  A validation folder (``shift_val_5_r``) has ``val.npy``/``val_label.npy`` instead of
  ``gtest``, plus optional ``ztest_out.npy``/``val_out.npy``.
* ``sota`` – SMIE/DVTA copies: ``train.npy``, ``train_label.npy``, ``test.npy``,
  ``test_label.npy`` (the test set holds the unseen classes).
* ``flora`` – one Flora ``.npz`` per task with ``train_data``/``train_label``,
  ``zsl_data``/``zsl_label``, ``gzsl_data``/``gzsl_label``.

The features were produced by an encoder trained on the split's seen classes, so the
result declares ``trained_on`` (the training labels' classes unless given explicitly) and
``check_split`` refuses a class split whose unseen classes the encoder saw.
All arrays are read with ``allow_pickle=False``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from zsbench.api import DataFileError, LeakageError, ZsbenchError

from .store import new_hasher, read_npy, read_npz

FEATURES_TODO = "copy or export the feature files again (plain numeric arrays)"

Layout = Literal["auto", "synse", "sota", "flora"]


@dataclass
class PrecomputedFeatures:
    layout: str
    path: Path
    train_x: np.ndarray
    train_y: np.ndarray
    zsl_x: np.ndarray
    zsl_y: np.ndarray
    gzsl_x: np.ndarray | None
    gzsl_y: np.ndarray | None
    trained_on: tuple[int, ...]
    unseen: tuple[int, ...]
    fingerprint: str
    val_x: np.ndarray | None = None
    val_y: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)   # *_out.npy gate scores

    @property
    def dim(self) -> int:
        return int(self.train_x.shape[1])

    def split_info(self) -> dict:
        return {"layout": self.layout, "path": str(self.path), "trained_on": list(self.trained_on),
                "unseen": list(self.unseen), "n_train": len(self.train_y),
                "n_zsl": len(self.zsl_y), "n_gzsl": None if self.gzsl_y is None else len(self.gzsl_y),
                "fingerprint": self.fingerprint}

    def as_tuple(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict]:
        """(features, labels, split info) keyed by part: train, zsl, gzsl, val."""
        feats = {"train": self.train_x, "zsl": self.zsl_x}
        labels = {"train": self.train_y, "zsl": self.zsl_y}
        for part, x, y in (("gzsl", self.gzsl_x, self.gzsl_y), ("val", self.val_x, self.val_y)):
            if x is not None:
                feats[part], labels[part] = x, y
        return feats, labels, self.split_info()

    def check_split(self, unseen: Sequence[int]) -> None:
        """Refuse features whose encoder saw any of ``unseen``; and a split whose unseen
        classes differ from the classes of the ZSL test set."""
        leaked = sorted(set(int(c) for c in unseen) & set(self.trained_on))
        if leaked:
            raise LeakageError(f"{self.path}: the feature extractor was trained on classes "
                               f"{leaked}, which are unseen in this split")
        if set(int(c) for c in unseen) != set(self.unseen):
            raise ZsbenchError(f"{self.path}: the ZSL test features cover classes "
                               f"{list(self.unseen)}, the split's unseen classes are "
                               f"{sorted(int(c) for c in unseen)}")


def _npy(path: Path, what: str, optional: bool = False) -> np.ndarray | None:
    if not path.is_file():
        if optional:
            return None
        raise DataFileError(f"{path}: missing ({what})")
    return read_npy(path, f"{what or 'feature'} .npy file", FEATURES_TODO)


def _labels(y: np.ndarray, where: str, num_classes: int | None) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer) or
                           (np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0))):
        raise ZsbenchError(f"{where}: labels must be a 1-D integer array, got {y.dtype} {y.shape}")
    y = y.astype(np.int64)
    if len(y) and (y.min() < 0 or (num_classes is not None and y.max() >= num_classes)):
        raise ZsbenchError(f"{where}: labels outside 0..{(num_classes or 0) - 1}")
    return y


def _pair(x: np.ndarray, y: np.ndarray, where: str, num_classes: int | None):
    if x.ndim != 2:
        raise ZsbenchError(f"{where}: features must be (N, D), got {x.shape}")
    y = _labels(y, where, num_classes)
    if len(y) != len(x):
        raise ZsbenchError(f"{where}: {len(x)} feature rows but {len(y)} labels")
    return x, y


def detect_layout(path: Path) -> str:
    if path.is_file() and path.suffix == ".npz":
        return "flora"
    if path.is_dir():
        if (path / "ztest.npy").is_file():
            return "synse"
        if (path / "test.npy").is_file():
            return "sota"
    raise ZsbenchError(f"{path}: not a known feature layout (a SynSE/MSF split folder with "
                       "train.npy and ztest.npy, an SMIE/DVTA folder with train.npy and "
                       "test.npy, or a Flora .npz)")


def load_precomputed_features(path: str | Path, layout: Layout = "auto",
                              num_classes: int | None = None,
                              trained_on: Sequence[int] | None = None) -> PrecomputedFeatures:
    """Read a feature set; see the module docstring for the layouts."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ZsbenchError(f"{path}: no such file or folder (pre-extracted features)")
    layout = detect_layout(path) if layout == "auto" else layout
    extra: dict[str, np.ndarray] = {}
    val = (None, None)
    gz = (None, None)
    if layout == "synse":
        tr = _pair(_npy(path / "train.npy", "training features"),
                   _npy(path / "train_label.npy", "training labels"), f"{path}/train", num_classes)
        zs = _pair(_npy(path / "ztest.npy", "ZSL test features"),
                   _npy(path / "z_label.npy", "ZSL test labels"), f"{path}/ztest", num_classes)
        if (path / "gtest.npy").is_file():
            gz = _pair(_npy(path / "gtest.npy", ""), _npy(path / "g_label.npy", "GZSL labels"),
                       f"{path}/gtest", num_classes)
        if (path / "val.npy").is_file():
            val = _pair(_npy(path / "val.npy", ""), _npy(path / "val_label.npy", "validation labels"),
                        f"{path}/val", num_classes)
        for name in ("gtest_out", "ztest_out", "val_out"):
            arr = _npy(path / f"{name}.npy", "", optional=True)
            if arr is not None:
                extra[name] = arr
        files = sorted(path.glob("*.npy"))
    elif layout == "sota":
        tr = _pair(_npy(path / "train.npy", "training features"),
                   _npy(path / "train_label.npy", "training labels"), f"{path}/train", num_classes)
        zs = _pair(_npy(path / "test.npy", "test features"),
                   _npy(path / "test_label.npy", "test labels"), f"{path}/test", num_classes)
        files = sorted(path.glob("*.npy"))
    elif layout == "flora":
        arrays = read_npz(path, "Flora feature .npz file", FEATURES_TODO)
        need = ["train_data", "train_label", "zsl_data", "zsl_label"]
        absent = [k for k in need if k not in arrays]
        if absent:
            raise ZsbenchError(f"{path}: missing arrays {absent} (Flora feature npz)")
        tr = _pair(arrays["train_data"], arrays["train_label"], f"{path}:train", num_classes)
        zs = _pair(arrays["zsl_data"], arrays["zsl_label"], f"{path}:zsl", num_classes)
        if "gzsl_data" in arrays:
            gz = _pair(arrays["gzsl_data"], arrays["gzsl_label"], f"{path}:gzsl", num_classes)
        files = [path]
    else:
        raise ZsbenchError(f"unknown feature layout {layout!r} (synse, sota, flora)")
    dims = {a[0].shape[1] for a in (tr, zs, gz, val) if a[0] is not None}
    if len(dims) != 1:
        raise ZsbenchError(f"{path}: feature dimensions differ between parts: {sorted(dims)}")
    seen = tuple(sorted(set(tr[1].tolist()))) if trained_on is None else \
        tuple(sorted(int(c) for c in trained_on))
    unseen = tuple(sorted(set(zs[1].tolist())))
    overlap = sorted(set(seen) & set(unseen))
    if overlap:
        raise LeakageError(f"{path}: classes {overlap} are both in the training features and in "
                           "the ZSL test set")
    h = new_hasher()
    for f in files:
        st = f.stat()
        h.update(f"{f.name}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return PrecomputedFeatures(
        layout=layout, path=path, train_x=tr[0], train_y=tr[1], zsl_x=zs[0], zsl_y=zs[1],
        gzsl_x=gz[0], gzsl_y=gz[1], trained_on=seen, unseen=unseen,
        fingerprint=f"features-{layout}-{h.hexdigest()[:16]}", val_x=val[0], val_y=val[1],
        extra=extra)

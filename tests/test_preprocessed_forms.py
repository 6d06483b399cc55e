"""Preprocessed forms users hold: CTR-GCN npz, SMIE/CrossCLR 50-frame npy + label pickles,
PYSKL annotation pickles; and the restricted unpickler."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from zsbench.api import ZsbenchError
from zsbench_ntu.datasets import load_dataset
from zsbench_ntu.resample import crop_resize, resize_time
from zsbench_ntu.safe_pickle import safe_load, safe_loads
from zsbench_ntu.config import DatasetConfig

RNG = np.random.default_rng(41)
NAMES = [f"S001C00{c}P{p:03d}R001A{a:03d}" for p in (1, 3) for c in (1, 2) for a in (1, 7)]


def sequences(n: int, frames: int = 300, valid: int = 70) -> np.ndarray:
    x = np.zeros((n, 3, frames, 25, 2), np.float32)
    x[:, :, :valid] = RNG.normal(size=(n, 3, valid, 25, 2))
    return x


def to_ctrgcn(x: np.ndarray) -> np.ndarray:
    """(N, 3, 300, 25, 2) -> the CTR-GCN (N, 300, 150) layout."""
    return np.ascontiguousarray(x.transpose(0, 2, 4, 3, 1)).reshape(len(x), 300, 150)


def one_hot(labels, k):
    y = np.zeros((len(labels), k))
    y[np.arange(len(labels)), labels] = 1
    return y


def test_ctrgcn_npz_round_trip_and_64_frames(tmp_path):
    x = sequences(6)
    lab = np.array([0, 5, 59, 1, 2, 3])
    folder = tmp_path / "ntu60" / "ctrgcn"
    folder.mkdir(parents=True)
    np.savez(folder / "NTU60_CV.npz", x_train=to_ctrgcn(x[:4]), y_train=one_hot(lab[:4], 60),
             x_test=to_ctrgcn(x[4:]), y_test=one_hot(lab[4:], 60))
    ds = load_dataset("ntu60", DatasetConfig(**{"form": "ctrgcn_npz", "frames": 300, "benchmark": "xview"}),
                      tmp_path)
    assert np.array_equal(ds.data, x) and ds.labels.tolist() == lab.tolist()
    assert ds.partitions == {"xview": ds.partitions["xview"]}
    assert ds.partitions["xview"].tolist() == [True] * 4 + [False] * 2
    assert ds.sample_names is None and ds.fingerprint.startswith("ntu60-ctrgcn_npz-f300-")
    assert isinstance(ds.data, np.memmap)
    again = load_dataset("ntu60", DatasetConfig(**{"form": "ctrgcn_npz", "frames": 300, "benchmark": "xview"}),
                         tmp_path)
    assert again.fingerprint == ds.fingerprint          # cached conversion reused
    assert len(list((tmp_path / "ntu60" / "imported").iterdir())) == 1
    ds64 = load_dataset("ntu60", DatasetConfig(**{"form": "ctrgcn_npz", "frames": 64, "benchmark": "xview"}),
                        tmp_path)
    assert np.array_equal(ds64.data[2], crop_resize(x[2], 64))
    with pytest.raises(ZsbenchError, match="not 50"):
        load_dataset("ntu60", DatasetConfig(**{"form": "ctrgcn_npz", "frames": 50, "benchmark": "xview"}), tmp_path)
    with pytest.raises(ZsbenchError, match="NTU60_CS.npz"):
        load_dataset("ntu60", DatasetConfig(**{"form": "ctrgcn_npz", "frames": 300}), tmp_path)


def test_ctrgcn_npz_errors(tmp_path):
    p = tmp_path / "NTU60_CS.npz"
    x = to_ctrgcn(sequences(2))
    y = one_hot([0, 1], 60)
    y[1, 3] = 1
    np.savez(p, x_train=x, y_train=y, x_test=x, y_test=one_hot([0, 1], 60))
    with pytest.raises(ZsbenchError, match=r"y_train row 1 is not one-hot"):
        load_dataset("ntu60", DatasetConfig(**{"form": "ctrgcn_npz", "frames": 300, "path": str(p)}), tmp_path)
    np.savez(p, x_train=x, y_train=one_hot([0, 1], 60))
    with pytest.raises(ZsbenchError, match=r"no array 'x_test'"):
        load_dataset("ntu60", DatasetConfig(**{"form": "ctrgcn_npz", "frames": 300, "path": str(p)}), tmp_path)


def test_flora_pku_npz(tmp_path):
    x = sequences(5, frames=64, valid=64)
    p = tmp_path / "pkuv1_xsub.npz"
    np.savez(p, x_train=x[:3], y_train=np.array([[0], [50], [3]]), x_test=x[3:],
             y_test=np.array([[1], [2]]))
    ds = load_dataset("pku_mmd", DatasetConfig(**{"form": "ctrgcn_npz", "frames": 64, "path": str(p)}), tmp_path)
    assert np.array_equal(ds.data, x) and ds.labels.tolist() == [0, 50, 3, 1, 2]
    assert ds.partitions["xsub"].tolist() == [True, True, True, False, False]


def write_smie(folder: Path, x: np.ndarray, names: list[str], labels, cut: int, proto=4):
    folder.mkdir(parents=True, exist_ok=True)
    for part, sl in (("train", slice(0, cut)), ("val", slice(cut, None))):
        np.save(folder / f"{part}_position.npy", x[sl])
        with open(folder / f"{part}_label.pkl", "wb") as fh:
            pickle.dump(([n + ".skeleton" for n in names[sl]], list(labels[sl])), fh,
                        protocol=proto)


def test_smie_npy_with_label_pickles(tmp_path):
    x = sequences(len(NAMES), frames=50, valid=50)
    labels = [int(n[-3:]) - 1 for n in NAMES]
    write_smie(tmp_path / "ntu60" / "frame50" / "xsub", x, NAMES, labels, 5)
    ds = load_dataset("ntu60", DatasetConfig(**{"form": "smie_npy"}), tmp_path)
    assert np.array_equal(ds.data, x) and ds.sample_names == NAMES
    assert ds.labels.tolist() == labels and ds.meta["subject"].tolist()[:4] == [1, 1, 1, 1]
    assert ds.partitions["xsub"].tolist() == [True] * 5 + [False] * 3   # the file's parts
    assert ds.partitions["xview"].tolist() == [n[5:8] == "002" for n in NAMES]   # by rule


def test_smie_numpy_int_labels_accepted_and_code_refused(tmp_path):
    x = sequences(len(NAMES), frames=50, valid=50)
    folder = tmp_path / "s" / "xsub"
    labels = [np.int64(int(n[-3:]) - 1) for n in NAMES]
    write_smie(folder, x, NAMES, labels, 4, proto=2)
    ds = load_dataset("ntu60", DatasetConfig(**{"form": "smie_npy", "path": str(tmp_path / "s")}), tmp_path)
    assert ds.labels.tolist() == [int(v) for v in labels]

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    with open(folder / "val_label.pkl", "wb") as fh:
        pickle.dump((["a"], [Evil()]), fh)
    with pytest.raises(ZsbenchError, match=r"val_label\.pkl: refused to load this pickle: it "
                                           r"references (posix|nt)\.system"):
        load_dataset("ntu60", DatasetConfig(**{"form": "smie_npy", "path": str(tmp_path / "s")}), tmp_path)
    assert not (tmp_path / "pwned").exists()


def test_restricted_unpickler_refuses_everything_but_plain_data(tmp_path):
    import collections
    import datetime

    plain = {"a": [1, 2.5, None, True, ("x", b"y")], "b": {"c": -3}}
    for proto in range(0, pickle.HIGHEST_PROTOCOL + 1):
        assert safe_loads(pickle.dumps(plain, protocol=proto)) == plain
    arr = np.arange(6, dtype=np.float16).reshape(2, 3)
    for proto in (2, 3, 4, 5):
        out = safe_loads(pickle.dumps({"k": arr}, protocol=proto), allow_numpy=True)
        assert np.array_equal(out["k"], arr) and out["k"].dtype == np.float16
    bad = [collections.OrderedDict(a=1), datetime.date(2020, 1, 1), np.array([1, "a"], object),
           np.zeros(2, dtype=[("a", "f4")]), np.float64(1.0).__class__, Path("/etc")]
    for obj in bad:
        data = pickle.dumps(obj, protocol=2)
        with pytest.raises(ZsbenchError, match="refused|not a readable"):
            safe_loads(data, where="f.pkl", allow_numpy=True)
        with pytest.raises(ZsbenchError):
            safe_loads(data, where="f.pkl", allow_numpy=False)
    with pytest.raises(ZsbenchError, match="numpy._core.multiarray._reconstruct|numpy.core"):
        safe_loads(pickle.dumps(arr, protocol=2), where="f.pkl")      # numpy not allowed here
    crafted = b"\x80\x02cnumpy\nndarray\nK\x05\x85R."                 # ndarray(5) via REDUCE
    with pytest.raises(ZsbenchError):
        safe_loads(crafted, allow_numpy=True)
    p = tmp_path / "x.pkl"
    p.write_bytes(b"\x80\x04garbage")
    with pytest.raises(ZsbenchError, match=r"x\.pkl: not a readable pickle"):
        safe_load(p)


def pyskl_file(path: Path, annos: list, split: dict, proto: int = 2) -> Path:
    with open(path, "wb") as fh:
        pickle.dump({"split": split, "annotations": annos}, fh, protocol=proto)
    return path


def anno(name: str, frames: int, bodies: int = 1) -> dict:
    kp = RNG.normal(size=(bodies, frames, 25, 3)).astype(np.float16)
    return {"frame_dir": name, "label": int(name[-3:]) - 1, "keypoint": kp, "total_frames": frames}


def test_pyskl_annotations(tmp_path):
    annos = [anno(n, 20 + 7 * i, 1 + i % 2) for i, n in enumerate(NAMES)]
    annos.append(anno("S018C001P050R001A061", 30))            # an NTU-120-only sample
    split = {"xsub_train": NAMES[:3], "xsub_val": NAMES[3:],
             "xview_train": [n for n in NAMES if "C002" in n],
             "xview_val": [n for n in NAMES if "C001" in n]}
    p = pyskl_file(tmp_path / "ntu60_3danno.pkl", [None] + annos[::-1], split)
    ds = load_dataset("ntu60", DatasetConfig(**{"form": "pyskl", "frames": 300, "path": str(p)}), tmp_path)
    assert ds.sample_names == sorted(NAMES) and len(ds) == 8
    first = next(a for a in annos if a["frame_dir"] == sorted(NAMES)[0])
    kp = first["keypoint"].astype(np.float32)
    m, t = kp.shape[:2]
    assert np.array_equal(ds.data[0, :, :t, :, :m], kp.transpose(3, 1, 2, 0))
    assert not ds.data[0, :, t:].any()
    assert ds.partitions["xsub"].tolist() == [n in NAMES[:3] for n in sorted(NAMES)]
    ds50 = load_dataset("ntu60", DatasetConfig(**{"form": "pyskl", "frames": 50, "path": str(p)}), tmp_path)
    seq = np.zeros((3, t, 25, 2), np.float32)
    seq[..., :m] = kp.transpose(3, 1, 2, 0)
    assert np.array_equal(ds50.data[0], resize_time(seq, 50))


def test_pyskl_validation_errors(tmp_path):
    a = anno(NAMES[0], 10)
    a["label"] = 5
    p = pyskl_file(tmp_path / "a.pkl", [a], {})
    with pytest.raises(ZsbenchError, match=r"label 5 but the name says action 1"):
        load_dataset("ntu60", DatasetConfig(**{"form": "pyskl", "path": str(p)}), tmp_path)
    a = anno(NAMES[0], 10)
    a["keypoint"] = a["keypoint"][..., :2]
    p = pyskl_file(tmp_path / "b.pkl", [a], {})
    with pytest.raises(ZsbenchError, match=r"'keypoint' must be a float array \(M, T, 25, 3\)"):
        load_dataset("ntu60", DatasetConfig(**{"form": "pyskl", "path": str(p)}), tmp_path)
    with open(tmp_path / "c.pkl", "wb") as fh:
        pickle.dump({"split": {}, "annotations": [{"frame_dir": NAMES[0], "label": 0,
                                                    "keypoint": Path("/")}]}, fh)
    with pytest.raises(ZsbenchError, match="refused to load this pickle"):
        load_dataset("ntu60", DatasetConfig(**{"form": "pyskl", "path": str(tmp_path / "c.pkl")}), tmp_path)

"""Pre-extracted feature layouts (SynSE/MSF, SMIE/DVTA, Flora) as a features source."""
from __future__ import annotations

import numpy as np
import pytest

from zsbench.api import DataFileError, LeakageError, ZsbenchError
from zsbench_ntu.features import load_precomputed_features

RNG = np.random.default_rng(51)
UNSEEN = [10, 11, 19, 26, 56]
SEEN = [c for c in range(60) if c not in UNSEEN]


def feats(labels):
    return RNG.normal(size=(len(labels), 256)).astype(np.float32), np.asarray(labels)


def test_synse_folder(tmp_path):
    d = tmp_path / "shift_5_r"
    d.mkdir()
    tr, ytr = feats(SEEN * 2)
    zs, yz = feats(UNSEEN * 3)
    gz, yg = feats(SEEN + UNSEEN)
    for name, arr in (("train", tr), ("train_label", ytr), ("ztest", zs), ("z_label", yz),
                      ("gtest", gz), ("g_label", yg), ("gtest_out", RNG.random((65, 55)))):
        np.save(d / f"{name}.npy", arr)
    f = load_precomputed_features(d)
    assert f.layout == "synse" and f.trained_on == tuple(SEEN) and f.unseen == tuple(UNSEEN)
    assert np.array_equal(f.train_x, tr) and f.gzsl_y.tolist() == yg.tolist()
    assert f.extra["gtest_out"].shape == (65, 55) and f.dim == 256
    x, y, info = f.as_tuple()
    assert set(x) == {"train", "zsl", "gzsl"} and info["n_zsl"] == 15
    f.check_split(UNSEEN)
    with pytest.raises(LeakageError, match=r"trained on classes \[0\]"):
        f.check_split(UNSEEN + [0])
    with pytest.raises(ZsbenchError, match="ZSL test features cover classes"):
        f.check_split(UNSEEN[:4])


def test_validation_folder_and_sota_layout(tmp_path):
    v = tmp_path / "shift_val_5_r"
    v.mkdir()
    for name, arr in (("train", feats([0, 1])[0]), ("train_label", [0, 1]),
                      ("ztest", feats([2])[0]), ("z_label", [2]),
                      ("val", feats([0])[0]), ("val_label", [[0]])):
        np.save(v / f"{name}.npy", np.asarray(arr))
    f = load_precomputed_features(v)
    assert f.gzsl_x is None and f.val_y.tolist() == [0]
    s = tmp_path / "sota" / "split_5"
    s.mkdir(parents=True)
    for name, arr in (("train", feats([3, 4])[0]), ("train_label", [3, 4]),
                      ("test", feats([7, 7])[0]), ("test_label", [7, 7])):
        np.save(s / f"{name}.npy", np.asarray(arr))
    f = load_precomputed_features(s, num_classes=60)
    assert f.layout == "sota" and f.unseen == (7,) and f.trained_on == (3, 4)


def test_flora_npz_and_errors(tmp_path):
    tr, ytr = feats(SEEN)
    zs, yz = feats(UNSEEN)
    p = tmp_path / "ntu60_seen55_unseen5.npz"
    np.savez(p, train_data=tr, train_label=ytr, zsl_data=zs, zsl_label=yz,
             gzsl_data=np.concatenate([tr, zs]), gzsl_label=np.concatenate([ytr, yz]))
    f = load_precomputed_features(p, num_classes=60)
    assert f.layout == "flora" and len(f.gzsl_y) == 60
    with pytest.raises(ZsbenchError, match="labels outside 0..49"):
        load_precomputed_features(p, num_classes=50)
    np.savez(p, train_data=tr, train_label=ytr, zsl_data=zs, zsl_label=np.asarray([0] * 5))
    with pytest.raises(LeakageError, match=r"classes \[0\] are both in the training"):
        load_precomputed_features(p)
    d = tmp_path / "bad"
    d.mkdir()
    np.save(d / "train.npy", tr)
    np.save(d / "train_label.npy", np.asarray([object()] * len(tr), dtype=object),
            allow_pickle=True)
    np.save(d / "ztest.npy", zs)
    np.save(d / "z_label.npy", yz)
    with pytest.raises(DataFileError, match=r"train_label\.npy: not a readable training labels "
                       r"\.npy file \(it holds Python objects \(a pickle\); only plain numeric"):
        load_precomputed_features(d)
    np.save(d / "train_label.npy", ytr[:-1])
    with pytest.raises(ZsbenchError, match="55 feature rows but 54 labels"):
        load_precomputed_features(d)
    with pytest.raises(ZsbenchError, match="not a known feature layout"):
        load_precomputed_features(tmp_path)

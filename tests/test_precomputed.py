"""The 'precomputed' encoder serves user features and refuses leaked extractors."""
import numpy as np
import pytest

from zsbench.api import ClassSplit, Fold, LeakageError, SkeletonDataset, ZsbenchError
from zsbench_precomputed.config import PrecomputedConfig
from zsbench_precomputed.features import fold_features


def _dataset(n=12, classes=4):
    labels = np.arange(n) % classes
    return SkeletonDataset(name="toy", class_names=[f"c{i}" for i in range(classes)],
                           labels=labels, data=np.zeros((n, 3, 2, 25, 2), np.float32),
                           fingerprint="toy")


def _fold():
    split = ClassSplit(id="s", dataset="toy", num_classes=4, unseen=(3,))
    return Fold(name="f", dataset="toy", split=split, train=np.array([0, 1, 2, 4]),
                test_unseen=np.array([3, 7]), test_seen=np.array([8, 9]))


def test_aligned_features_are_indexed_by_fold(tmp_path):
    feats = np.arange(12 * 5, dtype=np.float32).reshape(12, 5)
    np.save(tmp_path / "f.npy", feats)
    cfg = PrecomputedConfig(path=tmp_path / "f.npy", trained_on=[0, 1, 2])
    sets, labels, info = fold_features(cfg, _dataset(), _fold())
    assert labels is None
    assert np.array_equal(sets["test_unseen"], feats[[3, 7]])
    assert np.array_equal(sets["train"], feats[[0, 1, 2, 4]])
    assert info["trained_on"] == [0, 1, 2]


def test_leaked_extractor_refused(tmp_path):
    np.save(tmp_path / "f.npy", np.zeros((12, 5), np.float32))
    with pytest.raises(LeakageError, match=r"\[3\]"):
        fold_features(PrecomputedConfig(path=tmp_path / "f.npy", trained_on=[0, 1, 2, 3]),
                      _dataset(), _fold())


def test_bad_shapes_and_missing_declaration(tmp_path):
    np.save(tmp_path / "f.npy", np.zeros((11, 5), np.float32))
    with pytest.raises(ZsbenchError, match=r"expected shape \(12, D\)"):
        fold_features(PrecomputedConfig(path=tmp_path / "f.npy", trained_on=[0]), _dataset(), _fold())
    with pytest.raises(ZsbenchError, match="declare the classes"):
        fold_features(PrecomputedConfig(path=tmp_path / "f.npy"), _dataset(), _fold())


def test_synse_layout_brings_its_own_sets(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "train.npy", rng.normal(size=(6, 4)).astype(np.float32))
    np.save(tmp_path / "train_label.npy", np.array([0, 1, 2, 0, 1, 2]))
    np.save(tmp_path / "ztest.npy", rng.normal(size=(2, 4)).astype(np.float32))
    np.save(tmp_path / "z_label.npy", np.array([3, 3]))
    np.save(tmp_path / "gtest.npy", rng.normal(size=(4, 4)).astype(np.float32))
    np.save(tmp_path / "g_label.npy", np.array([0, 3, 1, 3]))
    sets, labels, _ = fold_features(PrecomputedConfig(path=tmp_path, layout="synse"), _dataset(), _fold())
    assert labels["test_seen"].tolist() == [0, 1]
    assert sets["train"].shape == (6, 4)

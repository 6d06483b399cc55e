"""Tests of the embedded synthetic benchmark (plugins/zsbench_synthetic)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from pydantic import ValidationError

import zsbench_synthetic.dataset as dataset_mod
from zsbench.api import SkeletonDataset
from zsbench.specs import DatasetSpec
from zsbench_synthetic import (TEXT_KINDS, SyntheticConfig, builtin_splits, generate,
                               load_synthetic)
from zsbench_synthetic.cache import fingerprint, read_texts
from zsbench_synthetic.classes import primitive_set, select_classes
from zsbench_synthetic.generate import xsub_train_subjects
from zsbench_synthetic.plugin import zsbench_datasets
from zsbench_synthetic.vocab import VOCAB

SMALL = dict(num_classes=12, sequences=360, frames=30)


@pytest.fixture(scope="module")
def small():
    return generate(SyntheticConfig(**SMALL))


@pytest.fixture(scope="module")
def clean():
    """Noise-free data with a fair share of two-person classes."""
    return generate(SyntheticConfig(**SMALL, noise_std=0.0, two_person_fraction=0.25))


# ------------------------------------------------------------------------ generation
def test_deterministic_for_a_seed_and_different_for_another(small):
    again = generate(SyntheticConfig(**SMALL))
    assert np.array_equal(small.data, again.data)
    for name in ("labels", "subject", "camera", "setup", "replication", "lengths"):
        assert np.array_equal(getattr(small, name), getattr(again, name))
    assert small.class_names == again.class_names and small.texts == again.texts
    other = generate(SyntheticConfig(**SMALL, seed=1))
    assert other.data.shape == small.data.shape
    assert not np.allclose(other.data, small.data)
    assert fingerprint(SyntheticConfig(**SMALL)) == fingerprint(SyntheticConfig(**SMALL))
    assert fingerprint(SyntheticConfig(**SMALL, seed=1)) != fingerprint(SyntheticConfig(**SMALL))


def test_shapes_dtypes_ids_and_padding(small):
    n, t = SMALL["sequences"], SMALL["frames"]
    assert small.data.shape == (n, 3, t, 25, 2) and small.data.dtype == np.float32
    assert small.labels.dtype == np.int64 and set(small.labels) == set(range(12))
    assert np.bincount(small.labels).min() >= 6
    assert set(small.camera) == {1, 2, 3}
    assert small.subject.min() == 1 and small.subject.max() == 10
    assert set(small.replication) <= {1, 2} and set(small.setup) <= {1, 2, 3, 4}
    lo = int(np.ceil(t * (1 - SyntheticConfig().length_variation)))
    assert small.lengths.min() >= lo and small.lengths.max() <= t
    assert small.lengths.min() < t  # some sequences are padded
    frame_used = np.abs(small.data[..., 0]).sum(axis=(1, 3)) > 0  # (N, T)
    assert np.array_equal(frame_used, np.arange(t)[None, :] < small.lengths[:, None])
    # centred like NTU: the middle of the spine of body 1 in frame 1 is near the origin
    assert np.abs(small.data[:, :, 0, 1, 0]).max() < 0.1
    head_above_feet = small.data[:, 1, 0, 3, 0] - small.data[:, 1, 0, 15, 0]
    assert np.all(head_above_feet > 1.0) and np.all(head_above_feet < 2.2)


def test_two_person_classes_have_a_second_body(clean):
    pair = clean.two_person_classes
    assert 0 < pair.sum() < len(pair)
    second = np.abs(clean.data[..., 1]).sum(axis=(1, 2, 3))
    is_pair = pair[clean.labels]
    assert np.all(second[is_pair] > 0)
    assert np.all(second[~is_pair] == 0)
    # the second person stands about a metre away from the first
    i = np.flatnonzero(is_pair)[0]
    gap = np.linalg.norm(clean.data[i, :, 0, 0, 1] - clean.data[i, :, 0, 0, 0])
    assert 0.6 < gap < 1.6


def test_subjects_have_different_bone_lengths(clean):
    x = clean.data[..., 0]
    valid = np.arange(x.shape[2])[None, :] < clean.lengths[:, None]
    thigh = np.linalg.norm(x[:, :, :, 13] - x[:, :, :, 12], axis=1)   # left hip -> knee
    forearm = np.linalg.norm(x[:, :, :, 10] - x[:, :, :, 9], axis=1)  # right elbow -> wrist
    per_subject = []
    for s in range(1, 11):
        rows = clean.subject == s
        t_s, f_s = thigh[rows][valid[rows]], forearm[rows][valid[rows]]
        assert t_s.std() < 1e-4 and f_s.std() < 1e-4   # rigid bones within a subject
        per_subject.append((t_s.mean(), f_s.mean()))
    per_subject = np.array(per_subject)
    assert len(np.unique(per_subject[:, 0].round(4))) == 10
    assert per_subject[:, 0].max() / per_subject[:, 0].min() > 1.05
    assert np.all((per_subject[:, 0] > 0.3) & (per_subject[:, 0] < 0.55))
    ratio = per_subject[:, 0] / per_subject[:, 1]      # proportions differ, not only size
    assert ratio.max() / ratio.min() > 1.02


def _rotation_between(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float]:
    """Best rotation R with b ~ R a (points as rows) and the residual (Kabsch)."""
    u, _, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    rot = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return rot, float(np.abs(a @ rot.T - b).max())


def test_camera_views_differ_by_a_rotation(clean):
    perf = clean.performance
    p = int(perf[(clean.camera == 3)][0])
    views = {int(c): clean.data[np.flatnonzero(perf == p)[c - 1]] for c in (1, 2, 3)}
    length = int(clean.lengths[perf == p][0])
    pts = {c: v[:, :length, :, 0].reshape(3, -1).T for c, v in views.items()}
    for c in (1, 3):
        assert not np.allclose(pts[c], pts[2], atol=1e-2)
        rot, residual = _rotation_between(pts[2].astype(np.float64), pts[c].astype(np.float64))
        assert residual < 1e-4
        angle = np.degrees(np.arccos(np.clip((np.trace(rot) - 1) / 2, -1, 1)))
        assert angle == pytest.approx(45.0, abs=0.1)


def test_learnable_above_chance_on_xsub(small):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x = small.data[..., 0]                       # (N, 3, T, 25)
    w = (np.arange(x.shape[2])[None, :] < small.lengths[:, None]).astype(np.float32)
    cnt = w.sum(1)[:, None, None]
    mean = (x * w[:, None, :, None]).sum(2) / cnt
    std = np.sqrt((((x - mean[:, :, None]) ** 2) * w[:, None, :, None]).sum(2) / cnt)
    vel = (np.abs(np.diff(x, axis=2)) * w[:, None, 1:, None]).sum(2) / cnt
    feats = np.concatenate([a.reshape(len(x), -1) for a in (mean, std, vel)], 1)
    train = np.isin(small.subject, xsub_train_subjects(10))
    scaler = StandardScaler().fit(feats[train])
    clf = LogisticRegression(max_iter=500, C=0.5).fit(scaler.transform(feats[train]),
                                                      small.labels[train])
    acc = (clf.predict(scaler.transform(feats[~train])) == small.labels[~train]).mean()
    assert acc > 0.6  # chance is 1/12


# ------------------------------------------------------------------------ classes, texts
@pytest.mark.parametrize("k,seed,pair", [(10, 0, 0.2), (12, 3, 0.0), (40, 0, 0.2),
                                         (40, 5, 0.5), (60, 1, 0.2)])
def test_every_builtin_split_is_compositional(k, seed, pair):
    comps = select_classes(k, pair, np.random.default_rng(seed))
    sets = [primitive_set(c) for c in comps]
    assert len({tuple(sorted(c.items())) for c in comps}) == k
    splits = builtin_splits(comps, seed)
    assert set(splits) == {"synse", "smie", "star", "purls", "one_shot", "sa_dvae"}
    assert [len(splits[f]) for f in ("synse", "smie", "star", "purls", "one_shot", "sa_dvae")] == \
        [1, 3, 2, 2, 1, 3]
    for family, group in splits.items():
        for split in group:
            split.validate()
            seen = set(split.seen_classes)
            seen_prims = set().union(*(sets[c] for c in seen))
            for u in split.unseen:
                assert sets[u] <= seen_prims, (split.id, u)
            assert split.validation_unseen and set(split.validation_unseen) <= seen
            strict = "so are the validation classes" in split.notes
            assert strict or k < 20, split.id  # relaxed only for tiny class sets
            rest = set().union(*(sets[c] for c in seen - set(split.validation_unseen)))
            if strict:
                for v in split.validation_unseen:
                    assert sets[v] <= rest, (split.id, v)
    for family in ("smie", "sa_dvae"):  # three folds, pairwise disjoint unseen sets
        folds = [set(s.unseen) for s in splits[family]]
        assert not (folds[0] & folds[1] or folds[0] & folds[2] or folds[1] & folds[2]), family
    assert len({s.id for g in splits.values() for s in g}) == 12


def test_split_sizes_and_ids_for_the_default_class_count():
    comps = select_classes(40, 0.2, np.random.default_rng(0))
    splits = builtin_splits(comps, 0)
    assert [s.id for s in splits["synse"]] == ["synthetic_synse_35_5"]
    assert [s.id for s in splits["smie"]] == [f"synthetic_smie_fold{i}" for i in range(3)]
    assert [s.id for s in splits["star"]] == ["synthetic_star_37_3", "synthetic_star_32_8"]
    assert [s.id for s in splits["purls"]] == ["synthetic_purls_27_13", "synthetic_purls_20_20"]
    assert [s.id for s in splits["one_shot"]] == ["synthetic_one_shot_33_7"]
    assert all(len(s.unseen) == 5 for s in splits["smie"])
    assert [s.id for s in splits["sa_dvae"]] == [f"synthetic_sa_dvae_fold{i}" for i in range(3)]
    assert all(len(s.unseen) == 5 for s in splits["sa_dvae"])
    assert [s.unseen for s in splits["sa_dvae"]] != [s.unseen for s in splits["smie"]]
    # pinned: appending a family must not move the earlier families' splits (golden numbers)
    assert {f: [s.unseen for s in g] for f, g in splits.items() if f != "sa_dvae"} == {
        "synse": [(1, 11, 12, 18, 25)],
        "smie": [(1, 6, 15, 19, 35), (0, 10, 18, 22, 26), (9, 11, 14, 21, 38)],
        "star": [(8, 19, 37), (3, 8, 12, 17, 24, 25, 26, 37)],
        "purls": [(1, 2, 3, 4, 6, 11, 16, 21, 23, 24, 25, 31, 37),
                  (1, 2, 6, 8, 11, 13, 14, 16, 19, 22, 23, 28, 29, 30, 31, 32, 34, 37, 38, 39)],
        "one_shot": [(11, 14, 16, 19, 23, 36, 39)]}
    assert builtin_splits(comps, 0) == splits  # deterministic


def test_texts_complete_unique_and_consistent(small):
    names = small.class_names
    assert len(set(names)) == len(names) == 12
    assert set(small.texts) == set(TEXT_KINDS)
    for kind in TEXT_KINDS:
        assert len(small.texts[kind]) == 12
        for strings in small.texts[kind]:
            assert strings and all(isinstance(s, str) and s.strip() for s in strings)
    for k in range(12):
        assert small.texts["name"][k] == [names[k]]
        assert len(small.texts["parts"][k]) == 6 and len(small.texts["phases"][k]) == 3
        assert 3 <= len(small.texts["context"][k]) <= 5
        assert len(set(small.texts["context"][k])) == len(small.texts["context"][k])
        assert small.texts["description"][k][0].endswith(".")
    # classes sharing a primitive share its wording (here: the legs and torso phrases)
    for k, comp in enumerate(small.class_primitives):
        for slot in ("legs", "torso"):
            entry = VOCAB.get(f"{slot}:{comp[slot]}")
            if entry:
                assert entry["motion"] in small.texts["motion"][k][0].lower() \
                    or entry["motion"][1:] in small.texts["motion"][k][0]
                assert entry["gerund"] in names[k] or names[k].startswith(entry["name"])
    # different classes do not get identical descriptions
    assert len({t[0] for t in small.texts["description"]}) == 12


# ------------------------------------------------------------------------ cache, dataset
@pytest.fixture
def counted(monkeypatch):
    calls = []
    real = dataset_mod.generate

    def counting(cfg):
        calls.append(cfg)
        return real(cfg)

    monkeypatch.setattr(dataset_mod, "generate", counting)
    return calls


def test_load_round_trip_uses_the_cache(tmp_path, counted, small):
    cfg = SyntheticConfig(**SMALL)
    first = load_synthetic(cfg, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = load_synthetic(cfg, tmp_path)
    assert len(counted) == 1
    assert isinstance(second, SkeletonDataset) and isinstance(second.data, np.memmap)
    assert np.array_equal(np.asarray(second.data), small.data)
    assert np.array_equal(second.labels, small.labels)
    assert second.fingerprint == first.fingerprint == fingerprint(cfg)
    assert second.class_names == small.class_names and second.num_classes == 12
    folder = tmp_path / "synthetic" / fingerprint(cfg)[:16]
    assert (folder / "manifest.json").is_file()
    assert not [p for p in (tmp_path / "synthetic").iterdir() if p.name.startswith(".")]
    for kind in TEXT_KINDS:
        path = second.texts[kind]
        assert path.parent == folder and path.name == f"texts_{kind}.json"
        raw = json.loads(path.read_text(encoding="utf-8"))
        assert raw["kind"] == kind and [c["name"] for c in raw["classes"]] == small.class_names
        assert read_texts(path) == (kind, small.class_names, small.texts[kind])
    for key in ("subject", "camera", "setup", "replication"):
        assert np.array_equal(second.meta[key], getattr(small, key))
    train_subjects = np.isin(small.subject, xsub_train_subjects(10))
    assert np.array_equal(second.partitions["xsub"], train_subjects)
    assert np.array_equal(second.partitions["xview"], small.camera != 1)
    assert np.array_equal(second.partitions["xset"], small.setup % 2 == 0)
    for name, part in second.partitions.items():  # every class on both sides
        assert set(second.labels[part]) == set(second.labels[~part]) == set(range(12)), name
    assert set(second.builtin_splits) == {"synse", "smie", "star", "purls", "one_shot", "sa_dvae"}
    for group in second.builtin_splits.values():
        for split in group:
            assert split.num_classes == 12 and split.dataset == "synthetic"


@pytest.mark.parametrize("damage", ["truncate_data", "flip_labels_byte", "drop_manifest",
                                    "edit_texts"])
def test_damaged_cache_is_detected_and_regenerated(tmp_path, counted, small, damage):
    cfg = SyntheticConfig(**SMALL)
    ds = load_synthetic(cfg, tmp_path)
    folder = ds.texts["name"].parent
    del ds
    if damage == "truncate_data":
        path = folder / "data.npy"
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "flip_labels_byte":
        path = folder / "labels.npy"
        raw = bytearray(path.read_bytes())
        raw[-1] ^= 0xFF
        path.write_bytes(bytes(raw))
    elif damage == "drop_manifest":
        (folder / "manifest.json").unlink()
    else:
        path = folder / "texts_description.json"
        path.write_text(path.read_text(encoding="utf-8").replace("A ", "B "), encoding="utf-8")
    with pytest.warns(RuntimeWarning, match="regenerating"):
        again = load_synthetic(cfg, tmp_path)
    assert len(counted) == 2
    assert np.array_equal(np.asarray(again.data), small.data)
    assert np.array_equal(again.labels, small.labels)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_synthetic(cfg, tmp_path)
    assert len(counted) == 2


def test_cache_location_follows_data_root_then_environment(tmp_path, monkeypatch):
    cfg = SyntheticConfig(**SMALL)
    monkeypatch.setenv("ZSBENCH_CACHE", str(tmp_path / "env"))
    assert dataset_mod.cache_folder(cfg).parent == tmp_path / "env" / "synthetic"
    assert dataset_mod.cache_folder(cfg, tmp_path / "root").parent == \
        tmp_path / "root" / "synthetic"
    monkeypatch.delenv("ZSBENCH_CACHE")
    assert dataset_mod.cache_root().parts[-3:] == (".cache", "zsbench", "synthetic")


# ------------------------------------------------------------------------ plugin, config
def test_plugin_registers_the_dataset():
    (spec,) = zsbench_datasets()
    assert isinstance(spec, DatasetSpec)
    assert spec.name == "synthetic" and spec.real is False and spec.config is SyntheticConfig
    assert spec.load() is load_synthetic


def test_config_validation():
    cfg = SyntheticConfig()
    assert (cfg.seed, cfg.num_classes, cfg.sequences, cfg.frames, cfg.num_subjects) == \
        (0, 40, 1500, 24, 10)
    with pytest.raises(ValidationError):
        SyntheticConfig(num_clases=12)
    with pytest.raises(ValidationError):
        SyntheticConfig(num_classes=9)
    with pytest.raises(ValidationError, match="sequences"):
        SyntheticConfig(num_classes=40, sequences=200)
    assert load_synthetic.__name__ == "load_synthetic"


def test_package_never_imports_torch():
    code = ("import sys, zsbench_synthetic as s, zsbench_synthetic.plugin; "
            "s.generate(s.SyntheticConfig(num_classes=10, sequences=60, frames=16)); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    done = subprocess.run([sys.executable, "-c", code], env=dict(os.environ),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

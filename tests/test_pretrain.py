"""Seen-class pretraining stage: shapes, no unseen training samples, cache, leakage, seeds."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from zsbench.api import ClassSplit, Fold, LeakageError, RunContext, SkeletonDataset, ZsbenchError
from zsbench.pretrain import (FeatureSet, PretrainConfig, check_trained_on,
                              load_pretrained_encoder, pretrain_fingerprint, pretrained_features)
from zsbench_encoders.configs import STGCNConfig
from zsbench_encoders.stgcn import STGCN

N_CLASSES, PER_CLASS, T = 6, 10, 16
TINY = STGCNConfig(hidden_channels=4, out_dim=8)
CFG = PretrainConfig(epochs=2, batch_size=16, lr=1e-3)


pytestmark = pytest.mark.usefixtures("torch_single_thread")


class Spy(torch.nn.Module):
    """Wraps a tiny ST-GCN; records the sample markers of every training-mode batch."""

    def __init__(self, log: list[int]) -> None:
        super().__init__()
        self.inner = STGCN(TINY)
        self.feature_dim = self.inner.feature_dim
        self.log = log

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.log.extend(int(v) for v in x[:, 0, 0, 0, 0].round().tolist())
        return self.inner(x)


@pytest.fixture()
def dataset(tmp_path: Path) -> SkeletonDataset:
    rng = np.random.default_rng(0)
    n = N_CLASSES * PER_CLASS
    mm = np.memmap(tmp_path / "data.f32", dtype=np.float32, mode="w+", shape=(n, 3, T, 25, 2))
    mm[:] = rng.standard_normal(mm.shape).astype(np.float32)
    mm[:, 0, 0, 0, 0] = np.arange(n)  # sample marker read back by Spy
    mm.flush()
    data = np.memmap(tmp_path / "data.f32", dtype=np.float32, mode="r", shape=(n, 3, T, 25, 2))
    return SkeletonDataset(name="tiny", class_names=[f"c{i}" for i in range(N_CLASSES)],
                           labels=np.repeat(np.arange(N_CLASSES), PER_CLASS), data=data,
                           fingerprint="tiny-v1")


@pytest.fixture()
def fold(dataset: SkeletonDataset) -> Fold:
    split = ClassSplit(id="s", dataset="tiny", num_classes=N_CLASSES, unseen=(4, 5))
    part = np.tile(np.arange(PER_CLASS) < 7, N_CLASSES)  # first 7 of each class = training part
    seen = np.isin(dataset.labels, [0, 1, 2, 3])
    idx = np.arange(len(dataset))
    return Fold(name="tiny/s", dataset="tiny", split=split, train=idx[part & seen],
                test_seen=idx[~part & seen], test_unseen=idx[~part & ~seen])


def make_ctx(cache: Path, seed: int = 0, calls: list | None = None) -> RunContext:
    def progress(it, **kw):
        if calls is not None:
            calls.append(kw)
        return it

    return RunContext(device="cpu", seed=seed, cache_dir=cache, progress=progress,
                      log=lambda msg: None)


def run(dataset, fold, ctx, cfg=CFG, builder=None, log=None) -> FeatureSet:
    log = [] if log is None else log
    return pretrained_features(encoder_builder=builder or (lambda: Spy(log)),
                               encoder_identity="stgcn-tiny", dataset=dataset, fold=fold,
                               cfg=cfg, ctx=ctx)


def test_config_defaults():
    cfg = PretrainConfig()
    assert (cfg.epochs, cfg.lr, cfg.batch_size, cfg.weight_decay, cfg.selection) == (
        150, 5e-3, 128, 0.0, "last")
    with pytest.raises(ValidationError):
        PretrainConfig(epoch=3)


def test_features_shapes_and_meta(dataset, fold, tmp_path):
    calls: list = []
    fs = run(dataset, fold, make_ctx(tmp_path / "cache", calls=calls))
    assert fs.train.shape == (28, 8) and fs.test_seen.shape == (12, 8)
    assert fs.test_unseen.shape == (6, 8)
    assert all(a.dtype == np.float32 for a in (fs.train, fs.test_seen, fs.test_unseen))
    assert fs.logits["test_unseen"].shape == (6, N_CLASSES)
    assert fs.trained_on.tolist() == [0, 1, 2, 3] and not fs.from_cache
    assert fs.checkpoint.exists() and fs.checkpoint.parent.name == fs.fingerprint
    meta = json.loads((fs.checkpoint.parent / "meta.json").read_text())
    assert meta["trained_on"] == [0, 1, 2, 3] and meta["encoder_identity"] == "stgcn-tiny"
    assert meta["config"]["epochs"] == 2 and set(meta["files"]) == {"checkpoint.pt", "features.npz"}
    assert not [p for p in fs.checkpoint.parent.iterdir() if p.name.endswith(".tmp")]
    assert calls == [{"desc": "pretrain stgcn-tiny", "total": 2, "leave": False}]
    assert fs.info["selected_epoch"] == 2 and len(fs.info["train_loss"]) == 2


def test_no_unseen_sample_enters_training(dataset, fold, tmp_path):
    log: list[int] = []
    run(dataset, fold, make_ctx(tmp_path / "cache"), log=log)
    assert len(log) == 2 * len(fold.train)  # every training sample, once per epoch
    assert set(log) == set(fold.train.tolist())
    assert not set(log) & set(np.flatnonzero(np.isin(dataset.labels, [4, 5])).tolist())
    assert not set(log) & set(fold.test_seen.tolist())


def test_training_samples_of_unseen_classes_refused(dataset, fold, tmp_path):
    bad = Fold(name="bad", dataset="tiny", split=fold.split,
               train=np.append(fold.train, fold.test_unseen[0]), test_seen=fold.test_seen,
               test_unseen=fold.test_unseen)
    with pytest.raises(LeakageError, match=r"\[4\]"):
        run(dataset, bad, make_ctx(tmp_path / "cache"))


def test_cache_hit_skips_training(dataset, fold, tmp_path):
    first = run(dataset, fold, make_ctx(tmp_path / "cache"))

    def boom():
        raise AssertionError("encoder built on a cache hit")

    second = run(dataset, fold, make_ctx(tmp_path / "cache"), builder=boom)
    assert second.from_cache and second.fingerprint == first.fingerprint
    for k in ("train", "test_seen", "test_unseen"):
        assert np.array_equal(getattr(first, k), getattr(second, k))
    assert second.trained_on.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("victim", ["features.npz", "checkpoint.pt", "meta.json"])
def test_corrupted_cache_is_rebuilt(dataset, fold, tmp_path, victim):
    first = run(dataset, fold, make_ctx(tmp_path / "cache"))
    path = first.checkpoint.parent / victim
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.warns(RuntimeWarning, match="rebuilding"):
        again = run(dataset, fold, make_ctx(tmp_path / "cache"))
    assert not again.from_cache
    assert np.array_equal(again.test_unseen, first.test_unseen)  # same seed -> same features
    assert run(dataset, fold, make_ctx(tmp_path / "cache")).from_cache  # repaired


def test_cache_trained_on_unseen_is_refused(dataset, fold, tmp_path):
    fs = run(dataset, fold, make_ctx(tmp_path / "cache"))
    meta_path = fs.checkpoint.parent / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["trained_on"] = [0, 1, 2, 3, 5]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(LeakageError, match=r"\[5\] \(c5\)"):
        run(dataset, fold, make_ctx(tmp_path / "cache"))


def test_check_trained_on(fold):
    check_trained_on([0, 1, 2, 3], fold)
    check_trained_on(np.array([0, 2]), fold)  # a subset of the seen classes is fine
    with pytest.raises(LeakageError, match=r"\[4\]"):
        check_trained_on([0, 4], fold)
    with pytest.raises(LeakageError, match="do not record"):
        check_trained_on(None, fold)
    assert issubclass(LeakageError, ZsbenchError)


def test_determinism_and_fingerprint(dataset, fold, tmp_path):
    a = run(dataset, fold, make_ctx(tmp_path / "a", seed=7))
    b = run(dataset, fold, make_ctx(tmp_path / "b", seed=7))
    c = run(dataset, fold, make_ctx(tmp_path / "c", seed=8))
    assert not b.from_cache and a.fingerprint == b.fingerprint
    for k in ("train", "test_seen", "test_unseen"):
        assert np.array_equal(getattr(a, k), getattr(b, k))
    assert a.fingerprint != c.fingerprint and not np.array_equal(a.train, c.train)
    base = pretrain_fingerprint(dataset, fold, "stgcn-tiny", CFG, 7)
    assert base == a.fingerprint
    assert pretrain_fingerprint(dataset, fold, "stgcn-other", CFG, 7) != base
    assert pretrain_fingerprint(dataset, fold, "stgcn-tiny", CFG.model_copy(update={"lr": 1e-2}),
                                7) != base
    other = Fold(name=fold.name, dataset="tiny", split=fold.split, train=fold.train[:-1],
                 test_seen=fold.test_seen, test_unseen=fold.test_unseen)
    assert pretrain_fingerprint(dataset, other, "stgcn-tiny", CFG, 7) != base


def test_selection_modes(dataset, fold, tmp_path):
    ctx = make_ctx(tmp_path / "cache")
    log: list[int] = []
    fs = run(dataset, fold, ctx, cfg=CFG.model_copy(update={"selection": "val"}), log=log)
    assert fs.info["n_train"] == 24 and fs.info["n_selection"] == 4  # one per seen class held out
    assert set(log) < set(fold.train.tolist()) and fs.train.shape == (28, 8)
    assert fs.info["selected_epoch"] in (1, 2) and ctx.deviations == []
    fs2 = run(dataset, fold, ctx, cfg=CFG.model_copy(update={"selection": "best_seen_test"}))
    assert ctx.deviations == ["pretrain_selection=best_seen_test"]
    assert fs2.info["n_selection"] == len(fold.test_seen)
    assert len(fs2.info["selection_scores"]) == 2


def test_empty_sample_set_gives_empty_features(dataset, fold, tmp_path):
    zsl_only = Fold(name="zsl", dataset="tiny", split=fold.split, train=fold.train,
                    test_seen=np.zeros(0, dtype=np.int64), test_unseen=fold.test_unseen)
    fs = run(dataset, zsl_only, make_ctx(tmp_path / "cache"))
    assert fs.test_seen.shape == (0, 8) and fs.logits["test_seen"].shape == (0, N_CLASSES)
    assert run(dataset, zsl_only, make_ctx(tmp_path / "cache")).test_seen.shape == (0, 8)


def test_load_pretrained_encoder_reproduces_features(dataset, fold, tmp_path):
    fs = run(dataset, fold, make_ctx(tmp_path / "cache"))
    enc = load_pretrained_encoder(lambda: Spy([]), fs, fold)
    assert not enc.training
    with torch.no_grad():
        x = torch.from_numpy(np.asarray(dataset.data[fold.test_unseen]))
        torch.testing.assert_close(enc(x).numpy(), fs.test_unseen, rtol=1e-5, atol=1e-6)
    leaky = FeatureSet(**{**fs.__dict__, "trained_on": np.array([0, 4])})
    with pytest.raises(LeakageError):
        load_pretrained_encoder(lambda: Spy([]), leaky, fold)

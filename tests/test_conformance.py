"""Every registered component behaves per the contract (parametrized over the registry,
so a new built-in plugin is checked without writing a test)."""
import numpy as np
import pytest

from zsbench.plugins import load_plugins
from zsbench.testing import check_plugin, context, tiny_problem
from zsbench_synthetic.config import SyntheticConfig

PLUGINS = load_plugins()


@pytest.mark.parametrize("name", PLUGINS.methods.names())
def test_method_runs_end_to_end_on_tiny_benchmark(name, tmp_path, zs_cache):
    rec, path = check_plugin(name, out=tmp_path, cache_dir=zs_cache)
    assert path.exists()
    spec = PLUGINS.methods.get(name)
    assert rec.transductive is spec.transductive
    for f in rec.folds:
        for k, v in f.metrics.items():
            assert v is None or 0.0 <= v <= 100.0, (k, v)
        assert f.metrics["zsl_acc"] is not None
        if spec.transductive:
            assert "zsl_acc_before_transductive_step" in f.details


@pytest.mark.parametrize("name", [n for n in PLUGINS.methods.names()
                                  if PLUGINS.methods.get(n).inputs == "features"])
def test_feature_method_scores_shape(name):
    spec = PLUGINS.methods.get(name)
    cfg_fields = spec.config.model_fields
    train, test, cands, y = tiny_problem(kinds=tuple(spec.text_kinds) + ("name", "context"))
    opts = {k: v for k, v in {"epochs": 2, "batch_size": 8}.items() if k in cfg_fields}
    opts.update(spec.smoke_overrides)
    method = spec.load()(spec.config(**opts))
    method.fit(train, context())
    scores = np.asarray(method.score(test, cands, context()))
    assert scores.shape == (len(y), len(cands))
    assert np.isfinite(scores).all()


@pytest.mark.parametrize("name", [n for n in PLUGINS.encoders.names()
                                  if not PLUGINS.encoders.get(n).precomputed])
def test_encoder_maps_sequences_to_features(name):
    import torch

    spec = PLUGINS.encoders.get(name)
    model = spec.load()(spec.config())
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 16, 25, 2))
    assert out.shape == (2, spec.feature_dim)


@pytest.mark.parametrize("name", PLUGINS.protocols.names())
def test_protocol_folds_never_leak(name):
    from zsbench_synthetic.dataset import load_synthetic

    ds = load_synthetic(SyntheticConfig(num_classes=12, sequences=240, frames=20, num_subjects=4), None)
    spec = PLUGINS.protocols.get(name)
    for fold in spec.load()(spec, ds, spec.config()):
        src = fold.data_source if fold.data_source is not None else ds
        assert not np.isin(src.labels[fold.train], fold.unseen).any()
        assert np.isin(src.labels[fold.test_unseen], fold.unseen).all()
        assert not np.isin(src.labels[fold.test_seen], fold.unseen).any()
        if fold.support is not None:
            assert not set(fold.support) & set(fold.test_unseen)

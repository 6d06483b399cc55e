"""End-to-end runs on the shrunken embedded benchmark (seconds each on 2 CPU cores)."""
import json

import numpy as np
import pytest

from zsbench.config import build_run_config
from zsbench.plugins import load_plugins
from zsbench.runner import run
from zsbench.testing import tiny_overrides


@pytest.fixture(scope="module")
def plugins():
    return load_plugins()


def _run(plugins, tmp_path, cache, run_id, extra=(), protocol="synse", plugin="devise", epochs=30):
    cfg = build_run_config({"plugin": plugin, "protocol": protocol, "out": str(tmp_path),
                            "cache_dir": str(cache), "device": "cpu", "run_id": run_id},
                           tiny_overrides(method_epochs=epochs) + list(extra))
    return run(cfg, plugins, log=lambda m: None)


def test_record_is_complete_and_valid(plugins, tmp_path, zs_cache):
    rec, path = _run(plugins, tmp_path, zs_cache, "a")
    data = json.loads(path.read_text())
    for key in ("schema", "run_id", "created", "zsbench_version", "plugin", "protocol", "datasets",
                "config", "versions", "device", "seed", "data_fingerprint", "folds", "summary",
                "reported", "deviations", "transductive"):
        assert key in data
    fold = data["folds"][0]
    assert set(fold["metrics"]) == {"zsl_acc", "gzsl_acc_seen", "gzsl_acc_unseen", "gzsl_h"}
    s, u, h = (fold["metrics"][k] for k in ("gzsl_acc_seen", "gzsl_acc_unseen", "gzsl_h"))
    assert h == pytest.approx(0 if s + u == 0 else 2 * s * u / (s + u))
    assert fold["gzsl_rule"]["rule"] == "calibrated_stacking"
    assert fold["gzsl_rule"]["gamma"] is not None
    assert not set(fold["encoder"]["trained_on"]) & set(fold["unseen"])
    assert data["config"]["pretrain"]["epochs"] == 2
    assert data["deviations"] == [] and data["transductive"] is False


def test_same_seed_same_metrics_and_no_overwrite(plugins, tmp_path, zs_cache):
    # separate caches so the encoder is pretrained twice, not read back
    r1, _ = _run(plugins, tmp_path, tmp_path / "c1", "s1")
    r2, _ = _run(plugins, tmp_path, tmp_path / "c2", "s2")
    assert r1.summary == r2.summary
    assert r1.folds[0].encoder["fingerprint"] == r2.folds[0].encoder["fingerprint"]
    from zsbench.api import ZsbenchError
    with pytest.raises(ZsbenchError, match="already exists"):
        _run(plugins, tmp_path, tmp_path / "c1", "s1")


def test_corrupted_encoder_cache_is_rebuilt(plugins, tmp_path, zs_cache):
    r1, _ = _run(plugins, tmp_path, tmp_path / "c", "k1")
    folder = tmp_path / "c" / "encoders" / r1.folds[0].encoder["fingerprint"]
    feats = folder / "features.npz"
    feats.write_bytes(feats.read_bytes()[:-100])
    with pytest.warns(Warning):
        r2, _ = _run(plugins, tmp_path, tmp_path / "c", "k2")
    assert r2.folds[0].encoder["from_cache"] is False
    assert r2.summary == r1.summary


def test_text_control_random_embeddings(plugins, tmp_path, zs_cache):
    real, _ = _run(plugins, tmp_path, zs_cache, "real")
    rand, _ = _run(plugins, tmp_path, zs_cache, "rand", extra=["text_control=random"])
    assert rand.text["control"] == "random"
    assert real.summary["zsl_acc"] is not None and rand.summary["zsl_acc"] is not None


@pytest.mark.parametrize("protocol", ["synse", "smie", "star", "purls", "one_shot", "cross_dataset",
                                      "sa_dvae"])
def test_every_protocol_runs_with_devise(plugins, tmp_path, zs_cache, protocol):
    rec, path = _run(plugins, tmp_path, zs_cache, f"p-{protocol}", protocol=protocol, epochs=5)
    assert rec.folds
    for f in rec.folds:
        assert f.metrics["zsl_acc"] is not None
        assert 0 <= f.metrics["zsl_acc"] <= 100
        assert f.n_train > 0 and f.n_test_unseen > 0
    if "gzsl" in plugins.protocols.get(protocol).settings:
        assert all(f.gzsl_rule and "gamma" in f.gzsl_rule for f in rec.folds)
        assert all(f.metrics["gzsl_h"] is not None for f in rec.folds)
    assert np.isfinite(rec.summary["zsl_acc"])


def test_gzsl_validation_with_retrained_encoder(plugins, tmp_path, zs_cache):
    rec, _ = _run(plugins, tmp_path, zs_cache, "retrain", extra=["gzsl_validation=retrain_encoder"])
    rule = rec.folds[0].gzsl_rule
    assert rule["validation_features"] == "encoder retrained on validation-seen classes"
    enc = rule["validation_encoder"]
    # the validation encoder never saw the validation-unseen classes nor the fold's unseen
    assert not set(enc["trained_on"]) & set(rule["validation_unseen"])
    assert not set(enc["trained_on"]) & set(rec.folds[0].unseen)
    assert enc["fingerprint"] != rec.folds[0].encoder["fingerprint"]


def test_gzsl_calibration_is_recorded(plugins, tmp_path, zs_cache):
    new, _ = _run(plugins, tmp_path, zs_cache, "cal-new")        # default: seen_quantile
    old, _ = _run(plugins, tmp_path, zs_cache, "cal-old", extra=["gzsl_calibration=validation_gamma"])
    rule, kept = new.folds[0].gzsl_rule, old.folds[0].gzsl_rule
    assert rule["calibration"] == "seen_quantile" and kept["calibration"] == "validation_gamma"
    assert new.config["gzsl_calibration"] == "seen_quantile"
    # both chose the same gamma on the validation problem; seen_quantile moved it by the
    # difference of the two models' training-sample seen margins at the recorded seen rate
    assert rule["validation_gamma"] == kept["gamma"]
    assert 0 <= rule["seen_rate"] <= 1
    assert rule["gamma"] == pytest.approx(max(0.0, rule["validation_gamma"]
                                              + rule["final_train_margin_at_rate"]
                                              - rule["validation_train_margin_at_rate"]))
    assert rule["margin_samples"]["final_train"] == new.folds[0].n_train
    assert "seen_rate" not in kept

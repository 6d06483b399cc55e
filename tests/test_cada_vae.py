"""CADA-VAE plugin: presets, fit/score on a tiny problem, the GZSL gate path, and one
end-to-end run on the shrunken embedded benchmark. Module-level fidelity of the VAE and
gate is in tests/test_vae.py and tests/test_gate.py."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from zsbench.api import ClassTexts, DatasetInfo  # noqa: E402
from zsbench.testing import check_plugin, context, tiny_problem  # noqa: E402
from zsbench_cada_vae.config import CadaVAEConfig  # noqa: E402
from zsbench_cada_vae.method import CadaVAE  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_single_thread")

FAST = dict(num_cycles=4, cycle_length=150, kl_start=40, cross_start=60, latent_size=16,
            lr=1e-3, n_latents_per_class=40, cls_steps=150, seen_cls_epochs=20)
FAST_SETS = ["method.num_cycles=1", "method.cycle_length=150", "method.kl_start=40",
             "method.cross_start=60", "method.n_latents_per_class=40", "method.cls_steps=100",
             "method.seen_cls_epochs=10"]


def problem(seed: int = 0, kinds: tuple[str, ...] = ("name",)):
    """25 seen / 5 unseen classes; features = ReLU(text @ W + noise), so the text -> skeleton
    relation learnt on seen classes transfers (chance ZSL accuracy 0.2)."""
    train, test, cand, y = tiny_problem(num_classes=30, num_unseen=5, per_class=10, feature_dim=16,
                                        text_dim=6, kinds=kinds, seed=seed)
    rng = np.random.default_rng(seed)
    emb = {int(c): e[0] for bank in (train.texts, cand) for c, e in
           zip(bank.class_ids, bank.embeddings[kinds[0]])}
    w = rng.normal(size=(6, 16)).astype(np.float32)

    def feats(labels):
        t = np.stack([emb[int(c)] for c in labels])
        return np.maximum(t @ w + 0.3 * rng.normal(size=(len(labels), 16)), 0).astype(np.float32)

    train.x, test.x = feats(train.labels), feats(y)
    ctx = context(dataset=DatasetInfo(name="tiny", family="synthetic", num_classes=30, real=False))
    return train, test, cand, y, ctx


def test_presets_and_needs():
    cfg = CadaVAEConfig()
    assert cfg.latent_for("ntu60") == 100 and cfg.latent_for("ntu120") == 200
    assert cfg.latent_for("synthetic") == 100
    assert cfg.resolved(DatasetInfo(name="n", family="ntu120", num_classes=120)).latent_size == 200
    assert CadaVAEConfig(latent_size=64).resolved(DatasetInfo(name="n", family="ntu120",
                                                              num_classes=120)).latent_size == 64
    assert cfg.cycle_length_for("ntu60", 5) == 1700 and cfg.cycle_length_for("ntu60", 12) == 1900
    assert cfg.cycle_length_for("ntu120", 10) == 1900 and cfg.cycle_length_for("synthetic", 8) == 1700
    assert CadaVAEConfig(cycle_length=30).cycle_length_for("ntu120", 10) == 30
    assert cfg.official_gate("ntu60", 5) == (0.54, 3.0) and cfg.official_gate("ntu60", 12) == (0.5, 2.0)
    assert cfg.official_gate("ntu120", 24) == (0.5, 3.0)
    assert cfg.needs().text_kinds == ["name"]
    assert CadaVAEConfig(text_kind="description").needs().text_kinds == ["description"]
    assert (cfg.lr, cfg.batch_size, cfg.num_cycles, cfg.cls_steps) == (1e-4, 64, 10, 300)
    assert CadaVAEConfig(gate_holdout=[300, 400]).gate_holdout == (300, 400)
    with pytest.raises(ValueError):
        CadaVAEConfig(gate_holdout=1.5)
    with pytest.raises(ValueError):
        CadaVAEConfig(unknown_option=1)


def test_fit_score_zsl_and_gzsl():
    train, test, cand, y, ctx = problem()
    m = CadaVAE(CadaVAEConfig(**FAST))
    m.fit(train, ctx)
    assert ctx.details["latent_size"] == 16 and ctx.details["iterations"] == 600
    s = m.score(test, cand, ctx)
    assert s.shape == (len(y), 5)
    assert np.mean(s.argmax(1) == y - 25) >= 0.5          # 5 unseen classes: chance 0.2
    # GZSL candidates, default: log-probabilities of one joint latent classifier
    allc = _all_candidates(train.texts, cand)
    x = np.concatenate([train.x[:30], test.x])
    view = type(test)(x=x, kind="features")
    g = m.score(view, allc, ctx)
    assert g.shape == (len(x), len(allc))
    np.testing.assert_allclose(np.logaddexp.reduce(g, axis=1), 0.0, atol=1e-6)
    seen = np.isin(allc.class_ids, train.texts.class_ids)
    y_all = np.concatenate([train.labels[:30], y])
    assert np.mean(allc.class_ids[g.argmax(1)] == y_all) > 0.25    # 30 classes: chance 1/30
    # separate: seen columns = seen-classifier softmax, unseen = unseen-classifier softmax
    m.config.gzsl_scores = "separate"
    g = m.score(view, allc, ctx)
    np.testing.assert_allclose(g[:, seen].sum(1), 1.0, atol=1e-6)
    np.testing.assert_allclose(g[:, ~seen].sum(1), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.argmax(g[30:, ~seen], 1), s.argmax(1))
    # the gate routes each sample to one classifier
    cols = m.gzsl_decide(g, seen, view, allc, ctx)
    assert cols.shape == (len(x),) and cols.min() >= 0 and cols.max() < len(allc)
    gate = ctx.details["gate"]
    assert gate["temperature"] in range(1, 10) and 0.25 <= gate["threshold"] < 0.75
    assert len(gate["val_unseen_classes"]) >= 1
    assert not set(gate["val_unseen_classes"]) & set(cand.class_ids.tolist())
    assert ctx.deviations == []


def test_gate_options_are_recorded_as_deviations():
    train, test, cand, y, ctx = problem(seed=1)
    cfg = CadaVAEConfig(**{**FAST, "num_cycles": 1}, gate_mode="official_fixed",
                        gate_rows="synse_code", gate_threshold_rule="official")
    m = CadaVAE(cfg)
    m.fit(train, ctx)
    allc = _all_candidates(train.texts, cand)
    seen = np.isin(allc.class_ids, train.texts.class_ids)
    x = np.concatenate([train.x[:10], test.x])
    view = type(test)(x=x, kind="features")
    m.gzsl_decide(m.score(view, allc, ctx), seen, view, allc, ctx)
    assert set(ctx.deviations) == {"gate_official_fixed", "gate_rows_synse_code",
                                   "gate_threshold_rule_official"}
    # README 55/5 values (the embedded benchmark takes the NTU-60 presets; 5 unseen here)
    assert (ctx.details["gate"]["temperature"], ctx.details["gate"]["threshold"]) == (3.0, 0.54)


def test_ablation_switches_run():
    train, test, cand, y, ctx = problem(seed=2)
    cfg = CadaVAEConfig(**{**FAST, "num_cycles": 1, "cycle_length": 60}, schedule="original_cadavae",
                        per_dim_noise=True, classifier_relu=False, text_kl="synse", align_weight=0.5)
    m = CadaVAE(cfg)
    m.fit(train, ctx)
    assert np.isfinite(ctx.details["final_loss_terms"]["loss"])
    s = m.score(test, cand, ctx)
    assert s.shape == (len(y), 5) and (s < 0).any()     # no ReLU on the logits


def test_rejects_sequences():
    train, test, cand, y, ctx = problem()
    m = CadaVAE(CadaVAEConfig(**FAST))
    train.x = np.zeros((len(train.labels), 3, 4, 25, 2), np.float32)
    with pytest.raises(Exception, match="features"):
        m.fit(train, ctx)


def _all_candidates(seen: ClassTexts, unseen: ClassTexts) -> ClassTexts:
    return ClassTexts(class_ids=np.concatenate([seen.class_ids, unseen.class_ids]),
                      class_names=seen.class_names + unseen.class_names,
                      texts={k: seen.texts[k] + unseen.texts[k] for k in seen.texts},
                      embeddings={k: seen.embeddings[k] + unseen.embeddings[k] for k in seen.embeddings})


@pytest.mark.slow
def test_end_to_end_embedded_benchmark(tmp_path, zs_cache):
    record, _ = check_plugin("cada_vae", out=tmp_path / "out", cache_dir=zs_cache,
                             extra=FAST_SETS)
    m = record.folds[0].metrics
    assert m["zsl_acc"] is not None and m["gzsl_h"] is not None

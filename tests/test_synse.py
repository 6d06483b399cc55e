"""SynSE plugin: fidelity to the official code (tests/fidelity/synse.npz, written by
benchmarks/fidelity/synse_reference.py from skelemoa/synse-zsl), the latent coupling and
schedule by hand, config presets and errors, and end-to-end runs on the embedded benchmark."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from zsbench.api import ClassTexts, DatasetInfo, TestView, ZsbenchError
from zsbench.nn import gate as gating
from zsbench.nn.vae import LatentClassifier, train_latent_classifier
from zsbench.testing import check_plugin, context, tiny_problem
from zsbench_synse.config import SynSEConfig
from zsbench_synse.method import GATE_DEVIATION, SynSE
from zsbench_synse.training import build_vae, normalise_rows, train_cycle, unseen_latents

pytestmark = pytest.mark.usefixtures("torch_single_thread")

REF = Path(__file__).parent / "fidelity" / "synse.npz"
TOL = 1e-5
OFFICIAL_MODULES = {"se": ("skeleton_encoder", None), "sd": ("skeleton_decoder", None),
                    "nte": ("text_encoders", "noun"), "vte": ("text_encoders", "verb"),
                    "ntd": ("text_decoders", "noun"), "vtd": ("text_decoders", "verb")}


@pytest.fixture(scope="module")
def ref():
    return np.load(REF)


def _official_key(key: str) -> str:
    return (key.replace("mu_transformation.0", "mu").replace("logvar_transformation.0", "logvar")
            .replace("model.", "net."))


def _module(vae, short):
    attr, name = OFFICIAL_MODULES[short]
    mod = getattr(vae, attr)
    return mod if name is None else mod[name]


def _load(vae, ref, prefix):
    """Load the official state dicts saved under ``prefix/<module>.<param>``."""
    for short in OFFICIAL_MODULES:
        sd = {_official_key(k[len(prefix) + len(short) + 2:]): torch.from_numpy(ref[k])
              for k in ref.files if k.startswith(f"{prefix}/{short}.")}
        _module(vae, short).load_state_dict(sd)


def _max_diff(vae, ref, prefix):
    out = 0.0
    for short in OFFICIAL_MODULES:
        for k, v in _module(vae, short).state_dict().items():
            off = [f for f in ref.files if f.startswith(f"{prefix}/{short}.")
                   and _official_key(f[len(prefix) + len(short) + 2:]) == k]
            assert len(off) == 1, (prefix, short, k)
            out = max(out, float(np.abs(v.numpy() - ref[off[0]]).max()))
    return out


def _schedule(ref):
    n, b = len(ref["x"]), int(ref["batch_size"])
    total = int(ref["cycle_length"]) * int(ref["cycles"])
    rng = np.random.default_rng(int(ref["batch_seed"]))
    sched = np.stack([rng.permutation(n)[:b] for _ in range(total)])
    assert int(sched.sum()) == int(ref["batch_checksum"]), "batch schedule differs"
    return sched


def _vae(ref):
    torch.manual_seed(0)
    return build_vae(ref["x"].shape[1], ref["nouns_emb"].shape[1],
                     int(ref["init/se.mu_transformation.0.weight"].shape[0]))


# ---------------------------------------------------------------------------------------
# fidelity (official code on identical inputs, weights and noise)
# ---------------------------------------------------------------------------------------
def test_reference_provenance(ref):
    assert str(ref["repo"]) == "skelemoa/synse-zsl"
    assert str(ref["commit"]) == "90f39a118170d708843c5d4305bd807905cb4c54"


def test_text_normalisation_matches_the_script(ref):
    for kind in ("nouns", "verbs"):
        got = normalise_rows(torch.from_numpy(ref[f"{kind}_raw"])).numpy()
        assert np.abs(got - ref[f"{kind}_emb"]).max() < TOL


def _data(ref):
    return (torch.from_numpy(ref["x"]), torch.from_numpy(ref["nouns_emb"]),
            torch.from_numpy(ref["verbs_emb"]), torch.from_numpy(ref["y"]).long())


class _Stop(Exception):
    pass


def test_cycle_zero_starts_like_the_official_run(ref):
    """The first 300 iterations from the official initial weights (no KL, no cross terms
    yet): same losses."""
    vae = _vae(ref)
    _load(vae, ref, "init")
    opt = torch.optim.Adam(vae.parameters(), lr=1e-4)
    batches = iter(torch.as_tensor(_schedule(ref)))
    seen: list[float] = []

    def on_step(epoch, loss):
        seen.append(loss)
        if len(seen) == 300:
            raise _Stop

    with pytest.raises(_Stop):
        train_cycle(vae, opt, *_data(ref), 0, int(ref["cycle_length"]),
                    lambda: next(batches), torch.Generator().manual_seed(1000), on_step=on_step)
    assert np.abs(np.asarray(seen) - ref["losses"][:300]).max() < TOL


def test_cycle_two_matches_official_losses_and_weights(ref):
    """Resume from the official weights and Adam state after cycle 1 and run cycle 2 (KL
    ramp after 1000 iterations, cross terms and text KL after 1400): every iteration's loss
    and the final weights equal the official run's."""
    vae = _vae(ref)
    _load(vae, ref, "after1")
    opt = torch.optim.Adam(vae.parameters(), lr=1e-4)
    step = float(ref["adam1/step"])
    for short in OFFICIAL_MODULES:
        for k, p in _module(vae, short).named_parameters():
            off = {_official_key(f[len("adam1/") + len(short) + 1:].rsplit(".exp_avg", 1)[0]): f
                   for f in ref.files if f.startswith(f"adam1/{short}.") and f.endswith(".exp_avg")}
            base = off[k]
            opt.state[p] = {"step": torch.tensor(step),
                            "exp_avg": torch.from_numpy(ref[base].copy()),
                            "exp_avg_sq": torch.from_numpy(ref[base + "_sq"].copy())}
    p = int(ref["cycle_length"])
    batches = iter(torch.as_tensor(_schedule(ref)[2 * p:3 * p]))
    losses = train_cycle(vae, opt, *_data(ref), 2, p, lambda: next(batches),
                         torch.Generator().manual_seed(1002))
    official = ref["losses"][2 * p:3 * p]
    assert len(losses) == p
    assert np.abs(np.asarray(losses) - official).max() < TOL
    assert _max_diff(vae, ref, "trained") < TOL


def test_unseen_classifier_matches_official(ref):
    """train_classifier after the three cycles: same initial classifier (global RNG after
    torch.manual_seed(2000)), same latents (verb noise first, [noun, verb] concatenated),
    same trained classifier, softmax outputs and ZSL accuracy."""
    vae = _vae(ref)
    _load(vae, ref, "trained")
    unseen = ref["unseen"]
    nouns = torch.from_numpy(ref["nouns_emb"])[unseen]
    verbs = torch.from_numpy(ref["verbs_emb"])[unseen]
    torch.manual_seed(2000)
    cls = LatentClassifier(vae.latent_dim, len(unseen), relu=True)
    assert np.abs(cls.fc.weight.detach().numpy() - ref["cls_init/model.0.weight"]).max() < TOL
    z, y = unseen_latents(vae, nouns, verbs, 500)
    half = vae.latent_dim // 2
    assert np.abs(z[:, :half].numpy() - ref["cls_z_noun"]).max() < TOL
    assert np.abs(z[:, half:].numpy() - ref["cls_z_verb"]).max() < TOL
    assert y.tolist() == list(range(len(unseen))) * 500
    cls = train_latent_classifier(z, y, len(unseen), steps=300, lr=1e-3, relu=True, classifier=cls)
    assert np.abs(cls.fc.weight.detach().numpy() - ref["cls_trained/model.0.weight"]).max() < TOL
    assert np.abs(cls.fc.bias.detach().numpy() - ref["cls_trained/model.0.bias"]).max() < TOL
    with torch.no_grad():
        logits = cls(vae.skeleton_mean(torch.from_numpy(ref["x_gtest"])))
        prob = torch.softmax(logits, 1).numpy()
        pred = unseen[cls(vae.skeleton_mean(torch.from_numpy(ref["x_test_unseen"]))).argmax(1).numpy()]
    assert np.abs(prob - ref["cls_softmax_gtest"]).max() < TOL
    assert np.mean(pred == ref["y_test_unseen"]) == pytest.approx(float(ref["cls_zsl_acc"]))


def test_gate_matches_official_scripts(ref):
    """gating_synse_model_training.py / _eval.py run by the reference script on fixed rows:
    zsbench.nn.gate with the scripts' settings picks the same temperature and threshold,
    and with the eval script's threshold rule routes every test row the same way."""
    zu, gu, zs, gs = (ref[f"gate/{k}"] for k in ("z_unseen", "g_unseen", "z_seen", "g_seen"))
    gate = gating.fit_gate((zu, gu), (zs, gs), holdout=(300, 400), seed=5, k=zu.shape[1],
                           threshold_rule="official")
    assert gate.temperature == float(ref["gate/temperature"])
    assert gate.threshold == pytest.approx(float(ref["gate/threshold"]))
    assert gate.validation_accuracy == pytest.approx(float(ref["gate/val_acc"]))
    # scikit-learn's two-class multinomial model scores softmax([-d, d]) with d = x.coef_,
    # i.e. a logistic model with weights 2*coef_; its lbfgs (tol 1e-4) and the exact
    # solver agree to about 3e-2 in the coefficients, 1e-3 in probability here
    assert np.abs(gate.model.coef_ - 2 * ref["gate/coef"].ravel()).max() < 5e-2
    assert gate.model.intercept_ == pytest.approx(2 * float(ref["gate/intercept"][0]), abs=5e-2)
    zt, gt = ref["gate/z_test"], ref["gate/g_test"]
    assert np.abs(gate.p_unseen(zt, gt) - ref["gate/prob_test"][:, 0]).max() < 1e-3
    is_seen = gate.is_seen(zt, gt)
    assert (is_seen == ref["gate/is_seen_test"].astype(bool)).all()
    seen_ids, unseen_ids = ref["seen"], ref["unseen"]
    pred = gating.route(is_seen, gt[:, seen_ids], zt, seen_ids, unseen_ids)
    assert (pred == ref["gate/pred_test"]).all()


# ---------------------------------------------------------------------------------------
# behaviour by hand
# ---------------------------------------------------------------------------------------
def test_noun_half_then_verb_half_and_classifier_latents_by_hand():
    torch.manual_seed(3)
    vae = build_vae(5, 4, 6)
    assert vae.slices == {"noun": slice(0, 3), "verb": slice(3, 6)}
    nouns, verbs = torch.rand(2, 4), torch.rand(2, 4)
    z, y = unseen_latents(vae, nouns, verbs, 3, torch.Generator().manual_seed(9))
    g = torch.Generator().manual_seed(9)
    eps_verb, eps_noun = torch.randn(6, 1, generator=g), torch.randn(6, 1, generator=g)
    with torch.no_grad():
        n_mu, n_lv = vae.text_encoders["noun"](nouns.repeat(3, 1))
        v_mu, v_lv = vae.text_encoders["verb"](verbs.repeat(3, 1))
    expect = torch.cat([n_mu + eps_noun * torch.exp(0.5 * n_lv),
                        v_mu + eps_verb * torch.exp(0.5 * v_lv)], 1)
    assert torch.allclose(z, expect, atol=1e-6)
    assert y.tolist() == [0, 1, 0, 1, 0, 1]


def test_presets_and_config_errors():
    cfg = SynSEConfig()
    assert cfg.resolve_latent_size("ntu120")[0] == 200
    assert cfg.resolve_latent_size("ntu60")[0] == 100
    assert cfg.resolve_latent_size("synthetic")[0] == 100
    assert cfg.resolve_cycle_length("ntu60", 5)[0] == 1700
    assert cfg.resolve_cycle_length("ntu60", 12)[0] == 1900
    assert cfg.resolve_cycle_length("ntu120", 10)[0] == 1900
    assert SynSEConfig(cycle_length=40).resolve_cycle_length("ntu60", 5) == (40, "config")
    assert cfg.needs().text_kinds == ["verb", "noun"]
    assert SynSEConfig(verb_kind="v", noun_kind="n").needs().text_kinds == ["v", "n"]
    with pytest.raises(ValueError, match="even"):
        SynSEConfig(latent_size=7)
    with pytest.raises(ValueError, match="differ"):
        SynSEConfig(verb_kind="x", noun_kind="x")
    with pytest.raises(ValueError):
        SynSEConfig(gate_unseen_rows="test_rows")


TINY_CFG = dict(num_cycles=2, cycle_length=150, cross_start=75, text_kl_from_cycle=1,
                latent_size=32, lr=1e-3, batch_size=16, latents_per_class=40,
                classifier_steps=100, seen_classifier_epochs=20, seen_classifier_lr=1e-2)


def _gzsl_problem():
    train, test, cand, y = tiny_problem(num_classes=8, num_unseen=2, per_class=24,
                                        kinds=("verb", "noun"))
    held = np.arange(len(train.labels)) % 4 == 0       # some seen samples for the GZSL test
    fit = type(train)(x=train.x[~held], labels=train.labels[~held], texts=train.texts,
                      kind="features")
    ids = np.r_[train.texts.class_ids, cand.class_ids]
    allc = ClassTexts(class_ids=ids, class_names=train.texts.class_names + cand.class_names,
                      texts={k: train.texts.texts[k] + cand.texts[k] for k in cand.texts},
                      embeddings={k: train.texts.embeddings[k] + cand.embeddings[k]
                                  for k in cand.embeddings})
    gx = np.concatenate([train.x[held], test.x])
    gy = np.concatenate([train.labels[held], y])
    return fit, test, cand, y, allc, gx, gy


def test_fit_score_and_gate_on_a_tiny_problem():
    fit, test, cand, y, allc, gx, gy = _gzsl_problem()
    ctx = context(dataset=DatasetInfo(name="toy", family="synthetic", num_classes=8, real=False))
    m = SynSE(SynSEConfig(**TINY_CFG))
    m.fit(fit, ctx)
    s = m.score(test, cand, ctx)
    assert s.shape == (len(y), 2) and np.isfinite(s).all()
    assert np.mean(cand.class_ids[s.argmax(1)] == y) > 0.5           # chance: 0.5
    seen_mask = np.isin(allc.class_ids, fit.texts.class_ids)
    tv = TestView(x=gx, kind="features")
    scores = m.score(tv, allc, ctx)
    assert scores.shape == (len(gx), len(allc))
    pred = m.gzsl_decide(scores, seen_mask, tv, allc, ctx)
    assert pred.shape == (len(gx),) and set(pred) <= set(range(len(allc)))
    acc = np.mean(allc.class_ids[pred] == gy)
    assert acc > 1 / len(allc)                                         # chance: 1/8
    info = ctx.details["synse_gate"]
    assert info["gate_unseen_rows"] == "validation_unseen" and info["k"] == 2
    assert ctx.details["synse_cycle_length"] == 150 and ctx.deviations == []


def test_official_gate_rows_are_a_noted_deviation():
    fit, test, cand, y, allc, gx, gy = _gzsl_problem()
    ctx = context(dataset=DatasetInfo(name="toy", family="synthetic", num_classes=8, real=False))
    m = SynSE(SynSEConfig(**{**TINY_CFG, "num_cycles": 1}, gate_unseen_rows="held_out_seen",
                          gate_threshold_rule="official"))
    m.fit(fit, ctx)
    tv = TestView(x=gx, kind="features")
    seen_mask = np.isin(allc.class_ids, fit.texts.class_ids)
    m.gzsl_decide(m.score(tv, allc, ctx), seen_mask, tv, allc, ctx)
    assert GATE_DEVIATION in ctx.deviations and "gate_threshold_rule_official" in ctx.deviations


def test_user_errors():
    train, test, cand, y = tiny_problem(kinds=("name",))
    m = SynSE(SynSEConfig(**TINY_CFG))
    with pytest.raises(ZsbenchError, match="'noun' texts"):
        m.fit(train, context())
    with pytest.raises(ZsbenchError, match="before fit"):
        m.score(test, cand, context())
    train, *_ = tiny_problem(seq_shape=(3, 4, 25, 1), kinds=("verb", "noun"))
    with pytest.raises(ZsbenchError, match="features"):
        m.fit(train, context())


# ---------------------------------------------------------------------------------------
# end to end on the embedded benchmark
# ---------------------------------------------------------------------------------------
E2E = ["method.num_cycles=1", "method.cycle_length=80", "method.cross_start=40",
       "method.latent_size=8", "method.latents_per_class=40", "method.classifier_steps=60",
       "method.seen_classifier_epochs=10", "encoder.widths=[8,8,8,8,8,8,8,8,8]",
       "encoder.out_dim=32"]


@pytest.mark.slow
def test_end_to_end_synse_protocol_with_the_gate(tmp_path):
    rec, path = check_plugin("synse", out=tmp_path / "out", cache_dir=tmp_path / "cache",
                             protocol="synse", extra=E2E + ["gzsl_rule=method"])
    assert path.exists() and rec.folds
    for fold in rec.folds:
        m = fold.metrics
        for key in ("zsl_acc", "gzsl_acc_seen", "gzsl_acc_unseen", "gzsl_h"):
            assert m[key] is not None and 0.0 <= m[key] <= 100.0
        assert fold.gzsl_rule["rule"] == "method"
        assert "synse_gate" in fold.details
    assert rec.text["kinds"] == ["verb", "noun"] and rec.text["sources"] == ["synse_pos"]

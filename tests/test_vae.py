"""zsbench.nn.vae: terms and warm-up factors against hand-computed values, and fidelity
against the official code (tests/fidelity/{cada_vae,msf}.npz, written by
benchmarks/fidelity/{cada_vae,msf}_reference.py)."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from zsbench.nn.vae import (CrossAlignedVAE, LatentClassifier, WarmupFactors,  # noqa: E402
                            cadavae_warmup, cycle_warmup, kl_divergence, linear_ramp,
                            reconstruction_loss, reparameterize, train_latent_classifier,
                            wasserstein_distance)

pytestmark = pytest.mark.usefixtures("torch_single_thread")
FIDELITY = Path(__file__).parent / "fidelity"


# --------------------------------------------------------------------------------------
# hand-computed values
# --------------------------------------------------------------------------------------
def test_kl_divergence_hand_value():
    mu = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)], [0.0, math.log(2.0)]])
    # per sample: 1/2[(-1 - 0 + 1 + 1) + (-1 - ln2 + 0 + 2)] = 1 - ln2/2
    per = 1.0 - math.log(2.0) / 2
    assert kl_divergence(mu, logvar).item() == pytest.approx(per, abs=1e-6)
    assert kl_divergence(mu, logvar, "sum").item() == pytest.approx(2 * per, abs=1e-6)
    assert kl_divergence(torch.zeros(3, 4), torch.zeros(3, 4)).item() == 0.0


def test_wasserstein_hand_value():
    mu1, mu2 = torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0]])
    z = torch.zeros(1, 2)
    assert wasserstein_distance(mu1, z, mu2, z).item() == pytest.approx(5.0)
    lv2 = torch.tensor([[2 * math.log(2.0), 0.0]])  # sigma 2 vs 1 in dim 0
    assert wasserstein_distance(mu1, z, mu2, lv2).item() == pytest.approx(math.sqrt(26.0), abs=1e-5)
    # summed over samples
    two = wasserstein_distance(mu1.repeat(2, 1), z.repeat(2, 1), mu2.repeat(2, 1), z.repeat(2, 1))
    assert two.item() == pytest.approx(10.0)


def test_reconstruction_kinds():
    a, b = torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([[0.0, 2.0], [5.0, 4.0]])
    assert reconstruction_loss(a, b, "mse").item() == pytest.approx((1 + 4) / 4)
    assert reconstruction_loss(a, b, "l1_sum").item() == pytest.approx(3.0)
    assert reconstruction_loss(a, b, "l2_sum").item() == pytest.approx(5.0)
    with pytest.raises(ValueError):
        reconstruction_loss(a, b, "huber")  # type: ignore[arg-type]


def test_reparameterize_noise_shapes():
    mu = torch.zeros(5, 7)
    logvar = torch.full((5, 7), math.log(4.0))  # sigma 2
    z = reparameterize(mu, logvar, generator=torch.Generator().manual_seed(0))
    ratio = z / 2.0
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio))  # one eps per sample
    zd = reparameterize(mu, logvar, per_dim_noise=True, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(zd, zd[:, :1].expand_as(zd))
    eps = torch.tensor([[1.0], [-1.0], [0.5], [0.0], [2.0]])
    z = reparameterize(mu + 1, logvar, eps=eps)
    assert torch.allclose(z, 1 + 2 * eps.expand(5, 7))
    z = reparameterize(mu, logvar, eps=eps, sigma_rule="exp_logvar")  # sigma = e^logvar = 4
    assert torch.allclose(z, 4 * eps.expand(5, 7))
    # same draws as the official FloatTensor(B, 1).normal_() under the same global seed
    torch.manual_seed(5)
    official = torch.FloatTensor(5, 1).normal_(0, 1)
    torch.manual_seed(5)
    assert torch.equal(reparameterize(mu, torch.zeros(5, 7)), official.expand(5, 7))


@pytest.mark.parametrize("p,e,bs,bt_synse,bt_cada,cr", [
    (1700, 0, 0.0, 0.0, 0.0, 0.0),
    (1700, 1000, 0.0, 0.0, 0.0, 0.0),
    (1700, 1300, 0.01, 0.0, 0.0, 0.0),
    (1700, 1400, 0.4 / 30, 0.0, 0.0, 0.0),          # E_cr = 1400: strict '>'
    (1700, 1401, 0.401 / 30, 0.0, 0.401 / 30, 1.0),
    (1700, 1700 + 800, 0.0, 0.0, 0.0, 0.0),          # cycle 1 restarts the ramps
    (1700, 1700 + 1450, 0.015, 0.0, 0.015, 1.0),     # synse text KL waits for cycle 2
    (1700, 3400 + 1600, 0.02, 0.2 / 30, 0.02, 1.0),
    (1900, 1500, 0.5 / 30, 0.0, 0.0, 0.0),           # E_cr = 1500 for other lengths
    (1900, 3 * 1900 + 1600, 0.02, 0.1 / 30, 0.02, 1.0),
])
def test_cycle_warmup_hand_values(p, e, bs, bt_synse, bt_cada, cr):
    s = cycle_warmup(e, p, "synse")
    c = cycle_warmup(e, p, "cada_vae")
    assert s.beta_skeleton == pytest.approx(bs, abs=1e-12) and c.beta_skeleton == pytest.approx(bs, abs=1e-12)
    assert s.beta_text == pytest.approx(bt_synse, abs=1e-12)
    assert c.beta_text == pytest.approx(bt_cada, abs=1e-12)
    assert s.cross == c.cross == cr
    assert s.align == 0.0 and cycle_warmup(e, p, align_weight=0.5).align == 0.5


def test_cadavae_warmup_hand_values():
    f = cadavae_warmup(0)
    assert (f.beta_skeleton, f.cross, f.align) == (0.0, 0.0, 0.0)
    f = cadavae_warmup(14)
    assert f.align == pytest.approx(8.13 * 8 / 16)
    assert f.beta_skeleton == f.beta_text == pytest.approx(0.25 * 14 / 93)
    assert f.cross == 0.0
    assert cadavae_warmup(48).cross == pytest.approx(2.37 * 27 / 54)
    f = cadavae_warmup(100)
    assert (f.beta_skeleton, f.cross, f.align) == (0.25, 2.37, 8.13)
    assert linear_ramp(5, 2.0, 10, 20) == 0.0 and linear_ramp(15, 2.0, 10, 20) == 1.0


def test_two_text_modalities_tie_latent_slices():
    torch.manual_seed(0)
    vae = CrossAlignedVAE(10, {"noun": 5, "verb": 6}, 8)
    assert vae.slices == {"noun": slice(0, 4), "verb": slice(4, 8)}
    assert vae.text_encoders["verb"].mu.out_features == 4
    s, n, v = torch.rand(3, 10), torch.rand(3, 5), torch.rand(3, 6)
    terms = vae.loss_terms(s, {"noun": n, "verb": v})
    zs, zn, zv = terms.latents["skeleton"], terms.latents["noun"], terms.latents["verb"]
    mse = torch.nn.functional.mse_loss
    dec = vae.text_decoders
    assert terms.cross_text["verb"].item() == pytest.approx(mse(dec["verb"](zs[:, 4:]), v).item())
    assert terms.cross_text["noun"].item() == pytest.approx(mse(dec["noun"](zs[:, :4]), n).item())
    assert terms.cross_skeleton.item() == pytest.approx(
        mse(vae.skeleton_decoder(torch.cat([zn, zv], 1)), s).item())
    f = cycle_warmup(3400 + 1600, 1700)
    want = (terms.recon_skeleton + terms.recon_text["noun"] + terms.recon_text["verb"]
            + f.beta_skeleton * terms.kl_skeleton
            + f.beta_text * (terms.kl_text["noun"] + terms.kl_text["verb"])
            + terms.cross_skeleton + terms.cross_text["noun"] + terms.cross_text["verb"])
    assert terms.total(f).item() == pytest.approx(want.item())
    z, y = vae.text_latents({"noun": torch.rand(3, 5), "verb": torch.rand(3, 6)}, 4)
    assert z.shape == (12, 8) and y.tolist() == [0, 1, 2] * 4
    with pytest.raises(ValueError):
        CrossAlignedVAE(10, {"a": 5, "b": 6}, 7)
    with pytest.raises(ValueError):
        vae.loss_terms(s, {"noun": n})


WARMUPS = [  # (beta_skeleton, beta_text, cross, align): every term off / on in turn
    (0.0, 0.0, 0.0, 0.0), (0.02, 0.0, 0.0, 0.0), (0.0, 0.03, 0.0, 0.0), (0.0, 0.0, 1.0, 0.0),
    (0.01, 0.02, 1.0, 0.0), (0.01, 0.02, 1.0, 0.5), (0.0, 0.0, 0.0, 0.7)]


def _all_terms_total(terms, f):
    """The weighting as first written (every term added, zero factors included): the
    reference of benchmarks/bench_method_loops.py, which the skipping is checked against."""
    bench = str(Path(__file__).resolve().parents[1] / "benchmarks")
    sys.path.insert(0, bench)
    try:
        from bench_method_loops import all_terms_total
    finally:
        sys.path.remove(bench)
    return all_terms_total(terms, f)


@pytest.mark.parametrize("factors", WARMUPS)
def test_weighted_loss_equals_all_terms_total_bit_for_bit(factors):
    """The training loops build only the terms with a non-zero warm-up factor
    (loss_terms(..., factors)): the loss, every parameter gradient and the noise generator's
    state must be those of every term weighted, zeros included, exactly."""
    f = WarmupFactors(*factors)
    torch.manual_seed(0)
    vae = CrossAlignedVAE(12, {"noun": 7, "verb": 9}, 8)
    s, n, v = torch.rand(16, 12), torch.rand(16, 7), torch.rand(16, 9)

    def run(weighted: bool):
        vae.zero_grad(set_to_none=True)
        gen = torch.Generator().manual_seed(3)
        texts = {"noun": n, "verb": v}
        loss = (vae.loss_terms(s, texts, gen, f).total(f) if weighted
                else _all_terms_total(vae.loss_terms(s, texts, gen), f))
        loss.backward()
        grads = {k: p.grad.clone() for k, p in vae.named_parameters() if p.grad is not None}
        return loss.detach(), grads, torch.rand(3, generator=gen)

    full, fast = run(False), run(True)
    assert torch.equal(full[0], fast[0])
    assert full[1].keys() == fast[1].keys()
    for k in full[1]:
        assert torch.equal(full[1][k], fast[1][k]), k
    assert torch.equal(full[2], fast[2])     # same number of noise draws
    # the full terms weighted by total() (zero factors left out there) agree as well
    gen = torch.Generator().manual_seed(3)
    terms = vae.loss_terms(s, {"noun": n, "verb": v}, gen)
    assert torch.equal(terms.total(f).detach(), full[0])


def test_weighted_loss_training_matches_full_terms_over_a_cycle():
    """Two cycles of the skeleton schedule (KL and cross-reconstruction switching on and
    off) trained both ways end in the same parameters, bit for bit."""
    def train(weighted: bool) -> torch.Tensor:
        torch.manual_seed(1)
        vae = CrossAlignedVAE(20, {"text": 15}, 6)
        opt = torch.optim.Adam(vae.parameters(), lr=1e-3, foreach=True)
        data = torch.Generator().manual_seed(0)
        x, t = torch.rand(50, 20, generator=data), torch.rand(50, 15, generator=data)
        gen = torch.Generator().manual_seed(2)
        for it in range(2 * 40):
            f = cycle_warmup(it, 40, "cada_vae", cross_start=25, kl_start=10, kl_slope=0.01)
            idx = torch.randperm(50, generator=gen)[:8]
            loss = (vae.loss_terms(x[idx], {"text": t[idx]}, gen, f).total(f) if weighted
                    else _all_terms_total(vae.loss_terms(x[idx], {"text": t[idx]}, gen), f))
            opt.zero_grad()
            loss.backward()
            opt.step()
        return torch.cat([p.detach().reshape(-1) for p in vae.parameters()])

    assert torch.equal(train(False), train(True))
    terms = CrossAlignedVAE(20, {"text": 15}, 6).loss_terms(
        torch.rand(3, 20), {"text": torch.rand(3, 15)}, factors=WarmupFactors(0.0, 0.0, 0.0, 0.0))
    assert terms.cross_skeleton is None and terms.kl_text == {} and terms.align == {}
    with pytest.raises(ValueError, match="cross_skeleton was not built"):
        terms.total(WarmupFactors(0.0, 0.0, 1.0, 0.0))
    with pytest.raises(ValueError, match="kl_text were not built"):
        terms.total(WarmupFactors(0.0, 0.1, 0.0, 0.0))


# --------------------------------------------------------------------------------------
# fidelity against the official code
# --------------------------------------------------------------------------------------
def _enc_key(k: str) -> str:
    return (k.replace("mu_transformation.0.", "mu.").replace("logvar_transformation.0.", "logvar.")
            .replace("_mu.", "mu.").replace("_logvar.", "logvar.")
            .replace("feature_encoder.", "body.").replace("model.", "body."))


def _dec_key(k: str) -> str:
    return k.replace("feature_decoder.", "net.").replace("model.", "net.")


def _load(module, ref, prefix: str, keymap) -> None:
    sd = {keymap(k[len(prefix) + 1:]): torch.from_numpy(np.asarray(ref[k], dtype=np.float32))
          for k in ref.files if k.startswith(prefix + "/")}
    module.load_state_dict(sd)


def _skeleton_model(ref) -> CrossAlignedVAE:
    vae = CrossAlignedVAE(ref["in/s"].shape[1], {"text": ref["in/t"].shape[1]}, ref["out/smu"].shape[1])
    _load(vae.skeleton_encoder, ref, "w/se", _enc_key)
    _load(vae.skeleton_decoder, ref, "w/sd", _dec_key)
    _load(vae.text_encoders["text"], ref, "w/te", _enc_key)
    _load(vae.text_decoders["text"], ref, "w/td", _dec_key)
    return vae


@pytest.mark.parametrize("name,variant", [("cada_vae", "cada_vae"), ("msf", "synse")])
def test_skeleton_vae_matches_official(name, variant):
    ref = np.load(FIDELITY / f"{name}.npz")
    vae = _skeleton_model(ref)
    s, t = torch.from_numpy(ref["in/s"]), torch.from_numpy(ref["in/t"])
    torch.manual_seed(2)
    terms = vae.loss_terms(s, {"text": t})
    np.testing.assert_allclose(terms.latents["skeleton"].detach().numpy(), ref["out/sz"], atol=1e-5)
    np.testing.assert_allclose(terms.latents["text"].detach().numpy(), ref["out/tz"], atol=1e-5)
    got = {"recon_skeleton": terms.recon_skeleton, "recon_text": terms.recon_text["text"],
           "neg_kl_skeleton": -terms.kl_skeleton, "neg_kl_text": -terms.kl_text["text"],
           "cross_skeleton": terms.cross_skeleton, "cross_text": terms.cross_text["text"],
           "wasserstein": terms.align["text"]}
    for k, v in got.items():
        assert v.item() == pytest.approx(float(ref[f"term/{k}"]), abs=1e-5), k
    grad_epoch = (1700, 3 * 1700 + 1600)
    for (p, e), fac, loss in zip(ref["epochs"], ref["factors"], ref["loss"]):
        f = cycle_warmup(int(e), int(p), variant)
        np.testing.assert_allclose([f.beta_skeleton, f.beta_text, f.cross, f.align], fac, atol=1e-7)
        total = terms.total(f)
        assert total.item() == pytest.approx(float(loss), abs=1e-5)
        if (int(p), int(e)) == grad_epoch:
            vae.zero_grad()
            total.backward(retain_graph=True)
    mods = {"se": (vae.skeleton_encoder, _enc_key), "sd": (vae.skeleton_decoder, _dec_key),
            "te": (vae.text_encoders["text"], _enc_key), "td": (vae.text_decoders["text"], _dec_key)}
    n_checked = 0
    for k in ref.files:
        if k.startswith("grad/"):
            _, mod, pname = k.split("/", 2)
            m, km = mods[mod]
            grad = dict(m.named_parameters())[km(pname)].grad
            np.testing.assert_allclose(grad.numpy(), ref[k], atol=1e-5, err_msg=k)
            n_checked += 1
    assert n_checked == 12


@pytest.mark.parametrize("name", ["cada_vae", "msf"])
def test_latent_classifier_matches_official(name):
    ref = np.load(FIDELITY / f"{name}.npz")
    vae = _skeleton_model(ref)
    cls_text = torch.from_numpy(ref["in/cls_text"])
    k, n = cls_text.shape[0], len(ref["cls/y"]) // cls_text.shape[0]
    torch.manual_seed(4)
    z, y = vae.text_latents({"text": cls_text}, n)
    np.testing.assert_allclose(z.numpy(), ref["cls/z"], atol=1e-5)
    np.testing.assert_array_equal(y.numpy(), ref["cls/y"])
    cls = LatentClassifier(z.shape[1], k)
    cls.load_state_dict({"fc.weight": torch.from_numpy(ref["w/cls/model.0.weight"]),
                         "fc.bias": torch.from_numpy(ref["w/cls/model.0.bias"])})
    cls = train_latent_classifier(z, y, k, classifier=cls)
    np.testing.assert_allclose(cls.fc.weight.detach().numpy(), ref["w/cls_trained/model.0.weight"], atol=1e-5)
    np.testing.assert_allclose(cls.fc.bias.detach().numpy(), ref["w/cls_trained/model.0.bias"], atol=1e-5)
    with torch.no_grad():
        logits = cls(vae.skeleton_mean(torch.from_numpy(ref["in/s"])))
    np.testing.assert_allclose(logits.numpy(), ref["cls/test_logits"], atol=1e-5)


def test_original_cadavae_trainstep_matches_official():
    ref = np.load(FIDELITY / "cada_vae.npz")
    hid = {k: ref[f"w/orig_{k}/feature_encoder.0.weight"].shape[0] for k in ("enc_img", "enc_att")}
    dec_hid = {k: ref[f"w/orig_{k}/feature_decoder.0.weight"].shape[0] for k in ("dec_img", "dec_att")}
    vae = CrossAlignedVAE(ref["in/s"].shape[1], {"att": ref["in/t"].shape[1]}, ref["out/smu"].shape[1],
                          skeleton_hidden=(hid["enc_img"],), skeleton_decoder_hidden=(dec_hid["dec_img"],),
                          text_hidden=(hid["enc_att"],), text_decoder_hidden=(dec_hid["dec_att"],),
                          decoder_out_relu=False, sigma_rule="exp_logvar", reconstruction="l1_sum",
                          kl_reduction="sum")
    _load(vae.skeleton_encoder, ref, "w/orig_enc_img", _enc_key)
    _load(vae.skeleton_decoder, ref, "w/orig_dec_img", _dec_key)
    _load(vae.text_encoders["att"], ref, "w/orig_enc_att", _enc_key)
    _load(vae.text_decoders["att"], ref, "w/orig_dec_att", _dec_key)
    s, t = torch.from_numpy(ref["in/s"]), torch.from_numpy(ref["in/t"])
    for e, loss in zip(ref["orig/epochs"], ref["orig/loss"]):
        torch.manual_seed(12)
        vae.zero_grad()
        total = vae.loss_terms(s, {"att": t}).total(cadavae_warmup(int(e)))
        assert total.item() == pytest.approx(float(loss), rel=1e-5)
        if int(e) == 40:
            total.backward()
            mods = {"enc_img": vae.skeleton_encoder, "dec_img": vae.skeleton_decoder,
                    "enc_att": vae.text_encoders["att"], "dec_att": vae.text_decoders["att"]}
            for k in ref.files:
                if k.startswith("orig_grad/"):
                    _, mod, pname = k.split("/", 2)
                    km = _enc_key if mod.startswith("enc") else _dec_key
                    g = dict(mods[mod].named_parameters())[km(pname)].grad.numpy()
                    np.testing.assert_allclose(g, ref[k], atol=1e-4, rtol=1e-5, err_msg=k)


def test_fidelity_files_name_their_source():
    for name, repo in (("cada_vae", "skelemoa/synse-zsl"), ("msf", "EHZ9NIWI7/MSF-GZSSAR")):
        ref = np.load(FIDELITY / f"{name}.npz")
        assert str(ref["repo"]) == repo and len(str(ref["commit"])) == 40

"""DVTA against the official model.py / train.py (tests/fidelity/dvta.npz, written by
benchmarks/fidelity/dvta_reference.py): DA/AA logits with SDE, one training epoch (KL loss,
Adam, warm-up lr, learnable temperatures), test-time scores."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from zsbench.api import ClassTexts, TestView
from zsbench.testing import context
from zsbench_dvta.config import DVTAConfig
from zsbench_dvta.method import DVTA, warmup_cosine_lr
from zsbench_dvta.modules import DVTANet

FIDELITY = Path(__file__).parent / "fidelity"
TOL = dict(rtol=0, atol=1e-5)
OFFICIAL_TO_OURS = {
    "direct_alignment.visual_projector.l0.": "visual.residual.",
    "direct_alignment.visual_projector.l1.": "visual.mlp.0.",
    "direct_alignment.visual_projector.l2.": "visual.mlp.2.",
    "direct_alignment.visual_projector.l3.": "visual.mlp.4.",
    "direct_alignment.text_projector.": "text.",
    "augmented_alignment.net.": "metric.mlp.",
}


@pytest.fixture(scope="module")
def ref():
    return np.load(FIDELITY / "dvta.npz")


def _ours_state(ref, prefix: str) -> dict[str, torch.Tensor]:
    state = {}
    for key in ref.files:
        if not key.startswith(prefix + "/"):
            continue
        name, value = key[len(prefix) + 1:], torch.from_numpy(ref[key])
        if name == "scaling_factors":
            state["tau_da.value"], state["tau_aa.value"] = value[0].clone(), value[1].clone()
            continue
        old = next(o for o in OFFICIAL_TO_OURS if name.startswith(o))
        state[OFFICIAL_TO_OURS[old] + name[len(old):]] = value
    return state


def _method(ref) -> DVTA:
    cfg = DVTAConfig()
    skel, dim = ref["x_train"].shape[1], ref["label_text"].shape[1]
    widths = (ref["w0/direct_alignment.visual_projector.l1.weight"].shape[0],
              ref["w0/direct_alignment.visual_projector.l2.weight"].shape[0])
    method = DVTA(cfg)
    method.net = DVTANet(skel, dim, visual=cfg.visual_projector, widths=widths,
                         text=cfg.text_projector, use_sde=cfg.use_sde, sde_variant=cfg.sde_variant,
                         use_aa=cfg.use_aa, aa_activation=cfg.aa_activation, gamma=cfg.gamma,
                         tau=cfg.tau, learn_tau=cfg.learn_tau)
    method.net.load_state_dict(_ours_state(ref, "w0"), strict=True)
    return method


def _texts(ref, rows) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(ref["label_text"])[rows], torch.from_numpy(ref["context_text"])[rows]


def _logits(method: DVTA, ref, x: torch.Tensor, rows: torch.Tensor) -> list[torch.Tensor]:
    """fit()'s training path: DA/tau_DA and AA/tau_AA (B, B) over the batch's own texts."""
    net = method.net
    v_e = net.embed_skeleton(x)
    t_e = net.embed_text(v_e, *_texts(ref, rows))
    return method._logit_terms(*net.pair_scores(v_e, t_e, detach_aa=method.config.detach_aa_inputs))


@pytest.fixture(scope="module")
def trained(ref):
    """Our training step replayed on the official batches."""
    method = _method(ref)
    x, y = torch.from_numpy(ref["x_train"]), torch.from_numpy(ref["y_train"])
    first = int(ref["train/batch_sizes"][0])
    with torch.no_grad():
        before = [t.clone() for t in _logits(method, ref, x[:first], y[:first])]
    cfg = method.config
    lr = warmup_cosine_lr(float(ref["train/base_lr"]), int(ref["train/epoch"]), cfg.warmup_epochs,
                          int(ref["train/epochs"]))
    opt = torch.optim.Adam(method.net.parameters(), lr=lr, weight_decay=cfg.weight_decay)
    method.net.train()
    losses, start = [], 0
    for size in ref["train/batch_sizes"]:
        idx = slice(start, start + int(size))
        start += int(size)
        loss = method._loss(_logits(method, ref, x[idx], y[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    method.net.eval()
    return before, lr, losses, method


def test_dvta_logits_match_official(ref, trained):
    assert str(ref["repo"]) == "jidongkuang/DVTA" and str(ref["commit"]).startswith("8effc8f")
    (da, aa), *_ = trained
    torch.testing.assert_close(da, torch.from_numpy(ref["batch0/da_v2t"]), **TOL)
    torch.testing.assert_close(aa, torch.from_numpy(ref["batch0/aa_v2t"]), **TOL)
    torch.testing.assert_close(aa.T, torch.from_numpy(ref["batch0/aa_t2v"]), **TOL)
    # both LeakySigmoid branches are exercised (tau_aa = 0.1: gamma*exp(gamma*x)/tau <= 0.1)
    assert (aa <= 0.1 + 1e-6).any() and (aa > 5.0).any()


def test_dvta_training_epoch_matches_official(ref, trained):
    _, lr, losses, method = trained
    assert lr == pytest.approx(float(ref["train/lr"]), abs=1e-15)
    official = ref["train/losses"].reshape(-1, 2).mean(axis=1)       # (v2t + t2v) / 2
    np.testing.assert_allclose(losses, official, rtol=0, atol=1e-5)
    after = _ours_state(ref, "w1")
    ours = method.net.state_dict()
    assert set(after) == set(ours)
    for name, value in after.items():
        torch.testing.assert_close(ours[name], value, **TOL, msg=lambda m, n=name: f"{n}: {m}")
    assert not torch.equal(ours["tau_da.value"], _ours_state(ref, "w0")["tau_da.value"])


def test_dvta_scores_match_official(ref, trained):
    """Inference: SDE with each test sample's own projection, DA + AA logits summed."""
    method = trained[3]
    unseen = ref["unseen"]
    label, ctx_text = _texts(ref, torch.from_numpy(unseen))
    texts = ClassTexts(class_ids=unseen, class_names=[f"c{c}" for c in unseen],
                       texts={"name": [[""]] * len(unseen), "context": [[""]] * len(unseen)},
                       embeddings={"name": [r[None] for r in label.numpy()],
                                   "context": [r[None] for r in ctx_text.numpy()]})
    scores = method.score(TestView(x=ref["x_test"], kind="features"), texts, context())
    torch.testing.assert_close(torch.from_numpy(scores), torch.from_numpy(ref["test/final_sim"]), **TOL)
    # Trainer.evaluate: mean over test batches of the batch accuracies
    hits = (unseen[scores.argmax(1)] == ref["y_test"]).astype(np.float64)
    b = int(ref["test_batch"])
    assert np.mean([hits[i:i + b].mean() for i in range(0, len(hits), b)]) == pytest.approx(
        float(ref["test/acc"]), abs=1e-6)

"""PGFA against the official main.py (tests/fidelity/pgfa.npz, benchmarks/fidelity/pgfa_reference.py):
one training epoch (KL multi-positive loss, SGD, warm-up lr) and the test-time prototype step."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from zsbench.nn.losses import KLMultiPositiveLoss, cosine_similarity_matrix
from zsbench_encoders.configs import STGCNConfig
from zsbench_encoders.stgcn import STGCN
from zsbench_pgfa.config import PGFAConfig
from zsbench_pgfa.method import make_projection
from zsbench_pgfa.prototypes import argmax_prototypes
from zsbench_pgfa.training import step_lr

sys.path.insert(0, str(Path(__file__).parent))
from test_encoder_fidelity import unpack_state  # noqa: E402

FIDELITY = Path(__file__).parent / "fidelity"
TOL = dict(rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def ref():
    return np.load(FIDELITY / "pgfa.npz")


@pytest.fixture(scope="module")
def trained(ref):
    return _train_epoch(ref)


def _models(ref) -> tuple[STGCN, nn.Linear]:
    state = unpack_state(ref)
    enc_state = {k[len("encoder."):].replace("st_gcn_networks.", "blocks."): v
                 for k, v in state.items() if k.startswith("encoder.")}
    weight = state["adapter.adapter.weight"]
    encoder = STGCN(STGCNConfig(hidden_channels=4, out_dim=weight.shape[1], dropout_impl="torch"))
    enc_state["A"] = encoder.A.clone()
    encoder.load_state_dict(enc_state, strict=True)
    projection = make_projection(weight.shape[1], weight.shape[0])
    projection.load_state_dict({"weight": weight, "bias": state["adapter.adapter.bias"]})
    return encoder, projection


def _train_epoch(ref):
    cfg = PGFAConfig()
    encoder, projection = _models(ref)
    criterion = KLMultiPositiveLoss(cfg.tau, cfg.learn_temperature, cfg.target_sharpness, "log_scale")
    # official: exp(logit_scale) with logit_scale = log(1/0.07), never optimised
    assert float(criterion.temperature.value) == pytest.approx(float(ref["logit_scale"]), abs=1e-6)
    assert not criterion.temperature.learnable
    epoch = int(ref["train/epoch"])
    lr = step_lr(0.05, epoch, cfg.warmup_epochs, cfg.lr_steps, cfg.lr_decay)
    opt = torch.optim.SGD(list(encoder.parameters()) + list(projection.parameters()), lr=lr,
                          momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    x, y, text = (torch.from_numpy(ref[k]) for k in ("x_train", "y_train", "text"))
    torch.manual_seed(int(ref["train/seed"]))
    encoder.train()
    projection.train()
    losses, start = [], 0
    for size in ref["train/batch_sizes"]:
        idx = slice(start, start + int(size))
        start += int(size)
        loss = criterion(projection(encoder(x[idx])), text[y[idx]], y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return lr, losses, encoder, projection


def test_pgfa_training_epoch_matches_official(ref, trained):
    assert str(ref["repo"]) == "kaai520/PGFA" and str(ref["commit"]).startswith("3e09542b")
    lr, losses, encoder, projection = trained
    assert lr == pytest.approx(float(ref["train/lr"]), abs=1e-12)        # warm-up: 0.05 * 2/5
    official = ref["train/losses"].reshape(-1, 2).mean(axis=1)           # (skl + text) / 2
    np.testing.assert_allclose(losses, official, rtol=0, atol=1e-5)
    assert float(ref["train/dim_loss"]) == pytest.approx(np.mean(official), abs=1e-5)
    ours = {f"encoder.{k.replace('blocks.', 'st_gcn_networks.')}": v
            for k, v in encoder.state_dict().items()}
    ours.update({f"adapter.adapter.{k}": v for k, v in projection.state_dict().items()})
    keys = [k for k in ref.files if k.startswith("w1/")]
    assert len(keys) == 8
    for key in keys:
        torch.testing.assert_close(ours[key[3:]], torch.from_numpy(ref[key]), **TOL,
                                   msg=lambda m, k=key: f"{k}: {m}")


def test_pgfa_prototype_step_matches_official(ref, trained):
    """get_acc_v2 pseudo-labels and entropies, floor(support_factor * |S_k|) lowest-entropy
    members averaged (text feature when none), re-scoring with get_acc."""
    _, _, encoder, projection = trained
    x, y, text = (torch.from_numpy(ref[k]) for k in ("x_test", "y_test", "text"))
    unseen = torch.from_numpy(ref["unseen"])
    with torch.no_grad():
        feats = projection(encoder.eval()(x))
    torch.testing.assert_close(feats, torch.from_numpy(ref["test/z"]), **TOL)
    z = nn.functional.normalize(feats, dim=1)
    w = text[unseen]
    scores = cosine_similarity_matrix(z, w)
    np.testing.assert_array_equal(unseen[scores.argmax(1)].numpy(), ref["test/old_pred"])
    protos, kept = argmax_prototypes(z, scores, w, float(ref["support_factor"]))
    assert (kept == 0).any() and (kept > 0).any()          # both a prototype and a fallback
    torch.testing.assert_close(protos, torch.from_numpy(ref["test/prototypes"]), **TOL)
    new = unseen[cosine_similarity_matrix(z, protos).argmax(1)]
    np.testing.assert_array_equal(new.numpy(), ref["test/aug_pred"])
    assert not np.array_equal(ref["test/aug_pred"], ref["test/old_pred"])
    # the official accuracy is the mean of per-batch accuracies (test batches of 64; here 8)
    b = int(ref["test_batch"])
    for pred, key in ((unseen[scores.argmax(1)], "test/acc"), (new, "test/aug_acc")):
        hits = (pred == y).float()
        batch_mean = torch.stack([hits[i:i + b].mean() for i in range(0, len(y), b)]).mean()
        assert batch_mean.item() == pytest.approx(float(ref[key]), abs=1e-6)


def test_setting_ii_resize_is_the_official_interpolation():
    """main.py SotaProcessor: ``F.interpolate(data, scale_factor=(1.28, 1, 1), mode='trilinear',
    align_corners=False)`` on 50-frame inputs = ``TemporalResize(64)``, bit for bit."""
    from zsbench_pgfa.training import TemporalResize
    x = torch.randn(2, 3, 50, 25, 2, generator=torch.Generator().manual_seed(0))
    official = nn.functional.interpolate(x, scale_factor=(1.28, 1, 1), mode="trilinear",
                                         align_corners=False)
    assert torch.equal(TemporalResize(64)(x), official)

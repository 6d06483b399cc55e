"""Reference tensors from the OFFICIAL SMIE code (YujieOuO/SMIE) for tests/test_smie.py.

Usage::

    PYTHONPATH=DIR_WITH_EINOPS python benchmarks/fidelity/smie_reference.py \
        --checkout /tmp/official/SMIE [--out tests/fidelity/smie.npz]

The checkout is imported as is (``model.py``, ``procedure.py``, ``module/gcn``); nothing in
it is edited. What this script changes at runtime, and why:

* ``config.py`` needs ``sacred``; a stand-in module ``config`` with an ``ex`` whose
  ``capture``/``automain``/``config`` decorators return the function unchanged is put in
  ``sys.modules`` (every captured argument is passed explicitly below).
* The official code calls ``.cuda()``; ``torch.Tensor.cuda`` and ``nn.Module.cuda`` become
  no-ops so everything runs on the CPU.
* ``GlobalDiscriminator`` has fixed widths 1024/512 (1.5M parameters, too large for a
  committed file): after construction its ``l0``/``l1``/``l2`` layers are replaced by
  seeded layers of widths 16/8 (its forward code is unchanged). The ST-GCN is built small
  (h = 4, output 8). All weights and BatchNorm statistics are then set to seeded random
  values so that no layer is an identity.
* ``einops`` must be importable (``pip install --target DIR einops``).

What is recorded (float32 unless noted): the skeleton batch (N = 4, T = 50, float16-exact),
labels and the class-text table; the encoder's and the critic's weights; the three official
temporal masks (``motion_att_temp_mask2``, ``motion_att_temp_mask``, ``temp_mask``) as the
input-frame indices their outputs consist of, with the positions Python's ``random`` drew;
the features of the full and masked sequences, both MI estimates (``MI.forward``, ``MI.temp_constrain``); then ONE official
training step (``Processor.train_epoch`` on a one-batch loader, Adam, epoch 20 of the
warm-up/cosine schedule): its loss, the critic's gradients and updated weights; finally the
test-time scores (``-softplus(-global_D)``) and ``MI.get_acc`` predictions on 3 classes.
"""
from __future__ import annotations

import argparse
import random
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import torch
from torch import nn

REPO = "YujieOuO/SMIE"
PINNED = "fa41f1d218621ab220c1b2186b513c0bcdee88c6"
N, T, V, M = 4, 50, 25, 2
HIDDEN, FEAT, TEXT = 4, 8, 12
CRITIC = (16, 8)
LR, EPOCH, MARGIN = 1e-2, 20, 0.5  # margin > I - I' here, so the hinge is active
SEEN_LABELS = [0, 2, 2, 1]
UNSEEN = [3, 4, 1]


def install_stand_ins() -> None:
    ex = types.SimpleNamespace(capture=lambda f: f, automain=lambda f: f, config=lambda f: f)
    cfg = types.ModuleType("config")
    cfg.ex = ex  # type: ignore[attr-defined]
    cfg.__all__ = ["ex"]  # type: ignore[attr-defined]
    sys.modules["config"] = cfg
    torch.Tensor.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
    nn.Module.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]


def f16_exact(gen: torch.Generator, *shape: int, scale: float = 1.0) -> torch.Tensor:
    return (torch.randn(*shape, generator=gen) * scale).half().float()


def randomise(module: nn.Module, gen: torch.Generator) -> None:
    """Seeded random weights and BatchNorm statistics (no layer left at its init)."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "edge_importance" in name:
                p.copy_(1.0 + f16_exact(gen, *p.shape, scale=0.2))
            else:
                p.copy_(f16_exact(gen, *p.shape, scale=0.4))
        for name, b in module.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(f16_exact(gen, *b.shape, scale=0.2))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=gen).half().float())


def frames_of(masked: torch.Tensor, data: torch.Tensor) -> np.ndarray:
    """(N, T') indices of the input frames a mask output consists of (each output frame is
    an exact copy of one input frame of the same sample; asserted)."""
    idx = np.zeros(masked.shape[:1] + masked.shape[2:3], dtype=np.int64)
    for n in range(masked.shape[0]):
        for j in range(masked.shape[2]):
            hits = [t for t in range(data.shape[2]) if torch.equal(masked[n, :, j], data[n, :, t])]
            assert len(hits) == 1, "a masked frame is not a unique copy of an input frame"
            idx[n, j] = hits[0]
    return idx


def state(prefix: str, module: nn.Module) -> dict[str, np.ndarray]:
    return {f"{prefix}{k}": v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()
            if not k.endswith("num_batches_tracked")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkout", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("tests/fidelity/smie.npz"))
    ap.add_argument("--commit", default=PINNED, help="commit of the checkout when it is not a git "
                    "work tree (an archive export)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    install_stand_ins()
    sys.path.insert(0, str(args.checkout.resolve()))
    import model as official  # noqa: E402  (the checkout's model.py)
    import procedure  # noqa: E402
    from module.gcn.st_gcn import Model  # noqa: E402

    commit = args.commit
    if (args.checkout / ".git").exists():
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=args.checkout,
                                capture_output=True, text=True, check=True).stdout.strip()
    gen = torch.Generator().manual_seed(2023)
    out: dict[str, np.ndarray] = {}

    encoder = Model(in_channels=3, hidden_channels=HIDDEN, hidden_dim=FEAT, dropout=0.5,
                    graph_args={"layout": "ntu-rgb+d", "strategy": "spatial"},
                    edge_importance_weighting=True)
    randomise(encoder, gen)
    encoder.eval()
    mi = official.MI(visual_size=FEAT, language_size=TEXT)
    d = mi.global_D
    d.l0, d.l1, d.l2 = nn.Linear(FEAT + TEXT, CRITIC[0]), nn.Linear(*CRITIC), nn.Linear(CRITIC[1], 1)
    randomise(mi, gen)
    out.update(state("encoder/", encoder))
    out.update(state("critic0/", mi.global_D))

    data = torch.cumsum(f16_exact(gen, N, 3, T, V, M, scale=0.1), dim=2).half().float()
    labels = torch.tensor(SEEN_LABELS)
    language = torch.nn.functional.normalize(torch.randn(5, TEXT, generator=gen), dim=-1)
    out.update(data=data.half().numpy(), labels=labels.numpy(), language=language.numpy())

    # ---- the three temporal masks (positions = what random.sample draws after the seed)
    for key, fn, seed, pool, keep in (
            ("mask2", lambda x: official.motion_att_temp_mask2(x, 15), 11, T - 15, T - 30),
            ("mask1", lambda x: official.motion_att_temp_mask(x, 15), 12, T - 15, T - 30),
            ("mask_random", lambda x: official.temp_mask(x, 15), 13, T, T - 15)):
        random.seed(seed)
        out[f"{key}_positions"] = np.asarray(sorted(random.sample(range(pool), keep)))
        random.seed(seed)
        out[key] = frames_of(fn(data), data)

    # ---- module outputs before training
    seen_text = language[labels]
    random.seed(5)
    step_positions = sorted(random.sample(range(T - 15), T - 30))
    with torch.no_grad():
        feat0 = encoder(data.clone())
        random.seed(5)
        feat1 = encoder(official.motion_att_temp_mask2(data, 15))
        dim0 = mi(feat0, seen_text)
        dim1 = mi.temp_constrain(feat0, feat1, seen_text)
    out.update(feat0=feat0.numpy(), feat1=feat1.numpy(), dim0=np.float32(dim0),
               dim1=np.float32(dim1), step_positions=np.asarray(step_positions))

    # ---- one official training step (Processor.train_epoch, one-batch loader)
    proc = procedure.Processor()
    proc.encoder, proc.model, proc.full_language = encoder, mi, language
    proc.data_loader = {"train": [(data.clone(), labels.clone())]}
    proc.load_optim(lr=LR, epoch_num=100, weight_decay=0)
    random.seed(5)
    proc.train_epoch(EPOCH, lr=LR, margin=MARGIN)
    out.update(step_loss=np.float32(proc.dim_loss), step_lr=np.float32(proc.optimizer.param_groups[1]["lr"]),
               step_epoch=np.int64(EPOCH), step_base_lr=np.float32(LR), margin=np.float32(MARGIN))
    out.update({f"grad/{k}": p.grad.numpy().copy() for k, p in mi.global_D.named_parameters()})
    out.update(state("critic1/", mi.global_D))

    # ---- test-time scores and predictions of the trained critic (raw features, no LN)
    unseen_text = language[UNSEEN]
    with torch.no_grad():
        v = feat0.unsqueeze(1).expand(-1, len(UNSEEN), -1)
        t = unseen_text.unsqueeze(0).expand(N, -1, -1)
        scores = -torch.nn.functional.softplus(-mi.global_D(v, t)).squeeze(-1)
        _, pred = mi.get_acc(feat0, unseen_text, labels, UNSEEN)
    out.update(unseen=np.asarray(UNSEEN), test_scores=scores.numpy(), test_pred=pred.numpy())

    out["repo"] = np.asarray(REPO)
    out["commit"] = np.asarray(commit)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, {len(out)} arrays) from {REPO}@{commit}")
    print(f"dim0 {float(dim0):.6f} dim1 {float(dim1):.6f} step loss {proc.dim_loss:.6f} "
          f"lr {out['step_lr']:.6g} pred {pred.tolist()}")


if __name__ == "__main__":
    main()

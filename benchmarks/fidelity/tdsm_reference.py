"""Reference tensors from the OFFICIAL TDSM code (KAIST-VICLab/TDSM) for tests/test_tdsm.py.

    PYTHONPATH=/path/with/diffusers-0.32.2+accelerate-0.33.0+pandas \\
    python benchmarks/fidelity/tdsm_reference.py --checkout /tmp/official/TDSM \\
        --out tests/fidelity/tdsm.npz

Imports ``model/dit.py`` (the denoiser ``DiT``) and ``train.py`` (``Trainer.train`` for the
losses, ``Trainer.test`` for the matching) from the checkout, which is never edited, and
runs them on CPU with fixed seeds on small inputs:

* a small denoiser ``DiT(in_channels=16, cond_size=8, hidden_size=16, depth=2,
  num_heads=2)`` (the 35 local text tokens are hard-coded in DiT and kept). Its adaLN-Zero
  initialisation makes every output exactly zero, so after the official initialisation
  every all-zero parameter is refilled from N(0, 0.1^2) (fixed seed) to make the
  comparison non-trivial;
* the noise schedule: diffusers ``DDPMScheduler`` built the way ``Trainer.load_checkpoint``
  builds it, from the scheduler config of stabilityai/stable-diffusion-2-1-base (its
  values are written out below because the hub is not reachable here) with
  ``num_train_timesteps = 50`` and ``prediction_type = epsilon``;
* text encoders replaced by fixed random class embeddings (n_classes, 36, 8): rows 0..34
  = local tokens, row 35 = global text, as ``Trainer.text_prompt`` lays them out;
* ``Trainer`` is created without its ``__init__`` (which needs CUDA, the hub and the
  dataset files): the script sets the attributes ``train``/``test`` read and replaces
  ``accelerate.Accelerator`` by a minimal CPU stand-in (``accumulate`` = no-op context,
  ``gather`` = identity, ``backward`` = ``loss.backward()``). The random draws of
  ``train`` (noise, timesteps, negative labels) and the error matrix of ``test`` (the
  argument of its ``torch.argmin``) are recorded by wrapping ``add_noise``,
  ``random.choices`` and ``torch.argmin`` at runtime.

Saved: the schedule (betas, alphas_cumprod, add_noise / get_velocity on fixed inputs), the
denoiser weights (official parameter names) with one forward, one training step's inputs,
losses and parameter gradients, and one test batch's (N, K) error matrix, plus ``repo`` and
``commit``.
"""
from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import torch

REPO = "KAIST-VICLab/TDSM"
# stabilityai/stable-diffusion-2-1-base scheduler/scheduler_config.json (public), the
# values DDPMScheduler reads from it
SD21_SCHEDULER = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
                  "clip_sample": False, "num_train_timesteps": 1000,
                  "prediction_type": "epsilon", "steps_offset": 1, "trained_betas": None}
IN, COND, HIDDEN, DEPTH, HEADS = 16, 8, 16, 2, 2
N_CLASSES, B, N_TEST = 6, 8, 5
UNSEEN = np.array([4, 1])          # order as in an official ru*.npy (not sorted)


class CPUAccelerator:
    """What Trainer.train/test use of accelerate.Accelerator, on CPU, single process."""

    device = torch.device("cpu")
    is_main_process = True

    def __init__(self) -> None:
        self.losses: list[torch.Tensor] = []

    def accumulate(self, model):  # noqa: ARG002 - signature of accelerate
        return contextlib.nullcontext()

    def gather(self, tensor):
        self.losses.append(tensor.detach().clone())
        return tensor

    def backward(self, loss):
        loss.backward()

    def save_state(self, path):  # noqa: ARG002
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkout", required=True, type=Path)
    ap.add_argument("--out", default=Path("tests/fidelity/tdsm.npz"), type=Path)
    ap.add_argument("--commit", default=None, help="commit of the checkout when it is an "
                    "exported tree without .git")
    args = ap.parse_args()
    torch.set_num_threads(1)
    sys.path.insert(0, str(args.checkout.resolve()))
    commit = args.commit or subprocess.run(
        ["git", "-C", str(args.checkout), "rev-parse", "HEAD"], capture_output=True,
        text=True).stdout.strip()
    if not commit:
        raise SystemExit("cannot tell the checkout's commit: pass --commit")
    from diffusers import DDPMScheduler

    import train as official_train
    from model.dit import DiT

    out: dict[str, np.ndarray] = {"repo": np.array(REPO), "commit": np.array(commit)}

    # ---- schedule (Trainer.load_checkpoint) ----
    cfg = dict(SD21_SCHEDULER, num_train_timesteps=50, prediction_type="epsilon")
    sched = DDPMScheduler.from_config(cfg)
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(4, 1, IN, generator=g) * 3.0
    eps = torch.randn(4, 1, IN, generator=g)
    tt = torch.tensor([0, 17, 25, 49])
    out.update(sched_betas=sched.betas.numpy(), sched_alphas_cumprod=sched.alphas_cumprod.numpy(),
               sched_x0=x0.numpy(), sched_eps=eps.numpy(), sched_t=tt.numpy(),
               sched_noisy=sched.add_noise(x0, eps, tt).numpy(),
               sched_velocity=sched.get_velocity(x0, eps, tt).numpy())

    # ---- denoiser ----
    torch.manual_seed(0)
    dit = DiT(in_channels=IN, cond_size=COND, hidden_size=HIDDEN, depth=DEPTH, num_heads=HEADS)
    gz = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in dit.parameters():
            if not p.abs().sum():
                p.copy_(torch.randn(p.shape, generator=gz) * 0.1)
    for k, v in dit.state_dict().items():
        out[f"w/{k}"] = v.numpy().copy()
    text_embed = torch.randn(N_CLASSES, 36, COND, generator=g)
    out["text_embed"] = text_embed.numpy()
    xt = torch.randn(B, 1, IN, generator=g)
    tf = torch.randint(0, 50, (B,), generator=g)
    lab = torch.randint(0, N_CLASSES, (B,), generator=g)
    with torch.no_grad():
        y = dit(xt, tf, text_embed[lab, -1], text_embed[lab, :-1])
    out.update(fwd_x=xt.numpy(), fwd_t=tf.numpy(), fwd_labels=lab.numpy(), fwd_out=y.numpy())

    # ---- one training step (Trainer.train) ----
    tr = official_train.Trainer.__new__(official_train.Trainer)
    acc = CPUAccelerator()
    seen = np.array([c for c in range(N_CLASSES) if c not in set(UNSEEN.tolist())])
    features = torch.randn(B, IN, generator=g) * 2.0
    labels = torch.as_tensor(seen[torch.randint(0, len(seen), (B,), generator=g).numpy()])
    tr.args = types.SimpleNamespace(
        batch_size=B, num_steps=50, prediction_type="epsilon", d_weight=1.0, t_weight=1.0,
        margin=1.0, log_iter=10 ** 9, save_iter=10 ** 9, num_iter=100, work_dir=".",
        num_noise=3, idx_inference_step=25)
    tr.accelerator, tr.weight_dtype, tr.noise_scheduler = acc, torch.float32, sched
    tr.text_embed, tr.seen_labels, tr.dit = text_embed, seen, dit
    tr.optimizer = torch.optim.SGD(dit.parameters(), lr=0.0)
    tr.lr_scheduler = types.SimpleNamespace(step=lambda: None)
    tr.train_data_loader = [(features, labels)]
    rec: dict[str, object] = {}
    real_add_noise = sched.add_noise

    def add_noise(x, n, t):
        rec.setdefault("noise", n.detach().clone())
        rec.setdefault("timesteps", t.detach().clone())
        return real_add_noise(x, n, t)

    sched.add_noise = add_noise
    real_random = official_train.random

    def choices(population, k):
        drawn = real_random.choices(population, k=k)
        rec["labels_r"] = np.asarray(drawn)
        return drawn

    official_train.random = types.SimpleNamespace(choices=choices)
    real_zero_grad = tr.optimizer.zero_grad

    def keep_grads(*a, **kw):   # called right after backward + step: record the gradients
        rec["grads"] = {k: p.grad.detach().clone() for k, p in dit.named_parameters()
                        if p.grad is not None}
        real_zero_grad(*a, **kw)

    tr.optimizer.zero_grad = keep_grads
    torch.manual_seed(3)
    real_random.seed(3)
    tr.train(types.SimpleNamespace(write=lambda s: None), 0)
    official_train.random = real_random
    sched.add_noise = real_add_noise
    loss, loss_diff, loss_triplet = acc.losses[:3]
    out.update(train_features=features.numpy(), train_labels=labels.numpy(),
               train_noise=rec["noise"].numpy(), train_timesteps=rec["timesteps"].numpy(),
               train_labels_r=rec["labels_r"], train_loss=loss.numpy(),
               train_loss_diff=loss_diff.numpy(), train_loss_triplet=loss_triplet.numpy())
    for k, v in rec["grads"].items():
        if k.startswith(("final_layer", "x_embedder", "fc_embedder", "blocks.1.attn")):
            out[f"grad/{k}"] = v.numpy()

    # ---- matching (Trainer.test) ----
    tr.unseen_labels, tr.unseen_num = UNSEEN, len(UNSEEN)
    tr.unseen_label_mapping = {int(c): i for i, c in enumerate(UNSEEN)}
    torch.manual_seed(4)
    tr.noise = torch.randn(3, 1, 1, IN)
    test_x = torch.randn(N_TEST, IN, generator=g) * 2.0
    test_y = torch.as_tensor(UNSEEN[[0, 1, 0, 1, 1]])
    tr.test_data_loader = [(test_x, test_y)]
    real_argmin = torch.argmin

    def argmin(x, *a, **kw):
        rec["label_pred"] = x.detach().clone()
        return real_argmin(x, *a, **kw)

    torch.argmin = argmin
    try:
        acc_test = tr.test()
    finally:
        torch.argmin = real_argmin
    out.update(test_noise=tr.noise.numpy(), test_x=test_x.numpy(), test_y=test_y.numpy(),
               test_unseen=UNSEEN, test_errors=rec["label_pred"].numpy(),
               test_acc=np.array(acc_test))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes) from {REPO}@{commit}")


if __name__ == "__main__":
    main()

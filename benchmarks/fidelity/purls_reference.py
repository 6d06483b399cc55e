"""Reference tensors from the OFFICIAL PURLS code (azzh1/PURLS) for tests/test_purls.py.

Usage::

    python benchmarks/fidelity/purls_reference.py --checkout /tmp/official/PURLS \
        [--out tests/fidelity/purls.npz]

The checkout is imported as is (``model/purls.py`` class ``Purls``, ``model/utils/
attention.py``, ``model/utils/losses.py``); nothing in it is edited. What this script
changes at runtime, and why:

* ``clip`` (OpenAI CLIP) is not installed: a stand-in package is put in ``sys.modules``.
  ``clip.tokenize`` maps each description string ``"c<class>_r<representation>"`` to one
  integer id, and ``clip.load`` returns a module whose ``encode_text`` looks the id up in a
  fixed seeded table of float16-exact random "text features" (E = 12). ``Purls.loss``
  normalises them exactly as it does real CLIP features.
* ``pytorch_lightning`` is not installed: ``model/__init__.py`` imports the Lightning
  interface, so a stand-in with ``LightningModule = nn.Module`` is registered.
* ``Purls.__init__`` creates its logit scales (and loss weights) with ``device='cuda'``: a
  ``TorchFunctionMode`` rewrites that device argument to the CPU while the model is built,
  and ``torch.Tensor.cuda`` becomes a no-op.
* Widths are small constructor arguments (input_size D = 16, emb_dim E = 12,
  proj_hidden_size 32, k_dim 6, 2 heads, n_hidden_layers 0 as in the released configs) so
  the weights fit a committed file; 4 body parts + 3 intervals + global = 8
  representations, 3 segments x 25 joints = 75 tokens as in the code. Weights: the
  official Kaiming init under a fixed seed, then BatchNorm affine parameters and running
  statistics and the 8 logit scales set to seeded non-default values (float16-exact).

Recorded (float32): tokens ``x`` (B = 6, 3, 25, D), the class text table (C = 7 classes x 8
x E, normalised as in ``loss``), the seen class list and batch targets; every weight under
its official state-dict name; in eval mode: the attention weights and pooled vectors
(``MultiHeadSelfAttention(..., return_att=True)``), the projected representations (hook on
``skel_encoder``), the loss of ``Purls.loss`` and its global-description predictions; in
training mode with the two Dropout layers switched off (BatchNorm on batch statistics):
the loss, the gradient of every trainable weight and the BatchNorm running statistics
after the step; with ``use_d=True`` and seeded weights ``d``: the eval-mode loss and the
gradient of ``d``; the official test path (``cls_idx`` = unseen classes, the true label's
descriptions as queries, quirk Q1): its predictions; ``repo`` and ``commit``.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

REPO = "azzh1/PURLS"
PINNED = "7198fe74ac114b37dd93d57a6946034d24ac1aff"
B, S, V, D, E, HID, KD, NH = 6, 3, 25, 16, 12, 32, 6, 2
C, R = 7, 8
SEEN = [0, 2, 3]
UNSEEN = [1, 4, 5, 6]
TARGETS = [0, 1, 2, 0, 2, 2]          # re-indexed among SEEN (repeats: same-class negatives)
TEST_TARGETS = [0, 1, 2, 3, 1, 2]     # re-indexed among UNSEEN


def f16(gen: torch.Generator, *shape: int, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    return ((torch.randn(*shape, generator=gen) * scale) + shift).half().float()


TABLE = f16(torch.Generator().manual_seed(11), C * R, E)


class FakeClipModel(nn.Module):
    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        return TABLE[tokens]


def install_stand_ins() -> None:
    clip = types.ModuleType("clip")
    clip.tokenize = lambda texts: torch.tensor(  # type: ignore[attr-defined]
        [int(t[1:].split("_r")[0]) * R + int(t.split("_r")[1]) for t in texts])
    clip.load = lambda name, *a, **k: (FakeClipModel(), None)  # type: ignore[attr-defined]
    clip.clip = clip  # type: ignore[attr-defined]
    tok = types.ModuleType("clip.simple_tokenizer")

    class SimpleTokenizer:
        pass

    tok.SimpleTokenizer = SimpleTokenizer  # type: ignore[attr-defined]
    clip.simple_tokenizer = tok  # type: ignore[attr-defined]
    pl = types.ModuleType("pytorch_lightning")
    pl.LightningModule = nn.Module  # type: ignore[attr-defined]
    sys.modules.update({"clip": clip, "clip.clip": clip, "clip.simple_tokenizer": tok,
                        "pytorch_lightning": pl})
    torch.Tensor.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]


class CpuOnly(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if str(kwargs.get("device", "")).startswith("cuda"):
            kwargs["device"] = "cpu"
        return func(*args, **kwargs)


def build(purls_cls, labels: np.ndarray, use_d: bool, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    with CpuOnly():
        model = purls_cls(num_epoch=1, input_size=D, emb_dim=E, bp_num=4, t_num=3,
                          proj_hidden_size=HID, n_hidden_layers=0, n_head=NH, k_dim=KD,
                          local_type="full", cls_labels=labels, use_d=use_d)
    gen = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for m in model.skel_encoder.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.weight.copy_(f16(gen, m.num_features, scale=0.2, shift=1.0))
                m.bias.copy_(f16(gen, m.num_features, scale=0.1))
                m.running_mean.copy_(f16(gen, m.num_features, scale=0.1))
                m.running_var.copy_(f16(gen, m.num_features, scale=0.01).abs() + 0.02)
        model.tmps.copy_(f16(gen, R, scale=0.3, shift=2.659))
        if use_d:
            model.d.copy_(f16(gen, R, scale=0.3, shift=1.0))
    return model


def weights(model: nn.Module) -> dict[str, np.ndarray]:
    return {f"w/{k}": v.detach().numpy().copy() for k, v in model.state_dict().items()
            if not k.startswith("clip")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkout", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("tests/fidelity/purls.npz"))
    ap.add_argument("--commit", default=PINNED, help="commit of the checkout when it is not a "
                    "git work tree")
    args = ap.parse_args()
    torch.set_num_threads(1)
    commit = args.commit
    if (args.checkout / ".git").exists():
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=args.checkout,
                                capture_output=True, text=True, check=True).stdout.strip()
    install_stand_ins()
    sys.path.insert(0, str(args.checkout))
    from model.purls import Purls  # noqa: E402  (official code)

    labels = np.array([[f"c{c}_r{i}" for i in range(R)] for c in range(C)], dtype=object)
    gen = torch.Generator().manual_seed(7)
    # a sample-specific direction plus noise, so that samples differ after pooling
    x = (f16(gen, B, 1, 1, D) + 0.5 * f16(gen, B, S, V, D)).half().float()
    x = x / x.norm(dim=-1, keepdim=True)       # the loader's per-position normalisation
    target = torch.tensor(TARGETS)
    test_target = torch.tensor(TEST_TARGETS)
    seen, unseen = torch.tensor(SEEN), torch.tensor(UNSEEN)
    text = TABLE.view(C, R, E)
    text = text / text.norm(dim=-1, keepdim=True)
    rec: dict[str, np.ndarray] = {
        "repo": np.array(REPO), "commit": np.array(commit), "x": x.numpy(),
        "text": text.numpy(), "seen": seen.numpy(), "unseen": unseen.numpy(),
        "target": target.numpy(), "test_target": test_target.numpy()}

    # ---- eval mode: attention, projection, loss, predictions
    model = build(Purls, labels, use_d=False, seed=2)
    rec.update(weights(model))
    model.eval()
    captured: dict[str, torch.Tensor] = {}
    model.skel_encoder.register_forward_hook(lambda m, i, o: captured.__setitem__("proj", o))
    with torch.no_grad():
        queries = text[seen][target]
        pooled, att = model.attention(x.view(B, S * V, D), queries, return_att=True)
        losses, vals = model.loss(x, target, seen[target], seen, 0, is_train=False)
    rec.update({"eval_pooled": pooled.numpy(), "eval_att": att.numpy(),
                "eval_out": captured["proj"].view(B, R, E).numpy(),
                "eval_loss": np.array(losses["loss"].item()),
                "eval_preds": vals["preds"].numpy()})
    # ---- official test path (true-label queries)
    with torch.no_grad():
        _, tvals = model.loss(x, test_target, unseen[test_target], unseen, 0, is_train=False,
                              is_test=True)
    rec["test_preds"] = tvals["preds"].numpy()

    # ---- training mode (BatchNorm on batch statistics), dropout off: loss and gradients
    model.train()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.eval()
    losses, _ = model.loss(x, target, seen[target], seen, 0, is_train=True)
    losses["loss"].backward()
    rec["train_loss"] = np.array(losses["loss"].item())
    for name, p in model.named_parameters():
        if p.grad is not None:
            rec[f"grad/{name}"] = p.grad.numpy().copy()
    for name, buf in model.named_buffers():
        if "running" in name:
            rec[f"after/{name}"] = buf.numpy().copy()

    # ---- learnable loss weights (use_d)
    model_d = build(Purls, labels, use_d=True, seed=3)
    rec.update({k.replace("w/", "wd/", 1): v for k, v in weights(model_d).items()})
    rec["wd/d"] = model_d.d.detach().numpy().copy()
    model_d.eval()
    losses, _ = model_d.loss(x, target, seen[target], seen, 0, is_train=False)
    losses["loss"].backward()
    rec["d_loss"] = np.array(losses["loss"].item())
    rec["d_grad"] = model_d.d.grad.numpy().copy()
    rec["d_tmps_grad"] = model_d.tmps.grad.numpy().copy()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **rec)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes) from {REPO}@{commit}; "
          f"eval loss {float(rec['eval_loss']):.6f}, train loss {float(rec['train_loss']):.6f}, "
          f"use_d loss {float(rec['d_loss']):.6f}")


if __name__ == "__main__":
    main()

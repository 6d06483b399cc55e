"""Reference tensors from the OFFICIAL STAR code (cseeyangchen/STAR) for tests/test_star.py.

Usage::

    python benchmarks/fidelity/star_reference.py --checkout /tmp/official/STAR \
        [--out tests/fidelity/star.npz]

The checkout is imported as is (``model/shiftgcn_match_ntu.py``: ``SHIFTGCNModel.forward``,
``ModelMatch.forward``, ``loss_cal``, ``get_zsl_acc``, ``get_gzsl_acc``); nothing in it is
edited. What this script changes at runtime, and why:

* ``shiftgcn_match_ntu`` imports the compiled CUDA temporal-shift op ``cuda.shift`` at import
  time: a stand-in module with an unused ``Shift`` class is put in ``sys.modules``
  (``pandas``, imported but unused by the model file, is stubbed when it is not installed).
* The Shift-GCN inside ``ModelMatch`` (``pretraining_model``) allocates CUDA tensors: the
  module-level name ``SHIFTGCNModel`` is replaced by a subclass whose ``__init__`` installs
  an identity ``data_bn``, a first block that returns a fixed per-body feature map
  (B*M, C, T', V) and identity blocks 2-10. Its ``forward`` is the official one, so the
  official match-cube reshape (quirk Q1) runs on known features.
* ``torch.Tensor.cuda`` becomes a no-op; ``numpy.save`` becomes a no-op while ``loss_cal``
  runs (it dumps .npy files to a hard-coded absolute path every step).
* The layers have fixed widths (768-d prompts, 256 channels, 100 prompts), i.e. tens of
  millions of parameters, too large for a committed file. After construction every layer is
  replaced by one of the same kind at E = 8 (prompt / attention width, 4 heads), C = 6
  channels, P = 5 prompts, H = 7 hidden units and a D = 12 text space; the class count stays
  60 (``loss_cal`` hard-codes ``range(60)``). All weights are seeded, float16-exact values.

Recorded (float32): the per-body features, the class-name (60, D) and part-description
(60, 6, D) text features, the unseen classes, the batch labels, every weight under its
official state-dict name; the match cube, the part embeddings ``global_visual_feature``
(B, 6, P) and the global embedding ``global_semantic`` (B, P); the three loss terms of the
objective and ``loss = 0.1 L_g + L_p + 0.1 L_pd`` (``main_ntu_match.py``) with the gradient
of every weight; the GZSL cosine matrix of ``get_gzsl_acc`` over the 60 classes and the
ZSL predictions of ``get_zsl_acc`` over the unseen classes; ``repo`` and ``commit``.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from neuron_reference import f16  # noqa: E402  (float16-exact seeded values)
from neuron_reference import install_stand_ins as neuron_install_stand_ins  # noqa: E402

REPO = "cseeyangchen/STAR"
PINNED = "917ca673162e344f65b50328f2d4d7a1fe58bc7b"
B, M, C, T4, V = 4, 2, 6, 4, 25
E, P, H, D, K, NH = 8, 5, 7, 12, 60, 4
UNSEEN = [10, 11, 19, 26, 56]
LABELS = [0, 3, 57, 22]           # global class ids of the batch (all seen)
FEATS: dict[str, torch.Tensor] = {}


def install_stand_ins() -> None:
    """Neuron's stand-ins (``cuda.shift``, no-op ``Tensor.cuda``: the same authors' code
    imports the same op), plus ``pandas`` when it is not installed."""
    neuron_install_stand_ins()
    try:
        import pandas  # noqa: F401
    except ImportError:
        sys.modules["pandas"] = types.ModuleType("pandas")


class Inject(nn.Module):
    """First block stand-in: returns the fixed per-body feature map."""

    def forward(self, x):
        return FEATS["per_body"]


def shrink(model: nn.Module) -> None:
    """Same layer kinds as ModelMatch.__init__ at the small sizes."""
    R = 6
    model.body_part_st_attention_networks = nn.ModuleList(
        [nn.MultiheadAttention(embed_dim=E, kdim=C, vdim=C, num_heads=NH, batch_first=True)
         for _ in range(R)])
    model.body_part_mapping_matrix1 = nn.ModuleList([nn.Linear(E, E) for _ in range(R)])
    model.body_part_mapping_matrix2 = nn.ModuleList([nn.Linear(E, E) for _ in range(R)])
    model.body_part_prompts = nn.ParameterList([nn.Parameter(torch.empty(P, E)) for _ in range(R)])
    model.body_part_w = nn.ParameterList([nn.Parameter(torch.empty(E, E)) for _ in range(R)])
    model.pd_mapping_matrix1 = nn.ModuleList([nn.Linear(D, H) for _ in range(R)])
    model.pd_mapping_matrix2 = nn.ModuleList([nn.Linear(H, P) for _ in range(R)])
    model.gcn_part_classifier = nn.ModuleList([nn.Linear(C, P) for _ in range(R)])
    model.pd_prompt = nn.ParameterList([nn.Parameter(torch.empty(K, D)) for _ in range(R)])
    model.crossmodal_align1 = nn.Linear(D, H)
    model.crossmodal_align2 = nn.Linear(H, P)
    model.global_fc1 = nn.Linear(P * R, H)
    model.global_fc2 = nn.Linear(H, P)
    model.gcn_flobal_classifier = nn.Linear(C, K)


def randomise(model: nn.Module, gen: torch.Generator) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not p.requires_grad:
                continue
            if name.startswith(("body_part_prompts", "body_part_w", "pd_prompt")):
                p.copy_(f16(gen, *p.shape, scale=0.5))
            elif name.endswith("bias"):
                p.copy_(f16(gen, *p.shape, scale=0.1, shift=0.05))
            else:
                p.copy_(f16(gen, *p.shape, scale=1.0 / np.sqrt(p.shape[1])))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkout", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("tests/fidelity/star.npz"))
    ap.add_argument("--commit", default=PINNED, help="commit of the checkout when it is not a "
                    "git work tree (an archive export)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    install_stand_ins()
    sys.path.insert(0, str(args.checkout.resolve()))
    from model import shiftgcn_match_ntu as official  # noqa: E402  (the checkout's package)

    commit = args.commit
    if (args.checkout / ".git").exists():
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=args.checkout,
                                capture_output=True, text=True, check=True).stdout.strip()

    class StubEncoder(official.SHIFTGCNModel):
        def __init__(self, **kwargs) -> None:
            nn.Module.__init__(self)
            self.data_bn = nn.Identity()
            self.l1 = Inject()
            for i in range(2, 11):
                setattr(self, f"l{i}", nn.Identity())

    official.SHIFTGCNModel = StubEncoder
    torch.manual_seed(0)
    model = official.ModelMatch(num_class=K, graph="unused", head=["ViT-L/14@336px"],
                                body_part=6)
    shrink(model)
    gen = torch.Generator().manual_seed(2024)
    randomise(model, gen)
    model.train()

    FEATS["per_body"] = torch.relu(f16(gen, B * M, C, T4, V, scale=1.0, shift=0.2))
    x = torch.zeros(B, 3, 4 * T4, V, M)                      # shape only (the stub ignores it)
    names = f16(gen, K, D)                                    # action_descriptions[0]
    parts = f16(gen, K, 6, D)                                 # action_descriptions[1..6]
    labels = torch.tensor(LABELS)
    seen = list(set(range(K)) - set(UNSEEN))                  # main_ntu_match.py order
    one_hot_seen = torch.zeros(B, len(seen), dtype=torch.long)
    for b, lab in enumerate(LABELS):
        one_hot_seen[b, seen.index(lab)] = 1
    one_hot_all = torch.nn.functional.one_hot(labels, K)

    # ---- training step as main_ntu_match.py: train ----
    prompt = torch.cat([model.pd_prompt[i].unsqueeze(1) for i in range(6)], dim=1)
    part_language = torch.cat([(parts[lab].unsqueeze(0) + prompt[lab].unsqueeze(0))
                               for lab in LABELS], dim=0)
    label_language = names[labels]
    out = model(x, None, part_language, label_language, 1, parts[seen])
    global_visual, label_proj, global_semantic = out[2], out[9], out[14]
    cube = model.pretraining_model(x)[0]
    real_save = np.save
    np.save = lambda *a, **k: None  # type: ignore[assignment]
    try:
        terms = model.loss_cal(out[0], out[2], part_language, parts[seen], parts[:K],
                               names[seen], label_proj, one_hot_seen, names[:K], UNSEEN,
                               out[3], out[4], out[5], out[6], out[7], out[8], out[1],
                               one_hot_all, out[10], out[11], out[12], out[13], out[14])
    finally:
        np.save = real_save  # type: ignore[assignment]
    loss_g, loss_p, loss_pd = terms[0], terms[11], terms[12]
    loss = 0.1 * loss_g + loss_p + 0.1 * loss_pd
    model.zero_grad()
    loss.backward()

    # ---- evaluation as main_ntu_match.py: eval ----
    model.eval()
    with torch.no_grad():
        ev = model(x, None, parts[labels], names[labels], 0, parts[seen])
        zsl_idx, _ = model.get_zsl_acc(ev[2], ev[0], names[UNSEEN], parts[UNSEEN],
                                       one_hot_all, UNSEEN, ev[10], ev[13], ev[14], ev[12],
                                       ev[11])
        gz = model.get_gzsl_acc(ev[2], ev[0], names[:K], parts[:K], one_hot_all, UNSEEN,
                                ev[6], ev[4], ev[5], ev[10], ev[13], ev[14], ev[12], ev[11])

    rec: dict[str, np.ndarray] = {
        "repo": np.array(REPO), "commit": np.array(commit),
        "per_body": FEATS["per_body"].numpy(), "names": names.numpy(), "parts": parts.numpy(),
        "labels": labels.numpy(), "unseen": np.array(UNSEEN), "seen": np.array(seen),
        "cube": cube.detach().numpy(),
        "part_embeddings": global_visual.detach().numpy(),
        "global_embedding": global_semantic.detach().numpy(),
        "loss": np.array(loss.item(), dtype=np.float32),
        "loss_global": np.array(loss_g.item(), dtype=np.float32),
        "loss_part": np.array(loss_p.item(), dtype=np.float32),
        "loss_pd": np.array(loss_pd.item(), dtype=np.float32),
        "gzsl_cosines": gz[4].numpy(), "zsl_pred": np.asarray(zsl_idx),
    }
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        rec[f"w/{name}"] = p.detach().numpy().copy()
        if p.grad is not None:
            rec[f"g/{name}"] = p.grad.numpy().copy()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **rec)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes) from {REPO}@{commit}; "
          f"loss {loss.item():.6f} (global {loss_g.item():.6f}, part {loss_p.item():.6f}, "
          f"pd {loss_pd.item():.6f})")


if __name__ == "__main__":
    main()

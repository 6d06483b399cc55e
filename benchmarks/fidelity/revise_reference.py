"""Reference tensors for the ReViSE plugin, computed by the OFFICIAL SynSE-repository code.

    python benchmarks/fidelity/revise_reference.py --checkout /path/to/synse-zsl \
        [--out tests/fidelity/revise.npz]

Imports ``revise/ReViSE.py`` from a checkout of ``skelemoa/synse-zsl`` (commit
90f39a118170d708843c5d4305bd807905cb4c54), builds its two autoencoders (small widths so the
file stays small; the classes take the widths as arguments) with fixed seeds, runs one
training step's loss exactly as ``revise/zsl_revise.py:train`` does on fixed inputs, and
saves inputs, weights, module outputs, every loss term, the parameter gradients of the
total loss and the ZSL scores. ``tests/test_revise.py`` loads the same weights into
``zsbench_revise.modules.ReviseNet`` and compares to 1e-5.

Runs on the CPU: the official functions take the device as an argument. One line of the
training script is not reproduced: ``vis_emb.retain_grad()`` on a tensor that does not yet
require grad, an error in current PyTorch and a no-op for a leaf in the script's version.
The checkout is never modified. Needs torch, numpy and torchvision (imported by ReViSE.py).
"""
from __future__ import annotations

import numpy as np
import torch

from synse_zsl_common import save, setup


def state(prefix: str, module: torch.nn.Module) -> dict[str, np.ndarray]:
    return {f"w/{prefix}.{k}": v.detach().numpy().copy() for k, v in module.state_dict().items()}


def main() -> None:
    args, commit = setup(__doc__, "revise", "revise")
    import ReViSE as official  # noqa: E402  (the official module, from the checkout)

    dev = torch.device("cpu")
    torch.manual_seed(5)
    # skeleton AE: AttAE(in, code, embed) (the repository's 'shift' branch, 256 -> 100 -> 50);
    # text AE: VisAE(in, hidden, code, embed) (its 'bert' branch, 1024 -> 512 -> 100 -> 50)
    visae = official.AttAE(24, 10, 6)
    attae = official.VisAE(32, 16, 10, 6)
    gen = torch.Generator().manual_seed(11)
    B, C = 8, 5
    x = (torch.rand(B, 24, generator=gen) * 3.0).float()               # non-negative features
    class_text = torch.randn(C, 32, generator=gen)
    class_text = class_text / class_text.norm(dim=1, keepdim=True)
    target = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])
    text = class_text[target]
    crit = torch.nn.MSELoss()
    gamma = 1e-4

    # --- zsl_revise.py:train, one batch --------------------------------------------------
    visae.train()
    attae.train()
    with torch.no_grad():
        seen_class_embeddings = attae(class_text)[2]
        vis_emb = torch.log(1 + x)
    vis_emb.requires_grad_(True)
    vis_hidden, vis_out, vis_trans_out = visae(vis_emb)
    # the contractive norm alone: the official function with a zero criterion and gamma 1
    contractive = official.contractive_loss(vis_out, vis_emb, vis_hidden,
                                            lambda a, b: torch.zeros(()), dev, gamma=1.0).item()
    vis_recons_loss = official.contractive_loss(vis_out, vis_emb, vis_hidden, crit, dev, gamma=gamma)
    att_hidden, att_out, att_trans_out = attae(text)
    att_recons_loss = crit(att_out, text)
    loss_mmd = official.MMDLoss(vis_hidden, att_hidden)
    pred_loss = official.multi_class_hinge_loss(vis_trans_out, att_trans_out, target,
                                                seen_class_embeddings)
    loss = pred_loss + vis_recons_loss + att_recons_loss + loss_mmd
    visae.zero_grad()
    attae.zero_grad()
    loss.backward()
    grads = {f"g/visual.{n}": p.grad.numpy().copy() for n, p in visae.named_parameters()}
    grads.update({f"g/text.{n}": p.grad.numpy().copy() for n, p in attae.named_parameters()})

    # --- the MMD with a wide kernel (k=32 leaves mostly the diagonal on random codes) -----
    mmd_wide = official.MMDLoss(vis_hidden.detach(), att_hidden.detach(), k=0.05).item()
    # --- zsl_revise.py:accuracy (ZSL scores of the visual embedding vs class embeddings) --
    with torch.no_grad():
        visae.eval()
        attae.eval()
        cemb = attae(class_text[2:])[2]
        ev = visae(torch.log(1 + x))[2]
        tv = ev.unsqueeze(1).expand(B, cemb.shape[0], ev.shape[1])
        tc = cemb.unsqueeze(0).expand(B, cemb.shape[0], ev.shape[1])
        zsl_scores = torch.sum(tv * tc, axis=2)

    out = {"x": x.numpy(), "text": text.numpy(), "class_text": class_text.numpy(),
           "target": target.numpy(), "gamma": np.array(gamma),
           "h_v": vis_hidden.detach().numpy(), "rec_v_out": vis_out.detach().numpy(),
           "e_v": vis_trans_out.detach().numpy(), "h_t": att_hidden.detach().numpy(),
           "e_t": att_trans_out.detach().numpy(),
           "loss_hinge": np.array(pred_loss.item()), "loss_rec_v": np.array(vis_recons_loss.item()),
           "loss_contractive": np.array(contractive), "loss_rec_t": np.array(att_recons_loss.item()),
           "loss_mmd": np.array(loss_mmd.item()), "loss_total": np.array(loss.item()),
           "mmd_k0.05": np.array(mmd_wide), "zsl_scores": zsl_scores.numpy()}
    out.update(state("visual", visae))
    out.update(state("text", attae))
    out.update(grads)
    save(args.out, out, commit)


if __name__ == "__main__":
    main()

"""Reference tensors for the MSF plugin (and the shared VAE/gate building blocks).

    PYTHONPATH=/path/to/sklearn-1.5 python benchmarks/fidelity/msf_reference.py \
        --checkout /tmp/official/MSF-GZSSAR [--out tests/fidelity/msf.npz]

``--checkout``: EHZ9NIWI7/MSF-GZSSAR at e647095eda88bd7aeaeaad54db79dc5a7824ec89. Imports
``model.py`` (Encoder, Decoder, MLP, reparameterize, KL_divergence, Wasserstein_distance),
records module outputs, the loss of ``train.py``'s ``train_one_cycle`` at fixed iterations
(warm-up factors restated from it), gradients, the unseen-classifier loop of
``train_classifier``, the text fusion of ``train.py`` (concatenate the LB/AD/MD features,
then one L2 normalisation) on the shipped ``text_feats/ViT-B/32`` arrays (first rows), and
runs ``gating_train.py`` / ``gating_eval.py`` twice: with the run scripts' fixed
``--th 50 --t 2`` and with the search (``--th 0 --t 0``).

CPU only (``.cuda()`` redirected at runtime, torchvision and ``data_cnn60`` replaced by
empty stand-ins); the checkout is not modified. Not run by the tests; the npz is committed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vae_gate_reference as ref  # noqa: E402

REPO, COMMIT = "EHZ9NIWI7/MSF-GZSSAR", "e647095eda88bd7aeaeaad54db79dc5a7824ec89"
FUSION_ROWS = 4


def fusion_reference(checkout: Path) -> dict[str, np.ndarray]:
    """train.py: ``text_feat = concat([lb, ad, md], -1)``; ``text_emb = text_feat /
    norm(text_feat, dim=1)`` (one normalisation of the concatenation)."""
    out = {}
    folder = checkout / "text_feats" / "ViT-B" / "32"
    feats = {m: torch.from_numpy(np.load(folder / f"{m}_60.npy"))[:FUSION_ROWS].float()
             for m in ("lb", "ad", "md")}
    for tm in ("lb", "ad_md", "lb_ad_md"):
        tfl = [feats[m] for m in tm.split("_")]
        tf = torch.concat(tfl, dim=-1)
        emb = tf / torch.norm(tf, dim=1, keepdim=True).repeat([1, tf.size(-1)])
        out[f"fusion/{tm}"] = emb.numpy()
    out.update({f"fusion_in/{m}": v.numpy() for m, v in feats.items()})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkout", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("tests/fidelity/msf.npz"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    ref.patch_cpu()
    ref.stub_modules("torchvision")
    official = ref.import_from(args.checkout, "model")
    out = ref.skeleton_vae_reference(official, "synse")
    out.update(fusion_reference(args.checkout))
    out.update(ref.gate_reference(args.checkout / "gating_train.py", args.checkout / "gating_eval.py",
                                  "msf", [{"th": 50, "t": 2}, {"th": 0, "t": 0}], n_rows=(150, 200)))
    ref.save(out, args.out, REPO, COMMIT)


if __name__ == "__main__":
    main()

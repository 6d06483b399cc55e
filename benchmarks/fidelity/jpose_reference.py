"""Reference tensors for the JPoSE plugin, computed by the OFFICIAL SynSE-repository code.

    python benchmarks/fidelity/jpose_reference.py --checkout /path/to/synse-zsl \
        [--out tests/fidelity/jpose.npz]

Imports ``jpose/alignment_module.py`` from a checkout of ``skelemoa/synse-zsl`` (commit
90f39a118170d708843c5d4305bd807905cb4c54), builds the verb and noun ``Mmen`` spaces and the
joint ``JPosMmen`` with fixed seeds, runs one training step's loss exactly as
``jpose/zsl_fgar.py:train`` does (L2 normalisations, cross-modal hinge per part of speech
against all seen classes, batch-hard within-modality triplets weighted 0.01, joint hinge) on
fixed inputs, and saves inputs, weights, every loss term, the parameter gradients of the
total loss, the ZSL scores, and the outputs of the single-layer (word2vec-width) text branch.
``tests/test_jpose.py`` loads the same weights into ``zsbench_jpose.modules.JPoseNet``.

Widths: ``Mmen`` builds its two-layer Sentence-BERT text branch only for a 1024-d input, with
a 512-wide hidden layer; to keep the file small the script builds it with 1024 and then
replaces the two ``Linear`` layers of that branch by narrower ones (32 -> 16 -> out), keeping
the official ``Linear, Tanh, Linear, ReLU`` sequence and forward code. CPU only (the official
functions take the device as an argument). The checkout is never modified. Needs torch,
numpy and torchvision (imported by alignment_module.py).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from synse_zsl_common import save, setup


def l2(t: torch.Tensor) -> torch.Tensor:
    """The script's normalisation: divide each row by its norm (no epsilon)."""
    return t / torch.norm(t, dim=1).view([t.size(0), 1]).repeat([1, t.shape[1]])


def main() -> None:
    args, commit = setup(__doc__, "jpose", "jpose")
    import alignment_module as official  # noqa: E402  (the official module, from the checkout)

    dev = torch.device("cpu")
    vis_dim, text_dim, out_size, margin = 20, 32, 6, 0.3
    torch.manual_seed(5)
    spaces = {}
    for pos in ("verb", "noun"):
        m = official.Mmen(vis_dim, 1024, out_size)
        m.TextArch[0] = nn.Linear(text_dim, 16)
        m.TextArch[2] = nn.Linear(16, out_size)
        spaces[pos] = m
    joint = official.JPosMmen(2 * out_size, 5)
    small = official.Mmen(vis_dim, 12, out_size)      # word2vec-width branch: Linear + Tanh

    gen = torch.Generator().manual_seed(13)
    C, B = 6, 12
    verb_of_class = np.array([0, 1, 1, 2, 3, 0])      # classes 1/2 and 0/5 share a verb
    noun_of_class = np.array([0, 0, 1, 2, 2, 3])      # classes 0/1 and 3/4 share a noun
    verb_rows = torch.randn(4, text_dim, generator=gen)
    noun_rows = torch.randn(4, text_dim, generator=gen)
    verb_emb = l2(verb_rows[verb_of_class])
    noun_emb = l2(noun_rows[noun_of_class])
    target = torch.tensor([0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 1, 4])
    x = torch.rand(B, vis_dim, generator=gen) * 2.0
    seen = np.arange(C)
    verb_tar = [int(verb_of_class[t]) for t in target]
    noun_tar = [int(noun_of_class[t]) for t in target]

    # --- zsl_fgar.py:train, one batch ------------------------------------------------------
    VerbPosMmen, NounPosMmen, JointMmen = spaces["verb"], spaces["noun"], joint
    emb = x
    verb_emb_target, noun_emb_target = verb_emb[target], noun_emb[target]
    with torch.no_grad():
        emb = l2(emb)
        verb_embeddings = l2(VerbPosMmen.TextArch(verb_emb[seen]))
        noun_embeddings = l2(NounPosMmen.TextArch(noun_emb[seen]))
        fin_text_embedding = l2(JointMmen.TextArch(torch.cat([verb_embeddings, noun_embeddings], axis=1)))
    vis_verb_transform, verb_transform = VerbPosMmen(emb, verb_emb_target)
    vis_verb_transform, verb_transform = l2(vis_verb_transform), l2(verb_transform)
    verb_vis_loss = official.multi_class_hinge_loss(vis_verb_transform, verb_transform, target,
                                                    verb_embeddings, margin)
    verb_verb_loss = official.triplet_loss(vis_verb_transform, torch.tensor(verb_tar), dev, margin)
    vis_noun_transform, noun_transform = NounPosMmen(emb, noun_emb_target)
    vis_noun_transform, noun_transform = l2(vis_noun_transform), l2(noun_transform)
    noun_vis_loss = official.multi_class_hinge_loss(vis_noun_transform, noun_transform, target,
                                                    noun_embeddings, margin)
    noun_noun_loss = official.triplet_loss(vis_noun_transform, torch.tensor(noun_tar), dev, margin)
    joint_vis = torch.cat([vis_verb_transform, vis_noun_transform], axis=1)
    joint_text = torch.cat([verb_transform, noun_transform], axis=1)
    fin_vis, fin_text = JointMmen(joint_vis, joint_text)
    fin_text, fin_vis = l2(fin_text), l2(fin_vis)
    joint_loss = official.multi_class_hinge_loss(fin_vis, fin_text, target, fin_text_embedding, margin)
    loss = verb_vis_loss + noun_vis_loss
    loss += 0.01 * verb_verb_loss + 0.01 * noun_noun_loss
    loss += joint_loss
    for m in (VerbPosMmen, NounPosMmen, JointMmen):
        m.zero_grad()
    loss.backward()

    # --- ZSL scores (zsl_fgar.py:zsl_validate / accuracy) on classes 4, 5 as "unseen" -----
    unseen = np.array([4, 5])
    with torch.no_grad():
        ve = l2(VerbPosMmen.TextArch(verb_emb[unseen]))
        ne = l2(NounPosMmen.TextArch(noun_emb[unseen]))
        fte = l2(JointMmen.TextArch(torch.cat([ve, ne], axis=1)))
        e = l2(x)
        fv = l2(JointMmen.VisArch(torch.cat([l2(VerbPosMmen.VisArch(e)),
                                             l2(NounPosMmen.VisArch(e))], axis=1)))
        zsl_scores = fv @ fte.T
        small_text = small.TextArch(verb_emb[:, :12])
        small_vis = small.VisArch(e)

    out = {"x": x.numpy(),
           "verb_emb": verb_emb.numpy(), "noun_emb": noun_emb.numpy(), "target": target.numpy(),
           "verb_of_class": verb_of_class, "noun_of_class": noun_of_class, "unseen": unseen,
           "margin": np.array(margin),
           "loss_hinge_verb": np.array(verb_vis_loss.item()),
           "loss_hinge_noun": np.array(noun_vis_loss.item()),
           "loss_triplet_verb": np.array(verb_verb_loss.item()),
           "loss_triplet_noun": np.array(noun_noun_loss.item()),
           "loss_hinge_joint": np.array(joint_loss.item()), "loss_total": np.array(loss.item()),
           "zsl_scores": zsl_scores.numpy(), "small_text_out": small_text.numpy(),
           "small_vis_out": small_vis.numpy()}
    for name, m in (("verb", VerbPosMmen), ("noun", NounPosMmen), ("joint", JointMmen),
                    ("small", small)):
        for k, v in m.state_dict().items():
            out[f"w/{name}.{k}"] = v.numpy().copy()
        if name != "small":
            for k, p in m.named_parameters():
                out[f"g/{name}.{k}"] = p.grad.numpy().copy()
    save(args.out, out, commit)


if __name__ == "__main__":
    main()

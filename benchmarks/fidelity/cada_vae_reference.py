"""Reference tensors for the CADA-VAE plugin and the shared VAE/gate building blocks.

    python benchmarks/fidelity/cada_vae_reference.py --checkout /tmp/official/synse-zsl \
        [--original /tmp/official/CADA-VAE-PyTorch] [--out tests/fidelity/cada_vae.npz]

``--checkout``: skelemoa/synse-zsl at 90f39a118170d708843c5d4305bd807905cb4c54. Imports
``cada_vae/cada_vae.py`` (Encoder, Decoder, MLP, reparameterize, KL_divergence,
Wasserstein_distance) and runs ``cada_vae/gating_cadavae_model_training.py`` and
``gating_cadavae_model_eval.py`` on synthetic classifier outputs (scikit-learn <= 1.5 must
be importable, e.g. ``PYTHONPATH=/path/to/sklearn-1.5``).

``--original`` (optional): edgarschnfld/CADA-VAE-PyTorch at
26f0085fe5e5911dc06fe767f90965c47885dee1. Builds ``model/models.py`` encoder/decoder
templates and runs ``vaemodel.Model.trainstep`` (unbound, on a stand-in object holding the
modules, the warm-up dict of ``single_experiment.py`` and the L1 criterion) at a few
epochs, recording losses and gradients.

CPU only: ``.cuda()`` and ``torch.cuda.FloatTensor`` are redirected at runtime (see
``vae_gate_reference.py``); the checkouts are not modified. Not run by the tests; the npz
is committed.
"""
from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vae_gate_reference as ref  # noqa: E402

SYNSE_REPO, SYNSE_COMMIT = "skelemoa/synse-zsl", "90f39a118170d708843c5d4305bd807905cb4c54"
ORIG_REPO, ORIG_COMMIT = "edgarschnfld/CADA-VAE-PyTorch", "26f0085fe5e5911dc06fe767f90965c47885dee1"
ORIG_WARMUP = {"beta": {"factor": 0.25, "end_epoch": 93, "start_epoch": 0},
               "cross_reconstruction": {"factor": 2.37, "end_epoch": 75, "start_epoch": 21},
               "distance": {"factor": 8.13, "end_epoch": 22, "start_epoch": 6}}
ORIG_EPOCHS = [0, 5, 10, 21, 40, 80, 99]
ORIG_HIDDEN = {"img": (10, 11), "att": (9, 7)}


class _Opt:
    def __init__(self, modules):
        self.modules = modules

    def zero_grad(self):
        for m in self.modules:
            m.zero_grad(set_to_none=True)

    def step(self):
        pass


def original_reference(checkout: Path) -> dict[str, np.ndarray]:
    ref.stub_modules("data_loader", "final_classifier")
    torch.cuda.FloatTensor = torch.FloatTensor  # type: ignore[attr-defined,misc]
    folder = checkout / "model"
    models = ref.import_from(folder, "models")
    vaemodel = ref.import_from(folder, "vaemodel")
    x = ref.fixed_inputs()
    out: dict[str, np.ndarray] = {}
    torch.manual_seed(11)
    enc = {"img": models.encoder_template(ref.D_S, ref.LATENT, ORIG_HIDDEN["img"], "cpu"),
           "att": models.encoder_template(ref.D_T, ref.LATENT, ORIG_HIDDEN["att"], "cpu")}
    dec = {"img": models.decoder_template(ref.LATENT, ref.D_S, ORIG_HIDDEN["img"], "cpu"),
           "att": models.decoder_template(ref.LATENT, ref.D_T, ORIG_HIDDEN["att"], "cpu")}
    for k in ("img", "att"):
        out.update(ref.state_arrays(f"orig_enc_{k}", enc[k]))
        out.update(ref.state_arrays(f"orig_dec_{k}", dec[k]))
    me = types.SimpleNamespace(
        encoder={"resnet_features": enc["img"], "attributes": enc["att"]},
        decoder={"resnet_features": dec["img"], "attributes": dec["att"]},
        auxiliary_data_source="attributes", warmup=ORIG_WARMUP,
        reconstruction_criterion=torch.nn.L1Loss(reduction="sum"),
        reparameterize_with_noise=True,
        optimizer=_Opt(list(enc.values()) + list(dec.values())))
    me.reparameterize = types.MethodType(vaemodel.Model.reparameterize, me)
    losses = []
    for e in ORIG_EPOCHS:
        me.current_epoch = e
        torch.manual_seed(12)
        losses.append(vaemodel.Model.trainstep(me, x["s"], x["t"]))
        if e == 40:
            for k in ("img", "att"):
                for part, m in (("enc", enc[k]), ("dec", dec[k])):
                    for n, p in m.named_parameters():
                        out[f"orig_grad/{part}_{k}/{n}"] = p.grad.detach().numpy().copy()
    out["orig/epochs"] = np.asarray(ORIG_EPOCHS, dtype=np.int64)
    out["orig/loss"] = np.asarray(losses, dtype=np.float64)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkout", type=Path, required=True, help="synse-zsl checkout")
    ap.add_argument("--original", type=Path, help="CADA-VAE-PyTorch checkout (optional)")
    ap.add_argument("--out", type=Path, default=Path("tests/fidelity/cada_vae.npz"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    ref.patch_cpu()
    folder = args.checkout / "cada_vae"
    ref.stub_modules("torchvision")
    official = ref.import_from(folder, "cada_vae")
    out = ref.skeleton_vae_reference(official, "cada_vae")
    out.update(ref.gate_reference(folder / "gating_cadavae_model_training.py",
                                  folder / "gating_cadavae_model_eval.py", "synse", [{}],
                                  n_rows=(360, 460)))
    if args.original:
        out.update(original_reference(args.original))
        out["orig_repo"], out["orig_commit"] = np.asarray(ORIG_REPO), np.asarray(ORIG_COMMIT)
    ref.save(out, args.out, SYNSE_REPO, SYNSE_COMMIT)


if __name__ == "__main__":
    main()

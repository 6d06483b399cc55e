"""Reference tensors for the SA-DVAE plugin (tests/test_sa_dvae.py).

    PYTHONPATH=/path/to/sklearn-1.5 python benchmarks/fidelity/sa_dvae_reference.py \
        --checkout /tmp/official/SA-DVAE \
        [--out tests/fidelity/sa_dvae.npz]

``--checkout``: pha123661/SA-DVAE at 90d99b837d7d24cc414f77ea121621982d52cf41 (a work tree,
e.g. ``git --git-dir=<fetched> archive <commit> | tar -x -C DIR``). Imports the official
``model.py`` (Encoder, Decoder, MLP, Discriminator, reparameterize, KL_divergence,
permute_dims) and ``train.py`` itself (its module-level argument parsing is fed a fixed
``sys.argv``), then runs the official ``train_one_cycle`` (VAE loss, epoch-rescaled
schedule, discriminator step and TC term) for several epochs on a fixed list of small
batches, and ``train_classifier`` (500 text latents per unseen class, 300 steps, softmax
on validation samples). Recorded: inputs, batch order, initial and per-epoch weights of
the five modules, module outputs, KL values, block permutations, the classifier's
weights and outputs, and the ``repo``/``commit`` strings.

Also runs ``gating_train.py`` (search, and the fixed ``--th 50 --t 2`` of the NTU-120
SynSE-split script) and ``gating_eval.py`` on synthetic classifier outputs; these need a
scikit-learn with ``multi_class`` (<= 1.5) on PYTHONPATH.

CPU only: ``torch.Tensor.cuda`` is replaced by the identity at runtime and the device
handed to the functions is the CPU; ``scipy.misc`` (imported but unused by
``data_cnn60.py``) is given an empty stand-in when the installed scipy lacks it. The
checkout is never edited. Not run by the tests; the npz is committed.
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

REPO, COMMIT = "pha123661/SA-DVAE", "90d99b837d7d24cc414f77ea121621982d52cf41"
D_X, D_Y, L_R, L_V, N_CLASSES, N_UNSEEN = 16, 12, 6, 2, 5, 2
N_TRAIN, BATCH, LR = 42, 4, 1e-3
# (name, epochs, dis_step, beta_x, beta_y)
RUNS = [("a", 3, 2, None, None), ("b", 1, 3, 0.5, 0.3)]
MODULES = ("se", "sd", "te", "td", "dis")


def import_official(checkout: Path):
    try:
        import scipy.misc  # noqa: F401
    except Exception:  # recent scipy: no scipy.misc; data_cnn60 only imports it
        sys.modules["scipy.misc"] = types.ModuleType("scipy.misc")
    sys.argv = ["train.py", "--ss", str(N_UNSEEN), "--num_classes", str(N_CLASSES),
                "--latent_size", str(L_R), "--i_latent_size", str(L_V), "--phase", "train",
                "--dis_step", "3", "--batch_size", str(BATCH), "--num_cycles", "3",
                "--num_epoch_per_cycle", "1700", "--tm", "lb"]
    model = ref.import_from(checkout, "model")
    train = ref.import_from(checkout, "train")
    return model, train


def inputs() -> dict[str, np.ndarray]:
    g = torch.Generator().manual_seed(321)
    x = torch.rand(N_TRAIN, D_X, generator=g) * 2.0
    labels = torch.randint(0, N_CLASSES - N_UNSEEN, (N_TRAIN,), generator=g)
    text = torch.randn(N_CLASSES, D_Y, generator=g)
    text = text / torch.norm(text, dim=1, keepdim=True)
    order = torch.randperm(N_TRAIN, generator=g)
    x_val = torch.rand(10, D_X, generator=g) * 2.0
    y_val = torch.randint(N_CLASSES - N_UNSEEN, N_CLASSES, (10,), generator=g)
    return {"x": x.numpy(), "labels": labels.numpy(), "text": text.numpy(), "order": order.numpy(),
            "x_val": x_val.numpy(), "y_val": y_val.numpy()}


def build(model):
    se = model.Encoder([D_X, L_R + L_V], L_V)
    sd = model.Decoder([L_R + L_V, D_X])
    te = model.Encoder([D_Y, L_R])
    td = model.Decoder([L_R, D_Y])
    dis = model.Discriminator(L_R + L_V)
    return dict(zip(MODULES, (se, sd, te, td, dis)))


def weights(prefix: str, mods: dict) -> dict[str, np.ndarray]:
    out = {}
    for name, m in mods.items():
        out.update(ref.state_arrays(f"{prefix}/{name}", m))
    return out


def module_outputs(model, mods, data) -> dict[str, np.ndarray]:
    """Forward passes, reparameterisation, KL, discriminator and permutation (fixed seeds)."""
    out = {}
    x = torch.from_numpy(data["x"][:BATCH * 2])
    t = torch.from_numpy(data["text"][data["labels"][:BATCH * 2]])
    with torch.no_grad():
        smu, slv, ismu, islv = mods["se"](x, instance_style=True)
        tmu, tlv = mods["te"](t)
        torch.manual_seed(31)
        sz = model.reparameterize(smu, slv)
        isz = model.reparameterize(ismu, islv)
        z = torch.cat([sz, isz], dim=-1)
        out.update({"fw/smu": smu, "fw/slv": slv, "fw/ismu": ismu, "fw/islv": islv,
                    "fw/tmu": tmu, "fw/tlv": tlv, "fw/sz": sz, "fw/isz": isz,
                    "fw/sout": mods["sd"](z), "fw/tout": mods["td"](tmu), "fw/dis": mods["dis"](z),
                    "fw/neg_kl_s": model.KL_divergence(smu, slv),
                    "fw/neg_kl_is": model.KL_divergence(ismu, islv),
                    "fw/neg_kl_t": model.KL_divergence(tmu, tlv)})
        torch.manual_seed(32)
        pz, pi = model.permute_dims(sz, isz)
        out.update({"fw/perm_sz": pz, "fw/perm_isz": pi})
    return {k: v.numpy().copy() for k, v in out.items()}


def run(train_mod, model, data, name, epochs, dis_step, beta_x, beta_y) -> dict[str, np.ndarray]:
    train_mod.args.dis_step = dis_step
    train_mod.args.beta_x, train_mod.args.beta_y = beta_x, beta_y
    torch.manual_seed(11)
    mods = build(model)
    out = weights(f"{name}/init", mods)
    x, y = torch.from_numpy(data["x"]), torch.from_numpy(data["labels"])
    order = torch.from_numpy(data["order"])
    loader = [(x[order[s:s + BATCH]], y[order[s:s + BATCH]]) for s in range(0, N_TRAIN, BATCH)]
    params = [p for k in ("se", "sd", "te", "td") for p in mods[k].parameters()]
    opt = torch.optim.Adam(params, lr=LR)
    dis_opt = torch.optim.Adam(mods["dis"].parameters(), lr=LR)
    text = torch.from_numpy(data["text"])
    torch.manual_seed(12)
    for epoch in range(epochs):
        train_mod.train_one_cycle(epoch, mods["se"], mods["sd"], mods["te"], mods["td"], mods["dis"],
                                  opt, dis_opt, loader, torch.device("cpu"), text)
        out.update(weights(f"{name}/epoch{epoch}", mods))
    out[f"{name}/config"] = np.asarray([epochs, dis_step, beta_x or 0.0, beta_y or 0.0], dtype=np.float64)
    if name == "a":
        out.update(module_outputs(model, mods, data))
        out.update(classifier(train_mod, mods, data))
    return out


def classifier(train_mod, mods, data) -> dict[str, np.ndarray]:
    """train_classifier: latents of the sorted unseen texts, MLP, 300 steps; softmax of the
    validation samples (phase 'train' -> val_loader) and the ZSL accuracy on zsl_loader."""
    unseen = np.arange(N_CLASSES - N_UNSEEN, N_CLASSES)
    text = torch.from_numpy(data["text"])
    xv, yv = torch.from_numpy(data["x_val"]), torch.from_numpy(data["y_val"])
    loader = [(xv[:6], yv[:6]), (xv[6:], yv[6:])]
    torch.manual_seed(13)
    acc, val_out, clf = train_mod.train_classifier(mods["te"], mods["se"], loader, loader, unseen,
                                                   text[unseen], torch.device("cpu"))
    out = ref.state_arrays("cls", clf)
    out["cls/val_softmax"] = np.asarray(val_out, dtype=np.float32)
    out["cls/zsl_acc"] = np.float64(acc)
    return out


def gate_reference(checkout: Path) -> dict[str, np.ndarray]:
    """gating_train.py (seen rows drawn down to the unseen count, hold-out min(300, n//6),
    search or fixed --th/--t) then gating_eval.py (seen iff 1 - p_unseen > th) on the
    synthetic classifier outputs of vae_gate_reference.gate_inputs; C = 10 classes."""
    import pickle
    import tempfile
    data = ref.gate_inputs(150, 200, 400)
    out = {f"gate_in/{k}": v for k, v in data.items()}
    ss, le, tm, ds_name = ref.GATE_U, "le", "tm", "toy"
    for r, (th, t) in enumerate([(0, 0), (50, 2)]):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            feats, wdir_val, wdir = root / "feats", root / "res_val", root / "res"
            splits = root / "resources" / "label_splits" / ds_name
            for d in (feats, wdir_val / le / tm, wdir / le / tm, splits):
                d.mkdir(parents=True, exist_ok=True)
            np.save(splits / f"ru{ss}.npy", data["unseen_classes"])
            np.save(splits / f"rs{ref.GATE_C - ss}.npy", data["seen_classes"])
            np.save(wdir_val / le / tm / f"MSF_{ss}_r_unseen_zs.npy", data["unseen_zs"])
            np.save(wdir_val / le / tm / f"MSF_{ss}_r_seen_zs.npy", data["seen_zs"])
            np.save(wdir / le / tm / f"MSF_{ss}_r_gzsl_zs.npy", data["gzsl_zs"])
            for k in ("ztest_out", "val_out", "g_label", "gtest_out"):
                np.save(feats / f"{k}.npy", data[k])
            common = ["--ss", str(ss), "--st", "r", "--dataset", ds_name, "--le", le, "--ve", "shift",
                      "--num_classes", str(ref.GATE_C), "--tm", tm, "--dataset_path", str(feats)]
            vals = ref.parse_lines(ref.run_script(
                checkout / "gating_train.py",
                common + ["--wdir", str(wdir_val), "--phase", "val", "--th", str(th), "--t", str(t)], root))
            with open(wdir / le / tm / "gating_model.pkl", "rb") as f:
                model = pickle.load(f)
            T, thr = vals["best temperature"], vals["best threshold"]
            evals = ref.parse_lines(ref.run_script(
                checkout / "gating_eval.py",
                common + ["--wdir", str(wdir), "--phase", "train", "--temp", str(int(T)),
                          "--thresh", str(thr)], root))
        out[f"gate{r}/temperature"], out[f"gate{r}/threshold"] = np.float64(T), np.float64(thr)
        out[f"gate{r}/val_accuracy"] = np.float64(vals["best validation accuracy for the gating model"])
        out[f"gate{r}/coef"] = np.asarray(model.coef_, dtype=np.float64)
        out[f"gate{r}/intercept"] = np.asarray(model.intercept_, dtype=np.float64)
        out[f"gate{r}/args"] = np.asarray([th, t], dtype=np.int64)
        e = np.exp(data["gtest_out"] / T)
        feats = np.concatenate([-np.sort(-data["gzsl_zs"], 1)[:, :ss],
                                -np.sort(-e / e.sum(1, keepdims=True), 1)[:, :ss]], 1)
        out[f"gate{r}/test_proba"] = model.predict_proba(feats)
        for k_in, k_out in (("seen_accuracy", "acc_seen"), ("unseen_accuracy", "acc_unseen"),
                            ("h_mean", "h")):
            out[f"gate{r}/{k_out}"] = np.float64(evals[k_in])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkout", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("tests/fidelity/sa_dvae.npz"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    ref.patch_cpu()
    model, train_mod = import_official(args.checkout.resolve())
    data = inputs()
    out = {f"in/{k}": v for k, v in data.items()}
    for r in RUNS:
        out.update(run(train_mod, model, data, *r))
    out.update(gate_reference(args.checkout.resolve()))
    ref.save(out, args.out, REPO, COMMIT)


if __name__ == "__main__":
    main()

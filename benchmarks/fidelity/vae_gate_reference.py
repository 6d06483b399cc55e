"""Shared machinery of ``cada_vae_reference.py`` and ``msf_reference.py``: run the OFFICIAL
cross-aligned VAE pieces and gate scripts on fixed small inputs and collect reference
arrays for ``tests/test_vae.py`` / ``tests/test_gate.py``.

Runs on a CPU: the official ``reparameterize`` moves its noise with ``.cuda()``; this
module replaces ``torch.Tensor.cuda`` by the identity (and ``torch.cuda.FloatTensor`` by
``torch.FloatTensor`` for the original CADA-VAE) at runtime. The checkouts are never
edited. Official modules that the pieces do not need (data loaders needing h5py,
torchvision, scikit-learn helpers) are replaced by empty stand-ins in ``sys.modules``.
The gate scripts need scikit-learn with ``multi_class`` (<= 1.5); put one on PYTHONPATH.

The training-loop formulas of the scripts (loss assembly, warm-up factors, classifier
loop) live at script level and cannot be imported; they are restated below from the
scripts, with the file they come from named next to each.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import pickle
import runpy
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import torch

B, D_S, D_T, LATENT, N_UNSEEN, PER_CLASS = 6, 16, 12, 8, 3, 20
# global iterations at which warm-up factors and the loss are recorded: (cycle length, epoch)
EPOCHS = [(1700, 0), (1700, 1100), (1700, 1450), (1700, 1699), (1700, 1700 + 1401),
          (1700, 2 * 1700 + 1200), (1700, 3 * 1700 + 1600), (1900, 1900 + 1550),
          (1900, 2 * 1900 + 1501), (1900, 4 * 1900 + 1899)]
GRAD_EPOCH = (1700, 3 * 1700 + 1600)


def patch_cpu() -> None:
    torch.Tensor.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]


def stub_modules(*names: str) -> None:
    for n in names:
        mod = types.ModuleType(n)
        for attr in ("NTUDataLoaders", "AverageMeter", "make_dir", "get_cases",
                     "get_num_classes", "DATA_LOADER", "CLASSIFIER"):
            setattr(mod, attr, None)
        sys.modules[n] = mod


def import_from(folder: Path, module: str):
    sys.path.insert(0, str(folder))
    try:
        sys.modules.pop(module, None)
        return importlib.import_module(module)
    finally:
        sys.path.pop(0)


def state_arrays(prefix: str, module: torch.nn.Module) -> dict[str, np.ndarray]:
    return {f"w/{prefix}/{k}": v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def fixed_inputs() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(123)
    s = torch.rand(B, D_S, generator=g) * 2.0
    t = torch.randn(B, D_T, generator=g)
    t = t / t.norm(dim=1, keepdim=True)
    cls_text = torch.randn(N_UNSEEN, D_T, generator=g)
    cls_text = cls_text / cls_text.norm(dim=1, keepdim=True)
    return {"s": s, "t": t, "cls_text": cls_text}


def skeleton_factors(cycle_length: int, epoch: int, variant: str) -> tuple[float, float, float, float]:
    """Warm-up factors as the skeleton scripts compute them inside train_one_cycle
    (cada_vae/cada_vae_training.py for 'cada_vae'; MSF train.py and synse_training.py for
    'synse'): k_fact, k_fact2, cr_fact, lw_fact."""
    cycle = epoch // cycle_length
    s_epoch = cycle * cycle_length
    cr_epoch = 1400 if cycle_length == 1700 else 1500
    k_fact = max(0.1 * (epoch - (s_epoch + 1000)) / 3000, 0)
    cr_fact = 1 * (epoch > (s_epoch + cr_epoch))
    if variant == "cada_vae":
        k_fact2 = k_fact * (epoch > (s_epoch + cr_epoch))
    else:
        k_fact2 = max(0.1 * (epoch - (s_epoch + cr_epoch)) / 3000, 0) * (cycle > 1)
    return float(k_fact), float(k_fact2), float(cr_fact), 0.0


def skeleton_vae_reference(official, variant: str) -> dict[str, np.ndarray]:
    """Official Encoder/Decoder/MLP/reparameterize/KL_divergence/Wasserstein_distance of
    a skeleton codebase (synse-zsl cada_vae/cada_vae.py or MSF model.py)."""
    out: dict[str, np.ndarray] = {}
    x = fixed_inputs()
    out.update({f"in/{k}": v.numpy() for k, v in x.items()})
    torch.manual_seed(1)
    se = official.Encoder([D_S, LATENT])
    sd = official.Decoder([LATENT, D_S])
    te = official.Encoder([D_T, LATENT])
    td = official.Decoder([LATENT, D_T])
    for name, m in (("se", se), ("sd", sd), ("te", te), ("td", td)):
        out.update(state_arrays(name, m))
    mse = torch.nn.MSELoss()
    s, t = x["s"], x["t"]

    def forward():
        torch.manual_seed(2)
        smu, slv = se(s)
        sz = official.reparameterize(smu, slv)
        tmu, tlv = te(t)
        tz = official.reparameterize(tmu, tlv)
        terms = {
            "recon_skeleton": mse(s, sd(sz)), "recon_text": mse(t, td(tz)),
            # official KL_divergence returns -KL; the scripts subtract it
            "neg_kl_skeleton": official.KL_divergence(smu, slv),
            "neg_kl_text": official.KL_divergence(tmu, tlv),
            "cross_skeleton": mse(s, sd(tz)), "cross_text": mse(t, td(sz)),
            "wasserstein": official.Wasserstein_distance(smu, slv, tmu, tlv)}
        return (smu, slv, sz, tmu, tlv, tz), terms

    (smu, slv, sz, tmu, tlv, tz), terms = forward()
    for k, v in zip(("smu", "slv", "sz", "tmu", "tlv", "tz"), (smu, slv, sz, tmu, tlv, tz)):
        out[f"out/{k}"] = v.detach().numpy()
    out.update({f"term/{k}": np.float64(v.item()) for k, v in terms.items()})
    factors, losses = [], []
    for p, e in EPOCHS:
        k1, k2, cr, lw = skeleton_factors(p, e, variant)
        factors.append((k1, k2, cr, lw))
        # loss as train_one_cycle assembles it
        loss = terms["recon_skeleton"] + terms["recon_text"]
        loss = loss - (k1 * terms["neg_kl_skeleton"]) - (k2 * terms["neg_kl_text"])
        loss = loss + cr * terms["cross_skeleton"] + cr * terms["cross_text"]
        loss = loss + lw * terms["wasserstein"]
        losses.append(loss.item())
        if (p, e) == GRAD_EPOCH:
            for m in (se, sd, te, td):
                m.zero_grad()
            loss.backward(retain_graph=True)
            for name, m in (("se", se), ("sd", sd), ("te", te), ("td", td)):
                for k, prm in m.named_parameters():
                    out[f"grad/{name}/{k}"] = prm.grad.detach().numpy().copy()
    out["epochs"] = np.asarray(EPOCHS, dtype=np.int64)
    out["factors"] = np.asarray(factors, dtype=np.float64)
    out["loss"] = np.asarray(losses, dtype=np.float64)

    # unseen classifier as train_classifier() trains it: latents from the text encoder
    # (eval mode) of each unseen text repeated [n, 1], sampled once; MLP([L, u]) (Linear +
    # ReLU), Adam lr 1e-3, 300 full-batch cross-entropy steps; test on the skeleton mean.
    torch.manual_seed(3)
    cls = official.MLP([LATENT, N_UNSEEN])
    out.update(state_arrays("cls", cls))
    with torch.no_grad():
        te.eval()
        torch.manual_seed(4)
        c_t = x["cls_text"].repeat([PER_CLASS, 1])
        y = torch.tensor(range(N_UNSEEN)).repeat([PER_CLASS])
        cmu, clv = te(c_t)
        cz = official.reparameterize(cmu, clv)
    out["cls/z"], out["cls/y"] = cz.numpy(), y.numpy()
    opt = torch.optim.Adam(cls.parameters(), lr=0.001)
    ce = torch.nn.CrossEntropyLoss()
    for _ in range(300):
        cls.train()
        o = cls(cz)
        c_loss = ce(o, y)
        opt.zero_grad()
        c_loss.backward()
        opt.step()
    cls.eval()
    out.update({k.replace("w/cls/", "w/cls_trained/"): v for k, v in state_arrays("cls", cls).items()})
    with torch.no_grad():
        out["cls/test_logits"] = cls(se(s)[0]).numpy()
    return out


# --------------------------------------------------------------------------------------
# Gate scripts
# --------------------------------------------------------------------------------------
GATE_C, GATE_U = 10, 3


def gate_inputs(n_unseen_rows: int, n_seen_rows: int, n_test: int) -> dict[str, np.ndarray]:
    """Synthetic classifier outputs: unseen-class rows have peaked ZSL softmax and flat
    seen logits, seen rows the reverse, with overlap."""
    rng = np.random.default_rng(7)

    def zs(n, conc):
        return rng.dirichlet(np.full(GATE_U, conc), size=n).astype(np.float32)

    def logits(n, scale):
        return (rng.normal(size=(n, GATE_C)) * scale).astype(np.float32)

    unseen_classes = np.array([2, 5, 8])
    seen_classes = np.setdiff1d(np.arange(GATE_C), unseen_classes)
    g_label = np.concatenate([rng.choice(seen_classes, n_test // 2),
                              rng.choice(unseen_classes, n_test - n_test // 2)])
    is_unseen = np.isin(g_label, unseen_classes)
    test_zs = np.where(is_unseen[:, None], zs(n_test, 0.4), zs(n_test, 1.5))
    test_out = np.where(is_unseen[:, None], logits(n_test, 1.0), logits(n_test, 2.5))
    # make the classifiers right most of the time
    for i, c in enumerate(g_label):
        if is_unseen[i]:
            j = int(np.searchsorted(unseen_classes, c))
            test_zs[i, j] += 0.6
            test_zs[i] /= test_zs[i].sum()
        else:
            test_out[i, c] += 3.0
    return {"unseen_zs": zs(n_unseen_rows, 0.4), "seen_zs": zs(n_seen_rows, 1.5),
            "ztest_out": logits(n_unseen_rows, 1.0), "val_out": logits(n_seen_rows, 2.5),
            "g_label": g_label.astype(np.int64), "gzsl_zs": test_zs.astype(np.float32),
            "gtest_out": test_out.astype(np.float32), "unseen_classes": unseen_classes,
            "seen_classes": seen_classes}


def run_script(path: Path, argv: list[str], cwd: Path) -> str:
    old_argv, old_cwd = sys.argv, Path.cwd()
    buf = io.StringIO()
    import os
    try:
        sys.argv = [str(path)] + argv
        os.chdir(cwd)
        with contextlib.redirect_stdout(buf):
            runpy.run_path(str(path), run_name="__main__")
    finally:
        sys.argv = old_argv
        os.chdir(old_cwd)
    return buf.getvalue()


def parse_lines(text: str) -> dict[str, float]:
    vals = {}
    for line in text.splitlines():
        key, _, rest = line.strip().rpartition(" ")
        key = key.strip().rstrip(":")
        try:
            vals[key] = float(rest.strip().rstrip("%")) / (100.0 if rest.strip().endswith("%") else 1.0)
        except ValueError:
            continue
    return vals


def gate_reference(train_script: Path, eval_script: Path, layout: str, runs: list[dict],
                   n_rows: tuple[int, int], n_test: int = 400) -> dict[str, np.ndarray]:
    """Run the official gate training and evaluation scripts on synthetic outputs.

    ``layout``: 'synse' (synse-zsl cada_vae: files ``cadavae_{ss}_r_*.npy`` under
    ``wdir/le``; splits read from ``../resources/label_splits``) or 'msf' (MSF: files
    ``MSF_{ss}_r_*.npy`` under ``wdir/le/tm``; splits from ``label_splits``).
    ``runs``: extra arguments per run, e.g. ``{"th": 50, "t": 2}`` (MSF only)."""
    stub_modules("data_cnn60")
    data = gate_inputs(*n_rows, n_test)
    out = {f"gate_in/{k}": v for k, v in data.items()}
    for r, extra in enumerate(runs):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            work = root / "work"
            ds = root / "feats"
            wdir_val, wdir = root / "res_val", root / "res"
            ss, le, tm = GATE_U, "le", "tm"
            sub = Path(le) / tm if layout == "msf" else Path(le)
            prefix = "MSF" if layout == "msf" else "cadavae"
            splits = (work / "label_splits") if layout == "msf" else (root / "resources" / "label_splits")
            for d in (work, ds, wdir_val / sub, wdir / sub, splits):
                d.mkdir(parents=True, exist_ok=True)
            np.save(splits / f"ru{ss}.npy", data["unseen_classes"])
            np.save(splits / f"rs{GATE_C - ss}.npy", data["seen_classes"])
            np.save(wdir_val / sub / f"{prefix}_{ss}_r_unseen_zs.npy", data["unseen_zs"])
            np.save(wdir_val / sub / f"{prefix}_{ss}_r_seen_zs.npy", data["seen_zs"])
            np.save(ds / "ztest_out.npy", data["ztest_out"])
            np.save(ds / "val_out.npy", data["val_out"])
            np.save(ds / "g_label.npy", data["g_label"])
            np.save(ds / "gtest_out.npy", data["gtest_out"])
            np.save(wdir / sub / f"{prefix}_{ss}_r_gzsl_zs.npy", data["gzsl_zs"])
            common = ["--ss", str(ss), "--st", "r", "--le", le, "--ve", "shift",
                      "--ntu", str(GATE_C)] + (["--tm", tm] if layout == "msf" else [])
            targs = common + ["--dataset", str(ds), "--wdir", str(wdir_val), "--phase", "val"]
            targs += [a for k, v in extra.items() for a in (f"--{k}", str(v))]
            text = run_script(train_script, targs, work)
            vals = parse_lines(text)
            with open(wdir / sub / "gating_model.pkl", "rb") as f:
                model = pickle.load(f)
            T, th = vals["best temperature"], vals["best threshold"]
            eargs = common + ["--dataset", str(ds), "--wdir", str(wdir), "--phase", "train",
                              "--temp", str(int(T)), "--thresh", str(th)]
            etext = run_script(eval_script, eargs, work)
            evals = parse_lines(etext)
        e = np.exp(data["gtest_out"] / T)
        feats = np.concatenate([-np.sort(-data["gzsl_zs"], 1)[:, :GATE_U],
                                -np.sort(-e / e.sum(1, keepdims=True), 1)[:, :GATE_U]], 1)
        out[f"gate{r}/temperature"] = np.float64(T)
        out[f"gate{r}/threshold"] = np.float64(th)
        out[f"gate{r}/val_accuracy"] = np.float64(vals["best validation accuracy for the gating model"])
        out[f"gate{r}/coef"] = np.asarray(model.coef_, dtype=np.float64)
        out[f"gate{r}/intercept"] = np.asarray(model.intercept_, dtype=np.float64)
        out[f"gate{r}/test_proba"] = model.predict_proba(feats)
        out[f"gate{r}/search"] = np.int64(0 if any(extra.values()) else 1)
        for k_in, k_out in (("seen_accuracy", "acc_seen"), ("unseen_accuracy", "acc_unseen"),
                            ("h_mean", "h")):
            out[f"gate{r}/{k_out}"] = np.float64(evals[k_in])
        out[f"gate{r}/args"] = np.asarray(str(extra))
    return out


def save(out: dict[str, np.ndarray], path: Path, repo: str, commit: str) -> None:
    out = dict(out)
    out["repo"], out["commit"] = np.asarray(repo), np.asarray(commit)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **{k: (v.astype(np.float32) if v.dtype == np.float64 and v.ndim > 1 else v)
                                 for k, v in ((k, np.asarray(v)) for k, v in out.items())})
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB, {len(out)} arrays)")

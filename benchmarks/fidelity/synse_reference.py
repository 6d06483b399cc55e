"""Reference tensors for the SynSE plugin, computed by the OFFICIAL SynSE code.

    python benchmarks/fidelity/synse_reference.py --checkout /path/to/synse-zsl \
        --gate-python /path/to/python-with-scikit-learn-1.5 [--out tests/fidelity/synse.npz]

From a checkout of ``skelemoa/synse-zsl`` (commit 90f39a118170d708843c5d4305bd807905cb4c54):

* ``synse/synse.py`` is imported as is (``Encoder``, ``Decoder``, ``MLP``, ``reparameterize``,
  ``KL_divergence``); the six SynSE modules are built with ``torch.manual_seed(5)`` in the
  script's order and small widths (skeleton 12, text 10, latent 6 = noun 3 + verb 3).
* ``train_one_cycle``, ``get_text_data`` and ``train_classifier`` are taken **unchanged**
  from ``synse/synse_training.py`` (its function definitions are compiled out of the file
  with ``ast``: the script parses arguments and loads data files at import time) and run
  with the globals they expect: the six modules, Adam(lr 1e-4), ``nn.MSELoss``, small
  noun/verb embedding tables, and a train loader whose ``next(iter(loader))`` hands out a
  fixed sequence of batches (``numpy.random.default_rng(BATCH_SEED)``, 16 of 40 samples, no
  repeats) so that the run does not depend on DataLoader internals. Three cycles of 1700
  iterations are run (cycle 2 is the first with text KL terms), with
  ``torch.manual_seed(1000 + cycle)`` before each cycle; the loss of every iteration
  (``losses.update`` receives it), the weights after every cycle and the Adam state after
  cycles 0 and 1 are saved (a test can resume at cycle 2).
* ``train_classifier`` then runs after ``torch.manual_seed(2000)`` on 2 unseen classes
  (500 latents each, 300 Adam steps), with its ``MLP`` and ``reparameterize`` wrapped to
  record the initial classifier weights and the sampled latents; saved: latents, the
  trained classifier, its softmax outputs on the GZSL test rows (``val_out_embs``) and the
  ZSL accuracy.
* The gate: ``synse/gating_synse_model_training.py`` and ``synse/gating_synse_model_eval.py``
  run unchanged (``runpy``, in a temporary folder laid out like the repository's
  ``resources/label_splits`` and result folders) in a separate Python given by
  ``--gate-python``, because the scripts pass ``multi_class='multinomial'`` to
  scikit-learn's LogisticRegression, which scikit-learn 1.7 removed (1.5.2 was used). The
  eval script's unused ``torch`` / ``data_cnn60`` imports are stubbed in that process.
  Saved: the gate rows, the chosen temperature and threshold, the fitted coefficients, the
  gate probabilities and the routed predictions on test rows.

Runtime patch (the checkout is never modified): ``torch.Tensor.cuda`` returns the tensor
itself, because ``reparameterize`` moves its noise to CUDA; everything runs on the CPU.
``print`` inside the official functions is silenced. Needs torch, numpy and torchvision
(imported by synse.py).
"""
from __future__ import annotations

import argparse
import ast
import copy
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn, optim
import torch.nn.functional as F

REPO = "skelemoa/synse-zsl"
COMMIT = "90f39a118170d708843c5d4305bd807905cb4c54"

S_DIM, T_DIM, LATENT = 12, 10, 6
N_TRAIN, BATCH, CYCLE, CYCLES = 40, 16, 1700, 3
NUM_CLASSES, SEEN, UNSEEN = 6, [0, 1, 3, 4], [2, 5]
BATCH_SEED, DATA_SEED = 7, 11


def batch_schedule(n_iter: int, n: int = N_TRAIN, b: int = BATCH, seed: int = BATCH_SEED) -> np.ndarray:
    """(n_iter, b) sample indices: batch i = the first b of a fresh permutation."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(n)[:b] for _ in range(n_iter)])


def official_functions(path: Path, names: list[str], namespace: dict) -> dict:
    """Compile the named top-level function definitions of an official script into
    ``namespace`` (their bodies run unchanged, reading globals from ``namespace``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in names]
    missing = set(names) - {d.name for d in defs}
    if missing:
        raise SystemExit(f"{path}: functions {sorted(missing)} not found")
    exec(compile(ast.Module(body=defs, type_ignores=[]), str(path), "exec"), namespace)
    return namespace


class Recorder:
    """Stands in for the script's AverageMeter: keeps every value passed to update()."""

    values: list[float] = []

    def __init__(self) -> None:
        self.val = self.avg = 0.0

    def update(self, val: float, n: int = 1) -> None:
        Recorder.values.append(float(val))
        self.val = self.avg = val


class FixedBatches:
    """``next(iter(loader))`` returns the next batch of a fixed schedule."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, schedule: np.ndarray) -> None:
        self.x, self.y, self.schedule, self.i = x, y, schedule, 0

    def __iter__(self):
        idx = torch.as_tensor(self.schedule[self.i])
        self.i += 1
        return iter([(self.x[idx], self.y[idx])])


GATE_RUNNER = r'''
import json, pickle, runpy, sys, types
from pathlib import Path
import numpy as np
root, code = Path(sys.argv[1]), Path(sys.argv[2])
cfg = json.loads((root / "cfg.json").read_text())
import os
os.chdir(root / "work")
ss, ntu = cfg["ss"], cfg["ntu"]
sys.argv = ["gating_synse_model_training.py", "--ss", str(ss), "--st", "r", "--dataset",
            str(root / "ds_val"), "--wdir", str(root / "w_val"), "--le", "bert", "--ve",
            "shift", "--phase", "val", "--ntu", str(ntu)]
g = runpy.run_path(str(code / "gating_synse_model_training.py"), run_name="__main__")
m = g["best_model"]
out = {"temp": int(g["best_temp"]), "thresh": float(g["best_thresh"]),
       "val_acc": float(g["best_acc"]), "coef": m.coef_.tolist(),
       "intercept": m.intercept_.tolist()}
stub = types.ModuleType("torch")   # the eval script's unused imports
stub.Tensor = type("Tensor", (), {})
stub.manual_seed = lambda s: None
stub.cuda = types.SimpleNamespace(manual_seed=lambda s: None)
stub.nn = types.ModuleType("torch.nn")
sys.modules.update({"torch": stub, "torch.nn": stub.nn,
                    "data_cnn60": types.SimpleNamespace(NTUDataLoaders=None, AverageMeter=None,
                    make_dir=None, get_cases=None, get_num_classes=None)})
sys.argv = ["gating_synse_model_eval.py", "--ss", str(ss), "--st", "r", "--dataset",
            str(root / "ds_test"), "--wdir", str(root / "w"), "--le", "bert", "--ve", "shift",
            "--phase", "train", "--ntu", str(ntu), "--temp", str(out["temp"]),
            "--thresh", str(out["thresh"])]
e = runpy.run_path(str(code / "gating_synse_model_eval.py"), run_name="__main__")
out.update(prob_gate=np.asarray(e["prob_gate"]).tolist(),
           pred_test=np.asarray(e["pred_test"]).astype(int).tolist(),
           final_preds=[int(p) for p in e["final_preds"]],
           seen_acc=float(e["seen_acc"]), unseen_acc=float(e["unseen_acc"]))
(root / "out.json").write_text(json.dumps(out))
'''


def gate_rows(rng: np.random.Generator, n: int, unseen: bool, ss: int,
              c: int) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic ZSL softmax (n, ss) and seen-classifier logits (n, c) that a gate can
    partly separate: unseen rows have a peaked ZSL softmax and flat logits, seen rows the
    opposite, with overlap."""
    peak = 3.0 if unseen else 1.0
    z = rng.normal(size=(n, ss)) * 0.7
    z[np.arange(n), rng.integers(0, ss, n)] += peak * rng.uniform(0.3, 1.5, n)
    z = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    g = rng.normal(size=(n, c)) * 1.5
    g[np.arange(n), rng.integers(0, c, n)] += (1.5 if unseen else 4.0) * rng.uniform(0.3, 1.5, n)
    return z, g


def run_gate(checkout: Path, python: str, out: dict) -> None:
    ss, ntu = 2, NUM_CLASSES
    rng = np.random.default_rng(DATA_SEED + 1)
    zu, gu = gate_rows(rng, 420, True, ss, ntu)      # validation-unseen rows
    zs, gs = gate_rows(rng, 560, False, ss, ntu)     # held-out seen rows
    n_tu, n_ts = 90, 150                             # GZSL test rows (unseen, seen classes)
    zt_u, gt_u = gate_rows(rng, n_tu, True, ss, ntu)
    zt_s, gt_s = gate_rows(rng, n_ts, False, ss, ntu)
    z_test, g_test = np.concatenate([zt_u, zt_s]), np.concatenate([gt_u, gt_s])
    labels = np.concatenate([rng.choice(UNSEEN, n_tu), rng.choice(SEEN, n_ts)])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for d in ("work", "resources/label_splits", "ds_val", "ds_test", "w_val/bert", "w/bert"):
            (root / d).mkdir(parents=True)
        np.save(root / f"resources/label_splits/ru{ss}.npy", np.asarray(UNSEEN))
        np.save(root / f"resources/label_splits/rs{ntu - ss}.npy", np.asarray(SEEN))
        np.save(root / f"w_val/bert/synse_{ss}_r_unseen_zs.npy", zu)
        np.save(root / f"w_val/bert/synse_{ss}_r_seen_zs.npy", zs)
        np.save(root / "ds_val/ztest_out.npy", gu)
        np.save(root / "ds_val/val_out.npy", gs)
        np.save(root / f"w/bert/synse_{ss}_r_gzsl_zs.npy", z_test)
        np.save(root / "ds_test/gtest_out.npy", g_test)
        np.save(root / "ds_test/g_label.npy", labels)
        (root / "cfg.json").write_text(json.dumps({"ss": ss, "ntu": ntu}))
        (root / "runner.py").write_text(GATE_RUNNER)
        subprocess.run([python, str(root / "runner.py"), str(root), str(checkout / "synse")],
                       check=True)
        res = json.loads((root / "out.json").read_text())
    out.update({"gate/z_unseen": zu, "gate/g_unseen": gu, "gate/z_seen": zs, "gate/g_seen": gs,
                "gate/z_test": z_test, "gate/g_test": g_test, "gate/test_labels": labels,
                "gate/temperature": np.array(res["temp"]), "gate/threshold": np.array(res["thresh"]),
                "gate/val_acc": np.array(res["val_acc"]), "gate/coef": np.asarray(res["coef"]),
                "gate/intercept": np.asarray(res["intercept"]),
                "gate/prob_test": np.asarray(res["prob_gate"]),
                "gate/is_seen_test": np.asarray(res["pred_test"]),
                "gate/pred_test": np.asarray(res["final_preds"]),
                "gate/seen_acc": np.array(res["seen_acc"]),
                "gate/unseen_acc": np.array(res["unseen_acc"])})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkout", required=True, type=Path)
    ap.add_argument("--gate-python", required=True,
                    help="a Python with numpy and scikit-learn < 1.7 for the gate scripts")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2]
                    / "tests" / "fidelity" / "synse.npz")
    args = ap.parse_args()
    code = args.checkout / "synse"
    sys.path.insert(0, str(code))
    torch.Tensor.cuda = lambda self, *a, **k: self          # CPU run (see docstring)
    import synse as official  # noqa: E402  (the official module)

    torch.set_num_threads(1)
    commit = subprocess.run(["git", "-C", str(args.checkout), "rev-parse", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or COMMIT
    device = torch.device("cpu")

    # ---- modules, in synse_training.py's order ----------------------------------------
    torch.manual_seed(5)
    se = official.Encoder([S_DIM, LATENT]).to(device)
    sd = official.Decoder([LATENT, S_DIM]).to(device)
    vte = official.Encoder([T_DIM, LATENT // 2]).to(device)
    vtd = official.Decoder([LATENT // 2, T_DIM]).to(device)
    nte = official.Encoder([T_DIM, LATENT // 2]).to(device)
    ntd = official.Decoder([LATENT // 2, T_DIM]).to(device)
    modules = {"se": se, "sd": sd, "vte": vte, "vtd": vtd, "nte": nte, "ntd": ntd}
    init = {f"init/{m}.{k}": v.numpy().copy() for m, mod in modules.items()
            for k, v in mod.state_dict().items()}
    params = [p for m in modules.values() for p in m.parameters()]
    optimizer = optim.Adam(params, lr=0.0001)

    # ---- data ------------------------------------------------------------------------
    gen = torch.Generator().manual_seed(DATA_SEED)
    x = torch.rand(N_TRAIN, S_DIM, generator=gen) * 2.0        # non-negative like pooled features
    y = torch.as_tensor(np.asarray(SEEN)[torch.randint(0, len(SEEN), (N_TRAIN,), generator=gen).numpy()])
    nouns_raw = torch.randn(NUM_CLASSES, T_DIM, generator=gen).abs()
    verbs_raw = torch.randn(NUM_CLASSES, T_DIM, generator=gen).abs()
    # the script's normalisation at load
    nouns_emb = nouns_raw / torch.norm(nouns_raw, dim=1).view([NUM_CLASSES, 1]).repeat([1, T_DIM])
    verbs_emb = verbs_raw / torch.norm(verbs_raw, dim=1).view([NUM_CLASSES, 1]).repeat([1, T_DIM])
    x_test_u = torch.rand(30, S_DIM, generator=gen) * 2.0
    y_test_u = torch.as_tensor(np.asarray(UNSEEN)[torch.randint(0, 2, (30,), generator=gen).numpy()])
    x_gtest = torch.cat([x_test_u, torch.rand(20, S_DIM, generator=gen) * 2.0])
    schedule = batch_schedule(CYCLE * CYCLES)

    ns = {"torch": torch, "np": np, "nn": nn, "optim": optim, "F": F, "device": device,
          "print": lambda *a, **k: None, "AverageMeter": Recorder,
          "sequence_encoder": se, "sequence_decoder": sd, "v_text_encoder": vte,
          "v_text_decoder": vtd, "n_text_encoder": nte, "n_text_decoder": ntd,
          "optimizer": optimizer, "criterion1": nn.MSELoss().to(device),
          "reparameterize": official.reparameterize, "KL_divergence": official.KL_divergence,
          "latent_size": LATENT, "text_emb_input_size": T_DIM, "nouns_emb": nouns_emb,
          "verbs_emb": verbs_emb, "train_loader": FixedBatches(x, y, schedule)}
    official_functions(code / "synse_training.py",
                       ["train_one_cycle", "get_text_data", "train_classifier"], ns)

    # ---- three training cycles -------------------------------------------------------
    snapshots: dict = {}
    for cycle in range(CYCLES):
        torch.manual_seed(1000 + cycle)
        ns["train_one_cycle"](cycle, CYCLE)
        if cycle < CYCLES - 1:   # weights and Adam state after each cycle but the last
            for m, mod in modules.items():
                for k, p in mod.named_parameters():
                    st = optimizer.state[p]
                    snapshots[f"after{cycle}/{m}.{k}"] = p.detach().numpy().copy()
                    snapshots[f"adam{cycle}/{m}.{k}.exp_avg"] = st["exp_avg"].numpy().copy()
                    snapshots[f"adam{cycle}/{m}.{k}.exp_avg_sq"] = st["exp_avg_sq"].numpy().copy()
                    snapshots[f"adam{cycle}/step"] = np.array(float(st["step"]))
    losses = np.asarray(Recorder.values, dtype=np.float64)
    assert len(losses) == CYCLE * CYCLES
    trained = {f"trained/{m}.{k}": v.numpy().copy() for m, mod in modules.items()
               for k, v in mod.state_dict().items()}

    # ---- unseen classifier ---------------------------------------------------------------
    unseen_inds = np.sort(np.asarray(UNSEEN))
    record: dict = {"z": []}

    def mlp(sizes):
        m = official.MLP(sizes)
        record["cls_init"] = copy.deepcopy(m.state_dict())
        return m

    def reparam(mu, logvar):
        z = official.reparameterize(mu, logvar)
        record["z"].append(z.detach().numpy().copy())
        return z

    ns.update({"MLP": mlp, "reparameterize": reparam, "ss": len(UNSEEN),
               "load_classifier": False, "wdir": "", "le": "bert",
               "unseen_nouns_emb": nouns_emb[unseen_inds, :], "unseen_verbs_emb": verbs_emb[unseen_inds, :],
               "unseen_inds": unseen_inds,
               "zsl_loader": [(x_test_u, y_test_u)],
               "val_loader": [(x_gtest, torch.zeros(len(x_gtest), dtype=torch.long))]})
    torch.manual_seed(2000)
    zsl_acc, val_out_embs, cls = ns["train_classifier"]()
    z_verb, z_noun = record["z"]            # the script samples the verb latents first

    out = {"repo": np.array(REPO), "commit": np.array(commit),
           "x": x.numpy(), "y": y.numpy(), "nouns_emb": nouns_emb.numpy(),
           "verbs_emb": verbs_emb.numpy(), "nouns_raw": nouns_raw.numpy(),
           "verbs_raw": verbs_raw.numpy(), "seen": np.asarray(SEEN),
           "unseen": unseen_inds, "batch_seed": np.array(BATCH_SEED),
           "batch_checksum": np.array(int(schedule.astype(np.int64).sum())),
           "cycle_length": np.array(CYCLE), "cycles": np.array(CYCLES),
           "batch_size": np.array(BATCH), "losses": losses.astype(np.float32),
           "x_test_unseen": x_test_u.numpy(), "y_test_unseen": y_test_u.numpy(),
           "x_gtest": x_gtest.numpy(), "cls_z_noun": z_noun, "cls_z_verb": z_verb,
           "cls_softmax_gtest": val_out_embs.astype(np.float32),
           "cls_zsl_acc": np.array(zsl_acc), **init, **trained, **snapshots}
    out.update({f"cls_init/{k}": v.numpy() for k, v in record["cls_init"].items()})
    out.update({f"cls_trained/{k}": v.detach().numpy().copy() for k, v in cls.state_dict().items()})

    run_gate(args.checkout, args.gate_python, out)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes) from {REPO}@{commit}")


if __name__ == "__main__":
    main()

"""Reference tensors for the PGFA plugin (plugins/zsbench_pgfa).

    python benchmarks/fidelity/pgfa_reference.py --checkout /tmp/official/pgfa \
        [--out tests/fidelity/pgfa.npz]

``--checkout``: kaai520/PGFA at 3e09542b98ac3af8a1ec84df85247c060d0932b8. Runs the official
``main.py`` ``Processor.train_epoch`` (main track, ``loss_type="kl"``: ``create_logits`` with
the fixed ``exp(logit_scale)`` = 1/0.07, ``gen_label`` multi-positive targets, ``KLLoss``
in both directions, SGD with momentum 0.9 / weight decay over the ST-GCN encoder and the
``module/adapter.py`` ``Linear`` projection, ``adjust_learning_rate``) and
``Processor.test_epoch`` with ``DA=True`` (``get_acc_v2`` cosine scores, entropy-filtered
support sets of the pseudo-labels, prototype means with text fallback, re-scoring with
``get_acc``) on fixed small inputs, calling the methods on a plain object that carries the
attributes ``initialize()`` would set.

What this script changes at runtime (the checkout is not edited): ``config`` (a sacred
``Experiment`` whose ``@ex.capture`` fills arguments from the config; sacred is not
installed) is replaced by a module whose ``ex.capture``/``ex.automain`` return the function
unchanged, so every captured argument is passed explicitly below; ``dataset``, ``logger``
and ``module.shift_gcn`` (CUDA op, unused by the main track) are empty stand-ins;
``nn.Module.cuda`` is the identity and ``torch.Tensor.cuda`` too, except on an
``nn.Parameter``, where it returns a non-leaf copy as the real call does (``_cuda``).
``get_acc``/``get_acc_v2`` are wrapped (calling the official functions) to record their
inputs and outputs.

Sizes (all official code, smaller widths): ST-GCN with h = 4 and a 16-d output
(``hidden_dim``), dropout 0.5, input 3 x 8 frames x 25 joints x 2 bodies; projection
``Linear(16 -> 12)`` (official 256 -> 768); 6 classes with 12-d text features. Training:
two batches of 6 samples (repeated labels), epoch 2 (warm-up: lr = 0.05 * 2/5). Test: 14
samples in batches of 8 and 6 over unseen classes [1, 3, 4], ``support_factor`` 0.5.
The unseen classes' text features are set after training (they take no part in it) from the
projected features of three mutually distant test samples (minus the mean feature, made
orthogonal to it, plus noise), so that the pseudo-labels fall in several classes.
Records inputs, initial weights (default init rounded to an int8 grid, stored losslessly as
in ``stgcn_reference.py``), per-batch losses and the ``torch.manual_seed`` set before the
epoch (the dropout masks), some weights after the epoch, the official projected test
features, pseudo-labels, prototypes, re-scored predictions and (batch-averaged) accuracies.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import types
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from official_stubs import (RecordingLoss, empty_modules, install_sacred_config,  # noqa: E402
                            label_batches)
from stgcn_reference import pack_state, save_npz  # noqa: E402

REPO, COMMIT = "kaai520/PGFA", "3e09542b98ac3af8a1ec84df85247c060d0932b8"
HIDDEN, FEAT, TEXT, N_CLASSES = 4, 16, 12, 6
T = 8
TRAIN_LABELS = [[0, 2, 2, 5, 0, 2], [5, 5, 0, 2, 2, 0]]
TEST_LABELS = [1, 3, 4, 1, 1, 3, 4, 4, 1, 3, 1, 4, 3, 1]
TEST_BATCH = 8
UNSEEN = [1, 3, 4]
LR, WD, EPOCH, WARMUP, STEPS = 0.05, 5e-4, 2, 5, [50, 80]
SUPPORT_FACTOR = 0.5
SEED_TRAIN = 11


def install_stand_ins() -> None:
    install_sacred_config(os=os)
    empty_modules({"dataset": "DataSet", "logger": "Log", "module.shift_gcn": "Model"})
    torch.Tensor.cuda = _cuda  # type: ignore[method-assign]
    nn.Module.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]


def _cuda(self: torch.Tensor, *a, **k) -> torch.Tensor:
    """``Tensor.cuda`` on a CPU machine. On a GPU, ``nn.Parameter(...).cuda()`` (the
    adapter's ``logit_scale``) returns a non-leaf copy that is no module parameter, so the
    scale is never optimised; a detached copy keeps that (its gradient, which nothing reads,
    is not computed)."""
    return self.detach().clone() if isinstance(self, nn.Parameter) else self


def inputs() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    n_train = sum(len(b) for b in TRAIN_LABELS)
    x_train = torch.randn(n_train, 3, T, 25, 2, generator=g)
    x_train[1, ..., 1] = 0.0
    # test samples: a class-dependent offset so the pseudo-labels are not all one class
    y = torch.tensor(TEST_LABELS)
    x_test = (torch.randn(len(TEST_LABELS), 3, T, 25, 2, generator=g)
              + 0.8 * (y.float() - 2.5).view(-1, 1, 1, 1, 1))
    x_test[2, ..., 1] = 0.0
    text = torch.randn(N_CLASSES, TEXT, generator=g)
    return {"x_train": x_train, "y_train": torch.tensor(sum(TRAIN_LABELS, [])), "x_test": x_test,
            "y_test": y, "text": text}


AFTER_KEYS = ("data_bn.weight", "edge_importance.0", "st_gcn_networks.0.gcn.conv.weight",
              "st_gcn_networks.9.tcn.3.bias", "st_gcn_networks.7.residual.0.weight",
              "st_gcn_networks.5.tcn.3.running_var")


def quantise_weights(*modules: nn.Module) -> None:
    """Round every floating tensor (not ``A``) to an int8 grid, so ``pack_state`` stores the
    initial weights losslessly in a quarter of the space."""
    from stgcn_reference import quantise
    with torch.no_grad():
        for m in modules:
            for k, v in m.state_dict().items():
                if v.is_floating_point() and k != "A":
                    q, e = quantise(v)
                    v.copy_(torch.from_numpy(q).float() * 2.0 ** e)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[dict[str, torch.Tensor]] = []

    def wrap(self, fn, name):
        def wrapped(x1, x2, unseen_label, label):
            res = fn(x1, x2, unseen_label, label)
            self.calls.append({"fn": name, "x1": x1.detach().clone(), "x2": x2.detach().clone(),
                               "pred": res[1].clone()})
            return res
        return wrapped


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkout", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("tests/fidelity/pgfa.npz"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    install_stand_ins()
    sys.path.insert(0, str(args.checkout))
    official = importlib.import_module("main")
    from KLLoss import KLLoss
    from module.adapter import Linear
    from module.gcn.st_gcn import Model

    data = inputs()
    torch.manual_seed(0)
    encoder = Model(in_channels=3, hidden_channels=HIDDEN, hidden_dim=FEAT, dropout=0.5,
                    graph_args={"layout": "ntu-rgb+d", "strategy": "spatial"},
                    edge_importance_weighting=True)
    adapter = Linear(hidden_size=FEAT, output_size=TEXT)
    quantise_weights(encoder, adapter)
    out: dict[str, np.ndarray] = {}
    state0 = {f"encoder.{k}": v for k, v in encoder.state_dict().items() if k != "A"}
    state0.update({f"adapter.{k}": v for k, v in adapter.state_dict().items()})
    out.update(pack_state(state0))
    out["logit_scale"] = np.float64(adapter.get_logit_scale().item())

    proc = types.SimpleNamespace()
    proc.encoder, proc.adapter = encoder, adapter
    proc.full_language = data["text"]
    loss = KLLoss()
    proc.loss = recorder = RecordingLoss(loss)
    proc.logit_scale = adapter.get_logit_scale()
    proc.optimizer = torch.optim.SGD([{"params": encoder.parameters()},
                                      {"params": adapter.parameters()}],
                                     lr=LR, weight_decay=WD, momentum=0.9, nesterov=False)
    proc.adjust_learning_rate = types.MethodType(official.Processor.adjust_learning_rate, proc)
    batches = label_batches(data["x_train"], TRAIN_LABELS)
    proc.data_loader = {"train": batches}
    torch.manual_seed(SEED_TRAIN)
    official.Processor.train_epoch(proc, EPOCH, LR, "step", STEPS, "kl", 1, 0, 0.1, False)
    out["train/lr"] = np.float64(proc.optimizer.param_groups[0]["lr"])
    out["train/losses"] = np.asarray(recorder.values, np.float64)      # skl, text per batch
    out["train/dim_loss"] = np.float64(proc.dim_loss)
    after = {f"encoder.{k}": v for k, v in encoder.state_dict().items() if k in AFTER_KEYS}
    after.update({f"adapter.{k}": v for k, v in adapter.state_dict().items()})
    out.update({f"w1/{k}": v.numpy().copy() for k, v in after.items()})

    # unseen-class text features (never used in training): the projected features of three
    # mutually distant test samples minus the mean feature, orthogonal to it, plus noise, so
    # that the pseudo-labels cover several classes
    with torch.no_grad():
        z = nn.functional.normalize(adapter(encoder.eval()(data["x_test"])), dim=1)
        pick = [0]
        for _ in range(len(UNSEEN) - 1):
            pick.append(int((z @ z[pick].T).max(dim=1).values.argmin()))
        g = torch.Generator().manual_seed(4)
        centre = z.mean(dim=0)
        spread = z[pick] - centre
        spread = spread - (spread @ centre)[:, None] * centre / centre.dot(centre)
        proc.full_language[UNSEEN] = spread + 0.01 * spread.norm(dim=1).mean() * torch.randn(
            len(UNSEEN), TEXT, generator=g)
    out.update({k: v.numpy() for k, v in data.items()})

    rec = Recorder()
    official.get_acc = rec.wrap(official.get_acc, "get_acc")
    official.get_acc_v2 = rec.wrap(official.get_acc_v2, "get_acc_v2")
    tb = [(data["x_test"][i:i + TEST_BATCH], data["y_test"][i:i + TEST_BATCH])
          for i in range(0, len(TEST_LABELS), TEST_BATCH)]
    proc.data_loader["test"] = tb
    proc.best_acc, proc.best_aug_acc = -1, -1
    proc.save_model = lambda: None
    official.Processor.test_epoch(proc, UNSEEN, 0, True, SUPPORT_FACTOR)
    first = [c for c in rec.calls if c["fn"] == "get_acc_v2"]
    second = [c for c in rec.calls if c["fn"] == "get_acc"]
    out["test/z"] = torch.cat([c["x1"] for c in first]).numpy()          # projected features
    out["test/old_pred"] = torch.cat([c["pred"] for c in first]).numpy()  # global class ids
    out["test/prototypes"] = second[0]["x2"].numpy()                      # z_tensor (K, D)
    out["test/aug_pred"] = torch.cat([c["pred"] for c in second]).numpy()
    out["test/acc"] = np.float64(proc.test_acc)
    out["test/aug_acc"] = np.float64(proc.test_aug_acc)
    out["support_factor"] = np.float64(SUPPORT_FACTOR)
    out["unseen"] = np.asarray(UNSEEN, np.int64)
    out["test_batch"] = np.int64(TEST_BATCH)
    out["train/seed"] = np.int64(SEED_TRAIN)
    out["train/epoch"] = np.int64(EPOCH)
    out["train/batch_sizes"] = np.asarray([len(b) for b in TRAIN_LABELS], np.int64)
    save_npz(out, args.out, REPO, COMMIT)


if __name__ == "__main__":
    main()

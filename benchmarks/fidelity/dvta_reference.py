"""Reference tensors for the DVTA plugin (plugins/zsbench_dvta).

    PYTHONPATH=/path/to/einops python benchmarks/fidelity/dvta_reference.py \
        --checkout /tmp/official/dvta [--out tests/fidelity/dvta.npz]

``--checkout``: jidongkuang/DVTA at 8effc8f22829b9bf0e620e9b62de0d54f4b02c00 (``model.py``:
``DVTA`` = ``DirectAlignment`` (deep ``VisualProjector`` with residual, SDE attention over the
stacked [label, context] text features, ``text_projector``) + ``DeepMetricNetwork`` with
``LeakySigmoid`` (AA on detached features) + learnable ``scaling_factors`` (DA and AA
temperature divisors); ``KLLoss.py``; ``train.py`` ``Trainer.train_one_epoch`` and
``Trainer.evaluate``; ``utils.py``). The official model needs ``einops`` (put it on
PYTHONPATH; it is not a project dependency).

What this script changes at runtime (the checkout is not edited): ``config`` (a sacred
``Experiment``; sacred is not installed) is replaced by a module whose ``ex.capture`` and
``ex.automain`` return the function unchanged; ``logger`` and ``data_loader`` are empty
stand-ins; the ``Trainer`` methods run on a plain object that carries the attributes its
``__init__`` would set (config dict, model, Adam optimiser, ``KLLoss``, loaders as lists
of batches, ``full_language_features`` (K, C, 2) = [label, context] stacked as in
``data_loader.py``), on the CPU.

Sizes: the official layers have fixed widths (projector 256 -> 256/384/512 -> text dim, metric
2h -> 2h -> 768 -> 1). After ``DVTA`` is built, ``l0..l3`` are replaced by ``nn.Linear``
layers 16 -> 16, 16 -> 24, 24 -> 32, 32 -> 12 and the metric's second and third linear layers
by 24 -> 12 and 12 -> 1 (the metric of text width h = 12 is then 2h -> 2h -> h -> 1, which is
the official one at h = 768); text width 12, skeleton width 16, 6 classes. All weights are
seeded; the metric's last weights are scaled by 8 and its bias shifted (``centre_metric``) so
that both LeakySigmoid branches occur.

Records: inputs and initial weights; the training-path outputs of the model on batch 0
(DA and AA logits, both directions); one ``train_one_epoch`` at epoch 3 (warm-up lr =
1e-3 * 3/15; the official lr 1e-6 would move nothing measurable) over two batches with the
per-batch losses; every weight after the epoch; the inference-path ``final_sim`` (DA + AA
logits, SDE with each test sample's own projection) on 9 test samples over unseen classes
[1, 3, 4] and ``evaluate``'s (batch-averaged) accuracy.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import types
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from official_stubs import (RecordingLoss, empty_modules, install_sacred_config,  # noqa: E402
                            label_batches)
from stgcn_reference import save_npz  # noqa: E402

REPO, COMMIT = "jidongkuang/DVTA", "8effc8f22829b9bf0e620e9b62de0d54f4b02c00"
SKEL, TEXT, N_CLASSES = 16, 12, 6
TRAIN_LABELS = [[0, 2, 2, 5, 0, 2], [5, 5, 0, 2, 2, 0]]
TEST_LABELS = [1, 3, 4, 1, 4, 3, 1, 4, 4]
TEST_BATCH = 5
UNSEEN = [1, 3, 4]
LR, EPOCHS, EPOCH = 1e-3, 100, 3


def install_stand_ins() -> None:
    install_sacred_config()
    empty_modules({"logger": "Logger", "data_loader": "get_data_loaders"})



def build(model_mod) -> nn.Module:
    torch.manual_seed(0)
    model = model_mod.DVTA(skeleton_dim=SKEL, text_dim=TEXT, temperature=0.1, leaky_sigmoid_alpha=0.01)
    vp = model.direct_alignment.visual_projector
    vp.l0, vp.l1, vp.l2, vp.l3 = (nn.Linear(SKEL, SKEL), nn.Linear(SKEL, 24), nn.Linear(24, 32),
                                  nn.Linear(32, TEXT))
    net = model.augmented_alignment.net
    net[2], net[4] = nn.Linear(2 * TEXT, TEXT), nn.Linear(TEXT, 1)
    with torch.no_grad():
        net[4].weight.mul_(8.0)
    return model


def centre_metric(model: nn.Module, x: torch.Tensor, text: torch.Tensor) -> None:
    """Shift the metric's last bias so that half of the AA pre-activations over the (i, j)
    pairs of ``x`` are negative: both LeakySigmoid branches occur. The cut is midway between
    the two middle values, so that no pair sits at the discontinuity at 0 (where float
    rounding would pick the branch)."""
    pre = {}
    net = model.augmented_alignment.net
    hook = net.register_forward_hook(lambda m, i, o: pre.setdefault("v", o.detach()))
    with torch.no_grad():
        model(x, text, is_inference=False)
        v = pre["v"].flatten().sort().values
        net[4].bias.sub_((v[len(v) // 2 - 1] + v[len(v) // 2]) / 2)
    hook.remove()


def inputs() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    n_train = sum(len(b) for b in TRAIN_LABELS)
    return {"x_train": torch.relu(torch.randn(n_train, SKEL, generator=g)) + 0.05,
            "y_train": torch.tensor(sum(TRAIN_LABELS, [])),
            "x_test": torch.relu(torch.randn(len(TEST_LABELS), SKEL, generator=g)) + 0.05,
            "y_test": torch.tensor(TEST_LABELS),
            "label_text": torch.randn(N_CLASSES, TEXT, generator=g),
            "context_text": torch.randn(N_CLASSES, TEXT, generator=g)}


def weights(model: nn.Module, prefix: str) -> dict[str, np.ndarray]:
    return {f"{prefix}/{k}": v.detach().numpy().copy() for k, v in model.state_dict().items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkout", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("tests/fidelity/dvta.npz"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    install_stand_ins()
    sys.path.insert(0, str(args.checkout))
    model_mod = importlib.import_module("model")
    train_mod = importlib.import_module("train")
    from KLLoss import KLLoss

    data = inputs()
    model = build(model_mod)
    language = torch.stack([data["label_text"], data["context_text"]], dim=-1)   # (K, C, 2)
    n0 = len(TRAIN_LABELS[0])
    centre_metric(model, data["x_train"][:n0], language[data["y_train"][:n0]])
    out: dict[str, np.ndarray] = {k: v.numpy() for k, v in data.items()}
    out.update(weights(model, "w0"))

    with torch.no_grad():
        sims = model(data["x_train"][:n0], language[data["y_train"][:n0]], is_inference=False)
    for name, s in zip(("da_v2t", "da_t2v", "aa_v2t", "aa_t2v"), sims):
        out[f"batch0/{name}"] = s.numpy()

    trainer = types.SimpleNamespace()
    trainer.config = {"learning_rate": LR, "epochs": EPOCHS, "model_save_path": "unused"}
    trainer.skeleton_encoder = None
    trainer.device = torch.device("cpu")
    trainer.model = model
    trainer.optimizer = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=0)
    trainer.loss_fn = recorder = RecordingLoss(KLLoss())
    trainer.logger = types.SimpleNamespace(info=lambda *a, **k: None)
    batches = label_batches(data["x_train"], TRAIN_LABELS)
    test_batches = [(data["x_test"][i:i + TEST_BATCH], data["y_test"][i:i + TEST_BATCH])
                    for i in range(0, len(TEST_LABELS), TEST_BATCH)]
    trainer.data_loader = {"train": batches, "test": test_batches}
    trainer.full_language_features = language
    trainer.unseen_labels_tensor = torch.tensor(UNSEEN)
    train_mod.Trainer.train_one_epoch(trainer, EPOCH)
    out["train/lr"] = np.float64(trainer.optimizer.param_groups[0]["lr"])
    out["train/losses"] = np.asarray(recorder.values, np.float64)          # v2t, t2v per batch
    out.update(weights(model, "w1"))

    with torch.no_grad():
        out["test/final_sim"] = model(data["x_test"], language[UNSEEN], is_inference=True).numpy()
    trainer.best_acc, trainer.best_epoch = -1, -1
    trainer.save_model = lambda: None
    accs: list[float] = []
    trainer.logger = types.SimpleNamespace(
        info=lambda msg, *a, **k: accs.append(msg) if "Test Accuracy" in str(msg) else None)
    train_mod.Trainer.evaluate(trainer, EPOCH)
    out["test/acc"] = np.float64(trainer.best_acc)
    out["unseen"] = np.asarray(UNSEEN, np.int64)
    out["test_batch"] = np.int64(TEST_BATCH)
    out["train/epoch"] = np.int64(EPOCH)
    out["train/base_lr"] = np.float64(LR)
    out["train/epochs"] = np.int64(EPOCHS)
    out["train/batch_sizes"] = np.asarray([len(b) for b in TRAIN_LABELS], np.int64)
    save_npz(out, args.out, REPO, COMMIT)


if __name__ == "__main__":
    main()

"""Helpers for plugin authors' tests (and zsbench's own conformance tests).

* ``TINY`` - ``--set`` overrides that shrink the embedded benchmark, the pretraining stage
  and the number of epochs so a full ``zsbench run`` takes seconds on a CPU.
* ``tiny_problem()`` - random seen/unseen views and class texts to unit-test a method's
  ``fit``/``score`` without the pipeline.
* ``check_plugin(name)`` - a smoke run of a registered method on the tiny benchmark
  (also ``zsbench check-plugin NAME``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .api import ClassTexts, DatasetInfo, RunContext, TestView, TrainView

#: overrides for a seconds-long run on the embedded benchmark
TINY: list[str] = [
    "dataset.num_classes=12",
    "dataset.sequences=240",
    "dataset.frames=20",
    "dataset.num_subjects=4",
    "pretrain.epochs=2",
    "pretrain.batch_size=32",
    "encoder.hidden_channels=8",
]


def tiny_overrides(method_epochs: int | None = 2, inputs: str = "features") -> list[str]:
    """TINY, minus the pretraining keys for end-to-end methods, plus ``method.epochs``."""
    sets = [s for s in TINY if inputs == "features" or not s.startswith("pretrain.")]
    if method_epochs is not None:
        sets.append(f"method.epochs={method_epochs}")
    return sets


def _bank(ids: np.ndarray, emb: np.ndarray, kinds: tuple[str, ...]) -> ClassTexts:
    return ClassTexts(class_ids=ids, class_names=[f"class {i}" for i in ids],
                      texts={k: [[f"{k} of class {i}"] for i in ids] for k in kinds},
                      embeddings={k: [emb[i][None].copy() for i in ids] for k in kinds})


def tiny_problem(num_classes: int = 6, num_unseen: int = 2, per_class: int = 8,
                 feature_dim: int = 16, text_dim: int = 12, seq_shape: tuple[int, ...] | None = None,
                 kinds: tuple[str, ...] = ("name",), seed: int = 0
                 ) -> tuple[TrainView, TestView, ClassTexts, np.ndarray]:
    """(train view, unseen test view, unseen candidate texts, unseen test labels).
    With ``seq_shape=(C, T, V, M)`` the views hold sequences instead of features."""
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(num_classes, text_dim)).astype(np.float32)
    labels = np.repeat(np.arange(num_classes), per_class)
    if seq_shape is None:
        proj = rng.normal(size=(text_dim, feature_dim)).astype(np.float32)
        x = emb[labels] @ proj + 0.1 * rng.normal(size=(len(labels), feature_dim)).astype(np.float32)
        kind = "features"
    else:
        x = rng.normal(size=(len(labels), *seq_shape)).astype(np.float32)
        kind = "sequences"
    seen = np.arange(num_classes - num_unseen)
    unseen = np.arange(num_classes - num_unseen, num_classes)
    tr = np.isin(labels, seen)
    train = TrainView(x=x[tr], labels=labels[tr], texts=_bank(seen, emb, kinds), kind=kind)  # type: ignore[arg-type]
    test = TestView(x=x[~tr], kind=kind)  # type: ignore[arg-type]
    return train, test, _bank(unseen, emb, kinds), labels[~tr]


def context(cache_dir: Path | None = None, seed: int = 0, dataset: DatasetInfo | None = None,
            protocol: str = "synse", encoder_factory: Any = None) -> RunContext:
    """A CPU RunContext with no progress bars (dataset: the embedded benchmark unless
    given; ``encoder_factory`` for end-to-end methods' ``ctx.build_encoder``)."""
    info = dataset or DatasetInfo(name="synthetic", family="synthetic", num_classes=40,
                                  real=False)
    return RunContext(device="cpu", seed=seed, cache_dir=Path(cache_dir or "."),
                      progress=lambda it, **k: it, dataset=info, protocol=protocol,
                      encoder_factory=encoder_factory, log=lambda m: None)


def check_plugin(name: str, out: Path, cache_dir: Path, protocol: str = "synse",
                 extra: list[str] | None = None):
    """Run method ``name`` on the tiny embedded benchmark; returns (record, path)."""
    from .config import build_run_config
    from .plugins import load_plugins
    from .runner import run

    plugins = load_plugins()
    spec = plugins.methods.get(name)
    models = {"method": spec.config, "dataset": plugins.datasets.get("synthetic").config}
    if spec.default_encoder and spec.default_encoder in plugins.encoders:
        models["encoder"] = plugins.encoders.get(spec.default_encoder).config
    sets = [s for s in tiny_overrides(inputs=spec.inputs) if _applies(s, models)]
    sets += [f"method.{k}={json.dumps(v)}" for k, v in spec.smoke_overrides.items()]
    sets += list(extra or [])
    cfg = build_run_config({"plugin": name, "protocol": protocol, "out": str(out),
                            "cache_dir": str(cache_dir), "device": "cpu"}, sets)
    return run(cfg, plugins, log=lambda m: None)


def _applies(assignment: str, models: dict[str, Any]) -> bool:
    key = assignment.split("=", 1)[0]
    section, _, field = key.partition(".")
    model = models.get(section)
    return model is None or field in model.model_fields

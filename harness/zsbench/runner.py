"""The run: dataset -> folds -> features -> fit -> scores -> metrics -> result record."""
from __future__ import annotations

import datetime as _dt
import platform
import secrets
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .api import (ClassTexts, DatasetInfo, EncoderFactory, Fold, FoldInputs, RunContext,
                  Sequences, SkeletonDataset, TestView, ZsbenchError)
from .config import RunConfig
from .cpu import tune_allocator
from .device import resolve_device
from .evaluate import evaluate_fold
from .plugins import PluginSet, load_plugins, notify
from .progress import progress
from .reported import reported_for, variant_of
from .results import (METRICS, FoldRecord, ResultRecord, check_writable, claim_run_folder,
                      write_new)
from .setup import Components, resolve


def seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def new_run_id(comp: Components, dataset: str) -> str:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{comp.method.name}_{comp.protocol.name}_{dataset}_{stamp}_{secrets.token_hex(3)}"


def build_text_bank(comp: Components, dataset: SkeletonDataset) -> ClassTexts:
    from .textbank import build_class_texts, random_class_texts

    bank = build_class_texts(dataset, comp.text_sources, (comp.text_encoder, comp.text_encoder_cfg),
                             comp.cache_dir / "text", progress=progress)
    if comp.cfg.text_control == "random":
        bank = random_class_texts(bank, seed=comp.cfg.seed + 7919)
    return bank


def make_encoder_factory(plugins: PluginSet, comp: Components) -> EncoderFactory:
    from .config import validate_model

    def factory(name: str | None = None, **overrides: Any):
        spec = plugins.encoders.get(name) if name else comp.encoder
        if spec is None:
            raise ZsbenchError("no skeleton encoder configured")
        base = comp.encoder_cfg.model_dump() if (comp.encoder and spec.name == comp.encoder.name
                                                 and comp.encoder_cfg) else {}
        base.update(overrides)
        cfg = validate_model(spec.config, base, f"encoder config of {spec.name!r}")
        return spec.load()(cfg)

    return factory


def fold_inputs(comp: Components, dataset: SkeletonDataset, fold: Fold, ctx: RunContext,
                factory: EncoderFactory) -> FoldInputs:
    """Inputs of a fold (pretrained features or raw sequences) for its sample sets:
    ``train``, ``test_seen``, ``test_unseen`` and, for one-shot folds, ``support``."""
    sets = {"train": fold.train, "test_seen": fold.test_seen, "test_unseen": fold.test_unseen}
    if fold.support is not None and len(fold.support):
        sets["support"] = fold.support
    if comp.method.inputs == "sequences":      # lazy views: read batch by batch
        return FoldInputs(x={k: Sequences(dataset.data, v) for k, v in sets.items()})
    assert comp.encoder is not None and comp.encoder_cfg is not None
    if comp.encoder.precomputed:
        if "support" in sets:
            raise ZsbenchError("pre-extracted features cannot serve one-shot support samples")
        feats, labels, info = comp.encoder.load()(comp.encoder_cfg, dataset, fold)
        return FoldInputs(x=dict(feats), labels=dict(labels) if labels is not None else None,
                          encoder=info)
    from .pretrain import extract_features, load_pretrained_encoder, pretrained_features

    identity = f"{comp.encoder.name}:{comp.encoder_cfg.model_dump_json()}"
    fs = pretrained_features(encoder_builder=lambda: factory(), encoder_identity=identity,
                             dataset=dataset, fold=fold, cfg=comp.pretrain_cfg, ctx=ctx)
    out = {"train": fs.train, "test_seen": fs.test_seen, "test_unseen": fs.test_unseen}
    if "support" in sets:
        encoder = load_pretrained_encoder(lambda: factory(), fs, fold, ctx.device)
        out["support"] = extract_features(encoder, dataset, sets["support"], ctx.device,
                                          comp.pretrain_cfg.batch_size)
    info = {"name": comp.encoder.name, "identity": identity, "fingerprint": fs.fingerprint,
            "trained_on": [int(c) for c in fs.trained_on], "from_cache": bool(fs.from_cache)}
    return FoldInputs(x=out, encoder=info)


def versions(plugins: PluginSet) -> dict[str, str]:
    out = {"python": platform.python_version(), "numpy": np.__version__, "zsbench": __version__}
    try:
        import torch

        out["torch"] = torch.__version__
    except ImportError:  # pragma: no cover
        pass
    for p in plugins.plugins.values():
        if p.status == "ok" and p.distribution:
            out[f"plugin:{p.name}"] = f"{p.distribution} {p.version}".strip()
    return out


def dataset_and_folds(cfg: RunConfig, plugins: PluginSet, comp: Components
                      ) -> tuple[SkeletonDataset, list[Fold]]:
    """The run's dataset and its folds (those named by ``cfg.folds``, else all)."""
    data_root = cfg.data_root
    if data_root is None and not comp.dataset.real and cfg.cache_dir:
        data_root = cfg.cache_dir       # generated data is a cache: it follows --cache-dir
    dataset = comp.dataset.load()(comp.dataset_cfg, data_root)
    if dataset.split_key is None:
        dataset.split_key = comp.dataset.split_key
    protocol_cfg = _with_dataset_loader(comp.protocol_cfg, plugins, cfg)
    folds: list[Fold] = comp.protocol.load()(comp.protocol, dataset, protocol_cfg)
    if cfg.folds:
        names = [f.name for f in folds]
        unknown = set(cfg.folds) - set(names)
        if unknown:
            raise ZsbenchError(f"unknown fold(s) {sorted(unknown)}; this protocol has {names}")
        folds = [f for f in folds if f.name in cfg.folds]
    return dataset, folds


def run(cfg: RunConfig, plugins: PluginSet | None = None, log=print) -> tuple[ResultRecord, Path]:
    """Execute one run and write ``<out>/<run_id>/result.json``. Returns the record and path."""
    plugins = plugins or load_plugins()
    comp = resolve(plugins, cfg)
    tune_allocator()
    check_writable(cfg.out)
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    dataset, folds = dataset_and_folds(cfg, plugins, comp)
    settings: list[str] = list(cfg.settings or comp.protocol.settings)
    log(f"zsbench {__version__}: method {comp.method.name}, protocol {comp.protocol.name}, "
        f"dataset {dataset.name} ({len(dataset)} samples, {dataset.num_classes} classes), "
        f"{len(folds)} fold(s), device {device}, seed {cfg.seed}")
    run_id = cfg.run_id or new_run_id(comp, dataset.name)
    out_dir = Path(cfg.out) / run_id
    with claim_run_folder(out_dir):
        bank = build_text_bank(comp, dataset)
        return _run_folds(cfg, plugins, comp, dataset, folds, settings, bank, run_id, out_dir,
                          device, log)


def _run_folds(cfg: RunConfig, plugins: PluginSet, comp: Components, dataset: SkeletonDataset,
               folds: list[Fold], settings: list[str], bank: ClassTexts, run_id: str,
               out_dir: Path, device: str, log: Any) -> tuple[ResultRecord, Path]:
    factory = make_encoder_factory(plugins, comp)
    info = DatasetInfo.of(dataset, family=comp.dataset.family or dataset.name,
                          real=comp.dataset.real)
    deviations: list[str] = []
    record: dict[str, Any] = {"run_id": run_id, "plugin": comp.method.name,
                              "protocol": comp.protocol.name, "datasets": [dataset.name]}
    notify(plugins, "zsbench_run_start", record=record, log=log)
    fold_records: list[FoldRecord] = []
    for i, fold in enumerate(progress(folds, desc="folds", total=len(folds))):
        t0 = time.perf_counter()
        seed_everything(cfg.seed + 1000 * i)
        src = fold.data_source if fold.data_source is not None else dataset
        ctx = RunContext(device=device, seed=cfg.seed + 1000 * i, cache_dir=comp.cache_dir,
                         progress=progress, fold_name=fold.name, log=log,
                         dataset=info if src is dataset else DatasetInfo.of(
                             src, family=src.name, real=comp.dataset.real),
                         protocol=comp.protocol.name, encoder_factory=factory)
        fold_bank = bank if src is dataset else build_text_bank(comp, src)
        t_inputs = time.perf_counter()
        inputs = fold_inputs(comp, src, fold, ctx, factory)
        t_inputs = round(time.perf_counter() - t_inputs, 3)
        validation_inputs = None
        if (cfg.gzsl_validation == "retrain_encoder" and comp.method.inputs == "features"
                and comp.encoder is not None and not comp.encoder.precomputed):
            validation_inputs = _validation_inputs(comp, src, ctx, factory)
        result = evaluate_fold(comp, fold, fold_bank, inputs, ctx, settings, src.labels,
                               validation_inputs=validation_inputs)
        if result.get("embeddings"):    # diagnostics option: numbers (and plot) per fold
            from .diagnostics import fold_diagnostics

            result["details"]["feature_diagnostics"] = fold_diagnostics(
                result.pop("embeddings"), out_dir, fold.name, cfg.diagnostics, ctx.seed)
        phases = {"inputs": t_inputs, **result["details"].get("seconds", {})}
        result["details"]["seconds"] = phases
        log(f"{fold.name} time: " + ", ".join(f"{k} {v:.1f} s" for k, v in phases.items()))
        for d in ctx.deviations:
            if d not in deviations:
                deviations.append(d)
        fr = FoldRecord(name=fold.name, dataset=fold.dataset, split_id=fold.split.id,
                        sample_rule=fold.sample_rule, group=fold.group,
                        seen=[int(c) for c in fold.seen], unseen=[int(c) for c in fold.unseen],
                        metrics=result["metrics"], n_train=len(inputs.x["train"]),
                        n_test_unseen=len(inputs.x["test_unseen"]),
                        n_test_seen=len(inputs.x["test_seen"]),
                        seconds=round(time.perf_counter() - t0, 3), gzsl_rule=result.get("gzsl_rule"),
                        details={**ctx.details, **result.get("details", {})}, encoder=inputs.encoder,
                        class_counts=result.get("class_counts"))
        fold_records.append(fr)
        notify(plugins, "zsbench_fold_end", record=record, fold=fr.model_dump(mode="json"),
               log=log)
    summary = {m: _mean([f.metrics.get(m) for f in fold_records]) for m in METRICS}
    groups = {g: {m: _mean([f.metrics.get(m) for f in fold_records if f.group == g]) for m in METRICS}
              for g in dict.fromkeys(f.group for f in fold_records)}
    reported, source = reported_for(comp, dataset.name, folds)
    rec = ResultRecord(
        run_id=run_id, created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        zsbench_version=__version__, plugin=comp.method.name, protocol=comp.protocol.name,
        datasets=[dataset.name], config=comp.config_dump(info), versions=versions(plugins),
        paper=comp.method.paper,
        device=device, seed=cfg.seed, data_fingerprint=dataset.fingerprint, folds=fold_records,
        summary=summary, group_summary=groups if len(groups) > 1 else {}, reported=reported,
        reported_source=source, reported_variant=variant_of(comp.method_cfg), deviations=deviations,
        transductive=comp.method.transductive,
        text={"kinds": comp.text_kinds, "encoder": comp.text_encoder.name,
              "sources": [s.name for s, _ in comp.text_sources], "control": cfg.text_control})
    path = out_dir / "result.json"
    write_new(path, rec.to_json())
    notify(plugins, "zsbench_run_end", record=rec.model_dump(mode="json", by_alias=True), log=log)
    return rec, path


def _validation_inputs(comp: Components, dataset: SkeletonDataset, ctx: RunContext, factory):
    """For gzsl_validation=retrain_encoder: features of the gamma-validation problem from an
    encoder pretrained on the validation-seen classes only (a fold of its own, cached)."""
    from .api import ClassSplit

    def inputs(fold: Fold, prob) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        tr = np.asarray(fold.train)
        test = tr[prob.test_idx]
        is_unseen = np.isin(dataset.labels[test], prob.val_unseen)
        split = ClassSplit(id=f"{fold.split.id}/gzsl-validation", dataset=fold.dataset,
                           num_classes=fold.split.num_classes,
                           unseen=tuple(int(c) for c in prob.val_unseen),
                           seen=tuple(int(c) for c in prob.val_seen))
        vfold = Fold(name=f"{fold.name}/gzsl-validation", dataset=fold.dataset, split=split,
                     train=tr[prob.train_idx], test_unseen=test[is_unseen],
                     test_seen=test[~is_unseen], sample_rule=fold.sample_rule)
        fi = fold_inputs(comp, dataset, vfold, ctx, factory)
        feats = fi.x
        x_test = np.empty((len(test), feats["train"].shape[1]), dtype=feats["train"].dtype)
        x_test[~is_unseen], x_test[is_unseen] = feats["test_seen"], feats["test_unseen"]
        return feats["train"], x_test, fi.encoder or {}

    return inputs


def _with_dataset_loader(protocol_cfg: Any, plugins: PluginSet, cfg: RunConfig) -> Any:
    """Protocols that need a second dataset (cross-dataset) declare a ``loader`` field; the
    runner fills it with a loader of registered datasets (default options, same data root)."""
    if "loader" not in type(protocol_cfg).model_fields or protocol_cfg.loader is not None:
        return protocol_cfg

    def load(name: str) -> SkeletonDataset:
        spec = plugins.datasets.get(name)
        ds: SkeletonDataset = spec.load()(spec.config(), cfg.data_root)
        if ds.split_key is None:
            ds.split_key = spec.split_key
        return ds

    return protocol_cfg.model_copy(update={"loader": load})


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None and not np.isnan(v)]
    return float(np.mean(vals)) if vals else None


__all__ = ["run", "fold_inputs", "make_encoder_factory", "build_text_bank", "TestView"]

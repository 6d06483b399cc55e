"""The shared seen-class pretraining stage of two-stage methods (encoders_stgcn.md §5.1).
An encoder plus a ``Linear(D -> num_classes of the dataset)`` head (Xavier-normal, zero
bias) is trained with cross-entropy on the fold's seen-class training samples only (Adam,
cosine annealing stepped per epoch). Features of the fold's three sample sets are then
extracted in eval mode and cached under ``ctx.cache_dir / "encoders" / <fingerprint>/``
(``checkpoint.pt`` weights only, ``features.npz``, ``meta.json`` with the classes the encoder
was trained on and the sha256 of each file; ``<fingerprint>.lock`` beside it serialises
concurrent writers). A cache whose ``trained_on`` intersects the
fold's unseen classes is refused with ``LeakageError``; a corrupted one is rebuilt.
Torch is imported lazily so ``import zsbench.pretrain`` stays cheap.
"""
from __future__ import annotations

import hashlib
import io
import json
import pickle
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Literal, Sequence

import numpy as np
from pydantic import Field

from .device import resolve_device
from .api import DataFileError, Fold, LeakageError, RunContext, SkeletonDataset, ZsbenchError
from .batch_reader import prefetched, read_batch
from .locks import file_lock
from .results import write_atomic
from .specs import PluginConfig

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

SCHEMA = 1
SETS = ("train", "test_seen", "test_unseen")
CHECKPOINT_ERRORS = (OSError, EOFError, ValueError, KeyError, TypeError, IndexError, RuntimeError,
                     pickle.UnpicklingError, zipfile.BadZipFile)  # torch.load of a bad file
FILES = ("checkpoint.pt", "features.npz")


class PretrainConfig(PluginConfig):
    """Seen-class pretraining recipe (SMIE_Generate_Feature defaults)."""

    epochs: int = Field(150, ge=1)
    lr: float = Field(5e-3, gt=0)
    batch_size: int = Field(128, ge=1)
    weight_decay: float = Field(0.0, ge=0)
    selection: Literal["last", "val", "best_seen_test"] = Field(
        "last", description="'last' epoch; 'val' = best on a held-out slice of the seen-class "
        "training samples; 'best_seen_test' = best on the seen-class TEST samples (official "
        "SMIE behaviour, recorded as a deviation)")
    val_fraction: float = Field(0.1, gt=0, lt=1, description="held-out share per class "
                                "for selection='val'")


@dataclass
class FeatureSet:
    """Features of a fold's samples from an encoder pretrained on its seen classes.

    ``train``/``test_seen``/``test_unseen`` are float32 (n, D) aligned with the fold's index
    arrays; ``logits`` holds the head's (n, num_classes) outputs under the same keys (columns
    of classes outside ``trained_on`` were never targets); ``info`` holds the selected
    epoch, selection scores and the training loss per epoch.
    """

    train: np.ndarray
    test_seen: np.ndarray
    test_unseen: np.ndarray
    trained_on: np.ndarray
    fingerprint: str
    checkpoint: Path
    from_cache: bool
    logits: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


# ---- Leakage checks
def check_trained_on(trained_on: Iterable[int] | None, fold: Fold,
                     class_names: Sequence[str] | None = None) -> None:
    """Refuse an encoder/feature set that saw any of ``fold``'s unseen classes.

    ``trained_on`` = the class ids it was trained on (``None`` = unknown, also refused).
    """
    if trained_on is None:
        raise LeakageError(f"fold {fold.name!r}: the encoder/features do not record the "
                           "classes they were trained on, so unseen-class leakage cannot be "
                           "ruled out; refusing them")
    leaked = sorted(set(int(c) for c in trained_on) & set(int(c) for c in fold.unseen))
    if leaked:
        names = ""
        if class_names is not None:
            names = " (" + ", ".join(class_names[c] for c in leaked if c < len(class_names)) + ")"
        raise LeakageError(f"fold {fold.name!r}: the encoder was trained on unseen classes "
                           f"{leaked}{names}; refusing it")


def _check_fold_train(dataset: SkeletonDataset, fold: Fold) -> None:
    idx = np.asarray(fold.train, dtype=np.int64)
    if len(idx) == 0 or idx.min() < 0 or idx.max() >= len(dataset):
        raise ZsbenchError(f"fold {fold.name!r}: no training samples, or training indices "
                           f"outside 0..{len(dataset) - 1}")
    bad = sorted(set(np.unique(dataset.labels[idx]).tolist()) - set(fold.seen.tolist()))
    if bad:
        raise LeakageError(f"fold {fold.name!r}: its training samples include classes {bad} "
                           "that are not seen classes; refusing to pretrain on them")


# ---- Fingerprints, hashing and atomic files
def pretrain_fingerprint(dataset: SkeletonDataset, fold: Fold, encoder_identity: str,
                         cfg: PretrainConfig, seed: int) -> str:
    """sha256 over the dataset fingerprint, seen classes, the fold's sample indices, the
    encoder identity, the config and the seed."""
    h = hashlib.sha256()
    head = {"schema": SCHEMA, "dataset": dataset.fingerprint, "num_classes": dataset.num_classes,
            "seen": sorted(int(c) for c in fold.seen), "encoder": encoder_identity,
            "config": json.loads(cfg.model_dump_json()), "seed": int(seed)}
    h.update(json.dumps(head, sort_keys=True).encode())
    for name in SETS:
        h.update(name.encode())
        h.update(np.ascontiguousarray(getattr(fold, name), dtype=np.int64).tobytes())
    return h.hexdigest()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _meta_checksum(meta: dict[str, Any]) -> str:
    body = {k: v for k, v in meta.items() if k != "checksum"}
    return _sha256(json.dumps(body, sort_keys=True).encode())


# ---- Cache
def _warn(ctx: RunContext, msg: str) -> None:
    warnings.warn(msg, RuntimeWarning, stacklevel=3)
    ctx.log(f"warning: {msg}")


def _record(ctx: RunContext, identity: str, info: dict[str, Any]) -> None:
    keys = ("selection", "selected_epoch", "n_train")
    ctx.details.setdefault("pretrain", {})[identity] = {k: info.get(k) for k in keys}


def _load_cache(folder: Path, fold: Fold, fingerprint: str, ctx: RunContext,
                class_names: Sequence[str]) -> FeatureSet | None:
    if not (meta_path := folder / "meta.json").exists():
        return None
    try:  # any failure below (but leakage) means "rebuild", never "trust"
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        trained_on = [int(c) for c in meta["trained_on"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        _warn(ctx, f"pretraining cache {folder} has an unreadable meta.json ({exc}); rebuilding")
        return None
    check_trained_on(trained_on, fold, class_names)  # leakage is refused, never rebuilt
    if meta.get("checksum") != _meta_checksum(meta) or meta.get("fingerprint") != fingerprint:
        _warn(ctx, f"pretraining cache {folder}: meta.json fails its checksum; rebuilding")
        return None
    for name in FILES:
        path, expected = folder / name, meta.get("files", {}).get(name)
        if not path.exists() or expected != _sha256(path.read_bytes()):
            _warn(ctx, f"pretraining cache {folder}: {name} is missing or corrupted; rebuilding")
            return None
    try:
        with open(folder / "features.npz", "rb") as fh, np.load(fh, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        for name in SETS:
            if not np.array_equal(arrays[f"index_{name}"], np.asarray(getattr(fold, name))):
                raise ValueError(f"{name} indices differ from the fold's")
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        _warn(ctx, f"pretraining cache {folder}: features.npz is unusable ({exc}); rebuilding")
        return None
    return FeatureSet(
        train=arrays["train"], test_seen=arrays["test_seen"], test_unseen=arrays["test_unseen"],
        trained_on=np.asarray(sorted(trained_on), dtype=np.int64), fingerprint=fingerprint,
        checkpoint=folder / "checkpoint.pt", from_cache=True,
        logits={k: arrays[f"logits_{k}"] for k in SETS}, info=dict(meta.get("info", {})))


def _save_cache(folder: Path, fs: FeatureSet, checkpoint: bytes, meta_extra: dict[str, Any]) -> None:
    buf, arrays = io.BytesIO(), {k: getattr(fs, k) for k in SETS}
    arrays.update({f"logits_{k}": v for k, v in fs.logits.items()})
    arrays.update({f"index_{k}": np.asarray(v, dtype=np.int64)
                   for k, v in meta_extra.pop("indices").items()})
    np.savez(buf, **arrays)
    features = buf.getvalue()  # hashed from memory, written atomically
    write_atomic(folder / "checkpoint.pt", checkpoint)
    write_atomic(folder / "features.npz", features)
    meta = {"schema": SCHEMA, "fingerprint": fs.fingerprint,
            "trained_on": [int(c) for c in fs.trained_on],
            "files": {"checkpoint.pt": _sha256(checkpoint), "features.npz": _sha256(features)},
            "info": fs.info, **meta_extra}
    meta["checksum"] = _meta_checksum(meta)
    write_atomic(folder / "meta.json", json.dumps(meta, indent=1, sort_keys=True).encode())


# ---- Training and extraction
def _read(dataset: SkeletonDataset, idx: np.ndarray, device: str) -> Any:
    return read_batch(dataset.data, idx).to(device)


def _heldout_split(dataset: SkeletonDataset, idx: np.ndarray, frac: float,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-class held-out slice of the training samples (at least one per class with >= 2)."""
    labels, keep, held = dataset.labels[idx], [], []
    for c in np.unique(labels):
        members = rng.permutation(idx[labels == c])
        n_val = min(len(members) - 1, max(1, int(round(frac * len(members)))))
        held.append(members[:n_val])
        keep.append(members[n_val:])
    held_arr, keep_arr = np.sort(np.concatenate(held)), np.sort(np.concatenate(keep))
    if len(held_arr) == 0:
        raise ZsbenchError("selection='val' needs at least two training samples in some class")
    return keep_arr, held_arr


def _run(encoder: "nn.Module", head: "nn.Linear | None", dataset: SkeletonDataset,
         idx: np.ndarray, batch_size: int, device: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Eval-mode features (and, with a head, logits) of ``idx`` (in that order), read from
    ``dataset.data`` batch by batch."""
    import torch

    encoder.eval()
    if head is not None:
        head.eval()
    feats, logits = [], []
    with torch.no_grad():
        batches = [idx[start:start + batch_size] for start in range(0, len(idx), batch_size)]
        for _, x in prefetched(dataset.data, batches, device):
            f = encoder(x)
            feats.append(f.float().cpu().numpy())
            if head is not None:
                logits.append(head(f).float().cpu().numpy())
    dim = int(head.in_features) if head is not None else int(getattr(encoder, "feature_dim", 0))
    out = np.concatenate(feats) if feats else np.zeros((0, dim), np.float32)
    if head is None:
        return out, None
    return out, (np.concatenate(logits) if logits
                 else np.zeros((0, int(head.out_features)), np.float32))


def extract_features(encoder: "nn.Module", dataset: SkeletonDataset, idx: np.ndarray,
                     device: str, batch_size: int = 128) -> np.ndarray:
    """Eval-mode (n, D) features of the samples ``idx`` of ``dataset`` (batched reads, so a
    memory-mapped dataset is never loaded whole)."""
    return _run(encoder, None, dataset, np.asarray(idx, dtype=np.int64), batch_size, device)[0]


def _accuracy(logits: np.ndarray, labels: np.ndarray, classes: np.ndarray) -> float:
    pred = classes[np.argmax(logits[:, classes], axis=1)]
    return float((pred == labels).mean()) if len(labels) else 0.0


def _train(encoder_builder: Callable[[], "nn.Module"], dataset: SkeletonDataset, fold: Fold,
           cfg: PretrainConfig, ctx: RunContext, device: str, identity: str
           ) -> tuple["nn.Module", "nn.Linear", dict[str, Any]]:
    import torch
    from torch import nn

    torch.manual_seed(ctx.seed)
    rng = np.random.default_rng(ctx.seed)
    seen = np.asarray(sorted(int(c) for c in fold.seen), dtype=np.int64)
    train_idx = np.asarray(fold.train, dtype=np.int64)
    sel_idx = np.zeros(0, dtype=np.int64)
    if cfg.selection == "val":
        train_idx, sel_idx = _heldout_split(dataset, train_idx, cfg.val_fraction, rng)
    elif cfg.selection == "best_seen_test":
        sel_idx = np.asarray(fold.test_seen, dtype=np.int64)
        if len(sel_idx) == 0:
            raise ZsbenchError(f"fold {fold.name!r}: selection='best_seen_test' needs "
                               "seen-class test samples and the fold has none")
    encoder = encoder_builder().to(device)
    dim = getattr(encoder, "feature_dim", None)
    if dim is None:  # probe once in eval mode (no state change)
        encoder.eval()
        with torch.no_grad():
            dim = int(encoder(_read(dataset, train_idx[:1], device)).shape[1])
    head = nn.Linear(int(dim), dataset.num_classes).to(device)
    nn.init.xavier_normal_(head.weight)
    nn.init.zeros_(head.bias)
    params = list(encoder.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    loss_fn = nn.CrossEntropyLoss()
    labels_t = torch.as_tensor(dataset.labels, dtype=torch.long)
    ctx.log(f"pretraining {identity} on {len(train_idx)} samples of {len(seen)} seen classes "
            f"({cfg.epochs} epochs, selection={cfg.selection})")
    history: list[float] = []
    scores: list[float] = []  # selection accuracy per epoch
    best: tuple[float, int, Any] | None = None  # (score, epoch, state dicts)
    epochs = ctx.progress(range(cfg.epochs), desc=f"pretrain {identity}", total=cfg.epochs,
                          leave=False)
    for epoch in epochs:
        encoder.train(), head.train()
        perm = rng.permutation(train_idx)
        total, count = 0.0, 0
        batches = [np.sort(perm[start:start + cfg.batch_size])
                   for start in range(0, len(perm), cfg.batch_size)]
        for batch, x in prefetched(dataset.data, batches, device):
            y = labels_t[batch].to(device)
            loss = loss_fn(head(encoder(x)), y)
            value = float(loss.item())
            if not np.isfinite(value):
                raise ZsbenchError(f"pretraining {identity} diverged (loss {value}) at "
                                   f"epoch {epoch + 1}; lower the learning rate")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, count = total + value * len(batch), count + len(batch)
        sched.step()
        history.append(total / max(count, 1))
        if cfg.selection != "last":
            _, logits = _run(encoder, head, dataset, sel_idx, cfg.batch_size, device)
            assert logits is not None   # a head was given
            acc = _accuracy(logits, dataset.labels[sel_idx], seen)
            scores.append(acc)
            if best is None or acc > best[0]:
                state = {k: {n: t.detach().clone() for n, t in m.state_dict().items()}
                         for k, m in (("encoder", encoder), ("head", head))}
                best = (acc, epoch + 1, state)
    info: dict[str, Any] = {"epochs": cfg.epochs, "train_loss": history, "selection": cfg.selection,
                            "n_train": int(len(train_idx)), "n_selection": int(len(sel_idx))}
    if best is not None:
        encoder.load_state_dict(best[2]["encoder"]), head.load_state_dict(best[2]["head"])
        info.update(selected_epoch=best[1], selection_score=best[0], selection_scores=scores)
    else:
        info["selected_epoch"] = cfg.epochs
    return encoder, head, info


def pretrained_features(*, encoder_builder: Callable[[], "nn.Module"], encoder_identity: str,
                        dataset: SkeletonDataset, fold: Fold, cfg: PretrainConfig,
                        ctx: RunContext) -> FeatureSet:
    """Pretrain an encoder on ``fold``'s seen-class training samples (or reuse the cached
    result) and return features of ``fold.train``, ``fold.test_seen``, ``fold.test_unseen``.

    ``encoder_builder()`` returns a fresh module mapping (N, C, T, V, M) to (N, D) (it may
    expose ``feature_dim``); ``encoder_identity`` names it with its config (part of the
    cache key). Deterministic for a given ``ctx.seed`` on CPU.
    """
    if cfg.selection == "best_seen_test":
        ctx.note_deviation("pretrain_selection=best_seen_test")
    _check_fold_train(dataset, fold)
    fingerprint = pretrain_fingerprint(dataset, fold, encoder_identity, cfg, ctx.seed)
    folder = Path(ctx.cache_dir) / "encoders" / fingerprint
    # one process per fingerprint: a concurrent run of the same pretraining (a sweep's
    # other method on this fold and seed) waits and then reads the cache
    with file_lock(folder.with_name(fingerprint + ".lock")):
        return _cached_or_trained(encoder_builder, encoder_identity, dataset, fold, cfg, ctx,
                                  fingerprint, folder)


def _cached_or_trained(encoder_builder: Callable[[], "nn.Module"], encoder_identity: str,
                       dataset: SkeletonDataset, fold: Fold, cfg: PretrainConfig,
                       ctx: RunContext, fingerprint: str, folder: Path) -> FeatureSet:
    import torch

    cached = _load_cache(folder, fold, fingerprint, ctx, dataset.class_names)
    if cached is not None:
        ctx.log(f"pretrained {encoder_identity} features from cache {folder}")
        _record(ctx, encoder_identity, cached.info)
        return cached
    device = resolve_device(ctx.device)
    cuda = [torch.device(device).index or 0] if device.startswith("cuda") else []
    with torch.random.fork_rng(devices=cuda):
        encoder, head, info = _train(encoder_builder, dataset, fold, cfg, ctx, device,
                                     encoder_identity)
        out: dict[str, np.ndarray] = {}
        logits: dict[str, np.ndarray] = {}
        for name in SETS:
            idx = np.asarray(getattr(fold, name), dtype=np.int64)
            out[name], set_logits = _run(encoder, head, dataset, idx, cfg.batch_size, device)
            assert set_logits is not None   # a head was given
            logits[name] = set_logits
    buf = io.BytesIO()
    torch.save({"encoder": {k: v.cpu() for k, v in encoder.state_dict().items()},
                "head": {k: v.cpu() for k, v in head.state_dict().items()}}, buf)
    trained_on = np.asarray(sorted(int(c) for c in fold.seen), dtype=np.int64)
    fs = FeatureSet(train=out["train"], test_seen=out["test_seen"],
                    test_unseen=out["test_unseen"], trained_on=trained_on,
                    fingerprint=fingerprint, checkpoint=folder / "checkpoint.pt",
                    from_cache=False, logits=logits, info=info)
    _save_cache(folder, fs, buf.getvalue(), {
        "encoder_identity": encoder_identity, "config": json.loads(cfg.model_dump_json()),
        "seed": int(ctx.seed), "dataset": dataset.name, "dataset_fingerprint": dataset.fingerprint,
        "fold": fold.name, "feature_dim": int(fs.train.shape[1]), "num_classes": dataset.num_classes,
        "indices": {k: getattr(fold, k) for k in SETS}})
    _record(ctx, encoder_identity, info)
    return fs


def load_pretrained_encoder(encoder_builder: Callable[[], "nn.Module"], features: FeatureSet,
                            fold: Fold | None = None, device: str = "cpu",
                            with_head: bool = False) -> Any:
    """Rebuild the pretrained encoder of ``features`` (eval mode) from its checkpoint,
    loaded with ``weights_only=True``; with ``fold`` the leakage check runs first.
    With ``with_head=True`` returns ``(encoder, head_state_dict)``."""
    import torch

    if fold is not None:
        check_trained_on(features.trained_on, fold)
    try:
        state = torch.load(features.checkpoint, map_location="cpu", weights_only=True)
        encoder = encoder_builder().to(resolve_device(device))
        encoder.load_state_dict(state["encoder"])
    except CHECKPOINT_ERRORS as exc:
        why = "refused by the weights-only unpickler" if isinstance(
            exc, pickle.UnpicklingError) else f"{type(exc).__name__}: {str(exc)[:200]}"
        raise DataFileError(f"{features.checkpoint}: not a readable pretrained encoder checkpoint "
                            f"({why}); delete {features.checkpoint.parent} to pretrain "
                            "again") from exc
    encoder.eval()
    return (encoder, state["head"]) if with_head else encoder

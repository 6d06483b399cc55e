"""A method's trained modules, cached between runs.

Some methods train a module of their own before their main training (Neuron, STAR and PURLS
pretrain a skeleton encoder on the seen classes; SMIE does it with its own recipe). Given
the same module, recipe, seed and training data the result is the same, so a second run
(the regression matrix, a sweep, the GZSL validation refit of a repeated run) can load it
instead of training it again.

``ModuleCache(cache_dir, namespace, key)`` keeps one entry per key under
``<cache_dir>/<namespace>/<sha256 of the key>/``: ``weights.pt`` (state dict, loaded with
``weights_only=True``), optionally ``rng.pt`` (random-generator states right after the
training, so that what the method draws afterwards is what it would have drawn had it
trained), and ``meta.json`` (the key, the classes trained on, the sha256 of both files,
the method's ``info``). Files are written atomically and checked on load; a damaged or
foreign entry is ignored (trained again and rewritten), never half-read.

The key names the module's config, the recipe, the seed and the data, not the code that
trains it. :data:`REVISION` is part of every key: raise it with any change that makes a
cached training compute other numbers for the same key (an implementation change of an
encoder, an augmentation or an optimizer), so that entries written by the older code miss
instead of being loaded. (Found stale: Neuron/STAR encoder entries written before the
2026-12-07 changes gave STAR 66.67 instead of 46.30 ZSL on the embedded star 37/3 fold,
where a fresh training reproduces the golden numbers; revision 2 retired them.)
"""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .results import write_atomic

if TYPE_CHECKING:
    import torch
    from torch import nn

#: part of every cache key; raise it when the code (not the config) changes what a cached
#: training computes (module docstring)
REVISION = 2


def module_identity(module: "nn.Module") -> str:
    """Class path and config JSON of a module (part of a cache key)."""
    cfg: Any = getattr(module, "config", None)
    body = cfg.model_dump_json() if hasattr(cfg, "model_dump_json") else repr(cfg)
    return f"{type(module).__module__}.{type(module).__name__}:{body}"


def data_digest(x: Any, labels: np.ndarray) -> str:
    """sha256 over the labels, the sample indices (lazy views) or shape, and a few samples'
    bytes: the part of a cache key that names the training set."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    index = getattr(x, "index", None)
    if index is not None:
        h.update(np.ascontiguousarray(index, dtype=np.int64).tobytes())
    h.update(repr(tuple(x.shape)).encode())
    for i in sorted({0, len(x) // 2, len(x) - 1}):
        h.update(np.ascontiguousarray(x[i], dtype=np.float32).tobytes())
    return h.hexdigest()


def _sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _torch_bytes(obj: Any) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


class ModuleCache:
    """One cached trained module (see the module docstring). ``cache_dir=None`` disables
    it (``load`` misses, ``save`` does nothing)."""

    def __init__(self, cache_dir: Path | None, namespace: str, key: dict[str, Any]) -> None:
        self.key = json.dumps({**key, "zsbench_cache_revision": REVISION}, sort_keys=True,
                              default=str)
        digest = _sha(self.key.encode())[:32]
        self.folder = Path(cache_dir) / namespace / digest if cache_dir else None

    def load(self, module: "nn.Module", classes: np.ndarray,
             generators: "dict[str, torch.Generator] | None" = None) -> dict[str, Any] | None:
        """Load the entry into ``module`` and return its ``info``, or None on a miss.

        With ``generators``, the entry must carry their saved states (and the global CPU
        generator's): they are restored, so the caller continues as after training."""
        import torch

        if self.folder is None or not (self.folder / "meta.json").is_file():
            return None
        try:
            meta = json.loads((self.folder / "meta.json").read_text(encoding="utf-8"))
            raw = (self.folder / "weights.pt").read_bytes()
            if meta.get("key") != self.key or meta.get("sha256") != _sha(raw):
                return None
            if sorted(meta["trained_on"]) != sorted(int(c) for c in classes):
                return None
            rng = None
            if generators is not None:
                rng_raw = (self.folder / "rng.pt").read_bytes()
                if meta.get("rng_sha256") != _sha(rng_raw):
                    return None
                rng = torch.load(io.BytesIO(rng_raw), weights_only=True)
                if set(rng) != {"global", *generators}:
                    return None
            state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
            module.load_state_dict(state)
            if rng is not None and generators is not None:
                torch.set_rng_state(rng["global"])
                for name, gen in generators.items():
                    gen.set_state(rng[name])
        except (OSError, ValueError, KeyError, RuntimeError, TypeError):
            return None
        return dict(meta.get("info", {}))

    def save(self, module: "nn.Module", classes: np.ndarray, info: dict[str, Any],
             generators: "dict[str, torch.Generator] | None" = None) -> None:
        """Store ``module``'s state (and, with ``generators``, their current states and the
        global CPU generator's) under the key."""
        import torch

        if self.folder is None:
            return
        raw = _torch_bytes({k: v.detach().cpu() for k, v in module.state_dict().items()})
        meta: dict[str, Any] = {"key": self.key, "sha256": _sha(raw),
                                "trained_on": [int(c) for c in classes], "info": info}
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomic(self.folder / "weights.pt", raw)
        if generators is not None:
            rng_raw = _torch_bytes({"global": torch.get_rng_state(),
                                    **{n: g.get_state() for n, g in generators.items()}})
            write_atomic(self.folder / "rng.pt", rng_raw)
            meta["rng_sha256"] = _sha(rng_raw)
        write_atomic(self.folder / "meta.json", json.dumps(meta, indent=1).encode())

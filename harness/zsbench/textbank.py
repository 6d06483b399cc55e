"""Build a dataset's :class:`~zsbench.api.ClassTexts`: run the text sources, encode every
distinct string once with the text encoder, and keep the embeddings in an on-disk cache.

Cache layout (content-addressed)::

    <cache_dir>/text_embeddings/<sha256(encoder identity)[:24]>/
        identity.txt              the encoder identity, for people
        shard-<digest>.npy        (n, D) float32 embeddings
        shard-<digest>.json       {"format", "identity", "hashes": [sha256(text), ...],
                                   "shape", "dtype", "npy_sha256"}

A shard's JSON is written (atomically) after its ``.npy`` and commits it. On load every
shard is checked (identity, hashes, shape, dtype, checksum of the ``.npy`` bytes, finite
values); a shard that fails is reported with a warning, deleted and its texts encoded
again. Concurrent processes sharing the cache (sweep workers) take turns through the
lock file ``<sha256(identity)[:24]>.lock`` beside the folder: the cache is read, extended
and compacted by one process at a time. Nothing here imports torch: encoders load their
models lazily.
"""
from __future__ import annotations

import hashlib
import json
import re
import warnings
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from .api import ClassTexts, SkeletonDataset, ZsbenchError
from .locks import file_lock
from .results import atomic_writer, write_atomic
from .specs import PluginConfig, TextEncoderSpec, TextSourceSpec

CACHE_FORMAT = 1
CHUNK = 512          # texts per encode() call (and per cache shard)
MAX_SHARDS = 8       # more shards than this are merged into one at the end of a build
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

Progress = Callable[..., Iterable[Any]]


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------
def collect_texts(dataset: SkeletonDataset,
                  sources: Sequence[tuple[TextSourceSpec, PluginConfig]]
                  ) -> dict[str, list[list[str]]]:
    """Run every source and check its output: one non-empty list of non-empty strings per
    dataset class, and each kind from one source only."""
    if not sources:
        raise ZsbenchError("no text sources given")
    texts: dict[str, list[list[str]]] = {}
    origin: dict[str, str] = {}
    n = dataset.num_classes
    for spec, config in sources:
        out = spec.load()(config, dataset)
        if not isinstance(out, dict) or not out:
            raise ZsbenchError(f"text source {spec.name!r} returned no texts")
        for kind, per_class in out.items():
            if not isinstance(kind, str) or not kind:
                raise ZsbenchError(f"text source {spec.name!r}: invalid text kind {kind!r}")
            if kind in origin:
                raise ZsbenchError(
                    f"text kind {kind!r} is given by both text sources {origin[kind]!r} and "
                    f"{spec.name!r}; set a different `kind` in one of their configs")
            where = f"text source {spec.name!r}, kind {kind!r}"
            if not isinstance(per_class, list) or len(per_class) != n:
                got = len(per_class) if isinstance(per_class, list) else type(per_class).__name__
                raise ZsbenchError(f"{where}: expected texts for {n} classes of dataset "
                                   f"{dataset.name!r}, got {got}")
            for i, strings in enumerate(per_class):
                label = f"{where}: class {i} {dataset.class_names[i]!r}"
                if not isinstance(strings, list) or not strings:
                    raise ZsbenchError(f"{label} has no texts")
                if not all(isinstance(s, str) and s.strip() for s in strings):
                    raise ZsbenchError(f"{label} has an empty or non-string text")
            texts[kind] = [list(s) for s in per_class]
            origin[kind] = spec.name
    return texts


# --------------------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------------------
class EmbeddingCache:
    """Embeddings of one encoder identity, keyed by sha256 of the text."""

    def __init__(self, cache_dir: Path, identity: str) -> None:
        self.identity = identity
        self.root = Path(cache_dir) / "text_embeddings" / \
            hashlib.sha256(identity.encode("utf-8")).hexdigest()[:24]
        self.lock_path = self.root.with_name(self.root.name + ".lock")

    def _shards(self) -> list[Path]:
        return sorted(self.root.glob("shard-*.json")) if self.root.is_dir() else []

    def _check(self, index_path: Path, dim: int | None) -> tuple[list[str], np.ndarray]:
        """Return (hashes, array) of a valid shard; raise ValueError saying what is wrong."""
        try:
            meta = json.loads(index_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"unreadable index ({exc})") from exc
        if not isinstance(meta, dict) or meta.get("format") != CACHE_FORMAT:
            raise ValueError("unknown index format")
        if meta.get("identity") != self.identity:
            raise ValueError("index written for another encoder identity")
        hashes, shape = meta.get("hashes"), meta.get("shape")
        if not isinstance(hashes, list) or not all(isinstance(h, str) and _HEX64.match(h)
                                                   for h in hashes):
            raise ValueError("bad text hashes")
        if len(set(hashes)) != len(hashes):
            raise ValueError("duplicate text hashes")
        if not (isinstance(shape, list) and len(shape) == 2 and shape[0] == len(hashes)):
            raise ValueError(f"shape {shape} does not match {len(hashes)} hashes")
        if dim is not None and shape[1] != dim:
            raise ValueError(f"dimension {shape[1]} differs from the other shards' {dim}")
        npy = index_path.with_suffix(".npy")
        try:
            raw = npy.read_bytes()
        except OSError as exc:
            raise ValueError(f"missing embeddings file ({exc})") from exc
        if hashlib.sha256(raw).hexdigest() != meta.get("npy_sha256"):
            raise ValueError("checksum mismatch")
        try:
            arr = np.load(npy, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise ValueError(f"unreadable embeddings ({exc})") from exc
        if arr.dtype != np.float32 or list(arr.shape) != shape:
            raise ValueError(f"array {arr.dtype} {arr.shape} does not match index {shape}")
        if not np.isfinite(arr).all():
            raise ValueError("non-finite values")
        return hashes, arr

    def _drop(self, index_path: Path, reason: str) -> None:
        warnings.warn(f"text embedding cache: {index_path} is corrupt ({reason}); it is "
                      f"ignored, deleted and rebuilt", RuntimeWarning, stacklevel=3)
        for p in (index_path, index_path.with_suffix(".npy")):
            p.unlink(missing_ok=True)

    def load(self) -> dict[str, np.ndarray]:
        """hash -> embedding row, from every valid shard."""
        table: dict[str, np.ndarray] = {}
        dim: int | None = None
        for index_path in self._shards():
            try:
                hashes, arr = self._check(index_path, dim)
            except ValueError as exc:
                self._drop(index_path, str(exc))
                continue
            dim = arr.shape[1]
            for h, row in zip(hashes, arr):
                table.setdefault(h, row)
        return table

    def add(self, hashes: Sequence[str], array: np.ndarray) -> None:
        """Write one shard (``.npy`` first, then its index, both atomically)."""
        array = np.ascontiguousarray(array, dtype=np.float32)
        digest = hashlib.sha256("\n".join(hashes).encode()).hexdigest()[:24]
        npy, index = self.root / f"shard-{digest}.npy", self.root / f"shard-{digest}.json"
        self.root.mkdir(parents=True, exist_ok=True)
        ident = self.root / "identity.txt"
        if not ident.exists():
            write_atomic(ident, self.identity + "\n")
        with atomic_writer(npy) as f:
            np.save(f, array, allow_pickle=False)
        meta = {"format": CACHE_FORMAT, "identity": self.identity, "hashes": list(hashes),
                "shape": list(array.shape), "dtype": "float32",
                "npy_sha256": hashlib.sha256(npy.read_bytes()).hexdigest()}
        write_atomic(index, json.dumps(meta))

    def compact(self) -> None:
        """Merge the shards into one when there are more than ``MAX_SHARDS``."""
        shards = self._shards()
        if len(shards) <= MAX_SHARDS:
            return
        table = self.load()
        if not table:
            return
        hashes = sorted(table)
        self.add(hashes, np.stack([table[h] for h in hashes]))
        digest = hashlib.sha256("\n".join(hashes).encode()).hexdigest()[:24]
        for index_path in shards:
            if index_path.stem != f"shard-{digest}":
                index_path.unlink(missing_ok=True)
                index_path.with_suffix(".npy").unlink(missing_ok=True)


# --------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------
def _wrap(progress: Progress | None, items: list[Any], desc: str) -> Iterable[Any]:
    if progress is None:
        return items
    try:
        return progress(items, desc=desc)
    except TypeError:
        return progress(items)


def _encode(encoder: Any, identity: str, texts: list[str]) -> np.ndarray:
    out = encoder.encode(list(texts))
    arr = np.asarray(out)
    if arr.ndim != 2 or arr.shape[0] != len(texts):
        raise ZsbenchError(f"text encoder {identity!r} returned shape {arr.shape} for "
                           f"{len(texts)} texts; expected ({len(texts)}, D)")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise ZsbenchError(f"text encoder {identity!r} returned non-finite embeddings")
    return arr


def build_class_texts(dataset: SkeletonDataset,
                      sources: Sequence[tuple[TextSourceSpec, PluginConfig]],
                      encoder: tuple[TextEncoderSpec, PluginConfig],
                      cache_dir: Path | None, progress: Progress | None = None) -> ClassTexts:
    """Texts and embeddings of every class of ``dataset`` (``class_ids = arange(C)``).

    ``sources`` are (spec, validated config) pairs whose kinds are merged; ``encoder`` is
    one (spec, validated config) pair.
    ``cache_dir`` None disables the embedding cache. ``progress`` is a tqdm-like callable
    ``(iterable, desc=...) -> iterable`` wrapped around the encoding chunks.
    """
    texts = collect_texts(dataset, sources)
    enc_spec, enc_config = encoder
    enc = enc_spec.load()(enc_config)
    identity = enc.identity()
    unique = list(dict.fromkeys(t for per_class in texts.values()
                                for strings in per_class for t in strings))
    hashes = {t: text_hash(t) for t in unique}
    cache = EmbeddingCache(cache_dir, identity) if cache_dir is not None else None
    # one writer at a time per encoder identity: a concurrent process (sweep worker) waits,
    # then finds the texts encoded; no reader sees a shard being replaced or compacted away
    with file_lock(cache.lock_path) if cache is not None else nullcontext():
        table = cache.load() if cache is not None else {}
        todo = [t for t in unique if hashes[t] not in table]
        if todo and table:
            dim = next(iter(table.values())).shape[0]
        else:
            dim = None
        chunks = [todo[i:i + CHUNK] for i in range(0, len(todo), CHUNK)]
        for chunk in _wrap(progress, chunks, f"encoding {len(todo)} texts ({enc_spec.name})"):
            arr = _encode(enc, identity, chunk)
            if dim is not None and arr.shape[1] != dim:
                raise ZsbenchError(f"text encoder {identity!r} returned {arr.shape[1]}-d "
                                   f"embeddings but earlier ones are {dim}-d")
            dim = arr.shape[1]
            keys = [hashes[t] for t in chunk]
            table.update(zip(keys, arr))
            if cache is not None:
                cache.add(keys, arr)
        if cache is not None and todo:
            cache.compact()
    embeddings = {kind: [np.stack([table[hashes[t]] for t in strings]).astype(np.float32)
                         for strings in per_class]
                  for kind, per_class in texts.items()}
    return ClassTexts(class_ids=np.arange(dataset.num_classes, dtype=np.int64),
                      class_names=list(dataset.class_names), texts=texts,
                      embeddings=embeddings)


def random_class_texts(like: ClassTexts, seed: int) -> ClassTexts:
    """A control bank: the same texts and shapes as ``like`` but random embeddings.

    Each (class, text) pair gets a random direction drawn from (seed, class id, sha256 of
    the text), scaled to the norm of its real embedding: the same class always gets the
    same vectors (across subsets and separate calls), but a sentence shared by two classes
    gets unrelated vectors, so no similarity structure between classes survives.
    """
    embeddings: dict[str, list[np.ndarray]] = {}
    for kind, per_class in like.embeddings.items():
        texts = like.texts.get(kind)
        rows = []
        for i, emb in enumerate(per_class):
            emb = np.asarray(emb, dtype=np.float32)
            strings = texts[i] if texts is not None else None
            if strings is None or len(strings) != emb.shape[0]:
                raise ZsbenchError(f"random_class_texts: kind {kind!r}, class "
                                   f"{int(like.class_ids[i])}: texts and embeddings differ "
                                   f"in length")
            out = np.empty_like(emb)
            cls = int(like.class_ids[i])
            for r, text in enumerate(strings):
                key = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")
                vec = np.random.default_rng([int(seed) & 0xFFFFFFFF, cls, key]).standard_normal(
                    emb.shape[1])
                out[r] = vec / np.linalg.norm(vec) * np.linalg.norm(emb[r])
            rows.append(out)
        embeddings[kind] = rows
    return ClassTexts(class_ids=np.asarray(like.class_ids, dtype=np.int64).copy(),
                      class_names=list(like.class_names),
                      texts={k: [list(s) for s in v] for k, v in like.texts.items()},
                      embeddings=embeddings)

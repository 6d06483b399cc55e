"""On-disk cache of a generated dataset: one folder per fingerprint holding the arrays
(.npy), the class list, one JSON file per text kind and a manifest with the sha256 of
every file. Folders are written into a temporary sibling and renamed into place, and
verified against their manifest before use."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from zsbench.api import ZsbenchError

from .config import SyntheticConfig
from .generate import GENERATOR_VERSION, SyntheticData
from .texts import TEXT_KINDS

ARRAYS = ("data", "labels", "subject", "camera", "setup", "replication", "performance",
          "lengths")
MANIFEST = "manifest.json"
CLASSES = "classes.json"


def config_json(cfg: SyntheticConfig) -> str:
    return json.dumps(cfg.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def fingerprint(cfg: SyntheticConfig) -> str:
    """sha256 over the generator version and the canonical config JSON."""
    return hashlib.sha256(f"{GENERATOR_VERSION}\n{config_json(cfg)}".encode()).hexdigest()


def text_file(kind: str) -> str:
    return f"texts_{kind}.json"


def expected_files() -> list[str]:
    return [f"{a}.npy" for a in ARRAYS] + [CLASSES] + [text_file(k) for k in TEXT_KINDS]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def verify(folder: Path, fp: str) -> str | None:
    """None if ``folder`` holds a complete cache for fingerprint ``fp``, else the reason."""
    path = folder / MANIFEST
    if not path.is_file():
        return f"{path} is missing"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        files = manifest["files"]
        if manifest.get("generator") != GENERATOR_VERSION or manifest.get("fingerprint") != fp:
            return f"{path}: written by another generator version or config"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"{path} is unreadable ({exc})"
    missing = sorted(set(expected_files()) - set(files))
    if missing:
        return f"{path} does not list {missing}"
    for name, entry in files.items():
        target = folder / name
        try:
            size = target.stat().st_size
        except OSError:
            return f"{target} is missing"
        if size != entry.get("size"):
            return f"{target} has {size} bytes, the manifest says {entry.get('size')}"
        if sha256_file(target) != entry.get("sha256"):
            return f"{target} does not match its sha256 in {path}"
    return None


def _fill(tmp: Path, cfg: SyntheticConfig, fp: str, gen: SyntheticData) -> None:
    for name in ARRAYS:
        np.save(tmp / f"{name}.npy", np.ascontiguousarray(getattr(gen, name)),
                allow_pickle=False)
    _write_json(tmp / CLASSES, {"class_names": gen.class_names,
                                "class_primitives": gen.class_primitives})
    for kind in TEXT_KINDS:
        _write_json(tmp / text_file(kind), {
            "kind": kind,
            "classes": [{"name": n, "texts": t}
                        for n, t in zip(gen.class_names, gen.texts[kind])]})
    files = {name: {"sha256": sha256_file(tmp / name), "size": (tmp / name).stat().st_size}
             for name in expected_files()}
    _write_json(tmp / MANIFEST, {"generator": GENERATOR_VERSION, "fingerprint": fp,
                                 "config": cfg.model_dump(mode="json"),
                                 "shape": list(gen.data.shape), "files": files})


def write(folder: Path, cfg: SyntheticConfig, fp: str, gen: SyntheticData) -> None:
    """Write ``gen`` as the cache ``folder`` atomically; an invalid folder already there
    is moved aside and deleted, a valid one written meanwhile by another process wins."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the cache may be shared
    try:
        _fill(tmp, cfg, fp, gen)
        if folder.exists():
            if verify(folder, fp) is None:
                return
            stale = folder.with_name(f".{folder.name}.stale-{uuid.uuid4().hex[:8]}")
            os.replace(folder, stale)
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.replace(tmp, folder)
        except OSError as exc:
            if not (folder.exists() and verify(folder, fp) is None):
                raise ZsbenchError(f"cannot write the synthetic cache {folder}: {exc}") from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def read_texts(path: Path) -> tuple[str, list[str], list[list[str]]]:
    """(kind, class names, texts per class) from a ``texts_<kind>.json`` file."""
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
        names = [str(c["name"]) for c in obj["classes"]]
        texts = [[str(s) for s in c["texts"]] for c in obj["classes"]]
        return str(obj["kind"]), names, texts
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ZsbenchError(f"{path}: not a zsbench text file ({exc})") from exc

"""The prepared store: one memory-mapped array plus a sample table and a manifest.

Layout of ``<data_root>/<dataset>/frames<T>/``::

    data.npy       (N, 3, T, 25, 2) float32, read with np.load(mmap_mode="r")
    samples.npz    per-sample columns (name, label, subject, camera, ...), no pickles
    manifest.json  written last: the store exists only once this file does

Every file is written to a temporary name in the same folder and renamed into place.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from zsbench.api import ZsbenchError
from zsbench.results import atomic_writer, write_atomic

SCHEMA = 1
DATA_FILE = "data.npy"
SAMPLES_FILE = "samples.npz"
MANIFEST_FILE = "manifest.json"


def default_data_root() -> Path:
    """``$ZSBENCH_DATA_ROOT`` (or ``$ZSBENCH_DATA``), else ``<cache>/data`` where the
    cache is ``$ZSBENCH_CACHE`` or ``~/.cache/zsbench`` (the harness's cache folder)."""
    env = os.environ.get("ZSBENCH_DATA_ROOT") or os.environ.get("ZSBENCH_DATA")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("ZSBENCH_CACHE")
    return (Path(cache).expanduser() if cache else Path.home() / ".cache" / "zsbench") / "data"


def dataset_dir(root: Path, name: str) -> Path:
    """``<root>/<name>``; a ``root`` that already ends in the dataset's name (as
    ``zsbench data prepare --out DATA/ntu60``) is taken as that dataset's folder."""
    root = Path(root)
    return root if root.name == name else root / name


def store_dir(root: Path, name: str, frames: int) -> Path:
    return dataset_dir(root, name) / f"frames{frames}"


def new_hasher() -> "hashlib._Hash":
    return hashlib.blake2b(digest_size=16)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """``zsbench.results.write_atomic`` plus an fsync of the folder (the store's commit)."""
    write_atomic(Path(path), data)
    _fsync_dir(Path(path).parent)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode("utf-8"))


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_writer(Path(path)) as fh:
        np.lib.format.write_array(fh, np.ascontiguousarray(array), allow_pickle=False)


def atomic_save_npz(path: Path, **arrays: np.ndarray) -> None:
    with atomic_writer(Path(path)) as fh:
        np.savez(fh, **arrays)


def check_disk(folder: Path, needed: int, what: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < needed * 1.02 + (64 << 20):
        raise ZsbenchError(f"{what} needs about {needed / 2**30:.1f} GiB in {folder}, only "
                           f"{free / 2**30:.1f} GiB are free; free space or choose another --out")


class StoreWriter:
    """Writes a store front to back: ``write`` appends rows (or ``append_npy`` the rows of
    a finished ``.npy`` chunk, copied by the kernel) to a partial file; ``commit`` syncs it
    and makes the store visible. Nothing is memory-mapped while writing, so writing costs
    neither page faults nor memory."""

    def __init__(self, folder: Path, num_samples: int, frames: int) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.shape = (num_samples, 3, frames, 25, 2)
        self.row_bytes = 3 * frames * 25 * 2 * 4
        check_disk(self.folder, num_samples * self.row_bytes, "the store")
        self.partial = self.folder / f".{DATA_FILE}.partial"
        self.fh = open(self.partial, "wb")
        np.lib.format.write_array_header_1_0(
            self.fh, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
                      "fortran_order": False, "shape": self.shape})
        self.filled = 0

    def _check_start(self, start: int, rows: int) -> None:
        if start != self.filled or start + rows > self.shape[0]:
            raise ZsbenchError(f"internal: rows {start}..{start + rows} written after "
                               f"{self.filled} of {self.shape[0]}")

    def write(self, start: int, block: np.ndarray) -> None:
        if block.dtype != np.float32 or block.shape[1:] != self.shape[1:]:
            raise ZsbenchError(f"internal: block {block.shape} {block.dtype} does not fit {self.shape}")
        self._check_start(start, len(block))
        self.fh.write(memoryview(np.ascontiguousarray(block)).cast("B"))
        self.filled += len(block)

    def append_npy(self, path: Path) -> int:
        """Append every row of the float32 ``.npy`` file ``path``; returns the row count."""
        with open(path, "rb") as src:
            version = np.lib.format.read_magic(src)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read_header(src)
            if dtype != np.float32 or fortran or tuple(shape[1:]) != self.shape[1:]:
                raise ZsbenchError(f"{path}: {shape} {dtype} rows do not fit the store "
                                   f"{self.shape}; delete the work folder and prepare again")
            rows = int(shape[0])
            self._check_start(self.filled, rows)
            _copy_bytes(src, self.fh, rows * self.row_bytes, path)
        self.filled += rows
        return rows

    def commit(self, samples: dict[str, np.ndarray], manifest: dict[str, Any]) -> Path:
        if self.filled != self.shape[0]:
            raise ZsbenchError(f"internal: store filled {self.filled} of {self.shape[0]} rows")
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        (self.folder / MANIFEST_FILE).unlink(missing_ok=True)   # invalidate any old store
        os.replace(self.partial, self.folder / DATA_FILE)
        atomic_save_npz(self.folder / SAMPLES_FILE, **samples)
        manifest = dict(manifest)
        manifest.update(schema=SCHEMA, num_samples=self.shape[0], frames=self.shape[2],
                        data_file=DATA_FILE, data_bytes=(self.folder / DATA_FILE).stat().st_size,
                        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        atomic_write_json(self.folder / MANIFEST_FILE, manifest)
        return self.folder

    def abort(self) -> None:
        if not self.fh.closed:
            self.fh.close()
        self.partial.unlink(missing_ok=True)


def _copy_bytes(src, dst, count: int, path: Path) -> None:
    """Copy ``count`` bytes from the current position of ``src`` to the end of ``dst``,
    inside the kernel where the platform allows (``os.copy_file_range``)."""
    dst.flush()
    left = count
    if hasattr(os, "copy_file_range"):
        offset = src.tell()
        try:
            while left:
                n = os.copy_file_range(src.fileno(), dst.fileno(), left, offset)
                if n == 0:
                    break
                offset += n
                left -= n
        except OSError:          # e.g. unsupported across these file systems
            src.seek(offset)
        else:
            src.seek(offset)
            dst.seek(0, os.SEEK_END)
    while left:
        buf = src.read(min(left, 1 << 24))
        if not buf:
            break
        dst.write(buf)
        left -= len(buf)
    if left:
        raise ZsbenchError(f"{path}: file ends {left} bytes early; delete the work folder "
                           "and prepare again")


class StoreMissing(ZsbenchError):
    """No complete store in the folder."""


def read_manifest(folder: Path) -> dict[str, Any]:
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        raise StoreMissing(f"no prepared data in {folder} ({MANIFEST_FILE} not found)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ZsbenchError(f"{path}: unreadable manifest ({exc}); prepare the data again") from exc


def load_store(folder: Path) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, Any]]:
    """Memory-map a store: ``(data, samples, manifest)``; never loads the array."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    data_path = folder / manifest.get("data_file", DATA_FILE)
    if manifest.get("schema") != SCHEMA:
        raise ZsbenchError(f"{folder}: store schema {manifest.get('schema')} is not {SCHEMA}; "
                           "prepare the data again")
    if not data_path.is_file() or data_path.stat().st_size != manifest.get("data_bytes"):
        raise ZsbenchError(f"{data_path}: missing or not the size the manifest records "
                           f"({manifest.get('data_bytes')} bytes); prepare the data again")
    try:
        data = np.load(data_path, mmap_mode="r", allow_pickle=False)
        with np.load(folder / SAMPLES_FILE, allow_pickle=False) as z:
            samples = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise ZsbenchError(f"{folder}: cannot read the store ({exc}); prepare the data again") from exc
    n = manifest.get("num_samples")
    if data.shape != (n, 3, manifest.get("frames"), 25, 2) or data.dtype != np.float32:
        raise ZsbenchError(f"{data_path}: shape {data.shape} {data.dtype} does not match the "
                           f"manifest ({n} samples, {manifest.get('frames')} frames)")
    bad = [k for k, v in samples.items() if len(v) != n]
    if bad:
        raise ZsbenchError(f"{folder / SAMPLES_FILE}: columns {bad} do not have {n} rows")
    return data, samples, manifest

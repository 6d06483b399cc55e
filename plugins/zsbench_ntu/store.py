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
    """The hash behind every fingerprint and chunk digest: SHA-256 (hardware-accelerated
    in OpenSSL on current CPUs, ~1.9 GB/s here against ~1.3 GB/s for blake2b)."""
    return hashlib.sha256()


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
    """Writes a store front to back (the preprocessed-form readers): ``write`` appends rows
    to a partial file; ``commit`` syncs it and makes the store visible. Nothing is
    memory-mapped while writing, so writing costs neither page faults nor memory."""

    def __init__(self, folder: Path, num_samples: int, frames: int) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.shape = (num_samples, 3, frames, 25, 2)
        check_disk(self.folder, num_samples * row_bytes(frames), "the store")
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

    def commit(self, samples: dict[str, np.ndarray], manifest: dict[str, Any]) -> Path:
        if self.filled != self.shape[0]:
            raise ZsbenchError(f"internal: store filled {self.filled} of {self.shape[0]} rows")
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        return publish(self.partial, self.folder, self.shape, samples, manifest)

    def abort(self) -> None:
        if not self.fh.closed:
            self.fh.close()
        self.partial.unlink(missing_ok=True)


def publish(data_file: Path, folder: Path, shape: tuple[int, ...],
            samples: dict[str, np.ndarray], manifest: dict[str, Any]) -> Path:
    """Make a complete, synced data file the store in ``folder``: invalidate any old
    store, write the sample table, rename the data into place and, last, write the
    manifest. (The sample table goes first so that a full disk leaves the data file where
    it was, and a rerun can still reuse it.)"""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST_FILE).unlink(missing_ok=True)
    atomic_save_npz(folder / SAMPLES_FILE, **samples)
    os.replace(data_file, folder / DATA_FILE)
    manifest = dict(manifest)
    manifest.update(schema=SCHEMA, num_samples=shape[0], frames=shape[2], data_file=DATA_FILE,
                    data_bytes=(folder / DATA_FILE).stat().st_size,
                    created=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    atomic_write_json(folder / MANIFEST_FILE, manifest)
    return folder


HEADER_BYTES = 128


def npy_header(shape: tuple[int, ...], size: int = HEADER_BYTES) -> bytes:
    """A version-1.0 ``.npy`` header for a C-order float32 array of ``shape``, padded
    with spaces to exactly ``size`` bytes (numpy pads the same way, to 64-byte multiples)."""
    text = "{'descr': '<f4', 'fortran_order': False, 'shape': %r, }" % (tuple(shape),)
    if len(text) + 11 > size:
        raise ZsbenchError(f"internal: shape {shape} does not fit a {size}-byte header")
    body = text.ljust(size - 11) + "\n"
    return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body.encode("latin1")


class SlotFile:
    """The data file of a store being prepared, filled in place by chunks in any order.

    Each chunk owns a fixed range of rows ("slots") sized by an upper bound of the
    samples its inputs can give (one per NTU file, one per label row of a PKU video)
    and writes its samples at the start of that range. The file is created sparse with
    room for every slot behind a reserved header, so workers write straight into it and
    the data are written once. ``finish`` moves the chunks' rows together (only where
    some inputs were skipped), writes the header, syncs, and hands the file to
    ``publish``.
    """

    def __init__(self, path: Path, capacity: int, frames: int) -> None:
        self.path = Path(path)
        self.frames = frames
        self.row_bytes = row_bytes(frames)
        self.capacity = capacity
        self.size = HEADER_BYTES + capacity * self.row_bytes

    def usable(self) -> bool:
        """The file exists with the planned size (rows from an earlier run may be reused)."""
        try:
            return self.path.stat().st_size == self.size
        except OSError:
            return False

    def create(self) -> None:
        check_disk(self.path.parent, self.capacity * self.row_bytes, "the store")
        with open(self.path, "wb") as fh:
            fh.truncate(self.size)

    def write_rows(self, row: int, data: np.ndarray) -> None:
        if row < 0 or row + len(data) > self.capacity:
            raise ZsbenchError(f"internal: rows {row}..{row + len(data)} outside the "
                               f"{self.capacity} slots of {self.path}")
        with open(self.path, "r+b") as fh:
            fh.seek(HEADER_BYTES + row * self.row_bytes)
            fh.write(memoryview(np.ascontiguousarray(data, dtype=np.float32)).cast("B"))

    def read_rows(self, row: int, count: int) -> np.ndarray:
        return np.fromfile(self.path, dtype=np.float32, count=count * self.row_bytes // 4,
                           offset=HEADER_BYTES + row * self.row_bytes
                           ).reshape(count, 3, self.frames, 25, 2)

    def finish(self, ranges: list[tuple[int, int]]) -> tuple[int, ...]:
        """Compact the (first slot, row count) ``ranges`` in order to the front, truncate,
        write the header and fsync. Returns the array's shape."""
        total = sum(n for _, n in ranges)
        with open(self.path, "r+b") as fh:
            dest = 0
            for start, count in ranges:
                if start != dest:
                    _move_rows(fh, start, dest, count, self.row_bytes)
                dest += count
            fh.truncate(HEADER_BYTES + total * self.row_bytes)
            shape = (total, 3, self.frames, 25, 2)
            fh.seek(0)
            fh.write(npy_header(shape))
            fh.flush()
            os.fsync(fh.fileno())
        return shape


def row_bytes(frames: int) -> int:
    return 3 * frames * 25 * 2 * 4


def _move_rows(fh, src: int, dest: int, count: int, nbytes: int, block: int = 1 << 24) -> None:
    """Move ``count`` rows from slot ``src`` down to slot ``dest`` (dest < src), front to
    back, so overlapping ranges are safe."""
    done, total = 0, count * nbytes
    while done < total:
        n = min(block, total - done)
        fh.seek(HEADER_BYTES + src * nbytes + done)
        buf = fh.read(n)
        fh.seek(HEADER_BYTES + dest * nbytes + done)
        fh.write(buf)
        done += n


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

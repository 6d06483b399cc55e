"""The prepared store: one memory-mapped array plus a sample table and a manifest.

Layout of ``<data_root>/<dataset>/frames<T>/``::

    data.npy       (N, 3, T, 25, 2) float32, read with np.load(mmap_mode="r")
    samples.npz    per-sample columns (name, label, subject, camera, ...), no pickles
    manifest.json  written last: the store exists only once this file does

Every file is written to a temporary name in the same folder and renamed into place.
"""
from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import zipfile
import zlib
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from zsbench.api import DataFileError, ZsbenchError
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


READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


def unreadable_file(path: Path | str, what: str, exc: BaseException, todo: str) -> DataFileError:
    """The one message for an array/archive file that cannot be read: what it should have
    been, why it is not, and what to do."""
    detail = f"{type(exc).__name__}: {exc}"
    try:
        with open(path, "rb") as fh:
            head = fh.read(6)
    except OSError:
        head = None
    if head is not None and not head:
        detail = "the file is empty"
    elif str(path).endswith(".npy") and head is not None and head != b"\x93NUMPY":
        detail = "no .npy header: truncated, corrupt or not a numpy file"
    elif str(path).endswith(".npz") and head is not None and head[:2] != b"PK":
        detail = "not a zip archive: truncated, corrupt or not a numpy .npz file"
    elif isinstance(exc, ValueError) and ("pickle" in str(exc) or "Python objects" in str(exc)):
        detail = "it holds Python objects (a pickle); only plain numeric arrays are accepted"
    return DataFileError(f"{path}: not a readable {what} ({detail}); {todo}")


def read_npy(path: Path, what: str, todo: str, mmap: bool = True) -> np.ndarray:
    """``np.load`` of a plain .npy (memory-mapped unless ``mmap=False``, never pickles);
    any failure is a ``DataFileError`` from ``unreadable_file``."""
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except READ_ERRORS as exc:
        raise unreadable_file(path, what, exc, todo) from exc


def read_npz(path: Path, what: str, todo: str) -> dict[str, np.ndarray]:
    """Every array of a plain .npz (no pickles); failures as ``read_npy``."""
    try:
        # numpy leaks its own file handle when the zip directory is unreadable: open it here
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except READ_ERRORS as exc:
        raise unreadable_file(path, what, exc, todo) from exc


def human_size(nbytes: float) -> str:
    """``3.4 GiB``, ``12.0 MiB``, ``640 KiB`` (binary units; never ``0.0 GiB``)."""
    for unit, shift in (("GiB", 30), ("MiB", 20)):
        if nbytes >= 1 << shift:
            return f"{nbytes / (1 << shift):.1f} {unit}"
    return f"{max(1, round(nbytes / 1024))} KiB"


def check_disk(folder: Path, needed: int, what: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < needed * 1.02 + (64 << 20):
        raise ZsbenchError(f"{what} needs about {human_size(needed)} in {folder} (plus a "
                           f"64 MiB margin), only {human_size(free)} are free; free space or "
                           "choose another --out")


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def write_failure(exc: OSError, what: str, where: Path | str, then: str = "") -> ZsbenchError:
    """A user-facing error for an OSError raised while writing ``what`` under ``where``:
    a full disk says so and what to do; ``then`` tells how the next run continues."""
    place = exc.filename or where
    reason = exc.strerror or str(exc)
    if exc.errno in DISK_FULL:
        msg = (f"{place}: the disk filled up while writing {what} ({reason}); free space on "
               f"that disk or choose another --out")
    else:
        msg = f"{place}: cannot write {what} ({reason}); check that the folder is writable"
    return ZsbenchError(msg + (f". {then}" if then else ""))


class StoreWriter:
    """Writes a store front to back (the preprocessed-form readers): ``write`` appends rows
    to a partial file; ``commit`` syncs it and makes the store visible. Nothing is
    memory-mapped while writing, so writing costs neither page faults nor memory. The
    rows are hashed as they are written (the store's recorded content digest)."""

    def __init__(self, folder: Path, num_samples: int, frames: int) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.shape = (num_samples, 3, frames, 25, 2)
        check_disk(self.folder, num_samples * row_bytes(frames), "the store")
        self.partial = self.folder / f".{DATA_FILE}.partial"
        self.hasher = new_hasher()
        try:
            self.fh = open(self.partial, "wb")
            np.lib.format.write_array_header_1_0(
                self.fh, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
                          "fortran_order": False, "shape": self.shape})
        except OSError as exc:
            raise write_failure(exc, "the store", self.folder) from exc
        self.filled = 0

    def _check_start(self, start: int, rows: int) -> None:
        if start != self.filled or start + rows > self.shape[0]:
            raise ZsbenchError(f"internal: rows {start}..{start + rows} written after "
                               f"{self.filled} of {self.shape[0]}")

    def write(self, start: int, block: np.ndarray) -> None:
        if block.dtype != np.float32 or block.shape[1:] != self.shape[1:]:
            raise ZsbenchError(f"internal: block {block.shape} {block.dtype} does not fit {self.shape}")
        self._check_start(start, len(block))
        if not len(block):
            return
        view = memoryview(np.ascontiguousarray(block)).cast("B")
        self.hasher.update(view)
        try:
            self.fh.write(view)
        except OSError as exc:
            raise write_failure(exc, "the store", self.partial) from exc
        self.filled += len(block)

    def commit(self, samples: dict[str, np.ndarray], manifest: dict[str, Any]) -> Path:
        if self.filled != self.shape[0]:
            raise ZsbenchError(f"internal: store filled {self.filled} of {self.shape[0]} rows")
        try:
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self.fh.close()
        except OSError as exc:
            raise write_failure(exc, "the store", self.partial) from exc
        return publish(self.partial, self.folder, self.shape, samples, manifest,
                       {"scheme": "rows", "sha256": self.hasher.hexdigest()})

    def abort(self) -> None:
        if not self.fh.closed:
            self.fh.close()
        self.partial.unlink(missing_ok=True)


SAMPLE_WINDOWS = 16
SAMPLE_WINDOW_BYTES = 4096


def sampled_digest(path: Path, windows: int = SAMPLE_WINDOWS,
                   window: int = SAMPLE_WINDOW_BYTES) -> str:
    """SHA-256 of the file size and ``windows`` evenly spaced ``window``-byte pieces (the
    first holds the .npy header, the last ends at the end of the file): the cheap check
    run on every load (16 small reads)."""
    size = os.path.getsize(path)
    h = new_hasher()
    h.update(str(size).encode("ascii"))
    with open(path, "rb") as fh:
        if size <= windows * window:
            h.update(fh.read())
        else:
            span = size - window
            for i in range(windows):
                fh.seek(span * i // (windows - 1))
                h.update(fh.read(window))
    return h.hexdigest()


def publish(data_file: Path, folder: Path, shape: tuple[int, ...],
            samples: dict[str, np.ndarray], manifest: dict[str, Any],
            content: dict[str, Any]) -> Path:
    """Make a complete, synced data file the store in ``folder``: invalidate any old
    store, write the sample table, rename the data into place and, last, write the
    manifest. (The sample table goes first so that a full disk leaves the data file where
    it was, and a rerun can still reuse it.) The manifest records the check data
    (``check``): a sampled digest of the data file (verified on every load), the SHA-256
    of the sample table, and ``content`` (how ``zsbench data verify`` re-hashes every
    row: per prepared chunk, or one digest over all rows)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST_FILE).unlink(missing_ok=True)
    atomic_save_npz(folder / SAMPLES_FILE, **samples)
    check = {"sampled": {"windows": SAMPLE_WINDOWS, "window_bytes": SAMPLE_WINDOW_BYTES,
                         "sha256": sampled_digest(data_file)},
             "samples_sha256": sha256_hex((folder / SAMPLES_FILE).read_bytes()),
             "content": content}
    os.replace(data_file, folder / DATA_FILE)
    manifest = dict(manifest)
    manifest.update(schema=SCHEMA, num_samples=shape[0], frames=shape[2], data_file=DATA_FILE,
                    data_bytes=(folder / DATA_FILE).stat().st_size, check=check,
                    created=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    atomic_write_json(folder / MANIFEST_FILE, manifest)
    return folder


def sha256_hex(data: bytes) -> str:
    h = new_hasher()
    h.update(data)
    return h.hexdigest()


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
        if not len(data):
            return
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
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataFileError(f"{path}: unreadable manifest ({exc}); {remedy(Path(folder), {})}") \
            from exc
    if not isinstance(manifest, dict):
        raise DataFileError(f"{path}: not a store manifest (a JSON object expected); "
                            f"{remedy(Path(folder), {})}")
    return manifest


def remedy(folder: Path, manifest: dict[str, Any]) -> str:
    """What to do about a damaged store: prepare it again (with the command, when the
    manifest says where the raw files were) or delete a converted copy."""
    folder = Path(folder)
    prov = manifest.get("provenance") if isinstance(manifest.get("provenance"), dict) else {}
    dataset, frames = manifest.get("dataset"), manifest.get("frames")
    if manifest.get("source") == "raw" and prov.get("raw") and dataset and frames:
        return (f"prepare it again: zsbench data prepare {dataset} --raw {prov['raw']} "
                f"--out {folder.parent.parent} --frames {frames}")
    if manifest.get("source") not in (None, "raw"):
        return f"delete {folder}; it is converted again from the source files on the next run"
    return "prepare the data again (zsbench data prepare, see docs/datasets.md)"


def _damaged(path: Path, problem: str, folder: Path, manifest: dict[str, Any]) -> DataFileError:
    return DataFileError(f"{path}: {problem}; {remedy(folder, manifest)}")


_REQUIRED = {"fingerprint": str, "num_samples": int, "frames": int, "data_bytes": int}


def load_store(folder: Path) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, Any]]:
    """Memory-map a store: ``(data, samples, manifest)``; never loads the array. Cheap
    checks run every time: the manifest's fields, the data file's size and a sampled
    digest (header and 16 pieces of 4 KiB), the sample table's SHA-256. ``verify_store``
    (``zsbench data verify``) re-hashes every row. Any damage is a ``DataFileError``."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    data_path = folder / DATA_FILE
    if manifest.get("schema") != SCHEMA:
        raise _damaged(folder / MANIFEST_FILE, f"store schema {manifest.get('schema')} is not "
                       f"{SCHEMA}", folder, manifest)
    wrong = [k for k, t in _REQUIRED.items() if not isinstance(manifest.get(k), t)]
    if wrong:
        raise _damaged(folder / MANIFEST_FILE, f"fields {wrong} missing or of the wrong type",
                       folder, manifest)
    if not data_path.is_file() or data_path.stat().st_size != manifest["data_bytes"]:
        raise _damaged(data_path, f"missing or not the size the manifest records "
                       f"({manifest['data_bytes']} bytes)", folder, manifest)
    check = manifest.get("check") if isinstance(manifest.get("check"), dict) else {}
    sampled = check.get("sampled") if isinstance(check.get("sampled"), dict) else None
    if sampled is not None:
        windows, width = sampled.get("windows"), sampled.get("window_bytes")
        if not (isinstance(windows, int) and isinstance(width, int) and 2 <= windows <= 4096
                and 1 <= width <= 1 << 20):
            raise _damaged(folder / MANIFEST_FILE, "malformed check record", folder, manifest)
    try:
        if sampled and sampled_digest(data_path, windows, width) != sampled.get("sha256"):
            raise _damaged(data_path, "the content does not match the digest recorded when the "
                           "store was written (changed or damaged since)", folder, manifest)
        table = (folder / SAMPLES_FILE).read_bytes()
    except OSError as exc:
        raise _damaged(folder, f"cannot read the store ({exc})", folder, manifest) from exc
    if check.get("samples_sha256") not in (None, sha256_hex(table)):
        raise _damaged(folder / SAMPLES_FILE, "the sample table does not match the digest "
                       "recorded when the store was written", folder, manifest)
    todo = remedy(folder, manifest)
    data = read_npy(data_path, "store data file", todo)
    try:
        with np.load(io.BytesIO(table), allow_pickle=False) as z:
            samples = {k: z[k] for k in z.files}
    except READ_ERRORS as exc:
        raise unreadable_file(folder / SAMPLES_FILE, "store sample table", exc, todo) from exc
    n = manifest["num_samples"]
    if data.shape != (n, 3, manifest["frames"], 25, 2) or data.dtype != np.float32:
        raise _damaged(data_path, f"shape {data.shape} {data.dtype} does not match the "
                       f"manifest ({n} samples, {manifest['frames']} frames)", folder, manifest)
    bad = [k for k, v in samples.items() if v.ndim != 1 or len(v) != n]
    if bad or "label" not in samples:
        raise _damaged(folder / SAMPLES_FILE, f"columns {bad or ['label']} do not have {n} "
                       "rows", folder, manifest)
    return data, samples, manifest

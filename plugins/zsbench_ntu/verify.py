"""``zsbench data verify``: re-hash a store and check it against what was recorded when
it was written.

Every load already runs the cheap checks (``store.load_store``: manifest fields, file
size, a sampled digest of the data file, the sample table's SHA-256). This reads every
row: for a store prepared from raw files, each chunk's rows, names and metadata are
hashed as ``prepare`` hashed them and the fingerprint is recomputed from those digests
and the pipeline options (so results that record the fingerprint can be traced to
exactly these arrays); for a converted store, one SHA-256 over all rows.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from zsbench.api import DataFileError, ZsbenchError

from .chunks import NTU_COLUMNS, PKU_COLUMNS, chunk_digest, hash_rows, store_fingerprint
from .config import DATASETS, Frames
from .datasets import prepare_command
from .store import (DATA_FILE, MANIFEST_FILE, dataset_dir, default_data_root, human_size,
                    load_store, new_hasher, remedy)


def _bad(where: Path, what: str, manifest: dict[str, Any]) -> DataFileError:
    """``where`` is the store folder or a file in it."""
    folder = where if (where / MANIFEST_FILE).exists() else where.parent
    return DataFileError(f"{where}: {what}; {remedy(folder, manifest)}")


def verify_store(folder: Path | str) -> dict[str, Any]:
    """Check every row of the store in ``folder``; return a summary (samples, bytes,
    fingerprint, seconds) or raise ``DataFileError`` naming what does not match."""
    folder = Path(folder)
    t0 = time.perf_counter()
    data, samples, manifest = load_store(folder)
    check = manifest.get("check") if isinstance(manifest.get("check"), dict) else {}
    content = check.get("content") if isinstance(check.get("content"), dict) else None
    if content is None:
        raise _bad(folder, "written by an older zsbench_ntu that recorded no content digests, "
                   "so it cannot be verified", manifest)
    path = folder / DATA_FILE
    try:
        if content.get("scheme") == "chunks":
            _verify_chunks(folder, path, data, samples, manifest, content["chunks"])
        elif content.get("scheme") == "rows":
            hasher = new_hasher()
            hash_rows(hasher, data)
            if hasher.hexdigest() != content.get("sha256"):
                raise _bad(path, "the rows do not match the digest recorded when the store "
                           "was written (changed or damaged since)", manifest)
        else:
            raise _bad(folder / MANIFEST_FILE, f"unknown content record {content.get('scheme')!r}",
                       manifest)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _bad(folder / MANIFEST_FILE, f"malformed content record ({type(exc).__name__}: "
                   f"{exc})", manifest) from exc
    except OSError as exc:
        raise _bad(path, f"cannot be read ({exc.strerror or exc})", manifest) from exc
    return {"folder": str(folder), "samples": int(len(data)), "bytes": int(data.nbytes),
            "fingerprint": manifest["fingerprint"], "seconds": time.perf_counter() - t0}


def _verify_chunks(folder: Path, path: Path, data: np.ndarray, samples: dict[str, np.ndarray],
                   manifest: dict[str, Any], recorded: list) -> None:
    pipeline = manifest["pipeline"]
    columns = NTU_COLUMNS if pipeline["family"] == "ntu" else PKU_COLUMNS
    absent = [c for c in ("name",) + columns if c not in samples]
    if absent:
        raise _bad(folder, f"the sample table lacks the columns {absent}", manifest)
    names = samples["name"].tolist()
    row = 0
    for count, digest in recorded:
        meta = {c: samples[c][row: row + count].astype(np.int64).tolist() for c in columns}
        if count < 0 or row + count > len(data) or chunk_digest(
                data[row: row + count], names[row: row + count], meta, columns) != digest:
            first = names[row] if row < len(names) else "?"
            raise _bad(path, f"rows {row}..{row + count - 1} (from sample {first}) do not match "
                       "the digest recorded when they were prepared (changed or damaged since)",
                       manifest)
        row += count
    if row != len(data):
        raise _bad(folder / MANIFEST_FILE, f"the recorded chunks cover {row} rows, the store "
                   f"has {len(data)}", manifest)
    again = store_fingerprint(manifest["dataset"], manifest["frames"], pipeline,
                              [d for _, d in recorded])
    if again != manifest["fingerprint"]:
        raise _bad(folder / MANIFEST_FILE, f"the fingerprint {manifest['fingerprint']} does not "
                   f"follow from the recorded chunks and options ({again})", manifest)


def store_folders(name: str, root: Path, frames: int | None) -> list[Path]:
    """The stores of dataset ``name`` under ``root``: prepared ones (``frames<T>``, or just
    the one for ``frames``) and converted ones (``imported/*``)."""
    base = dataset_dir(root, name)
    pattern = f"frames{frames}" if frames else "frames*"
    found = [p for p in sorted(base.glob(pattern)) if (p / MANIFEST_FILE).exists()]
    if not frames:
        found += [p for p in sorted(base.glob("imported/*")) if (p / MANIFEST_FILE).exists()]
    return found


def verify(target: str, data_root: Path | str | None = None,
           options: dict[str, Any] | None = None,
           log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """``zsbench data verify``: ``target`` is a dataset name (every store of it under the
    data root, or only ``options["frames"]``) or a store folder."""
    options = dict(options or {})
    frames: Frames | None = options.pop("frames", None)
    if options:
        raise ZsbenchError(f"zsbench data verify takes no options {sorted(options)} "
                           "(only --frames)")
    if target in DATASETS:
        info = DATASETS[target]
        root = Path(data_root).expanduser() if data_root else default_data_root()
        folders = store_folders(target, root, frames)
        if not folders:
            raise ZsbenchError(
                f"no {info.title} store{f' for {frames} frames' if frames else ''} under "
                f"{dataset_dir(root, target)}; prepare one with:\n  "
                f"{prepare_command(info, root, frames or 50)}")
    else:
        folder = Path(target).expanduser()
        if not (folder / MANIFEST_FILE).exists():
            raise ZsbenchError(f"{target}: neither a dataset name ({', '.join(DATASETS)}) nor a "
                               f"store folder ({MANIFEST_FILE} not found)")
        folders = [folder]
    results, failed = [], []
    for folder in folders:
        try:
            r = verify_store(folder)
        except ZsbenchError as exc:
            if len(folders) == 1:
                raise
            log(f"FAILED {folder}: {exc}")
            failed.append(exc)
            continue
        log(f"ok {folder}: {r['samples']} samples, {human_size(r['bytes'])} checked in "
            f"{r['seconds']:.1f} s, fingerprint {r['fingerprint']}")
        results.append(r)
    if failed:
        raise DataFileError(f"{len(failed)} of {len(folders)} store(s) failed verification; "
                            f"the first: {failed[0]}")
    return results

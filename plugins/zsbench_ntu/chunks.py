"""One chunk of ``prepare``: turn a list of raw inputs into fixed-length arrays, write them
into the chunk's slots of the store's data file (``store.SlotFile``) and commit
``chunk_NNNNN.json`` (written to a temporary name and renamed: the chunk is complete once
it exists). Runs in worker processes; returns a summary dict, never raises for a bad
input (a fatal problem comes back as ``{"fatal": message}``).

Chunks are not fsynced one by one (the finished store is): the json records a digest of
the chunk's arrays, names and metadata, and a rerun reuses a chunk only when its rows
still hash to that digest, so a chunk damaged by a crash of the machine is redone.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from zsbench.api import ZsbenchError
from zsbench.results import atomic_writer

from .names import parse_ntu_stem, parse_pku_video
from .ntu_parse import parse_skeleton
from .ntu_select import SampleSkipped, ctrgcn_array, stgcn_array
from .pku_parse import check_label_rows, read_pku_labels, read_pku_skeleton
from .resample import centre_crop_pad, crop_resize, motion_processor
from .store import SlotFile, new_hasher, write_failure

NTU_COLUMNS = ("label", "setup", "camera", "subject", "replication", "length")
PKU_COLUMNS = ("label", "video", "camera", "row", "start", "end", "length",
               "train_xsub", "train_xview")


def chunk_path(work: Path, index: int) -> Path:
    return work / f"chunk_{index:05d}.json"


def _fixed_length(arr: np.ndarray, o: dict[str, Any], name: str) -> np.ndarray:
    if o["resample"] == "motion":
        return motion_processor(arr, o["frames"], o["window"], name)
    if o["resample"] == "crop_resize":
        return crop_resize(arr, o["frames"], o["crop_ratio"], name)
    return arr


def _valid_length(arr: np.ndarray) -> int:
    return int((arr.sum(axis=(0, 2, 3)) != 0).sum())


def process_ntu(item: list, o: dict[str, Any], notes: dict[str, int]):
    path, stem = item[0], item[1]
    n = parse_ntu_stem(stem, where=path)
    p = parse_skeleton(path, keep_truncated=o["truncated"] == "keep")
    if p.truncated_line:
        notes["truncated_kept"] = notes.get("truncated_kept", 0) + 1
    if o["pipeline"] == "stgcn":
        arr = stgcn_array(p, notes, o["long_sequences"])
    else:
        arr = ctrgcn_array(p, notes, o["single_actor"], o["track_time"], o["long_sequences"])
    length = _valid_length(arr)
    out = _fixed_length(arr, o, path)
    return out, stem, {"label": n.label, "setup": n.setup, "camera": n.camera,
                       "subject": n.subject, "replication": n.replication, "length": length}


def process_pku_video(item: list, o: dict[str, Any], notes: dict[str, int],
                      skipped: list[dict]) -> list:
    stem, skel, label_file, train_xsub, train_xview = item
    video = parse_pku_video(stem, o["part"])
    labels, dups = check_label_rows(read_pku_labels(label_file), label_file,
                                    o.get("label_overlaps", "error"))
    if not labels:
        raise SampleSkipped("no_label_rows", f"{label_file}: no label rows, the video gives "
                            "no clips")
    rows = read_pku_skeleton(skel, notes)
    for lab, first in dups:
        skipped.append({"name": video.clip_name(lab.action, lab.row),
                        "reason": "duplicate_label_row",
                        "message": f"{label_file}: line {lab.line} repeats line {first.line}"})
    missing = set(o["missing"])
    out = []
    for lab in labels:
        clip = video.clip_name(lab.action, lab.row)
        if clip in missing:
            skipped.append({"name": clip, "reason": "missing_list",
                            "message": f"{clip}: on the missing-clip list"})
            continue
        end = lab.end
        if end > len(rows):
            notes["label_end_clamped"] = notes.get("label_end_clamped", 0) + 1
            end = len(rows)
        if lab.start > end:
            skipped.append({"name": clip, "reason": "outside_recording",
                            "message": f"{label_file}: line {lab.line}: clip starts at frame "
                            f"{lab.start}, the skeleton file has {len(rows)} frames"})
            continue
        seg = rows[lab.start - 1: end]
        arr = centre_crop_pad(seg, 300)
        if not arr[:, :, :, 0].any():
            skipped.append({"name": clip, "reason": "zero_first_slot",
                            "message": f"{clip}: body slot 0 is zero in every frame"})
            continue
        try:
            fixed = _fixed_length(arr, o, clip)
        except SampleSkipped as exc:
            skipped.append({"name": clip, "reason": exc.reason, "message": str(exc)})
            continue
        out.append((fixed, clip, {
            "label": lab.action - 1, "video": video.number, "camera": video.view,
            "row": lab.row, "start": lab.start, "end": end, "length": _valid_length(arr),
            "train_xsub": int(train_xsub), "train_xview": int(train_xview)}))
    return out


def run_chunk(task: dict[str, Any]) -> dict[str, Any]:
    """Process ``task["items"]`` and commit the chunk files. See the module docstring."""
    o = task["options"]
    ntu = o["family"] == "ntu"
    columns = NTU_COLUMNS if ntu else PKU_COLUMNS
    arrays: list[np.ndarray] = []
    names: list[str] = []
    meta: dict[str, list[int]] = {c: [] for c in columns}
    skipped: list[dict] = []
    notes: dict[str, int] = {}
    for item in task["items"]:
        label = item[1] if ntu else item[0]
        try:
            results = [process_ntu(item, o, notes)] if ntu else \
                process_pku_video(item, o, notes, skipped)
        except SampleSkipped as exc:
            skipped.append({"name": label, "reason": exc.reason, "message": str(exc)})
            continue
        except (ZsbenchError, MemoryError, OSError, ValueError, IndexError) as exc:
            msg = str(exc) if isinstance(exc, ZsbenchError) else \
                f"{item[0]}: {type(exc).__name__}: {exc}"
            if o["on_error"] == "skip":
                skipped.append({"name": label, "reason": "error", "message": msg})
                continue
            return {"fatal": msg, "index": task["index"]}
        for arr, name, m in results:
            arrays.append(arr)
            names.append(name)
            for c in columns:
                meta[c].append(int(m[c]))
    frames = o["frames"]
    data = np.stack(arrays).astype(np.float32, copy=False) if arrays else \
        np.zeros((0, 3, frames, 25, 2), np.float32)
    if len(data) > task["slots"]:
        return {"fatal": f"{task['items'][0][0]}..: {len(data)} samples from inputs planned "
                f"for at most {task['slots']} (did the raw files change during the run?)",
                "index": task["index"]}
    summary = {"index": task["index"], "inputs": task["inputs"], "row": task["row"],
               "count": len(names), "digest": chunk_digest(data, names, meta, columns),
               "names": names, "meta": meta, "skipped": skipped, "notes": notes}
    try:
        SlotFile(Path(task["slot_file"]), task["capacity"], frames).write_rows(task["row"], data)
        with atomic_writer(chunk_path(Path(task["work"]), task["index"]), durable=False) as fh:
            fh.write(json.dumps(summary, sort_keys=True).encode("utf-8"))
    except OSError as exc:             # our own writes (full disk, ...): not the inputs' fault
        return {"fatal": str(write_failure(exc, "the prepared rows", task["slot_file"])),
                "index": task["index"], "write_error": True}
    return summary


def hash_rows(hasher: Any, data: np.ndarray, block_bytes: int = 1 << 26) -> None:
    """Feed float32 rows to ``hasher`` in pieces of at most ``block_bytes`` (``data`` may be
    a memory map of a whole store)."""
    step = max(1, block_bytes // max(1, data[0].nbytes)) if len(data) else 1
    for start in range(0, len(data), step):
        block = np.ascontiguousarray(data[start: start + step], dtype=np.float32)
        if block.size:                 # (an empty view cannot be cast to bytes)
            hasher.update(memoryview(block).cast("B"))


def chunk_digest(data: np.ndarray, names: list[str], meta: dict[str, list[int]],
                 columns: tuple[str, ...]) -> str:
    """SHA-256 of a chunk's float32 rows, sample names and metadata columns."""
    hasher = new_hasher()
    hash_rows(hasher, data)
    hasher.update("\n".join(names).encode("utf-8"))
    for c in columns:
        hasher.update(np.asarray(meta[c], dtype=np.int64).tobytes())
    return hasher.hexdigest()


def verify_chunk(slots: SlotFile, summary: dict[str, Any], family: str) -> bool:
    """True when the chunk's rows in the data file still hash to the digest its json
    records."""
    columns = NTU_COLUMNS if family == "ntu" else PKU_COLUMNS
    try:
        data = slots.read_rows(summary["row"], summary["count"])
        return chunk_digest(data, summary["names"], summary["meta"], columns) == summary["digest"]
    except (OSError, ValueError, KeyError, TypeError):
        return False


def store_fingerprint(dataset: str, frames: int, pipeline: dict[str, Any],
                      digests: list[str]) -> str:
    """The fingerprint of a prepared store: its pipeline options and its chunks' digests."""
    hasher = new_hasher()
    hasher.update(json.dumps(pipeline, sort_keys=True).encode("utf-8"))
    for d in digests:
        hasher.update(d.encode("ascii"))
    return f"{dataset}-f{frames}-{hasher.hexdigest()[:20]}"


"""``zsbench data prepare``: raw NTU / PKU-MMD files -> a memory-mapped store.

Work is split into fixed chunks of the sorted input list. Each chunk owns a range of rows
in the store's data file (``store.SlotFile``, kept in a work folder next to the store
until it is complete), sized by an upper bound of the samples its inputs can give; it is
processed (in a worker process when there is enough work for several), its rows are
written into its range and it is committed with a json summary. A rerun after an
interruption reuses every committed chunk whose inputs are unchanged and whose rows
still match their digest. When all chunks exist the rows are moved together (only where
inputs were skipped), the file is synced and renamed into the store, which becomes
visible only when its manifest (with the fingerprint and the report) is written. The
data are written once: preparing needs about the store's size on disk, not twice that.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sys
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from pydantic import ValidationError

from zsbench.api import ZsbenchError

from . import __version__, chunks
from .config import DATASETS, DatasetInfo, PrepareOptions
from .discover import discover_ntu, discover_pku
from .store import SlotFile, default_data_root, new_hasher, publish, store_dir, write_failure
from .verify import verify  # noqa: F401  (`zsbench data verify` finds it next to prepare)

_DEFAULT_RESAMPLE = {"ntu": {50: "motion", 64: "crop_resize", 300: "none"},
                     "pku": {50: "motion", 64: "motion", 300: "none"}}


def parse_options(options: dict[str, Any] | None) -> PrepareOptions:
    options = {k: v for k, v in (options or {}).items() if v is not None}
    try:
        return PrepareOptions(**options)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "options"
            if err["type"] == "extra_forbidden":
                lines.append(f"unknown option {key!r}; valid: "
                             f"{', '.join(sorted(PrepareOptions.model_fields))}")
            else:
                lines.append(f"option {key}: {err['msg']} (got {err.get('input')!r})")
        raise ZsbenchError("invalid prepare options:\n  " + "\n  ".join(lines)) from None


def resolve_options(info: DatasetInfo, opts: PrepareOptions) -> dict[str, Any]:
    """Everything that determines the arrays, with 'auto' replaced; plus the deviations
    from the reference pipeline that are in force."""
    frames = opts.frames
    if info.family == "ntu":
        pipeline = opts.pipeline if opts.pipeline != "auto" else ("stgcn" if frames == 50 else "ctrgcn")
    else:
        if opts.pipeline not in ("auto",):
            raise ZsbenchError("option pipeline applies to NTU only (PKU-MMD clips have no "
                               "body IDs to select)")
        pipeline = "pku"
    resample = opts.resample if opts.resample != "auto" else _DEFAULT_RESAMPLE[info.family][frames]
    if frames == 300 and resample != "none":
        raise ZsbenchError("option resample applies to 50 or 64 frames, not 300")
    single = opts.single_actor if opts.single_actor != "auto" else info.single_actor
    resolved = {"family": info.family, "dataset": info.name, "part": info.part,
                "frames": frames, "pipeline": pipeline, "resample": resample,
                "single_actor": single, "track_time": opts.track_time, "window": opts.window,
                "crop_ratio": opts.crop_ratio, "long_sequences": opts.long_sequences,
                "truncated": opts.truncated, "on_error": opts.on_error,
                "missing_list": opts.missing_list}
    deviations = []
    if single != info.single_actor and pipeline == "ctrgcn":
        deviations.append(f"single_actor={single}")
    if opts.track_time != "packed" and pipeline == "ctrgcn":
        deviations.append("track_time=true")
    if opts.window != "reference" and resample == "motion":
        deviations.append("window=fixed")
    if opts.truncated == "keep":
        deviations.append("truncated=keep")
    if opts.on_error == "skip":
        deviations.append("on_error=skip")
    if opts.missing_list == "none":
        deviations.append("missing_list=none")
    if opts.pipeline != "auto" or opts.resample != "auto":
        deviations.append(f"pipeline={pipeline}+{resample}")
    if resample == "crop_resize" and opts.crop_ratio != 1.0:
        deviations.append(f"crop_ratio={opts.crop_ratio}")
    if info.family == "pku":            # (NTU fingerprints stay as they were)
        resolved["label_overlaps"] = opts.label_overlaps
    resolved["deviations"] = deviations
    return resolved


def _digest(obj: Any) -> str:
    h = new_hasher()
    h.update(json.dumps(obj, sort_keys=True, default=str).encode("utf-8"))
    return h.hexdigest()


def _load_done(task: dict, slots: SlotFile, on_error: str, family: str) -> dict | None:
    """A committed chunk with the same inputs and rows whose data still match its
    digest (one that skipped malformed files is redone when the run now stops on them)."""
    js = chunks.chunk_path(Path(task["work"]), task["index"])
    try:
        summary = json.loads(js.read_text(encoding="utf-8"))
        if summary.get("inputs") != task["inputs"] or summary.get("row") != task["row"]:
            return None
        if on_error == "stop" and any(sk["reason"] == "error" for sk in summary["skipped"]):
            return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError, KeyError,
            TypeError):                   # a damaged summary: the chunk is redone
        return None
    if not chunks.verify_chunk(slots, summary, family):
        return None
    return summary


def _label_rows(path: str) -> int:
    """Upper bound of the clips a PKU-MMD label file gives: its number of lines."""
    try:
        with open(path, "rb") as fh:
            return max(1, fh.read().count(b"\n") + 1)
    except OSError:
        return 1                      # the chunk reports the unreadable file


def prepare(name: str, raw: Path, out: Path | None, options: dict[str, Any] | None,
            log: Callable[[str], None] = print) -> Path:
    """Prepare dataset ``name`` from the raw files under ``raw`` into
    ``<out>/<name>/frames<T>/`` and return that folder. ``options`` are the
    ``PrepareOptions`` fields (``frames`` and any ``--set key=value``)."""
    if name not in DATASETS:
        raise ZsbenchError(f"no raw preparation for dataset {name!r}; available: "
                           f"{', '.join(DATASETS)}")
    info = DATASETS[name]
    opts = parse_options(options)
    raw = Path(raw).expanduser()
    if not raw.is_dir():
        raise ZsbenchError(f"--raw {raw}: not a folder")
    out = Path(out).expanduser() if out else default_data_root()
    resolved = resolve_options(info, opts)
    pre: dict[str, int] = {}
    provenance: dict[str, str] = {"raw": str(raw.resolve())}
    if info.family == "ntu":
        items = discover_ntu(info, raw, opts, pre)
        resolved["missing"] = []
        keys = [it[1:4] for it in items]
        payload = [it[:2] for it in items]
        caps = [1] * len(items)                        # one sample per .skeleton file
    else:
        items, missing, prov = discover_pku(info, raw, opts, pre)
        provenance.update(prov)
        resolved["missing"] = missing
        keys = [[it[0]] + it[3:7] for it in items]
        payload = [it[:5] for it in items]
        caps = [_label_rows(it[2]) for it in items]    # one clip per label row
    target = store_dir(out, name, opts.frames)
    base = target.parent
    content = {k: v for k, v in resolved.items() if k not in ("on_error", "deviations")}
    work = base / f".work-frames{opts.frames}-{_digest([content, __version__])[:12]}"
    with reported_write_errors(work, info.title):
        work.mkdir(parents=True, exist_ok=True)
        with exclusive(work):
            size = opts.chunk_size
            starts = list(range(0, len(items), size))
            first_row = np.concatenate(([0], np.cumsum(caps))).tolist()
            slots = SlotFile(work / "data.npy.partial", first_row[-1], opts.frames)
            tasks = [{"index": i, "items": payload[s: s + size],
                      "inputs": _digest(keys[s: s + size]), "options": resolved,
                      "work": str(work), "slot_file": str(slots.path),
                      "capacity": slots.capacity, "row": first_row[s],
                      "slots": first_row[min(s + size, len(items))] - first_row[s]}
                     for i, s in enumerate(starts)]
            if slots.usable():
                committed = len(list(work.glob("chunk_*.json")))
                if committed:
                    log(f"checking {committed} chunk(s) committed by an earlier run in {work}")
                done = {t["index"]: d for t in tasks
                        if (d := _load_done(t, slots, opts.on_error, info.family)) is not None}
            else:
                slots.create()
                done = {}
            pending = [t for t in tasks if t["index"] not in done]
            if done:
                log(f"resuming: {len(done)} of {len(tasks)} chunk(s) already prepared in {work}")
            _run(pending, done, opts, len(items), sum(len(t["items"]) for t in tasks
                                                        if t["index"] in done), info, work)
            summaries = [done[t["index"]] for t in tasks]
            folder = _assemble(info, resolved, summaries, slots, target, pre, provenance)
            if not opts.keep_work:
                shutil.rmtree(work, ignore_errors=True)
    log(format_report(info, folder))
    return folder


@contextmanager
def reported_write_errors(work: Path, title: str) -> Iterator[None]:
    """An OSError reaching here comes from writing the work folder or the store (inputs
    that cannot be read are reported per file by the chunks): say so, with the guidance
    for a full disk, and that the finished chunks are kept."""
    try:
        yield
    except OSError as exc:
        raise write_failure(exc, f"the {title} store", work, then=(
            f"Chunks finished so far are kept in {work}; run the same command again to "
            "continue")) from exc


@contextmanager
def exclusive(work: Path) -> Iterator[None]:
    """Hold an exclusive lock on the work folder: two runs preparing the same store
    would write the same rows (POSIX only; elsewhere no lock is taken)."""
    try:
        import fcntl
    except ImportError:                    # pragma: no cover - Windows
        yield
        return
    with open(work / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ZsbenchError(f"another 'zsbench data prepare' is writing {work}; wait for "
                               "it to finish (or stop it) and run this again") from None
        yield


INPUTS_PER_WORKER = 1000


def auto_workers(inputs: int) -> int:
    """``workers=0``: one process per CPU (at most 8), but no more than one per
    ``INPUTS_PER_WORKER`` inputs: starting a worker costs ~0.3 s of imports, about what
    it saves on a few hundred files at ~1 ms each."""
    cpus = min(8, os.cpu_count() or 1)
    return max(1, min(cpus, -(-inputs // INPUTS_PER_WORKER)))


def _run(pending: list[dict], done: dict[int, dict], opts: PrepareOptions, total: int,
         initial: int, info: DatasetInfo, work: Path) -> None:
    from tqdm import tqdm

    unit = "file" if info.family == "ntu" else "video"
    setting = os.environ.get("ZSBENCH_PROGRESS", "")
    show = opts.progress and setting != "0" and (setting == "1" or sys.stderr.isatty())
    bar = tqdm(total=total, initial=initial, unit=unit, desc=f"prepare {info.name}",
               disable=not show, dynamic_ncols=True)

    total_chunks = len(done) + len(pending)

    def accept(task: dict, summary: dict) -> None:
        if "fatal" in summary:
            kept = (f"Preparation stopped; {len(done)} of {total_chunks} chunk(s) are "
                    f"complete in {work} and the next run continues from there.")
            if summary.get("write_error"):
                raise ZsbenchError(f"{summary['fatal']}\n{kept}")
            raise ZsbenchError(
                f"{summary['fatal']}\n{kept} Fix or remove the file, or rerun with "
                "--set on_error=skip to skip and count such files.")
        done[task["index"]] = summary
        bar.update(len(task["items"]))

    workers = opts.workers or auto_workers(sum(len(t["items"]) for t in pending))
    workers = min(workers, len(pending))
    try:
        if workers <= 1:
            for task in pending:
                accept(task, chunks.run_chunk(task))
            return
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = {pool.submit(chunks.run_chunk, t): t for t in pending}
            try:
                remaining = set(futures)
                while remaining:
                    finished, remaining = wait(remaining, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        accept(futures[fut], fut.result())
            except BrokenProcessPool as exc:
                raise ZsbenchError(
                    f"a worker process of 'zsbench data prepare' died ({exc}; out of memory?). "
                    f"{len(done)} of {total_chunks} chunk(s) are complete in {work} and the "
                    "next run continues from there; rerun with fewer workers, e.g. "
                    "--set workers=1") from None
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    finally:
        bar.close()


def _assemble(info: DatasetInfo, resolved: dict, summaries: list[dict], slots: SlotFile,
              target: Path, pre: dict[str, int], provenance: dict[str, str]) -> Path:
    total = sum(s["count"] for s in summaries)
    skipped: dict[str, list] = {}
    notes: dict[str, int] = {}
    for s in summaries:
        for sk in s["skipped"]:
            skipped.setdefault(sk["reason"], []).append(
                sk["name"] if sk["reason"] in ("empty", "missing_list", "zero_first_slot",
                                               "zero_length") else sk["message"])
        for k, v in s["notes"].items():
            notes[k] = notes.get(k, 0) + v
    if total == 0:
        detail = "; ".join(f"{k}: {len(v)}" for k, v in skipped.items())
        raise ZsbenchError(f"no usable {info.title} samples were produced ({detail})")
    frames = resolved["frames"]
    columns = chunks.NTU_COLUMNS if info.family == "ntu" else chunks.PKU_COLUMNS
    samples = {"name": np.asarray([n for s in summaries for n in s["names"]], dtype=str)}
    for c in columns:
        vals = np.asarray([v for s in summaries for v in s["meta"][c]], dtype=np.int64)
        samples[c] = vals.astype(bool) if c.startswith("train_") else vals
    pipeline = {k: v for k, v in resolved.items() if k != "missing"}
    fingerprint = chunks.store_fingerprint(info.name, frames, pipeline,
                                           [s["digest"] for s in summaries])
    report = {"inputs": sum(len(s["names"]) for s in summaries) + sum(
        len(v) for v in skipped.values()), "samples": total,
        "excluded_before_parsing": pre,
        "skipped": {k: len(v) for k, v in skipped.items()}, "skipped_detail": skipped,
        "notes": notes}
    manifest = {"dataset": info.name, "title": info.title, "source": "raw",
                "num_classes": info.num_classes, "fingerprint": fingerprint,
                "pipeline": pipeline,
                "deviations": resolved["deviations"], "report": report,
                "provenance": provenance, "zsbench_ntu_version": __version__,
                "missing_clips_applied": len(resolved["missing"])}
    shape = slots.finish([(s["row"], s["count"]) for s in summaries])
    content = {"scheme": "chunks", "chunks": [[s["count"], s["digest"]] for s in summaries]}
    return publish(slots.path, target, shape, samples, manifest, content)


def format_report(info: DatasetInfo, folder: Path) -> str:
    from .store import read_manifest

    m = read_manifest(folder)
    r = m["report"]
    lines = [f"{info.title}: {r['samples']} samples, {m['frames']} frames -> {folder}",
             f"  fingerprint {m['fingerprint']}"]
    for k, v in sorted(r["excluded_before_parsing"].items()):
        lines.append(f"  excluded before parsing, {k}: {v}")
    for k, v in sorted(r["skipped"].items()):
        first = r["skipped_detail"][k][:3]
        lines.append(f"  skipped, {k}: {v} (e.g. {'; '.join(map(str, first))})")
    for k, v in sorted(r["notes"].items()):
        lines.append(f"  {k}: {v}")
    if m["deviations"]:
        lines.append(f"  non-reference options in force: {', '.join(m['deviations'])}")
    if info.expected_usable and r["samples"] != info.expected_usable:
        lines.append(f"  note: the complete dataset gives {info.expected_usable} samples "
                     f"({info.expected_raw} files minus the official missing-skeleton list)")
    return "\n".join(lines)

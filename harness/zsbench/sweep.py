"""``zsbench sweep``: a matrix of runs (methods x protocols x datasets x folds x seeds x named
config variants), one cell per run and one record per cell, in a resumable store, executed
in this process, in local worker processes, on a Ray cluster or as a SLURM job array.

Store (one folder per sweep, ``<out>/<name>/``)::

    sweep.json                         the spec and the ids of the current cells
    report.md                          mean ± std over seeds, significance, diagnostics
    runs/<method>/<variant>/<run_id>/  one folder per cell; run_id =
                                       <protocol>_<dataset>_<folds>_s<seed>_<config hash>
        cell.json                      what the cell runs (base config + overrides)
        result.json                    the record (written atomically, never replaced)
        error.json                     the last failed attempt (error, traceback, host)
        error.<n>.json                 earlier failed attempts, kept when retried
        log.txt                        the run's log lines and progress output
        .cell.lock                     held while a worker runs the cell

A cell is *done* when its ``result.json`` exists; rerunning a sweep skips done cells (so it
resumes after a crash or pre-emption), skips failed cells unless ``--retry-failed``, and
skips cells another worker is running (``.cell.lock`` held). The config hash covers every
run option but the output and cache locations, so a changed configuration is a new cell
and never overwrites an old record. A failure is written to the cell's ``error.json`` and
never stops the other cells.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import platform
import re
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field

from .api import ZsbenchError
from .device import torch_threads
from .locks import LockBusy, file_lock, is_locked
from .results import write_atomic

#: run options a sweep sets per cell; a spec's ``set``/``base`` may not set them
RESERVED = ("plugin", "protocol", "dataset", "seed", "folds", "out", "run_id")
#: options that name where things are, not what is computed: outside the config hash
UNHASHED = {"out", "run_id", "cache_dir", "data_root"}
EXTRAS = {"ray": "ray", "submitit": "slurm"}


# ---------------------------------------------------------------------------------------
# The spec
# ---------------------------------------------------------------------------------------
class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Resources(_Model):
    """What one cell needs (Ray task options, SLURM job parameters, local threads)."""

    cpus: int = Field(default=1, ge=1, description="CPU cores per cell (torch threads too)")
    gpus: int = Field(default=0, ge=0, description="GPUs per cell")
    mem_gb: float | None = Field(default=None, gt=0, description="memory per cell (Ray, SLURM)")
    timeout_min: int = Field(default=24 * 60, ge=1, description="SLURM time limit per cell")


class RayOptions(_Model):
    address: str | None = Field(default=None, description="cluster address ('auto', "
                                "'ray://host:10001', 'host:6379'); none: start a local Ray")
    num_cpus: int | None = Field(default=None, ge=1, description="CPUs of a local Ray instance")
    num_gpus: int | None = Field(default=None, ge=0, description="GPUs of a local Ray instance")
    max_retries: int = Field(default=2, ge=0, description="re-runs of a cell whose worker died")


class SlurmOptions(_Model):
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    array_parallelism: int = Field(default=64, ge=1, description="cells running at once")
    setup: list[str] = Field(default_factory=list, description="shell lines run before each "
                             "cell (module load ..., source .venv/bin/activate)")
    additional: dict[str, Any] = Field(default_factory=dict, description="more sbatch options "
                                       "(submitit's slurm_additional_parameters)")
    cluster: Literal["slurm", "local", "debug"] = Field(
        default="slurm", description="'local'/'debug': submitit's local executors (for testing)")
    wait: bool = Field(default=True, description="wait for the jobs and write the report")


class Variant(_Model):
    set: list[str] = Field(default_factory=list)
    methods: list[str] | None = Field(default=None, description="only for these methods")


def _one_variant() -> dict[str, list[str] | Variant]:
    return {"default": []}


class SweepSpec(_Model):
    name: str = Field(default="sweep", description="the sweep's folder name under 'out'")
    out: Path = Path("sweeps")
    methods: list[str] = Field(min_length=1)
    protocols: list[str] = Field(default_factory=lambda: ["synse"])
    datasets: list[str] = Field(default_factory=list, description="default: each protocol's")
    folds: list[str] | Literal["all", "each"] = Field(
        default="all", description="'all': one cell runs every fold; 'each': one cell per "
        "fold; a list: one cell per named fold")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    config: Path | None = Field(default=None, description="a run config file for every cell")
    base: dict[str, Any] = Field(default_factory=dict, description="run options for every cell")
    set: list[str] = Field(default_factory=list, description="--set overrides for every cell")
    method_set: dict[str, list[str]] = Field(default_factory=dict,
                                             description="--set overrides per method")
    variants: dict[str, list[str] | Variant] = Field(default_factory=_one_variant)
    reference: str | None = Field(default=None, description="method the others are tested against")
    metrics: list[str] = Field(default_factory=lambda: ["zsl_acc", "gzsl_h"])
    test: Literal["auto", "wilcoxon", "ttest"] = "auto"
    executor: Literal["local", "ray", "slurm"] = "local"
    workers: int | Literal["gpus"] = Field(default=1, description="local executor: processes "
                                           "(1 = this process), or 'gpus' = one per visible GPU")
    resources: Resources = Field(default_factory=lambda: Resources())
    ray: RayOptions = Field(default_factory=lambda: RayOptions())
    slurm: SlurmOptions = Field(default_factory=lambda: SlurmOptions())

    def variant(self, name: str) -> Variant:
        v = self.variants[name]
        return v if isinstance(v, Variant) else Variant(set=list(v))

    @property
    def folder(self) -> Path:
        return (Path(self.out) / self.name).absolute()


def read_spec(path: Path | None, flags: dict[str, Any] | None = None) -> SweepSpec:
    """A spec from a TOML/YAML/JSON file, with ``flags`` (from the command line) on top.
    Relative paths in a file are relative to the file's folder."""
    from .config import read_config_file, validate_model

    data: dict[str, Any] = {}
    if path is not None:
        data = read_config_file(Path(path))
        data = dict(data.get("sweep", {}), **{k: v for k, v in data.items() if k != "sweep"})
        if "name" not in data:
            data["name"] = Path(path).stem
        for key in ("out", "config"):
            if isinstance(data.get(key), str) and not Path(data[key]).is_absolute():
                data[key] = str(Path(path).parent / data[key])
    for k, v in (flags or {}).items():
        if v is None:
            continue
        if k in ("resources", "ray", "slurm") and isinstance(data.get(k), dict):
            data[k] = {**data[k], **v}          # flags refine these tables of the file
        else:
            data[k] = v
    if not data.get("methods"):
        raise ZsbenchError("no methods to sweep: give a spec file or --methods m1,m2")
    return validate_model(SweepSpec, data, where="sweep spec")


# ---------------------------------------------------------------------------------------
# Cells
# ---------------------------------------------------------------------------------------
@dataclass
class Cell:
    method: str
    variant: str
    protocol: str
    dataset: str
    folds: list[str] | None
    seed: int
    base: dict[str, Any]
    overrides: list[str]
    config_hash: str
    sweep: str                       # absolute sweep folder
    cpus: int = 1
    plugins: dict[str, Any] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return str(self.base["run_id"])

    @property
    def cell_id(self) -> str:
        return f"runs/{_safe(self.method)}/{_safe(self.variant)}/{self.run_id}"

    @property
    def dir(self) -> Path:
        return Path(self.sweep) / self.cell_id

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Cell":
        return cls(**d)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", text).strip("-") or "x"


def config_hash(cfg: Any) -> str:
    data = cfg.model_dump(mode="json", exclude=UNHASHED)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:10]


def _check_reserved(where: str, keys: Sequence[str]) -> None:
    bad = [k for k in keys if k in RESERVED]
    if bad:
        raise ZsbenchError(f"{where} sets {', '.join(bad)}: the sweep sets these per cell "
                           "(use methods, protocols, datasets, folds, seeds and out/name)")


def _fold_names(cfg: Any, plugins: Any, memo: dict[str, list[str]]) -> list[str]:
    from .runner import dataset_and_folds
    from .setup import resolve

    key = json.dumps([cfg.protocol, cfg.dataset, str(cfg.data_root), str(cfg.cache_dir),
                      cfg.sections.get("protocol"), cfg.sections.get("dataset")],
                     sort_keys=True, default=str)
    if key not in memo:
        _, folds = dataset_and_folds(cfg, plugins, resolve(plugins, cfg))
        memo[key] = [f.name for f in folds]
    return memo[key]


def expand(spec: SweepSpec, plugins: Any, plugin_flags: dict[str, Any] | None = None
           ) -> list[Cell]:
    """Every cell of the matrix, validated (method/protocol/dataset names, run options)."""
    from .config import build_run_config, read_config_file

    base0: dict[str, Any] = read_config_file(spec.config) if spec.config else {}
    base0.update(spec.base)
    _check_reserved("the spec's base", list(base0))
    for name in spec.variants:
        _check_reserved(f"variant {name!r}", [s.split("=", 1)[0].strip() for s in spec.variant(name).set])
    _check_reserved("set", [s.split("=", 1)[0].strip() for s in spec.set])
    unknown = set(spec.method_set) - set(spec.methods)
    if unknown:
        raise ZsbenchError(f"method_set names methods not in the sweep: {sorted(unknown)}")
    memo: dict[str, list[str]] = {}
    cells: dict[str, Cell] = {}
    for protocol in spec.protocols:
        pspec = plugins.protocols.get(protocol)
        for dataset in spec.datasets or [pspec.default_dataset]:
            plugins.datasets.get(dataset)
            for method in spec.methods:
                plugins.methods.get(method)
                for vname in spec.variants:
                    variant = spec.variant(vname)
                    if variant.methods is not None and method not in variant.methods:
                        continue
                    overrides = spec.set + spec.method_set.get(method, []) + variant.set
                    head = {**base0, "plugin": method, "protocol": protocol, "dataset": dataset}
                    if spec.folds == "all":
                        fold_sets: list[list[str] | None] = [None]
                    else:
                        names = (_fold_names(build_run_config(head, overrides), plugins, memo)
                                 if spec.folds == "each" else spec.folds)
                        fold_sets = [[f] for f in names]
                    for folds in fold_sets:
                        for seed in spec.seeds:
                            cell = _cell(spec, method, vname, protocol, dataset, folds, seed,
                                         head, overrides, plugin_flags or {})
                            cells.setdefault(cell.cell_id, cell)
    return list(cells.values())


def _cell(spec: SweepSpec, method: str, variant: str, protocol: str, dataset: str,
          folds: list[str] | None, seed: int, head: dict[str, Any], overrides: list[str],
          plugin_flags: dict[str, Any]) -> Cell:
    from .config import build_run_config

    base = {**head, "seed": seed, "folds": folds}
    cfg = build_run_config(base, overrides)
    h = config_hash(cfg)
    # workers may start elsewhere (a Ray task's or SLURM job's folder): absolute locations
    overrides = overrides + [f"{k}={Path(v).absolute()}" for k in ("cache_dir", "data_root")
                             if (v := getattr(cfg, k)) is not None and not Path(v).is_absolute()]
    fold_label = "all" if folds is None else _safe(folds[0].replace("/", "-"))
    run_id = _safe(f"{protocol}_{dataset}_{fold_label}_s{seed}_{h}")
    out = spec.folder / "runs" / _safe(method) / _safe(variant)
    base.update(out=str(out), run_id=run_id)
    return Cell(method=method, variant=variant, protocol=protocol, dataset=dataset, folds=folds,
                seed=seed, base=base, overrides=list(overrides), config_hash=h,
                sweep=str(spec.folder), cpus=spec.resources.cpus, plugins=plugin_flags)


# ---------------------------------------------------------------------------------------
# Status and one cell's execution (runs in any process: local, a Ray task, a SLURM job)
# ---------------------------------------------------------------------------------------
def status(cell: Cell) -> str:
    d = cell.dir
    if (d / "result.json").exists():
        return "done"
    if is_locked(d / ".cell.lock"):
        return "running"
    if (d / "error.json").exists():
        return "failed"
    return "pending"


def last_error(cell: Cell) -> str:
    try:
        return str(json.loads((cell.dir / "error.json").read_text())["error"])
    except (OSError, ValueError, KeyError, TypeError):
        return "(unreadable error.json)"


def one_line(text: str, limit: int) -> str:
    """A (multi-line) error message on one line, at most ``limit`` characters."""
    flat = " ".join(part.strip() for part in text.splitlines() if part.strip())
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."


def _write_cell_json(cell: Cell) -> None:
    path = cell.dir / "cell.json"
    if not path.exists():
        write_atomic(path, json.dumps(cell.to_dict(), indent=1, sort_keys=True))


def _clean_temporaries(folder: Path) -> None:
    """Remove temp files a killed writer left (never a record: records appear by rename)."""
    for p in folder.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            p.unlink()


@contextlib.contextmanager
def _cell_io(cell: Cell, threads: int) -> Iterator[Any]:
    """Log file for the cell's output; torch threads = the cell's CPUs (so a cell computes
    the same numbers in every executor); restored afterwards."""
    with torch_threads(threads), \
            open(cell.dir / "log.txt", "a", encoding="utf-8") as log, \
            contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        print(f"--- {_now()} {platform.node()} pid {os.getpid()}: {cell.cell_id}", flush=True)
        yield log


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def error_message(exc: BaseException) -> str:
    if isinstance(exc, ZsbenchError):
        return str(exc)
    from .cli import describe_unexpected

    return describe_unexpected(exc)


def record_failure(cell: Cell, message: str, kind: str, tb: str = "", seconds: float = 0.0) -> None:
    previous = sorted(cell.dir.glob("error.*.json"))
    write_atomic(cell.dir / "error.json", json.dumps({
        "cell_id": cell.cell_id, "error": message, "type": kind, "traceback": tb,
        "attempt": len(previous) + 1, "host": platform.node(), "pid": os.getpid(),
        "time": _now(), "seconds": round(seconds, 3)}, indent=1))


def run_cell(cell_data: dict[str, Any], retry_failed: bool = False) -> dict[str, Any]:
    """Run one cell unless it is done, failed (without ``retry_failed``) or running
    elsewhere. Returns ``{"cell_id", "status", ...}``; never raises for a failing run."""
    cell = Cell.from_dict(cell_data)
    out: dict[str, Any] = {"cell_id": cell.cell_id}
    if (cell.dir / "result.json").exists():
        return {**out, "status": "done", "skipped": True}
    cell.dir.mkdir(parents=True, exist_ok=True)
    try:
        with file_lock(cell.dir / ".cell.lock", blocking=False):
            if (cell.dir / "result.json").exists():
                return {**out, "status": "done", "skipped": True}
            err = cell.dir / "error.json"
            if err.exists():
                if not retry_failed:
                    return {**out, "status": "failed", "skipped": True, "error": last_error(cell)}
                n = len(list(cell.dir.glob("error.*.json"))) + 1
                os.replace(err, cell.dir / f"error.{n}.json")
            _clean_temporaries(cell.dir)
            _write_cell_json(cell)
            return {**out, **_execute(cell)}
    except LockBusy:
        return {**out, "status": "running", "skipped": True}


def _execute(cell: Cell) -> dict[str, Any]:
    from .config import build_run_config
    from .plugins import load_plugins
    from .runner import run

    t0 = time.perf_counter()
    try:
        with _cell_io(cell, cell.cpus) as log:
            cfg = build_run_config(cell.base, cell.overrides)
            flags = cell.plugins
            plugins = load_plugins(blocked=flags.get("blocked", ()), requested=flags.get("requested", ()),
                                   autoload=flags.get("autoload"))
            rec, path = run(cfg, plugins, log=lambda m: print(m, file=log, flush=True))
    except Exception as exc:  # a failed cell is recorded and never stops the others
        seconds = time.perf_counter() - t0
        message = error_message(exc)
        record_failure(cell, message, type(exc).__name__, traceback.format_exc(), seconds)
        return {"status": "failed", "error": message, "seconds": round(seconds, 3)}
    return {"status": "done", "seconds": round(time.perf_counter() - t0, 3), "path": str(path),
            "summary": rec.summary}



# ---------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------
def write_manifest(spec: SweepSpec, cells: list[Cell]) -> None:
    data = {"spec": spec.model_dump(mode="json"), "cells": [c.cell_id for c in cells]}
    write_atomic(spec.folder / "sweep.json", json.dumps(data, indent=1))


def listing(cells: list[Cell]) -> tuple[str, dict[str, int]]:
    counts: dict[str, int] = {}
    lines = []
    for c in cells:
        st = status(c)
        counts[st] = counts.get(st, 0) + 1
        extra = f"  ({one_line(last_error(c), 160)})" if st == "failed" else ""
        lines.append(f"{st:<8} {c.cell_id}{extra}")
    return "\n".join(lines), counts


def sweep(spec: SweepSpec, plugins: Any, *, dry_run: bool = False, retry_failed: bool = False,
          report_only: bool = False, plugin_flags: dict[str, Any] | None = None,
          echo: Callable[[str], None] = print) -> tuple[list[Cell], dict[str, int]]:
    """Expand, list (``dry_run``) or run the missing cells, then write the report
    (``report_only``: only that). Returns the cells and the count per final status."""
    cells = expand(spec, plugins, plugin_flags)
    if spec.reference and spec.reference not in spec.methods:
        raise ZsbenchError(f"reference {spec.reference!r} is not one of the methods {spec.methods}")
    if report_only:
        spec.folder.mkdir(parents=True, exist_ok=True)
        echo(write_report(spec, cells))
        return cells, listing(cells)[1]
    if dry_run:
        text, counts = listing(cells)
        echo(text)
        echo(f"{len(cells)} cell(s) in {spec.folder}: " + _counts(counts)
             + ("" if spec.executor == "local" else f"; executor {spec.executor}"))
        return cells, counts
    spec.folder.mkdir(parents=True, exist_ok=True)
    write_manifest(spec, cells)
    todo = [c for c in cells if status(c) == "pending"
            or (retry_failed and status(c) == "failed")]
    skipped = len(cells) - len(todo)
    echo(f"sweep {spec.name}: {len(cells)} cell(s), {len(todo)} to run, {skipped} done/failed/"
         f"running elsewhere (store {spec.folder}; executor {spec.executor})")
    done = [0]

    def report(cell: Cell, out: dict[str, Any]) -> None:
        done[0] += 1
        st = out.get("status", "?")
        what = one_line(out.get("error", ""), 200) if st == "failed" else (
            f"{out['seconds']:.1f}s" if "seconds" in out else "skipped")
        echo(f"[{done[0]}/{len(todo)}] {st:<7} {cell.cell_id}  {what}")

    for cell in todo:                       # cell.json first: a job that never starts is
        cell.dir.mkdir(parents=True, exist_ok=True)   # still described in the store
        _write_cell_json(cell)
    if todo:
        from .sweep_exec import EXECUTORS

        EXECUTORS[spec.executor](todo, spec, retry_failed, report)
    _, counts = listing(cells)
    write_report(spec, cells)
    echo(f"{len(cells)} cell(s): " + _counts(counts) + f"; report: {spec.folder / 'report.md'}")
    for c in cells:
        if status(c) == "failed":
            echo(f"FAILED {c.cell_id}: {last_error(c)}")
    return cells, counts


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "none"


def records_of(cells: list[Cell]) -> list[tuple[Path, Any]]:
    from .results import load_record

    out = []
    for c in cells:
        path = c.dir / "result.json"
        if path.exists():
            with contextlib.suppress(ZsbenchError):
                out.append((path, load_record(path)))
    return out


def write_report(spec: SweepSpec, cells: list[Cell]) -> str:
    from .stats import diagnostics_markdown, observations, seed_markdown

    records = records_of(cells)
    parts = [f"# Sweep {spec.name}\n", f"{len(records)} of {len(cells)} cell(s) done.\n"]
    if records:
        parts.append(seed_markdown(observations(records), spec.metrics, spec.reference, spec.test))
        diag = diagnostics_markdown(records, spec.folder)
        if diag:
            parts.append("\n## Feature diagnostics (unseen test features)\n\n" + diag)
    failed = [c for c in cells if status(c) == "failed"]
    if failed:
        parts.append("\n## Failed cells\n\n" + "\n".join(
            f"- `{c.cell_id}`: {one_line(last_error(c), 400)}" for c in failed) + "\n")
    text = "\n".join(parts)
    write_atomic(spec.folder / "report.md", text)
    return text


def load_runs(path: Path) -> tuple[list[tuple[Path, Any]], int]:
    """Records under ``path`` (a folder of runs, a sweep or part of one, or one
    result.json). Records of a sweep's cells that are no longer in its spec (an earlier
    configuration) are left out; their number is returned too."""
    from .results import find_records

    problems: list[str] = []
    found = find_records(Path(path), problems)
    for p in problems:
        print(f"zsbench: warning: skipped {p}", file=sys.stderr)
    current: dict[Path, set[str]] = {}
    kept: list[tuple[Path, Any]] = []
    stale = 0
    for record_path, rec in found:
        root = _sweep_root(record_path)
        if root is not None:
            if root not in current:
                try:
                    current[root] = set(json.loads((root / "sweep.json").read_text())["cells"])
                except (OSError, ValueError, KeyError, TypeError):
                    current[root] = set()
            cell_id = record_path.parent.absolute().relative_to(root).as_posix()
            if current[root] and cell_id not in current[root]:
                stale += 1
                continue
        kept.append((record_path, rec))
    return kept, stale


def _sweep_root(result: Path) -> Path | None:
    parts = result.absolute().parents     # <root>/runs/<method>/<variant>/<run_id>/result.json
    if len(parts) > 4 and parts[3].name == "runs" and (parts[4] / "sweep.json").exists():
        return parts[4]
    return None

"""Executors of ``zsbench sweep``: run a list of cells in this process or in local worker
processes (``local``), as Ray tasks (``ray``) or as a SLURM job array through submitit
(``slurm``). Each calls ``report(cell, outcome)`` as cells finish; a cell whose worker dies
is recorded as failed (``error.json``) unless it finished meanwhile. Ray and submitit are
optional extras, imported only here.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Callable

from .api import ZsbenchError
from .sweep import EXTRAS, Cell, SweepSpec, record_failure, run_cell


class CellJob:
    """The callable a SLURM array job runs (through submitit). On pre-emption or time-out
    submitit calls ``checkpoint`` and requeues the job: the cell starts again from scratch
    (a cell is the unit of work) unless it finished."""

    def __call__(self, cell_data: dict[str, Any], retry_failed: bool = False) -> dict[str, Any]:
        return run_cell(cell_data, retry_failed)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, *args, **kwargs)


Report = Callable[[Cell, dict[str, Any]], None]


def require(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        extra = EXTRAS[module]
        raise ZsbenchError(f"--executor {'slurm' if extra == 'slurm' else extra} needs the "
                           f"'{module}' package: pip install 'zsbench[{extra}]'") from None


def run_local(cells: list[Cell], spec: SweepSpec, retry_failed: bool, report: Report) -> None:
    workers = spec.workers
    gpus: list[str] = []
    if workers == "gpus":
        gpus = _visible_gpus()
        if not gpus:
            raise ZsbenchError("--workers gpus: no GPU is visible (CUDA_VISIBLE_DEVICES / "
                               "nvidia-smi); give a number of workers")
        workers = len(gpus)
    if workers == 1 or len(cells) <= 1:
        for cell in cells:
            report(cell, run_cell(cell.to_dict(), retry_failed))
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = mp.get_context("spawn")        # fresh interpreters: no forked torch/CUDA state
    queue = ctx.Queue()
    for g in gpus:
        queue.put(g)
    with ProcessPoolExecutor(max_workers=int(workers), mp_context=ctx, initializer=_init_worker,
                             initargs=(queue if gpus else None,)) as pool:
        futures = {pool.submit(run_cell, c.to_dict(), retry_failed): c for c in cells}
        for fut in as_completed(futures):
            cell = futures[fut]
            try:
                out = fut.result()
            except Exception as exc:   # the worker process died (killed, out of memory)
                out = _lost(cell, f"worker process lost: {type(exc).__name__}: {exc}")
            report(cell, out)


def _init_worker(queue: Any) -> None:
    os.environ.setdefault("ZSBENCH_PROGRESS", "0")
    if queue is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(queue.get())


def _visible_gpus() -> list[str]:
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g for g in env.split(",") if g.strip() and g.strip() != "-1"]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except ImportError:  # pragma: no cover
        return []


def _lost(cell: Cell, message: str) -> dict[str, Any]:
    """A cell whose worker vanished: recorded as failed unless it finished meanwhile."""
    if (cell.dir / "result.json").exists():
        return {"cell_id": cell.cell_id, "status": "done"}
    record_failure(cell, message, "WorkerLost")
    return {"cell_id": cell.cell_id, "status": "failed", "error": message}


def run_ray(cells: list[Cell], spec: SweepSpec, retry_failed: bool, report: Report) -> None:
    ray = require("ray")
    started = False
    if not ray.is_initialized():
        opts: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if spec.ray.address:
            ray.init(address=spec.ray.address, **opts)
        else:
            ray.init(num_cpus=spec.ray.num_cpus, num_gpus=spec.ray.num_gpus, **opts)
        started = True
    try:
        res = spec.resources
        options: dict[str, Any] = {"num_cpus": res.cpus, "num_gpus": res.gpus,
                                   "max_retries": spec.ray.max_retries}
        if res.mem_gb:
            options["memory"] = int(res.mem_gb * 2**30)
        task = ray.remote(run_cell).options(**options)
        pending = {task.remote(c.to_dict(), retry_failed): c for c in cells}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            cell = pending.pop(done[0])
            try:
                out = ray.get(done[0])
            except Exception as exc:   # its worker died max_retries + 1 times
                out = _lost(cell, f"Ray task lost: {type(exc).__name__}: {str(exc)[:500]}")
            report(cell, out)
    finally:
        if started:
            ray.shutdown()


def run_slurm(cells: list[Cell], spec: SweepSpec, retry_failed: bool, report: Report) -> None:
    submitit = require("submitit")
    s, res = spec.slurm, spec.resources
    folder = spec.folder / "slurm" / "%j"
    executor = submitit.AutoExecutor(folder=folder, cluster=None if s.cluster == "slurm" else s.cluster)
    params: dict[str, Any] = {"name": f"zsbench-{spec.name}", "timeout_min": res.timeout_min,
                              "cpus_per_task": res.cpus, "gpus_per_node": res.gpus,
                              "tasks_per_node": 1, "nodes": 1, "mem_gb": res.mem_gb}
    if s.cluster == "slurm":
        params.update(slurm_array_parallelism=s.array_parallelism, slurm_partition=s.partition,
                      slurm_account=s.account, slurm_qos=s.qos, slurm_setup=s.setup or None,
                      slurm_additional_parameters=s.additional or None)
    executor.update_parameters(**{k: v for k, v in params.items() if v is not None})
    jobs = executor.map_array(CellJob(), [c.to_dict() for c in cells], [retry_failed] * len(cells))
    ids = sorted({str(j.job_id).split("_")[0] for j in jobs})
    print(f"submitted {len(jobs)} cell(s) as job array {', '.join(ids)} "
          f"(logs under {spec.folder / 'slurm'})", file=sys.stderr)
    if not s.wait:
        return
    by_job = {id(j): c for j, c in zip(jobs, cells)}
    for job in submitit.helpers.as_completed(jobs):
        cell = by_job[id(job)]
        try:
            out = job.result()
        except Exception as exc:   # the job died: time limit, out of memory, cancelled
            out = _lost(cell, f"SLURM job {job.job_id} failed: {str(exc)[-500:]}")
        report(cell, out)


EXECUTORS = {"local": run_local, "ray": run_ray, "slurm": run_slurm}

"""zsbench sweep: cells, the resumable store (kill and resume, failed cells, no duplicates),
the executors (local in-process and worker processes, Ray, submitit's local executor) giving
the same records, and zsbench compare on the records. Methods: devise and revise, the
cheapest on the tiny benchmark."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zsbench.api import ZsbenchError
from zsbench.plugins import load_plugins
from zsbench.results import load_record
from zsbench.sweep import SweepSpec, expand, read_spec, status, sweep
from zsbench.testing import TINY

FOLDS = ["synthetic_smie_fold0/xsub", "synthetic_smie_fold1/xsub"]
COMMON = [*TINY, "method.epochs=2", "device=cpu", "encoder=stgcn"]   # revise: shiftgcn by default


def spec_toml(tmp: Path, name: str, cache: Path, extra: str = "") -> Path:
    sets = ", ".join(json.dumps(s) for s in [*COMMON, f"cache_dir={cache}"])
    text = f"""
name = "{name}"
out = "{tmp / 'sweeps'}"
methods = ["devise", "revise"]
protocols = ["smie"]
folds = {json.dumps(FOLDS)}
seeds = [0, 1]
reference = "devise"
set = [{sets}]
{extra}
"""
    path = tmp / f"{name}.toml"
    path.write_text(text)
    return path


BROKEN = """
[variants]
default = []
[variants.broken]
set = ["method.epochs=0"]
methods = ["devise"]
"""


def _records(folder: Path) -> dict[str, bytes]:
    return {p.parent.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("result.json"))}


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """A local sweep killed (SIGKILL) after three records, then run again to the end."""
    tmp = tmp_path_factory.mktemp("sweep")
    spec_path = spec_toml(tmp, "local", tmp / "cache", BROKEN)
    spec = read_spec(spec_path)
    env = {**os.environ, "ZSBENCH_PROGRESS": "0", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "zsbench", "sweep", str(spec_path)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while len(_records(spec.folder)) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = _records(spec.folder)
    lines: list[str] = []
    cells, counts = sweep(spec, load_plugins(), echo=lines.append)
    return {"spec": spec, "path": spec_path, "before": before, "lines": lines, "cells": cells,
            "counts": counts, "tmp": tmp}


def test_cells_hash_the_config_and_refuse_matrix_keys(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)     # the relative cache_dir below resolves (and fills) here
    plugins = load_plugins()
    spec = SweepSpec(name="x", out=tmp_path, methods=["devise", "dvta"], protocols=["smie"],
                     folds="each", seeds=[0, 1], set=list(COMMON),
                     variants={"default": [], "m5": {"set": ["method.epochs=5"],
                                                     "methods": ["dvta"]}})
    cells = expand(spec, plugins)
    # 2 methods x 3 folds x 2 seeds, plus the dvta-only variant: 3 folds x 2 seeds
    assert len(cells) == 18 and len({c.cell_id for c in cells}) == 18
    assert {c.folds[0] for c in cells} == {"synthetic_smie_fold0/xsub", "synthetic_smie_fold1/xsub",
                                           "synthetic_smie_fold2/xsub"}
    d0 = next(c for c in cells if c.method == "dvta" and c.variant == "default")
    d5 = next(c for c in cells if c.variant == "m5" and c.folds == d0.folds and c.seed == d0.seed)
    assert d0.config_hash != d5.config_hash
    moved = expand(spec.model_copy(update={"set": [*COMMON, "cache_dir=elsewhere"]}), plugins)
    assert [c.cell_id for c in moved] == [c.cell_id for c in cells]   # locations: same cells
    assert moved[0].overrides[-1] == f"cache_dir={Path('elsewhere').absolute()}"
    assert not any(c.dir.exists() for c in cells)                       # expansion writes nothing
    with pytest.raises(ZsbenchError, match="seed"):
        expand(spec.model_copy(update={"set": ["seed=3"]}), plugins)
    with pytest.raises(ZsbenchError, match="unknown"):
        expand(spec.model_copy(update={"methods": ["devise", "nosuchmethod"]}), plugins)


def test_killed_sweep_resumes_without_duplicates(local):
    spec, before, cells = local["spec"], local["before"], local["cells"]
    assert 3 <= len(before) < 8
    after = _records(spec.folder)
    assert len(after) == 8                                    # one record per finished cell
    for cell_id, data in before.items():                     # finished records untouched
        assert after[cell_id] == data
    ran = [ln.split()[2] for ln in local["lines"] if ln.startswith("[") and " done " in ln]
    assert sorted(ran) == sorted(set(after) - set(before))   # only the missing cells ran
    for data in after.values():
        json.loads(data)                                     # every record whole
    assert not list(spec.folder.rglob(".*.tmp"))
    assert {c.run_id for c in cells if status(c) == "done"} == {Path(k).name for k in after}


def test_failed_cells_are_recorded_and_retried_on_request(local):
    spec, cells, counts = local["spec"], local["cells"], local["counts"]
    assert counts == {"done": 8, "failed": 4}
    broken = [c for c in cells if c.variant == "broken"]
    for c in broken:
        err = json.loads((c.dir / "error.json").read_text())
        assert "epochs" in err["error"] and err["attempt"] == 1 and not (c.dir / "result.json").exists()
    assert any(ln.startswith("FAILED runs/devise/broken/") for ln in local["lines"])
    report = (spec.folder / "report.md").read_text()
    assert "## Failed cells" in report and "± " in report
    lines: list[str] = []
    _, again = sweep(spec, load_plugins(), echo=lines.append)
    assert again == counts and "12 cell(s), 0 to run" in lines[0]
    lines.clear()
    sweep(spec, load_plugins(), retry_failed=True, echo=lines.append)
    assert "4 to run" in lines[0]
    err = json.loads((broken[0].dir / "error.json").read_text())
    assert err["attempt"] == 2 and (broken[0].dir / "error.1.json").exists()
    from zsbench.cli import main

    assert main(["sweep", str(local["path"]), "--dry-run"]) == 0
    assert main(["sweep", str(local["path"]), "--report-only"]) == 0


def _same_records(cells, folder_a: Path, folder_b: Path) -> None:
    for c in cells:
        a = load_record(folder_a / c.cell_id / "result.json")
        b = load_record(folder_b / c.cell_id / "result.json")
        assert a.seed == b.seed and a.summary == b.summary
        for fa, fb in zip(a.folds, b.folds, strict=True):
            assert fa.name == fb.name and fa.metrics == fb.metrics
            assert fa.details["sample_correct"] == fb.details["sample_correct"]
            assert fa.encoder["fingerprint"] == fb.encoder["fingerprint"]


def _fresh_cache(local, name: str) -> Path:
    """The local sweep's cache without pretrained encoders: the dataset and text embeddings
    are shared, every pretraining is done again."""
    cache = local["tmp"] / name
    shutil.copytree(local["tmp"] / "cache", cache, ignore=shutil.ignore_patterns("encoders"))
    return cache


def test_ray_executor_gives_the_local_records(local):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'zsbench[ray]')")
    tmp = local["tmp"]
    spec = read_spec(spec_toml(tmp, "ray", _fresh_cache(local, "cache_ray"),
                               'executor = "ray"\n[ray]\nnum_cpus = 2'))
    cells, counts = sweep(spec, load_plugins(), echo=lambda m: None)
    assert counts == {"done": 8}
    _same_records(cells, local["spec"].folder, spec.folder)


def test_submitit_executor_gives_the_local_records(local):
    pytest.importorskip("submitit", reason="submitit is not installed (pip install 'zsbench[slurm]')")
    tmp = local["tmp"]
    spec = read_spec(spec_toml(tmp, "slurm", tmp / "cache", '[slurm]\ncluster = "local"'),
                     {"methods": ["revise"], "folds": FOLDS[:1], "executor": "slurm"}
                     ).model_copy(update={"reference": None})
    cells, counts = sweep(spec, load_plugins(), echo=lambda m: None)
    assert counts == {"done": 2} and len(cells) == 2
    assert list((spec.folder / "slurm").iterdir())          # submitit's job folders
    _same_records(cells, local["spec"].folder, spec.folder)


def test_worker_processes_share_one_pretraining(local):
    """Two worker processes start the two methods of one fold and seed at once: the
    pretrained-encoder cache lets one of them train and the other wait and read it."""
    tmp = local["tmp"]
    spec = read_spec(spec_toml(tmp, "workers", _fresh_cache(local, "cache_workers")),
                     {"folds": FOLDS[:1], "seeds": [0], "workers": 2})
    cells, counts = sweep(spec, load_plugins(), echo=lambda m: None)
    assert counts == {"done": 2}
    logs = [(c.dir / "log.txt").read_text() for c in cells]
    assert sum("features from cache" in log for log in logs) == 1
    assert sum("pretraining " in log for log in logs) == 1
    _same_records(cells, local["spec"].folder, spec.folder)


def test_missing_extra_names_it(local, monkeypatch):
    import importlib

    real = importlib.import_module

    def no_ray(name, *a, **k):
        if name == "ray":
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(importlib, "import_module", no_ray)
    spec = read_spec(local["path"], {"executor": "ray", "name": "noray"})
    with pytest.raises(ZsbenchError, match=r"pip install 'zsbench\[ray\]'"):
        sweep(spec, load_plugins(), echo=lambda m: None)


def test_compare_command_on_sweep_records(local, capsys):
    from scipy import stats as st

    from zsbench.cli import main

    runs = local["spec"].folder / "runs"
    assert main(["compare", str(runs / "devise" / "default"), str(runs / "revise" / "default"),
                 "--test", "ttest"]) == 0
    out = capsys.readouterr().out
    a = {(r.folds[0].name, r.seed): r.summary["zsl_acc"] for r in
         (load_record(p) for p in (runs / "devise" / "default").rglob("result.json"))}
    b = {(r.folds[0].name, r.seed): r.summary["zsl_acc"] for r in
         (load_record(p) for p in (runs / "revise" / "default").rglob("result.json"))}
    keys = sorted(a)
    ref = st.ttest_rel([a[k] for k in keys], [b[k] for k in keys])
    assert "4 matched fold x seed pairs" in out and f"p = {ref.pvalue:.4g}" in out
    assert "bootstrap over test samples (2000 resamples, 4 pairs)" in out
    assert "gzsl_h: not measured" in out                     # the smie protocol is ZSL only
    assert main(["compare", str(local["spec"].folder), str(local["spec"].folder)]) == 2
    capsys.readouterr()
    assert main(["report", str(runs)]) == 0                  # mean ± std over the seeds
    table = capsys.readouterr().out.split("### over seeds")[1]
    assert "| devise | default | smie | synthetic | synthetic_smie_fold0/xsub | 2 |" in table


def test_runs_outside_a_sweep_are_pooled_by_configuration(local):
    from zsbench.stats import observations

    path = next((local["spec"].folder / "runs" / "devise").rglob("result.json"))
    rec = load_record(path)
    other = rec.model_copy(update={"config": {**rec.config, "method": {"lr": 1.0}}})
    seed2 = rec.model_copy(update={"seed": 2, "config": {**rec.config, "seed": 2}})
    obs = observations([(None, rec), (None, other), (None, seed2)])
    assert obs[0].variant.startswith("cfg-") and obs[0].variant == obs[2].variant
    assert obs[1].variant != obs[0].variant
    assert observations([(path, rec)])[0].variant == "default"       # cell.json of the sweep


def test_diagnostics_beside_the_record(local):
    """diagnostics=tsne: Fisher ratio and silhouette before/after DeViSE's projection in the
    fold details, the t-SNE plot beside the record, both in the sweep report."""
    spec = read_spec(local["path"], {"name": "diag", "methods": ["devise"], "folds": FOLDS[:1],
                                     "seeds": [0], "variants": {"default": ["diagnostics=tsne"]}})
    cells, counts = sweep(spec, load_plugins(), echo=lambda m: None)
    assert counts == {"done": 1}
    rec = load_record(cells[0].dir / "result.json")
    d = rec.folds[0].details["feature_diagnostics"]
    assert d["before"]["dim"] == 256 and d["after"]["dim"] == 384 and d["n"] == rec.folds[0].n_test_unseen
    assert all(isinstance(d[k][m], float) for k in ("before", "after")
               for m in ("fisher_ratio", "silhouette"))
    assert (cells[0].dir / d["tsne"]).read_bytes()[:4] == b"\x89PNG"
    report = (spec.folder / "report.md").read_text()
    assert f"({cells[0].cell_id}/{d['tsne']})" in report
    from zsbench.cli import main

    out = spec.folder / "all.md"
    assert main(["report", str(spec.folder), "--output", str(out)]) == 0
    assert f"({cells[0].cell_id}/{d['tsne']})" in out.read_text().split("### feature diagnostics")[1]


def test_the_documented_spec_expands(tmp_path):
    import re

    doc = (Path(__file__).parent.parent / "docs" / "sweeps.md").read_text()
    text = re.search(r"```toml\n(.*?)```", doc, re.S).group(1)
    (tmp_path / "dvta_table.toml").write_text(text)
    spec = read_spec(tmp_path / "dvta_table.toml")
    cells = expand(spec, load_plugins())
    # 6 methods x 2 datasets x 5 seeds, plus two DVTA-only variants x 2 datasets x 5 seeds
    assert len(cells) == 80 and spec.folder == (tmp_path / "sweeps" / "dvta-table").absolute()
    assert {c.variant for c in cells if c.method == "dvta"} == {"default", "no_sde", "no_aa"}


def test_per_sample_correctness_reproduces_the_metrics(local):
    """The bits the evaluation stores for the bootstrap give back the fold's accuracies:
    ZSL over the unseen test samples, GZSL seen then unseen (SynSE protocol: both)."""
    import numpy as np

    from zsbench.stats import unpack_bits
    from zsbench.testing import check_plugin

    rec, _ = check_plugin("devise", out=local["tmp"] / "gzsl", cache_dir=local["tmp"] / "cache")
    f = rec.folds[0]
    bits = f.details["sample_correct"]
    zsl = unpack_bits(bits["zsl"], f.n_test_unseen)
    gzsl = unpack_bits(bits["gzsl"], f.n_test_seen + f.n_test_unseen)
    assert 100 * zsl.mean() == pytest.approx(f.metrics["zsl_acc"])
    assert 100 * gzsl[:f.n_test_seen].mean() == pytest.approx(f.metrics["gzsl_acc_seen"])
    assert 100 * gzsl[f.n_test_seen:].mean() == pytest.approx(f.metrics["gzsl_acc_unseen"])
    assert np.sum(zsl) == sum(f.class_counts.correct)

"""``prepare`` end to end: store, dataset plugin, resumability, workers, errors."""
from __future__ import annotations

import errno
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from zsbench.api import ZsbenchError
from zsbench_ntu import chunks, synth
from zsbench_ntu import store as store_mod
from zsbench_ntu.datasets import load_dataset
from zsbench_ntu.prepare import prepare
from zsbench_ntu.store import load_store
from zsbench_ntu.config import DatasetConfig

ROOT = Path(__file__).resolve().parents[1]


def make_raw(raw: Path, n_subjects: int = 4, actions=(1, 2, 61), seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    stems = []
    for p in range(1, n_subjects + 1):
        for cam in (1, 2):
            for a in actions:
                setup = 1 if a <= 60 else 18
                stem = f"S{setup:03d}C{cam:03d}P{p:03d}R001A{a:03d}"
                synth.write_skeleton(raw / f"{stem}.skeleton", synth.random_ntu_frames(rng))
                stems.append(stem)
    return sorted(stems)


def quiet(**opts):
    return {"progress": False, "workers": 1, **opts}


def test_store_and_dataset_plugin(tmp_path):
    stems = make_raw(tmp_path / "raw")
    folder = prepare("ntu60", tmp_path / "raw", tmp_path / "data", quiet(), log=lambda s: None)
    assert folder == tmp_path / "data" / "ntu60" / "frames50"
    ds = load_dataset("ntu60", DatasetConfig(), tmp_path / "data")
    ntu60 = [s for s in stems if int(s[-3:]) <= 60]
    assert ds.sample_names == ntu60 and len(ds) == 16 and ds.num_classes == 60
    assert isinstance(ds.data, np.memmap) and ds.data.shape == (16, 3, 50, 25, 2)
    assert ds.labels.tolist() == [int(s[-3:]) - 1 for s in ntu60]
    assert ds.meta["subject"].tolist() == [int(s[9:12]) for s in ntu60]
    # sample rules: subjects 1, 2, 4 train (xsub); cameras 2, 3 train (xview)
    assert ds.partitions["xsub"].tolist() == [int(s[9:12]) in (1, 2, 4) for s in ntu60]
    assert ds.partitions["xview"].tolist() == [s[5:8] == "002" for s in ntu60]
    assert ds.class_names[0] == "drink water" and ds.fingerprint.startswith("ntu60-f50-")
    ds120 = None
    prepare("ntu120", tmp_path / "raw", tmp_path / "data", quiet(frames=64), log=lambda s: None)
    ds120 = load_dataset("ntu120", DatasetConfig(**{"frames": 64}), tmp_path / "data")
    assert len(ds120) == 24 and set(ds120.partitions) == {"xsub", "xset"}
    assert ds120.partitions["xset"].tolist() == [int(s[1:4]) % 2 == 0 for s in stems]


def test_missing_data_error_names_place_and_command(tmp_path):
    with pytest.raises(ZsbenchError) as exc:
        load_dataset("ntu120", DatasetConfig(**{"frames": 300}), tmp_path)
    msg = str(exc.value)
    assert str(tmp_path / "ntu120" / "frames300") in msg
    assert f"zsbench data prepare ntu120 --raw /path/to/nturgb+d_skeletons --out {tmp_path} " \
           "--frames 300" in msg
    with pytest.raises(ZsbenchError, match="form=ctrgcn_npz: no files found; looked for"):
        load_dataset("ntu60", DatasetConfig(**{"form": "ctrgcn_npz", "frames": 300}), tmp_path)


def test_options_are_validated(tmp_path):
    make_raw(tmp_path / "raw", 1)
    with pytest.raises(ZsbenchError, match="unknown option 'frame'"):
        prepare("ntu60", tmp_path / "raw", tmp_path / "d", {"frame": 50})
    with pytest.raises(ZsbenchError, match="option frames"):
        prepare("ntu60", tmp_path / "raw", tmp_path / "d", {"frames": "51"})
    with pytest.raises(ZsbenchError, match="no raw preparation for dataset 'kinetics'"):
        prepare("kinetics", tmp_path / "raw", tmp_path / "d", {})
    with pytest.raises(ZsbenchError, match="no NTU .skeleton files"):
        (tmp_path / "empty").mkdir()
        prepare("ntu60", tmp_path / "empty", tmp_path / "d", {"progress": "false"})


def test_interrupted_run_resumes_without_redoing_chunks(tmp_path, monkeypatch):
    make_raw(tmp_path / "raw", 5, actions=(1, 2))
    opts = quiet(chunk_size=4)                      # 20 files -> 5 chunks
    clean = prepare("ntu60", tmp_path / "raw", tmp_path / "clean", opts, log=lambda s: None)
    real = chunks.run_chunk
    calls: list[int] = []

    def interrupted(task):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(task["index"])
        return real(task)

    monkeypatch.setattr(chunks, "run_chunk", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare("ntu60", tmp_path / "raw", tmp_path / "out", opts, log=lambda s: None)
    store = tmp_path / "out" / "ntu60" / "frames50"
    assert not (store / "data.npy").exists() and not (store / "manifest.json").exists()
    work = next((tmp_path / "out" / "ntu60").glob(".work-frames50-*"))
    assert sorted(p.name for p in work.glob("*.json")) == ["chunk_00000.json", "chunk_00001.json"]
    (work / "chunk_00001.json").unlink()            # as if killed between .npy and .json
    calls.clear()

    def recording(task):
        calls.append(task["index"])
        return real(task)

    monkeypatch.setattr(chunks, "run_chunk", recording)
    logs: list[str] = []
    folder = prepare("ntu60", tmp_path / "raw", tmp_path / "out", opts, log=logs.append)
    assert calls == [1, 2, 3, 4] and logs[0].startswith("checking 1 chunk(s) committed")
    assert "resuming: 1 of 5" in logs[1]
    a, sa, ma = load_store(folder)
    b, sb, mb = load_store(clean)
    assert np.array_equal(a, b) and ma["fingerprint"] == mb["fingerprint"]
    assert list(sa["name"]) == list(sb["name"]) and not work.exists()


@pytest.mark.parametrize("damage,redone", [("flip a value", [1]), ("cut short", [0, 1, 2]),
                                           ("remove the data file", [0, 1, 2])])
def test_a_damaged_chunk_is_redone_not_reused(tmp_path, monkeypatch, damage, redone):
    """Chunks are not fsynced one by one; rows that no longer match the digest their json
    records (as after a machine crash) are prepared again, and a data file of the wrong
    size makes every chunk be redone."""
    make_raw(tmp_path / "raw", 3, actions=(1, 2))
    opts = quiet(chunk_size=4)                        # 12 files -> 3 chunks
    fresh = prepare("ntu60", tmp_path / "raw", tmp_path / "fresh", opts, log=lambda s: None)

    def crash(self, ranges):
        raise KeyboardInterrupt
    monkeypatch.setattr(store_mod.SlotFile, "finish", crash)
    with pytest.raises(KeyboardInterrupt):           # every chunk done, store not written
        prepare("ntu60", tmp_path / "raw", tmp_path / "out", opts, log=lambda s: None)
    monkeypatch.undo()
    work = next((tmp_path / "out" / "ntu60").glob(".work-frames50-*"))
    partial = work / "data.npy.partial"
    row_bytes = 3 * 50 * 25 * 2 * 4
    if damage == "flip a value":
        with open(partial, "r+b") as fh:             # chunk 1 owns rows 4..7
            fh.seek(store_mod.HEADER_BYTES + 5 * row_bytes + 100)
            fh.write(b"\x01\x02\x03\x04")
    elif damage == "cut short":
        with open(partial, "r+b") as fh:
            fh.truncate(partial.stat().st_size - 100)
    else:
        partial.unlink()
    real = chunks.run_chunk
    calls: list[int] = []
    monkeypatch.setattr(chunks, "run_chunk", lambda t: calls.append(t["index"]) or real(t))
    again = prepare("ntu60", tmp_path / "raw", tmp_path / "out", opts, log=lambda s: None)
    assert calls == redone
    a, sa, ma = load_store(again)
    b, sb, mb = load_store(fresh)
    assert np.array_equal(a, b) and ma["fingerprint"] == mb["fingerprint"]
    assert list(sa["name"]) == list(sb["name"]) and not work.exists()


def test_a_second_run_on_the_same_work_folder_is_refused(tmp_path):
    fcntl = pytest.importorskip("fcntl")
    make_raw(tmp_path / "raw", 1, actions=(1,))
    prepare("ntu60", tmp_path / "raw", tmp_path / "out", quiet(keep_work=True),
            log=lambda s: None)
    work = next((tmp_path / "out" / "ntu60").glob(".work-frames50-*"))
    with open(work / ".lock", "w") as held:            # as if another run were writing
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(ZsbenchError, match="another 'zsbench data prepare' is writing"):
            prepare("ntu60", tmp_path / "raw", tmp_path / "out", quiet(), log=lambda s: None)
    folder = prepare("ntu60", tmp_path / "raw", tmp_path / "out", quiet(), log=lambda s: None)
    assert load_store(folder)[0].shape[0] == 2


def test_failure_while_committing_leaves_no_store(tmp_path, monkeypatch):
    make_raw(tmp_path / "raw", 1, actions=(1,))
    real_save = store_mod.atomic_save_npz

    def disk_full(path, **arrays):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_mod, "atomic_save_npz", disk_full)
    with pytest.raises(ZsbenchError, match="the disk filled up .* run the same command again"):
        prepare("ntu60", tmp_path / "raw", tmp_path / "out", quiet(), log=lambda s: None)
    store = tmp_path / "out" / "ntu60" / "frames50"
    assert not store.exists() or not any(store.iterdir())   # no data, no manifest
    monkeypatch.setattr(store_mod, "atomic_save_npz", real_save)
    calls = []
    monkeypatch.setattr(chunks, "run_chunk", lambda t: calls.append(t) or {})
    folder = prepare("ntu60", tmp_path / "raw", tmp_path / "out", quiet(), log=lambda s: None)
    assert calls == [] and load_store(folder)[0].shape[0] == 2


def test_stopping_error_keeps_finished_chunks(tmp_path):
    make_raw(tmp_path / "raw", 2, actions=(1,))
    stems = sorted(p.stem for p in (tmp_path / "raw").glob("*.skeleton"))
    (tmp_path / "raw" / f"{stems[-1]}.skeleton").write_text("2\n1\n")
    with pytest.raises(ZsbenchError,
                       match=r"(?s)line 3: file ends early.*1 of 2 chunk\(s\) are complete"):
        prepare("ntu60", tmp_path / "raw", tmp_path / "out", quiet(chunk_size=2),
                log=lambda s: None)
    work = next((tmp_path / "out" / "ntu60").glob(".work-*"))
    assert [p.name for p in work.glob("*.json")] == ["chunk_00000.json"]
    logs: list[str] = []
    folder = prepare("ntu60", tmp_path / "raw", tmp_path / "out",
                     quiet(chunk_size=2, on_error="skip"), log=logs.append)
    assert "resuming: 1 of 2" in logs[1]                   # the finished chunk is reused
    _, samples, m = load_store(folder)
    assert len(samples["name"]) == 3 and m["report"]["skipped"] == {"error": 1}
    assert "on_error=skip" in m["deviations"]


def test_two_workers_give_the_same_store(tmp_path):
    make_raw(tmp_path / "raw", 3, actions=(1, 2))
    one = prepare("ntu60", tmp_path / "raw", tmp_path / "a", quiet(chunk_size=3, frames=300),
                  log=lambda s: None)
    two = prepare("ntu60", tmp_path / "raw", tmp_path / "b",
                  quiet(chunk_size=3, frames=300, workers=2), log=lambda s: None)
    (a, _, ma), (b, _, mb) = load_store(one), load_store(two)
    assert np.array_equal(a, b) and ma["fingerprint"] == mb["fingerprint"]
    assert json.loads((one / "manifest.json").read_text())["pipeline"]["pipeline"] == "ctrgcn"


@pytest.mark.parametrize("workers", [1, 2])
def test_skipped_files_leave_no_gap_in_the_store(tmp_path, workers):
    """Chunks write into fixed row ranges; skipped inputs leave gaps that are closed
    before the store is published: the store equals one prepared without those files."""
    stems = make_raw(tmp_path / "raw", 3, actions=(1, 2))        # 12 files
    shutil.copytree(tmp_path / "raw", tmp_path / "raw_clean")
    for k in (1, 6):                                             # chunks 0 and 1 of 3
        (tmp_path / "raw" / f"{stems[k]}.skeleton").write_text("3\n1\n")
        (tmp_path / "raw_clean" / f"{stems[k]}.skeleton").unlink()
    opts = quiet(chunk_size=4, frames=300, workers=workers, on_error="skip")
    got = prepare("ntu60", tmp_path / "raw", tmp_path / "a", opts, log=lambda s: None)
    want = prepare("ntu60", tmp_path / "raw_clean", tmp_path / "b", quiet(frames=300),
                   log=lambda s: None)
    (a, sa, ma), (b, sb, _) = load_store(got), load_store(want)
    assert a.shape == (10, 3, 300, 25, 2) and np.array_equal(a, b)
    assert list(sa["name"]) == list(sb["name"]) and list(sa["label"]) == list(sb["label"])
    assert ma["report"]["skipped"] == {"error": 2}
    assert (got / "data.npy").stat().st_size == a.nbytes + store_mod.HEADER_BYTES


def test_plugin_import_is_cheap_and_registers_four_datasets():
    code = ("import sys, zsbench_ntu.plugin as p; specs = p.zsbench_datasets(); "
            "print(sorted(s.name for s in specs)); "
            "print(all(s.prepare == 'zsbench_ntu.prepare:prepare' for s in specs)); "
            "print(any(m in sys.modules for m in ('torch', 'zsbench_ntu.datasets', "
            "'zsbench_ntu.prepare', 'tqdm')))")
    env_path = f"{ROOT / 'harness'}:{ROOT / 'plugins'}"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"}, check=True)
    assert out.stdout.split("\n")[:3] == ["['ntu120', 'ntu60', 'pku_mmd', 'pku_mmd2']",
                                          "True", "False"]


def test_out_may_name_the_dataset_folder_and_default_root(tmp_path, monkeypatch):
    make_raw(tmp_path / "raw", 1, actions=(1,))
    folder = prepare("ntu60", tmp_path / "raw", tmp_path / "data" / "ntu60", quiet(),
                     log=lambda s: None)
    assert folder == tmp_path / "data" / "ntu60" / "frames50"
    assert len(load_dataset("ntu60", DatasetConfig(), tmp_path / "data")) == 2
    monkeypatch.delenv("ZSBENCH_DATA_ROOT", raising=False)
    monkeypatch.delenv("ZSBENCH_DATA", raising=False)
    monkeypatch.setenv("ZSBENCH_CACHE", str(tmp_path))
    assert len(load_dataset("ntu60", DatasetConfig(), None)) == 2      # <cache>/data is the default

"""Bad input for the real-data pipeline (issue 11): every case ends in a ZsbenchError that
names the input and says what to do, or in a counted skip; nothing is half-written and
an interrupted preparation resumes. Plus ``zsbench data verify`` and the checks run on
every load of a store."""
from __future__ import annotations

import errno
import json
import os
import pickle
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from zsbench.api import DataFileError, ZsbenchError
from zsbench.cli import main
from zsbench_ntu import chunks, synth
from zsbench_ntu import store as store_mod
from zsbench_ntu.datasets import load_dataset
from zsbench_ntu.features import load_precomputed_features
from zsbench_ntu.forms import read_label_pickle
from zsbench_ntu.pku_parse import check_label_rows, read_pku_labels
from zsbench_ntu.prepare import prepare
from zsbench_ntu.store import human_size, load_store
from zsbench_ntu.verify import verify, verify_store
from zsbench_ntu.config import DatasetConfig

RNG = np.random.default_rng(111)
PKU_VIDEOS = ("0002-L", "0002-M", "0003-R")


def quiet(**opts):
    return {"progress": False, "workers": 1, "missing_list": "none", **opts}


def ntu_raw(raw: Path, n: int = 4, length: int = 20) -> list[str]:
    stems = [f"S001C001P{i + 1:03d}R001A{1 + i % 3:03d}" for i in range(n)]
    for s in stems:
        synth.write_skeleton(raw / f"{s}.skeleton",
                             synth.random_ntu_frames(RNG, length=length, two_bodies=False))
    return stems


def pku_raw(raw: Path, labels: dict[str, list] | None = None) -> Path:
    labels = labels or {}
    for stem in PKU_VIDEOS:
        rows, lab = synth.random_pku_video(RNG, 90, 3)
        synth.write_pku_skeleton(raw / "PKU_Skeleton_Renew" / f"{stem}.txt", rows)
        synth.write_pku_labels(raw / "Train_Label_PKU_final" / f"{stem}.txt",
                               labels.get(stem, lab))
    synth.write_pku_split(raw / "Split" / "cross-subject.txt", PKU_VIDEOS[:2], PKU_VIDEOS[2:])
    synth.write_pku_split(raw / "Split" / "cross-view.txt", ["0002-L", "0003-R"], ["0002-M"])
    return raw


def no_store(out: Path, name: str = "ntu60", frames: int = 50) -> bool:
    folder = out / name / f"frames{frames}"
    return not (folder / "manifest.json").exists() and not (folder / "data.npy").exists()


# --------------------------------------------------------------------------- prepare
def test_a_chunk_without_any_valid_sample_is_committed_and_reused(tmp_path, monkeypatch):
    stems = ntu_raw(tmp_path / "raw", 3)
    (tmp_path / "raw" / "S001C001P009R001A001.skeleton").write_text("2\n0\n0\n")  # body-less
    opts = quiet(chunk_size=1)

    def crash(self, ranges):
        raise KeyboardInterrupt
    monkeypatch.setattr(store_mod.SlotFile, "finish", crash)
    with pytest.raises(KeyboardInterrupt):               # all 4 chunks done, store not
        prepare("ntu60", tmp_path / "raw", tmp_path / "out", opts, log=lambda s: None)
    monkeypatch.undo()
    calls: list[int] = []
    real = chunks.run_chunk
    monkeypatch.setattr(chunks, "run_chunk", lambda t: calls.append(t["index"]) or real(t))
    folder = prepare("ntu60", tmp_path / "raw", tmp_path / "out", opts, log=lambda s: None)
    assert calls == []                                    # the empty chunk is reused too
    data, samples, m = load_store(folder)
    assert samples["name"].tolist() == sorted(stems) and len(data) == 3
    assert m["report"]["skipped"] == {"empty": 1}
    assert verify_store(folder)["samples"] == 3


def test_a_dangling_symlink_is_named_or_counted(tmp_path, capsys):
    ntu_raw(tmp_path / "raw", 2)
    link = tmp_path / "raw" / "S001C002P001R001A001.skeleton"
    os.symlink(tmp_path / "gone" / "x.skeleton", link)
    with pytest.raises(ZsbenchError, match=r"S001C002P001R001A001.skeleton: a broken symbolic "
                       r"link \(to .*gone/x.skeleton, which does not exist\)"):
        prepare("ntu60", tmp_path / "raw", tmp_path / "out", quiet(), log=lambda s: None)
    assert main(["data", "prepare", "ntu60", "--raw", str(tmp_path / "raw"), "--out",
                 str(tmp_path / "out"), "--set", "progress=false"]) == 2
    err = capsys.readouterr().err
    assert "broken symbolic link" in err and "internal error" not in err
    folder = prepare("ntu60", tmp_path / "raw", tmp_path / "out", quiet(on_error="skip"),
                     log=lambda s: None)
    _, samples, m = load_store(folder)
    assert len(samples["name"]) == 2
    assert m["report"]["excluded_before_parsing"] == {"unreadable": 1}
    # PKU-MMD: a dangling skeleton or label link
    raw = pku_raw(tmp_path / "pku")
    (raw / "Train_Label_PKU_final" / "0003-R.txt").unlink()
    os.symlink(tmp_path / "nowhere.txt", raw / "Train_Label_PKU_final" / "0003-R.txt")
    with pytest.raises(ZsbenchError, match=r"0003-R.txt: a broken symbolic link"):
        prepare("pku_mmd", raw, tmp_path / "pout", quiet(), log=lambda s: None)


def test_a_full_disk_during_the_run_stops_cleanly_and_resumes(tmp_path, monkeypatch, capsys):
    ntu_raw(tmp_path / "raw", 6)
    opts = quiet(chunk_size=2)                           # 3 chunks
    clean = prepare("ntu60", tmp_path / "raw", tmp_path / "clean", opts, log=lambda s: None)
    real = store_mod.SlotFile.write_rows
    writes: list[int] = []

    def fills_up(self, row, data):
        writes.append(row)
        if len(writes) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, row, data)

    monkeypatch.setattr(store_mod.SlotFile, "write_rows", fills_up)
    args = ["data", "prepare", "ntu60", "--raw", str(tmp_path / "raw"), "--out",
            str(tmp_path / "out"), "--set", "progress=false", "--set", "chunk_size=2",
            "--set", "missing_list=none"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "the disk filled up while writing the prepared rows (No space left on device); " \
           "free space on that disk or choose another --out" in err
    assert "1 of 3 chunk(s) are complete" in err and "internal error" not in err
    assert "on_error=skip" not in err                    # not the inputs' fault
    assert no_store(tmp_path / "out")
    # ... and while publishing: the same guidance, finished chunks kept
    monkeypatch.setattr(store_mod.SlotFile, "write_rows", real)

    def publish_full(path, **arrays):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(store_mod, "atomic_save_npz", publish_full)
    with pytest.raises(ZsbenchError, match=r"disk filled up .* Chunks finished so far are kept"):
        prepare("ntu60", tmp_path / "raw", tmp_path / "out", opts, log=lambda s: None)
    assert no_store(tmp_path / "out")
    monkeypatch.undo()
    logs: list[str] = []
    folder = prepare("ntu60", tmp_path / "raw", tmp_path / "out", opts, log=logs.append)
    assert any("resuming: 3 of 3" in line for line in logs)
    (a, sa, ma), (b, sb, mb) = load_store(folder), load_store(clean)
    assert np.array_equal(a, b) and ma["fingerprint"] == mb["fingerprint"]


def test_a_full_disk_while_converting_a_preprocessed_form(tmp_path):
    writer = store_mod.StoreWriter(tmp_path / "imp", 2, 50)

    class Full:
        closed = False

        def write(self, b):
            raise OSError(errno.ENOSPC, "No space left on device")

        def close(self):
            self.closed = True

    writer.fh.close()
    writer.fh = Full()
    with pytest.raises(ZsbenchError, match="disk filled up while writing the store"):
        writer.write(0, np.zeros((2, 3, 50, 25, 2), np.float32))
    writer.abort()
    assert list((tmp_path / "imp").iterdir()) == []


def test_the_disk_space_refusal_gives_the_real_figure(tmp_path, monkeypatch):
    assert [human_size(n) for n in (90000, 5 << 20, 3.4 * 2**30, 10)] == \
        ["88 KiB", "5.0 MiB", "3.4 GiB", "1 KiB"]
    ntu_raw(tmp_path / "raw", 2)
    monkeypatch.setattr(store_mod.shutil, "disk_usage",
                        lambda p: shutil._ntuple_diskusage(1 << 40, 1 << 40, 3 << 20))
    with pytest.raises(ZsbenchError, match=r"the store needs about 59 KiB in .* \(plus a 64 MiB "
                       r"margin\), only 3.0 MiB are free; free space or choose another --out"):
        prepare("ntu60", tmp_path / "raw", tmp_path / "out", quiet(frames=50),
                log=lambda s: None)


# --------------------------------------------------------------------------- PKU labels
def test_pku_label_rows_duplicates_overlaps_and_empty_files(tmp_path):
    rows, lab = synth.random_pku_video(RNG, 90, 3)
    dup = lab + [lab[1]]                                  # line 4 repeats line 2
    raw = pku_raw(tmp_path / "a", {"0002-L": dup})
    folder = prepare("pku_mmd", raw, tmp_path / "a" / "out", quiet(frames=300),
                     log=lambda s: None)
    _, samples, m = load_store(folder)
    names = samples["name"].tolist()
    assert m["report"]["skipped"] == {"duplicate_label_row": 1}
    assert m["report"]["skipped_detail"]["duplicate_label_row"] == [
        f"{raw / 'Train_Label_PKU_final' / '0002-L.txt'}: line 4 repeats line 2"]
    assert len(names) == len(set(names)) == 9 and "F002V001C%03dL004" % lab[1][0] not in names
    # overlap (more than one shared frame) -> file and both lines; keep = reference
    a, s, e, c = lab[0]
    over = [lab[0], [7, e - 1, e + 5, 1]] + lab[1:]
    raw = pku_raw(tmp_path / "b", {"0002-M": over})
    with pytest.raises(ZsbenchError, match=r"0002-M.txt: line 2: frames %d..%d \(action 7\) "
                       r"overlap line 1 \(frames %d..%d, action %d\) by 2 frames.*"
                       r"label_overlaps=keep" % (e - 1, e + 5, s, e, a)):
        prepare("pku_mmd", raw, tmp_path / "b" / "out", quiet(), log=lambda s: None)
    assert no_store(tmp_path / "b" / "out", "pku_mmd")
    folder = prepare("pku_mmd", raw, tmp_path / "b" / "out", quiet(label_overlaps="keep"),
                     log=lambda s: None)
    assert len(load_store(folder)[1]["name"]) == 10
    # touching in one boundary frame is not an overlap
    assert len(check_label_rows(read_pku_labels(synth.write_pku_labels(
        tmp_path / "t.txt", [[1, 1, 10, 1], [2, 10, 20, 1]])), "t.txt")[0]) == 2
    # an empty label file: the video is skipped and counted
    raw = pku_raw(tmp_path / "c")
    (raw / "Train_Label_PKU_final" / "0003-R.txt").write_text("\n\n")
    folder = prepare("pku_mmd", raw, tmp_path / "c" / "out", quiet(), log=lambda s: None)
    m = load_store(folder)[2]
    assert m["report"]["skipped"] == {"no_label_rows": 1} and m["report"]["samples"] == 6
    assert "0003-R.txt: no label rows" in m["report"]["skipped_detail"]["no_label_rows"][0]


# --------------------------------------------------------------------------- stores
def test_a_store_overwritten_with_garbage_is_refused_on_load_and_by_verify(tmp_path, capsys):
    ntu_raw(tmp_path / "raw", 4)
    root = tmp_path / "data"
    folder = prepare("ntu60", tmp_path / "raw", root, quiet(chunk_size=2), log=lambda s: None)
    assert main(["data", "verify", "ntu60", "--data-root", str(root)]) == 0
    assert f"ok {folder}: 4 samples" in capsys.readouterr().out
    data = folder / "data.npy"
    pristine = data.read_bytes()
    data.write_bytes(np.random.default_rng(0).bytes(len(pristine)))          # same size
    with pytest.raises(DataFileError, match=r"data.npy: the content does not match the digest "
                       r"recorded .* prepare it again: zsbench data prepare ntu60 --raw "):
        load_dataset("ntu60", DatasetConfig(), root)
    assert main(["data", "verify", str(folder)]) == 2
    assert "prepare it again" in capsys.readouterr().err
    # one changed value between the sampled pieces: loads, but verify finds the rows
    damaged = bytearray(pristine)
    damaged[store_mod.HEADER_BYTES + 2 * 30000 + 102] ^= 0x40     # row 2, not sampled
    data.write_bytes(bytes(damaged))
    assert len(load_dataset("ntu60", DatasetConfig(), root)) == 4
    with pytest.raises(DataFileError, match=r"rows 2..3 \(from sample S001C001P003R001A003\) "
                       "do not match the digest recorded when they were prepared"):
        verify("ntu60", root)
    # a manifest whose fingerprint was edited
    data.write_bytes(pristine)
    man = (folder / "manifest.json").read_text()
    fp = load_store(folder)[2]["fingerprint"]
    (folder / "manifest.json").write_text(man.replace(fp, fp[:-1] + "0"))
    with pytest.raises(DataFileError, match="does not follow from the recorded chunks"):
        verify_store(folder)
    # a store written before the digests were recorded: loads, cannot be verified
    old = json.loads(man)
    del old["check"]
    (folder / "manifest.json").write_text(json.dumps(old))
    assert len(load_store(folder)[0]) == 4
    with pytest.raises(DataFileError, match="recorded no content digests, so it cannot be "
                       "verified; prepare it again: zsbench data prepare ntu60"):
        verify_store(folder)
    # the sample table
    (folder / "manifest.json").write_text(man)
    table = bytearray((folder / "samples.npz").read_bytes())
    table[len(table) // 2] ^= 1
    (folder / "samples.npz").write_bytes(bytes(table))
    with pytest.raises(DataFileError, match="samples.npz: the sample table does not match"):
        load_store(folder)


def test_verify_a_converted_store(tmp_path):
    x = RNG.normal(size=(4, 300, 150)).astype(np.float32)
    y = np.eye(60)[[0, 1, 2, 3]]
    src = tmp_path / "data" / "ntu60" / "ctrgcn" / "NTU60_CS.npz"
    src.parent.mkdir(parents=True)
    np.savez(src, x_train=x[:2], y_train=y[:2], x_test=x[2:], y_test=y[2:])
    load_dataset("ntu60", DatasetConfig(**{"form": "ctrgcn_npz", "frames": 300}), tmp_path / "data")
    [r] = verify("ntu60", tmp_path / "data")
    folder = Path(r["folder"])
    assert folder.parent.name == "imported" and r["samples"] == 4
    raw = bytearray((folder / "data.npy").read_bytes())
    raw[-5] ^= 1
    (folder / "data.npy").write_bytes(bytes(raw))
    with pytest.raises(DataFileError, match=r"delete .*imported.*converted again"):
        verify_store(folder)


# --------------------------------------------------------------------------- readers
def test_python_api_readers_raise_one_error_type(tmp_path):
    feats = tmp_path / "synse"
    feats.mkdir()
    for name, arr in (("train", np.ones((4, 3), np.float32)), ("train_label", np.arange(4)),
                      ("ztest", np.ones((2, 3), np.float32)), ("z_label", np.array([5, 6]))):
        np.save(feats / f"{name}.npy", arr)
    assert load_precomputed_features(feats).dim == 3
    full = (feats / "ztest.npy").read_bytes()
    for broken, detail in ((full[:-3], "mmap length"), (b"", "the file is empty"),
                           (b"garbage" * 30, "no .npy header")):
        (feats / "ztest.npy").write_bytes(broken)
        with pytest.raises(DataFileError, match=f"ztest.npy: not a readable ZSL test features "
                           f".npy file .*{detail}.*copy or export the feature files again"):
            load_precomputed_features(feats)
    flora = tmp_path / "flora.npz"
    np.savez(flora, train_data=np.ones((2, 3)), train_label=[0, 1], zsl_data=np.ones((1, 3)),
             zsl_label=[2])
    good = flora.read_bytes()
    flora.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataFileError, match=r"flora.npz: not a readable Flora feature .npz"):
        load_precomputed_features(flora)
    k = good.index(b"\x93NUMPY") + 128 + 5                 # inside the first array's data
    flora.write_bytes(good[:k] + bytes([good[k] ^ 1]) + good[k + 1:])
    with pytest.raises(DataFileError, match=r"flora.npz: not a readable .*BadZipFile"):
        load_precomputed_features(flora)
    ctr = tmp_path / "data" / "ntu60" / "ctrgcn" / "NTU60_CS.npz"
    ctr.parent.mkdir(parents=True)
    ctr.write_bytes(good[:100])
    with pytest.raises(DataFileError, match="NTU60_CS.npz: not a readable .npz file"):
        load_dataset("ntu60", DatasetConfig(**{"form": "ctrgcn_npz", "frames": 300}), tmp_path / "data")
    pkl = tmp_path / "train_label.pkl"
    pkl.write_bytes(pickle.dumps((["a", "b"], [0, 1]))[:-4])
    with pytest.raises(DataFileError, match="train_label.pkl: not a readable pickle"):
        read_label_pickle(pkl)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_a_corrupt_checkpoint_is_a_data_file_error(tmp_path, torch_single_thread):
    import torch

    from zsbench.pretrain import FeatureSet, load_pretrained_encoder

    ckpt = tmp_path / "encoders" / "x" / "checkpoint.pt"
    ckpt.parent.mkdir(parents=True)
    torch.save({"encoder": torch.nn.Linear(2, 2).state_dict(), "head": {}}, ckpt)
    fs = FeatureSet(train=np.zeros((1, 2)), test_seen=np.zeros((1, 2)),
                    test_unseen=np.zeros((1, 2)), trained_on=np.array([0]), fingerprint="f",
                    checkpoint=ckpt, from_cache=True)
    assert isinstance(load_pretrained_encoder(lambda: torch.nn.Linear(2, 2), fs),
                      torch.nn.Linear)
    good = ckpt.read_bytes()
    for broken in (good[: len(good) // 2], b"", b"\x80\x04garbage", good[:-30]):
        ckpt.write_bytes(broken)
        with pytest.raises(DataFileError, match=r"(?s)checkpoint.pt: not a readable pretrained "
                           r"encoder checkpoint .*; delete .*encoders/x to pretrain again"):
            load_pretrained_encoder(lambda: torch.nn.Linear(2, 2), fs)


# --------------------------------------------------------------------------- property
TOKENS = [b"nan", b"inf", b"-", b"x", b"1e999", b"", b"0", b"-1", b"99999999999", b"\x00",
          b"\xff", b"3.5", b"25", b"2", b"\r\n", b"\n\n", b" ", b",", b"7,1,5"]


def corrupt(data: bytes, rng: random.Random) -> bytes:
    """One random damage: flipped bytes, truncation, an inserted or replaced token, a
    deleted range, a repeated or deleted line, or garbage of the same size."""
    if not data:
        return rng.choice(TOKENS)
    b = bytearray(data)
    op = rng.randrange(9)
    lines = bytes(b).split(b"\n")
    i = rng.randrange(len(lines))
    if op == 0:
        for _ in range(rng.randint(1, 5)):
            b[rng.randrange(len(b))] = rng.randrange(256)
    elif op == 1:
        del b[rng.randrange(len(b)):]
    elif op == 2:
        k = rng.randrange(len(b))
        b[k:k] = rng.choice(TOKENS)
    elif op == 3:
        k = rng.randrange(len(b))
        del b[k: k + rng.randint(1, 200)]
    elif op == 4:
        lines.insert(i, lines[rng.randrange(len(lines))])
        b = bytearray(b"\n".join(lines))
    elif op == 5:
        del lines[i]
        b = bytearray(b"\n".join(lines))
    elif op == 6:
        toks = lines[i].replace(b",", b" , ").split()
        if toks:
            toks[rng.randrange(len(toks))] = rng.choice(TOKENS)
        lines[i] = b" ".join(toks)
        b = bytearray(b"\n".join(lines))
    elif op == 7:
        b = bytearray(rng.randbytes(len(b)))
    else:
        k = rng.randrange(len(b))
        b[k: k + 1] = b"\n"
    return bytes(b)


def test_randomly_corrupted_inputs_end_in_a_zsbench_error_or_a_counted_skip(tmp_path):
    """Seeded random damage to raw .skeleton files, PKU-MMD label files and store files:
    the only outcomes are a ZsbenchError (and then no store) or a store whose report
    counts what was skipped; a damaged store is refused on load or by verify."""
    outcomes: dict[str, int] = {}
    ntu = tmp_path / "ntu"
    ntu_stems = ntu_raw(ntu, 3)
    pku = pku_raw(tmp_path / "pku")
    for seed in range(72):
        rng = random.Random(seed)
        kind = ("ntu", "pku")[seed % 2]
        base = tmp_path / "case"
        shutil.rmtree(base, ignore_errors=True)
        shutil.copytree(ntu if kind == "ntu" else pku, base / "raw")
        victim = base / "raw" / (f"{rng.choice(ntu_stems)}.skeleton" if kind == "ntu" else
                                 f"Train_Label_PKU_final/{rng.choice(PKU_VIDEOS)}.txt")
        for _ in range(rng.choice((1, 1, 2))):
            victim.write_bytes(corrupt(victim.read_bytes(), rng))
        opts = quiet(chunk_size=rng.choice((1, 2, 256)), frames=rng.choice((50, 64, 300)),
                     on_error=rng.choice(("stop", "skip")))
        if kind == "ntu":
            opts["truncated"] = rng.choice(("error", "keep"))
            os.environ["ZSBENCH_PURE_PYTHON"] = rng.choice(("0", "1"))
        name = "ntu60" if kind == "ntu" else "pku_mmd"
        try:
            folder = prepare(name, base / "raw", base / "out", opts, log=lambda s: None)
        except ZsbenchError:
            assert no_store(base / "out", name, opts["frames"]), seed
            outcomes["error"] = outcomes.get("error", 0) + 1
            continue
        finally:
            os.environ.pop("ZSBENCH_PURE_PYTHON", None)
        _, samples, m = load_store(folder)
        names, r = samples["name"].tolist(), m["report"]
        if kind == "ntu":             # every file is a sample or counted
            assert len(names) + sum(r["skipped"].values()) == 3, seed
        else:                         # every video gives clips or is counted
            details = [str(d) for v in r["skipped_detail"].values() for d in v]
            for stem, prefix in zip(PKU_VIDEOS, ("F002V001", "F002V002", "F003V003")):
                assert any(n.startswith(prefix) for n in names) or any(
                    stem in d or prefix in d for d in details), (seed, stem)
        verify_store(folder)
        outcomes["skips" if m["report"]["skipped"] else "ok"] = \
            outcomes.get("skips" if m["report"]["skipped"] else "ok", 0) + 1
        # now damage the store itself
        target = folder / rng.choice(("data.npy", "data.npy", "samples.npz", "manifest.json"))
        before = target.read_bytes()
        after = corrupt(before, rng)
        target.write_bytes(after)
        try:
            load_dataset(name, DatasetConfig(**{"frames": opts["frames"]}), base / "out")
        except ZsbenchError:
            outcomes["store refused on load"] = outcomes.get("store refused on load", 0) + 1
        try:
            verify_store(folder)
            assert after == before or target.name == "manifest.json", seed
        except ZsbenchError:
            pass
    # the loop exercised every outcome
    assert set(outcomes) == {"error", "skips", "ok", "store refused on load"}, outcomes

"""Benchmark ``zsbench data prepare`` (NTU) and the memory of loading an NTU-120-sized store.

1. Speed: generate a few hundred plausible ``.skeleton`` files, then prepare them
   (a) with a straightforward line-by-line implementation of each reference pipeline
   written below from DATA_FORMATS.md §2-3, doing the work the reference scripts do:
   * 50 frames (ST-GCN ``ntu_gendata`` + CrossCLR/AimCLR ``preprocess_ntu``, as SMIE,
     PGFA and DVTA use): a dict-per-joint reader parsing all 12 joint values, the
     300-frame stage-1 file + label pickle, then stage 2 reading it back and writing the
     50-frame position and motion arrays (per-frame loops);
   * 300 frames (CTR-GCN ``get_raw_skes_data`` -> ``get_raw_denoised_data`` ->
     ``seq_transformation``): per-line array conversion of joints and colour points,
     tracks grown by ``vstack``, the intermediate pickles, the per-sample actor-info
     files, translation and padding, the one-hot labels and the npz (one benchmark's
     file; the reference writes a second one for the other benchmark, not timed here);
   (b) the same pipelines reduced to their core (parse, select, resample, one output
   array: no colours, intermediate files or motion arrays), reported alongside so the
   share of the ratio that comes from skipping the reference's extra work is visible;
   (c) the product's ``prepare`` in one process and with its default workers.
   Prints the speed ratios and checks that the arrays are identical.
2. Memory: generate an NTU-120-sized 50-frame store (114,000 x 3 x 50 x 25 x 2 float32)
   chunk by chunk in a temporary folder (scaled down, with a message, when the disk is
   too small) and measure, in a fresh process, the peak memory of loading it through the
   dataset plugin and reading it (tracemalloc peak of Python allocations and the peak
   resident set size).

Usage: python benchmarks/bench_prepare.py [--files 300] [--store-samples 114000] [--skip-memory]
"""
from __future__ import annotations

import argparse
import json
import math
import pickle
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "harness"), str(ROOT / "plugins")]

from zsbench_ntu import synth  # noqa: E402
from zsbench_ntu.ntu_parse import compiled_parser_enabled  # noqa: E402
from zsbench_ntu.prepare import auto_workers, prepare  # noqa: E402
from zsbench_ntu.store import StoreWriter, load_store  # noqa: E402

BODY_KEYS = ["bodyID", "clipedEdges", "handLeftConfidence", "handLeftState",
             "handRightConfidence", "handRightState", "isResticted", "leanX", "leanY",
             "trackingState"]
JOINT_KEYS = ["x", "y", "z", "depthX", "depthY", "colorX", "colorY", "orientationW",
              "orientationX", "orientationY", "orientationZ", "trackingState"]


# ------------------------------------------------------------ baseline: 50 frames ----
def base_read_skeleton(path):
    with open(path, "r") as f:
        seq = {"numFrame": int(f.readline()), "frameInfo": []}
        for _ in range(seq["numFrame"]):
            frame = {"numBody": int(f.readline()), "bodyInfo": []}
            for _ in range(frame["numBody"]):
                vals = f.readline().split()
                body = {"bodyID": vals[0]}
                body.update({k: float(v) for k, v in zip(BODY_KEYS[1:], vals[1:])})
                body["numJoint"] = int(f.readline())
                body["jointInfo"] = []
                for _ in range(body["numJoint"]):
                    joint = {k: float(v) for k, v in zip(JOINT_KEYS, f.readline().split())}
                    body["jointInfo"].append(joint)
                frame["bodyInfo"].append(body)
            seq["frameInfo"].append(frame)
    return seq


def base_read_xyz(path, max_body=2, num_joint=25):
    seq = base_read_skeleton(path)
    data = np.zeros((3, seq["numFrame"], num_joint, max_body))
    for n, frame in enumerate(seq["frameInfo"]):
        for m, body in enumerate(frame["bodyInfo"]):
            for j, v in enumerate(body["jointInfo"]):
                if m < max_body and j < num_joint:
                    data[:, n, j, m] = [v["x"], v["y"], v["z"]]
    return data


def base_valid_length(x):
    length = 0
    for t in range(x.shape[1]):
        if abs(x[0, t, 0, 0]) + abs(x[1, t, 0, 0]) + abs(x[2, t, 0, 0]) != 0:
            length += 1
    return length


def base_resize(x, length, out_len):
    res = np.zeros((3, out_len, 25, 2), np.float32)
    for i in range(out_len):
        s = min(max((i + 0.5) * (length / out_len) - 0.5, 0.0), length - 1)
        i0 = int(math.floor(s))
        i1 = min(i0 + 1, length - 1)
        w = np.float32(s - i0)
        res[:, i] = x[:, i0] * (np.float32(1) - w) + x[:, i1] * w
    return res


def base_motion_processor(x, out_len):
    length = base_valid_length(x)
    rel = np.zeros_like(x)
    for t in range(x.shape[1]):
        for m in range(2):
            rel[:, t, :, m] = x[:, t, :, m] - x[:, t, 20:21, m]
    res = base_resize(rel, length, out_len)
    out = np.zeros_like(res)
    for m in range(2):
        r = res[..., m].astype(np.float64)
        vx = r[0, :, 8] - r[0, :, 4]
        vz = r[2, :, 8] - r[2, :, 4]
        theta = np.arccos(np.clip(vx / (np.sqrt(vx * vx + vz * vz) + 1e-4), -1.0, 1.0))
        if vz.sum() >= 0:
            theta = -theta
        cos, sin = np.cos(theta), np.sin(theta)
        for t in range(out_len):
            out[0, t, :, m] = cos[t] * r[0, t] - sin[t] * r[2, t]
            out[1, t, :, m] = r[1, t]
            out[2, t, :, m] = sin[t] * r[0, t] + cos[t] * r[2, t]
    return out


def baseline_50(files, out_file):
    fp = np.zeros((len(files), 3, 300, 25, 2), dtype=np.float32)
    for i, path in enumerate(files):
        data = base_read_xyz(path)
        fp[i, :, 0:data.shape[1]] = data
    out = np.stack([base_motion_processor(fp[i], 50) for i in range(len(files))])
    np.save(out_file, out)
    return out


# ----------------------------------------------------------- baseline: CTR-GCN 300 ----
def base_ctrgcn_stage_a(path):
    """Stage A, core only: no colour points (see ``ref_stage_a``)."""
    sample = ref_stage_a(path, colors=False)
    return sample["data"], sample["num_frames"]


def base_one_actor(body, num_frames):
    joints = np.zeros((num_frames, 75), dtype=np.float32)
    joints[body["interval"][0]:body["interval"][-1] + 1] = body["joints"].reshape(-1, 75)
    return joints


def base_ctrgcn_stage_b(bodies, num_frames):
    if len(bodies) == 1:
        return base_one_actor(next(iter(bodies.values())), num_frames)
    live = {k: v for k, v in bodies.items() if len(v["interval"]) > 11}
    if not live:
        longest = max(len(v["interval"]) for v in bodies.values())
        key = next(k for k, v in bodies.items() if len(v["interval"]) == longest)
        live = {key: bodies[key]}
    for key in list(live):
        if len(live) == 1:
            break
        pts = live[key]["joints"].reshape(-1, 25, 3)
        valid_frames = []
        for i in range(pts.shape[0]):
            x, y = pts[i, :, 0], pts[i, :, 1]
            if (x.max() - x.min()) <= 0.8 * float(y.max() - y.min()):
                valid_frames.append(i)
        noise = len(pts) - len(valid_frames)
        if noise == 0:
            continue
        if noise / float(len(pts)) >= 0.69754:
            del live[key]
        else:
            live[key]["motion"] = min(live[key]["motion"],
                                      np.sum(np.var(pts[valid_frames].reshape(-1, 3), axis=0)))
    order = sorted(live.items(), key=lambda kv: kv[1]["motion"], reverse=True)
    if len(order) == 1:
        joints = base_one_actor(order[0][1], num_frames)
    else:
        joints = np.zeros((num_frames, 150), dtype=np.float32)
        a1 = order[0][1]
        s1, e1 = a1["interval"][0], a1["interval"][-1]
        joints[s1:e1 + 1, :75] = a1["joints"].reshape(-1, 75)
        s2, e2 = 0, 0
        for _, actor in order[1:]:
            s, e = actor["interval"][0], actor["interval"][-1]
            if min(e1, e) - max(s1, s) <= 0:
                joints[s:e + 1, :75] = actor["joints"].reshape(-1, 75)
                s1, e1 = min(s, s1), max(e, e1)
            elif min(e2, e) - max(s2, s) <= 0:
                joints[s:e + 1, 75:] = actor["joints"].reshape(-1, 75)
                s2, e2 = min(s, s2), max(e, e2)
    return joints[np.where(joints.sum(axis=1) != 0)[0]]


def base_ctrgcn_stage_c(seq):
    width = seq.shape[1]
    if width == 150:
        miss1 = np.where(seq[:, :75].sum(axis=1) == 0)[0]
        miss2 = np.where(seq[:, 75:].sum(axis=1) == 0)[0]
    i = 0
    while i < seq.shape[0] and not np.any(seq[i, :75] != 0):
        i += 1
    origin = np.copy(seq[i, 3:6])
    for f in range(seq.shape[0]):
        seq[f] -= np.tile(origin, width // 3)
    if width == 150:
        seq[miss1, :75] = 0
        seq[miss2, 75:] = 0
    out = np.zeros((300, 150), dtype=np.float32)
    out[:seq.shape[0], :width] = seq
    return out


def baseline_300(files, out_file):
    out = np.zeros((len(files), 300, 150), dtype=np.float32)
    for i, path in enumerate(files):
        out[i] = base_ctrgcn_stage_c(base_ctrgcn_stage_b(*base_ctrgcn_stage_a(path)))
    out = out.reshape(len(files), 300, 2, 25, 3).transpose(0, 4, 1, 3, 2)
    np.save(out_file, out)
    return out


# ------------------------------------------- reference, complete: 50 frames ----
def ref_motion_processor(x, out_len):
    """Stage 2 for one (3, 300, 25, 2) sample: (position, motion), both (3, out_len, 25, 2)."""
    motion = np.zeros_like(x)
    for t in range(x.shape[1] - 1):                  # displacement 1, uncentred data
        motion[:, t] = x[:, t + 1] - x[:, t]
    mot = base_resize(motion, base_valid_length(x), out_len)
    return base_motion_processor(x, out_len), mot


def reference_50(files, out_dir):
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [p.name for p in files]
    labels = [int(p.stem[-3:]) - 1 for p in files]
    with open(out_dir / "train_label.pkl", "wb") as fh:           # stage 1
        pickle.dump((names, labels), fh)
    fp = np.lib.format.open_memmap(out_dir / "train_data.npy", mode="w+", dtype=np.float32,
                                   shape=(len(files), 3, 300, 25, 2))
    for i, path in enumerate(files):
        data = base_read_xyz(path)
        fp[i, :, 0:data.shape[1]] = data
    del fp
    with open(out_dir / "train_label.pkl", "rb") as fh:           # stage 2
        _, labels = pickle.load(fh)
    x = np.load(out_dir / "train_data.npy", mmap_mode="r")
    pos = np.lib.format.open_memmap(out_dir / "train_position.npy", mode="w+",
                                    dtype=np.float32, shape=(len(files), 3, 50, 25, 2))
    mot = np.lib.format.open_memmap(out_dir / "train_motion.npy", mode="w+",
                                    dtype=np.float32, shape=(len(files), 3, 50, 25, 2))
    lab = np.lib.format.open_memmap(out_dir / "train_label.npy", mode="w+", dtype=np.int64,
                                    shape=(len(files), 1))
    for i in range(len(files)):
        pos[i], mot[i] = ref_motion_processor(np.array(x[i]), 50)
        lab[i] = labels[i]
    out = np.array(pos)
    del pos, mot, lab, x
    return out


# ------------------------------------------ reference, complete: 300 frames ----
def ref_stage_a(path, colors=True):
    """Stage A like the reference reader: values through per-line array conversion,
    tracks grown by ``vstack`` as (n * 25, 3) joints, with the colour points unless
    ``colors=False`` (the core-only baseline)."""
    with open(path, "r") as fr:
        lines = fr.readlines()
    num_frames = int(lines[0].strip("\r\n"))
    bodies, idx, valid, dropped = {}, 1, -1, []
    for f in range(num_frames):
        nb = int(lines[idx].strip("\r\n"))
        idx += 1
        if nb == 0:
            dropped.append(f)
            continue
        valid += 1
        joints = np.zeros((nb, 25, 3), dtype=np.float32)
        color = np.zeros((nb, 25, 2), dtype=np.float32)
        for b in range(nb):
            bid = lines[idx].strip("\r\n").split()[0]
            idx += 1
            nj = int(lines[idx].strip("\r\n"))
            idx += 1
            for j in range(nj):
                vals = lines[idx].strip("\r\n").split()
                joints[b, j, :] = np.array(vals[:3], dtype=np.float32)
                if colors:
                    color[b, j, :] = np.array(vals[5:7], dtype=np.float32)
                idx += 1
            if bid not in bodies:
                bodies[bid] = {"joints": joints[b], "interval": [valid]}
                if colors:
                    bodies[bid]["colors"] = color[b][None]
            else:
                body = bodies[bid]
                body["joints"] = np.vstack((body["joints"], joints[b]))
                if colors:
                    body["colors"] = np.vstack((body["colors"], color[b][None]))
                body["interval"].append(body["interval"][-1] + 1)
    if len(bodies) > 1:
        for b in bodies.values():
            b["motion"] = np.sum(np.var(b["joints"], axis=0))
    return {"name": Path(path).stem, "data": bodies, "num_frames": valid + 1,
            "dropped": np.array(dropped, dtype=np.int64)}


def ref_stage_b(sample, info_dir):
    """Stage B with the colour arrays and the per-sample actor-info file."""
    bodies, num_frames = dict(sample["data"]), sample["num_frames"]
    info = "".join(f"{k}\t{[v['interval'][0], v['interval'][-1]]}\t"
                   f"{v.get('motion', 0.0):f}\n" for k, v in bodies.items())
    joints = base_ctrgcn_stage_b(bodies, num_frames)
    actors = joints.shape[1] // 75     # colour arrays as the reference builds them (they
    colors = np.ones((num_frames, actors, 25, 2), dtype=np.float32) * np.nan
    for m, body in enumerate(list(bodies.values())[:actors]):   # are unused downstream)
        s, e = body["interval"][0], body["interval"][-1]
        colors[s:e + 1, m] = body["colors"]
    with open(info_dir / f"{sample['name']}.txt", "w") as fw:
        fw.write(info + f"Actors: {actors}\n")
    return joints, colors


def reference_300(files, out_dir):
    raw_dir, den_dir = out_dir / "raw_data", out_dir / "denoised_data"
    info_dir = den_dir / "actors_info"
    info_dir.mkdir(parents=True, exist_ok=True)
    raw_dir.mkdir(parents=True, exist_ok=True)
    raw = [ref_stage_a(p) for p in files]                        # stage A
    with open(raw_dir / "raw_skes_data.pkl", "wb") as fw:
        pickle.dump(raw, fw, pickle.HIGHEST_PROTOCOL)
    np.savetxt(raw_dir / "frames_cnt.txt", [r["num_frames"] for r in raw], fmt="%d")
    with open(raw_dir / "frames_drop_skes.pkl", "wb") as fw:
        pickle.dump({r["name"]: r["dropped"] for r in raw if len(r["dropped"])}, fw)
    del raw
    with open(raw_dir / "raw_skes_data.pkl", "rb") as fr:         # stage B
        raw = pickle.load(fr)
    joints, colors = zip(*(ref_stage_b(r, info_dir) for r in raw))
    with open(den_dir / "raw_denoised_joints.pkl", "wb") as fw:
        pickle.dump(list(joints), fw, pickle.HIGHEST_PROTOCOL)
    with open(den_dir / "raw_denoised_colors.pkl", "wb") as fw:
        pickle.dump(list(colors), fw, pickle.HIGHEST_PROTOCOL)
    np.savetxt(den_dir / "frames_cnt.txt", [len(j) for j in joints], fmt="%d")
    del raw, joints, colors
    with open(den_dir / "raw_denoised_joints.pkl", "rb") as fr:   # stage C
        joints = pickle.load(fr)
    x = np.zeros((len(joints), 300, 150), dtype=np.float32)
    for i, seq in enumerate(joints):
        x[i] = base_ctrgcn_stage_c(seq)
    labels = np.array([int(p.stem[-3:]) - 1 for p in files])
    y = np.zeros((len(labels), 60))
    y[np.arange(len(labels)), labels] = 1
    np.savez(out_dir / "NTU60_CS.npz", x_train=x, y_train=y)
    return x.reshape(len(files), 300, 2, 25, 3).transpose(0, 4, 1, 3, 2)


# ------------------------------------------------------------------------ speed ----
def generate_files(raw: Path, n: int, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    files = []
    for k in range(n):
        stem = f"S{1 + k % 17:03d}C{1 + k % 3:03d}P{1 + (k // 3) % 40:03d}R{1 + k % 2:03d}" \
               f"A{1 + (k // 7) % 60:03d}"
        frames = synth.random_ntu_frames(rng, length=int(rng.integers(40, 140)))
        files.append(synth.write_skeleton(raw / f"{stem}.skeleton", frames))
    return sorted(set(files))


def bench_speed(n: int, tmp: Path) -> dict:
    raw = tmp / "raw"
    t0 = time.perf_counter()
    files = generate_files(raw, n)
    gen = time.perf_counter() - t0
    for f in files:                                   # warm the page cache for both
        f.read_bytes()
    print(f"generated {len(files)} .skeleton files in {gen:.1f} s "
          f"({sum(f.stat().st_size for f in files) / 2**20:.1f} MiB)")
    warm = tmp / "warm"                               # one-time imports out of the timing
    warm.mkdir()
    for f in files[:2]:
        shutil.copy(f, warm / f.name)
    for frames in (50, 300):
        prepare("ntu60", warm, tmp / "warm_out", {"frames": frames, "progress": False,
                                                   "missing_list": "none"},
                log=lambda s: None)
    results = {}
    pipelines = {50: ("ST-GCN ntu_gendata + CrossCLR/AimCLR 50-frame processor",
                      reference_50, baseline_50),
                 300: ("CTR-GCN 3-stage pipeline, 300 frames", reference_300, baseline_300)}
    for frames, (title, complete, core) in pipelines.items():
        t0, c0 = time.perf_counter(), time.process_time()
        ref = complete(files, tmp / f"reference_{frames}")
        t_ref, c_ref = time.perf_counter() - t0, time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        ref_core = core(files, tmp / f"core_{frames}.npy")
        t_core, c_core = time.perf_counter() - t0, time.process_time() - c0
        timings, same = {}, bool(np.array_equal(ref, ref_core))
        diff = float(np.abs(ref - ref_core).max())
        for variant in ("one", "default", "numpy"):
            out = tmp / f"out_{frames}_{variant}"
            if variant == "numpy":                    # as installed without a C compiler
                os.environ["ZSBENCH_PURE_PYTHON"] = "1"
            t0, c0 = time.perf_counter(), time.process_time()
            # missing_list=none: the generated names may hit the official list, which
            # the baselines (given these files as "available") do not apply either
            folder = prepare("ntu60", raw, out, {"frames": frames,
                                                 "workers": 0 if variant == "default" else 1,
                                                 "progress": False, "chunk_size": 64,
                                                 "missing_list": "none"},
                             log=lambda s: None)
            timings[variant] = (time.perf_counter() - t0, time.process_time() - c0)
            os.environ.pop("ZSBENCH_PURE_PYTHON", None)
            data, samples, _ = load_store(folder)
            ok = data.shape == ref.shape and bool(np.array_equal(data, ref))
            diff = max(diff, float(np.abs(np.asarray(data) - ref).max())
                       if data.shape == ref.shape else float("nan"))
            same = same and ok
            del data
        (t_one, c_one), (t_all, _), (t_np, _) = (timings["one"], timings["default"],
                                                 timings["numpy"])
        compiled = "compiled parser" if compiled_parser_enabled() else \
            "numpy parser: the C extension is not built"
        per = 1e3 / len(files)
        print(f"[{frames:3d} frames] {title}\n"
              f"    reference, complete (as the scripts)  {t_ref:6.2f} s ({per * t_ref:5.2f} ms/file)\n"
              f"    reference, core only                   {t_core:6.2f} s ({per * t_core:5.2f} ms/file)\n"
              f"    product, 1 process ({compiled})  {t_one:6.2f} s ({per * t_one:5.2f} ms/file, "
              f"{c_one:.2f} s CPU)\n"
              f"    product, default workers ({auto_workers(len(files))})           {t_all:6.2f} s\n"
              f"    speed ratio, 1 process: {t_ref / t_one:.1f}x vs complete reference, "
              f"{t_core / t_one:.1f}x vs core only; default workers: {t_ref / t_all:.1f}x / "
              f"{t_core / t_all:.1f}x\n"
              f"    product, 1 process, numpy parser (installs without a C compiler)  {t_np:6.2f} s"
              f" -> {t_ref / t_np:.1f}x / {t_core / t_np:.1f}x\n"
              f"    arrays identical (reference, core, product): {same} (max |diff| {diff:.3g})")
        results[frames] = {"reference_s": t_ref, "reference_cpu_s": c_ref, "core_s": t_core,
                           "core_cpu_s": c_core, "product_s": t_one, "product_cpu_s": c_one,
                           "product_parallel_s": t_all, "product_numpy_s": t_np,
                           "ratio": t_ref / t_one,
                           "ratio_core": t_core / t_one, "ratio_parallel": t_ref / t_all,
                           "identical": same}
    return results


# ----------------------------------------------------------------------- memory ----
def build_store(root: Path, n: int, block: int = 2000) -> Path:
    rng = np.random.default_rng(1)
    base = rng.normal(size=(block, 3, 50, 25, 2)).astype(np.float32)
    writer = StoreWriter(root / "ntu120" / "frames50", n, 50)
    for start in range(0, n, block):
        k = min(block, n - start)
        writer.write(start, base[:k] + np.float32(start % 97))
    idx = np.arange(n)
    samples = {"name": np.asarray([f"S{1 + i % 32:03d}C{1 + i % 3:03d}P{1 + i % 106:03d}"
                                   f"R{1 + i % 2:03d}A{1 + i % 120:03d}" for i in idx]),
               "label": idx % 120, "setup": 1 + idx % 32, "camera": 1 + idx % 3,
               "subject": 1 + idx % 106, "replication": 1 + idx % 2, "length": np.full(n, 50)}
    return writer.commit(samples, {"dataset": "ntu120", "num_classes": 120,
                                   "fingerprint": "ntu120-bench", "source": "benchmark",
                                   "pipeline": {}, "deviations": [], "report": {}})


MEASURE = r"""
import json, resource, sys, time, tracemalloc
import numpy as np
sys.path[:0] = sys.argv[2:4]


def rss_anon():
    lines = [ln for ln in open("/proc/self/status") if ln.startswith("RssAnon:")]
    return int(lines[0].split()[1]) * 1024 if lines else 0
tracemalloc.start()
from zsbench_ntu.config import DatasetConfig
from zsbench_ntu.datasets import load_dataset
t0 = time.perf_counter()
ds = load_dataset("ntu120", DatasetConfig(frames=50), sys.argv[1])
t_load = time.perf_counter() - t0
train = np.flatnonzero(ds.partitions["xsub"])
rng = np.random.default_rng(0)
for _ in range(20):                                  # random training batches
    batch = np.asarray(ds.data[np.sort(rng.choice(train, 256, replace=False))])
anon_after_load = rss_anon()
rss_after_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
anon_peak = anon_after_load
total = np.zeros(3, np.float64)
for s in range(0, len(ds), 1024):                    # one streaming pass over everything
    total += np.asarray(ds.data[s:s + 1024]).sum(axis=(0, 2, 3, 4))
    anon_peak = max(anon_peak, rss_anon())
cur, peak = tracemalloc.get_traced_memory()
print(json.dumps({"samples": len(ds), "load_s": t_load, "tracemalloc_peak": peak,
                  "rss_after_load": rss_after_load, "anon_peak": anon_peak,
                  "anon_after_load": anon_after_load,
                  "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def bench_memory(n: int, tmp: Path) -> dict:
    per = 3 * 50 * 25 * 2 * 4
    free = shutil.disk_usage(tmp).free
    need = n * per * 1.1 + (256 << 20)
    if free < need:
        scaled = max(1000, int((free - (256 << 20)) / (per * 1.1)))
        print(f"only {free / 2**30:.1f} GiB free in {tmp}; scaling the store down from "
              f"{n} to {scaled} samples")
        n = scaled
    t0 = time.perf_counter()
    build_store(tmp / "store", n)
    size = (tmp / "store" / "ntu120" / "frames50" / "data.npy").stat().st_size
    print(f"generated a {n} x 3 x 50 x 25 x 2 float32 store ({size / 1e9:.2f} GB) in "
          f"{time.perf_counter() - t0:.1f} s")
    out = subprocess.run([sys.executable, "-c", MEASURE, str(tmp / "store"),
                          str(ROOT / "harness"), str(ROOT / "plugins")],
                         capture_output=True, text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    limit = 1.5 * 2**30
    ok = res["anon_peak"] < limit and res["tracemalloc_peak"] < limit
    mib = 2**20
    print(f"loading {res['samples']} samples through the dataset plugin took {res['load_s']:.2f} s\n"
          f"    private (anonymous) memory after loading + 20 random batches of 256: "
          f"{res['anon_after_load'] / mib:.1f} MiB (peak RSS so far, mapped pages included: "
          f"{res['rss_after_load'] / mib:.1f} MiB)\n"
          f"    peak private memory over that and one streaming pass over all samples: "
          f"{res['anon_peak'] / mib:.1f} MiB; tracemalloc peak {res['tracemalloc_peak'] / mib:.1f} MiB"
          f"\n    (peak RSS {res['maxrss'] / mib:.1f} MiB also counts the store's pages mapped "
          "from the page cache: shared, clean, dropped by the kernel under pressure)\n"
          f"    under 1.5 GiB: {ok}")
    res["ok"] = ok
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=300)
    ap.add_argument("--store-samples", type=int, default=114000)
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--tmp", default=None, help="folder for the temporary files")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="zsbench-bench-", dir=args.tmp))
    try:
        speed = bench_speed(args.files, tmp)
        ok = all(r["identical"] for r in speed.values())
        if not args.skip_memory:
            ok = bench_memory(args.store_samples, tmp)["ok"] and ok
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

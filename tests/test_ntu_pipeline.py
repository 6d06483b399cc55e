"""The vectorised pipelines against straightforward loop implementations written from
DATA_FORMATS.md §2 and §3, on random multi-body files (noise tracks, reappearing IDs,
lying bodies, empty frames)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from zsbench_ntu import synth
from zsbench_ntu.ntu_parse import parse_skeleton
from zsbench_ntu.ntu_select import ctrgcn_array, stgcn_array
from zsbench_ntu.resample import crop_resize, motion_processor, resize_time


# ----------------------------------------------------------------- loop references ----
def ref_ctrgcn(path, copy_single):
    lines = Path(path).read_text().splitlines()
    idx, bodies, valid = 1, {}, -1
    for _ in range(int(lines[0])):
        nb = int(lines[idx]); idx += 1
        if nb == 0:
            continue
        valid += 1
        for _ in range(nb):
            bid = lines[idx].split()[0]; idx += 1
            nj = int(lines[idx]); idx += 1
            j = np.zeros((25, 3), np.float32)
            for k in range(nj):
                j[k] = np.array(lines[idx].split()[:3], dtype=np.float32); idx += 1
            if bid not in bodies:
                bodies[bid] = {"joints": [j], "interval": [valid]}
            else:
                bodies[bid]["joints"].append(j)
                bodies[bid]["interval"].append(bodies[bid]["interval"][-1] + 1)
    nf = valid + 1
    for b in bodies.values():
        b["joints"] = np.stack(b["joints"])
        b["motion"] = np.sum(np.var(b["joints"].reshape(-1, 3), axis=0))

    def one(b):
        out = np.zeros((nf, 75), np.float32)
        out[b["interval"][0]: b["interval"][-1] + 1] = b["joints"].reshape(-1, 75)
        return out

    if len(bodies) == 1:
        seq = one(next(iter(bodies.values())))
    else:
        live = {k: v for k, v in bodies.items() if len(v["interval"]) > 11}
        if not live:
            longest = max(len(v["interval"]) for v in bodies.values())
            k = next(k for k, v in bodies.items() if len(v["interval"]) == longest)
            live = {k: bodies[k]}
        for k in list(live):
            if len(live) == 1:
                break
            pts = live[k]["joints"]
            good = [i for i in range(len(pts)) if (pts[i, :, 0].max() - pts[i, :, 0].min())
                    <= 0.8 * float(pts[i, :, 1].max() - pts[i, :, 1].min())]
            noise = len(pts) - len(good)
            if noise == 0:
                continue
            if noise / float(len(pts)) >= 0.69754:
                del live[k]
            else:
                live[k]["motion"] = min(live[k]["motion"],
                                        np.sum(np.var(pts[good].reshape(-1, 3), axis=0)))
        order = sorted(live.items(), key=lambda kv: kv[1]["motion"], reverse=True)
        if len(order) == 1:
            seq = one(order[0][1])
        else:
            seq = np.zeros((nf, 150), np.float32)
            a1 = order[0][1]
            s1, e1 = a1["interval"][0], a1["interval"][-1]
            seq[s1: e1 + 1, :75] = a1["joints"].reshape(-1, 75)
            s2, e2 = 0, 0
            for _, b in order[1:]:
                s, e = b["interval"][0], b["interval"][-1]
                if min(e1, e) - max(s1, s) <= 0:
                    seq[s: e + 1, :75] = b["joints"].reshape(-1, 75); s1, e1 = min(s, s1), max(e, e1)
                elif min(e2, e) - max(s2, s) <= 0:
                    seq[s: e + 1, 75:] = b["joints"].reshape(-1, 75); s2, e2 = min(s, s2), max(e, e2)
        seq = seq[np.where(seq.sum(axis=1) != 0)[0]]
    width = seq.shape[1]
    if width == 150:
        m1 = np.where(seq[:, :75].sum(axis=1) == 0)[0]
        m2 = np.where(seq[:, 75:].sum(axis=1) == 0)[0]
    i = 0
    while i < len(seq) and not np.any(seq[i, :75] != 0):
        i += 1
    origin = np.copy(seq[i, 3:6])
    for f in range(len(seq)):
        seq[f] -= np.tile(origin, width // 3)
    if width == 150:
        seq[m1, :75] = 0
        seq[m2, 75:] = 0
    out = np.zeros((300, 150), np.float32)
    if width == 75:
        out[: len(seq)] = np.hstack((seq, seq if copy_single else np.zeros_like(seq)))
    else:
        out[: len(seq)] = seq
    return out.reshape(300, 2, 25, 3).transpose(3, 0, 2, 1)


def ref_stgcn(path):
    lines = Path(path).read_text().splitlines()
    idx = 1
    f_count = int(lines[0])
    data = np.zeros((3, 300, 25, 2))
    for t in range(f_count):
        nb = int(lines[idx]); idx += 1
        for m in range(nb):
            idx += 1
            nj = int(lines[idx]); idx += 1
            for j in range(nj):
                v = [float(x) for x in lines[idx].split()]; idx += 1
                if m < 2:
                    data[:, t, j, m] = v[:3]
    return data.astype(np.float32)


def ref_motion(x, out_len):
    x = x.copy()
    length = sum(1 for t in range(x.shape[1]) if abs(x[0, t, 0, 0]) + abs(x[1, t, 0, 0])
                 + abs(x[2, t, 0, 0]) != 0)
    for t in range(x.shape[1]):
        for m in range(2):
            x[:, t, :, m] = x[:, t, :, m] - x[:, t, 20:21, m]
    res = np.zeros((3, out_len, 25, 2), np.float32)
    for i in range(out_len):
        s = min(max((i + 0.5) * length / out_len - 0.5, 0.0), length - 1)
        i0 = int(math.floor(s)); i1 = min(i0 + 1, length - 1); w = np.float32(s - i0)
        res[:, i] = x[:, i0] * (np.float32(1) - w) + x[:, i1] * w
    out = np.zeros_like(res)
    for m in range(2):
        r = res[..., m].astype(np.float64)
        sum_z, thetas = 0.0, []
        for t in range(out_len):
            vx = r[0, t, 8] - r[0, t, 4]; vz = r[2, t, 8] - r[2, t, 4]
            sum_z += vz
            thetas.append(math.acos(max(-1.0, min(1.0, vx / (math.hypot(vx, vz) + 1e-4)))))
        for t in range(out_len):
            th = -thetas[t] if sum_z >= 0 else thetas[t]
            c, s = math.cos(th), math.sin(th)
            out[0, t, :, m] = c * r[0, t] - s * r[2, t]
            out[1, t, :, m] = r[1, t]
            out[2, t, :, m] = s * r[0, t] + c * r[2, t]
    return out


def random_multibody_file(tmp_path, rng, k):
    length = int(rng.integers(25, 90))
    tracks = []
    for b in range(int(rng.integers(1, 5))):
        start = int(rng.integers(0, length // 2))
        n = int(rng.integers(5, length - start + 1))
        xyz = synth.synth_body(n, rng)
        if rng.random() < 0.25:                       # a lying (noisy) body
            xyz[..., [0, 1]] = xyz[..., [1, 0]]
        tracks.append((str(72057594037000000 + 10 * b), start, xyz))
    if rng.random() < 0.3:                            # a reappearing ID
        tracks.append((tracks[0][0], length - 3, synth.synth_body(3, rng)))
    empty = rng.choice(length, size=int(rng.integers(0, 4)), replace=False).tolist()
    frames = synth.frames_from_tracks(length, tracks, empty=empty)
    if not any(frames):
        frames[0] = [("1", synth.synth_body(1, rng)[0])]
    return synth.write_skeleton(tmp_path / f"f{k}.skeleton", frames)


@pytest.mark.parametrize("copy_single", [False, True])
def test_ctrgcn_matches_loop_reference(tmp_path, copy_single):
    rng = np.random.default_rng(21 + copy_single)
    for k in range(25):
        path = random_multibody_file(tmp_path, rng, k)
        got = ctrgcn_array(parse_skeleton(path), {}, "copy" if copy_single else "zeros")
        assert np.array_equal(got, ref_ctrgcn(path, copy_single)), path


def test_stgcn_and_motion_processor_match_loop_reference(tmp_path):
    rng = np.random.default_rng(23)
    for k in range(12):
        path = random_multibody_file(tmp_path, rng, k)
        arr = stgcn_array(parse_skeleton(path), {})
        ref = ref_stgcn(path)
        assert np.array_equal(arr, ref)
        if np.abs(ref[:, :, 0, 0]).sum(axis=0).any():
            got = motion_processor(arr, 50)
            assert np.allclose(got, ref_motion(ref, 50), atol=2e-6, rtol=0)


def test_motion_processor_properties():
    rng = np.random.default_rng(5)
    x = np.zeros((3, 300, 25, 2), np.float32)
    body = synth.synth_body(40, rng)
    c, s = np.cos(0.5), np.sin(0.5)                      # turned: shoulders have vz > 0
    x0, z0 = body[..., 0].copy(), body[..., 2].copy()
    body[..., 0], body[..., 2] = c * x0 - s * z0, s * x0 + c * z0
    x[:, 3:43, :, 0] = body.transpose(2, 0, 1)          # 3 leading empty frames
    out = motion_processor(x, 50)
    assert out.shape == (3, 50, 25, 2) and not out[..., 1].any()
    assert np.allclose(out[:, :, 20, 0], 0)             # relative to joint 20
    # reference window: the first L = 40 frames, i.e. the 3 empty ones are kept and the
    # last 3 valid frames are cut, so the first output frames are (blends with) zeros
    assert not out[:, :3, :, 0].any() and out[:, 4:, :, 0].any()
    fixed = motion_processor(x, 50, window="fixed")
    v = fixed[:, :, 8, 0] - fixed[:, :, 4, 0]
    # shoulders turned onto +x (up to the +1e-4 the reference adds to |v|)
    assert np.all(v[0] > 0) and np.all(np.abs(v[2]) < 0.05 * v[0])
    assert np.allclose(fixed[:, :, 20, 0], 0) and fixed[:, 0, :, 0].any()


def test_resize_time_half_pixel_rule():
    x = np.arange(7, dtype=np.float32).reshape(1, 7)
    out = resize_time(x, 3)
    # s = (i + 0.5) * 7/3 - 0.5 = 0.6667, 3.0, 5.3333
    assert np.allclose(out[0], [0.6666667, 3.0, 5.3333335])
    assert np.array_equal(resize_time(x, 7), x)
    one = resize_time(np.ones((1, 1), np.float32) * 4, 5)
    assert np.array_equal(one, np.full((1, 5), 4, np.float32))


def test_crop_resize_uses_valid_prefix():
    x = np.zeros((3, 300, 25, 2), np.float32)
    x[:, :80] = np.linspace(1, 2, 80, dtype=np.float32)[None, :, None, None]
    full = crop_resize(x, 64)
    # output frame 0 samples source position 0.5 * 80 / 64 - 0.5 = 0.125 (step 1/79)
    assert np.isclose(full[0, 0, 0, 0], 1.0 + 0.125 / 79, atol=1e-6)
    assert full.shape == (3, 64, 25, 2) and full.min() >= 1 and full.max() <= 2
    centre = crop_resize(x, 64, ratio=0.5)
    assert centre.min() > full.min() and centre.max() < full.max()

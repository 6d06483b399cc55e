"""Writers for the raw formats and a generator of plausible skeleton sequences.

Used by the tests and by ``benchmarks/bench_prepare.py`` to build fixture trees in the
exact raw formats (never real data). x, y, z are written with 9 significant digits (or
positionally for tiny values), which round-trips float32 exactly.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

# A standing Kinect v2 pose (metres, relative to SpineBase), joint order of §1.3.
BASE_POSE = np.array([
    [0.00, 0.00, 0.00], [0.00, 0.30, -0.02], [0.00, 0.55, -0.04], [0.00, 0.68, -0.05],
    [-0.17, 0.48, -0.04], [-0.22, 0.22, -0.03], [-0.24, -0.02, -0.02], [-0.25, -0.09, -0.02],
    [0.17, 0.48, -0.04], [0.22, 0.22, -0.03], [0.24, -0.02, -0.02], [0.25, -0.09, -0.02],
    [-0.09, -0.02, 0.00], [-0.10, -0.42, 0.02], [-0.10, -0.80, 0.04], [-0.11, -0.86, -0.06],
    [0.09, -0.02, 0.00], [0.10, -0.42, 0.02], [0.10, -0.80, 0.04], [0.11, -0.86, -0.06],
    [0.00, 0.48, -0.04], [-0.26, -0.15, -0.02], [-0.23, -0.10, 0.02], [0.26, -0.15, -0.02],
    [0.23, -0.10, 0.02]], dtype=np.float64)


def synth_body(length: int, rng: np.random.Generator, centre: Sequence[float] | None = None,
               speed: float | None = None) -> np.ndarray:
    """A (length, 25, 3) float32 sequence: a scaled standing pose at ``centre`` with
    waving arms, a little sway and sensor noise."""
    centre = np.asarray(centre if centre is not None else
                        [rng.uniform(-0.8, 0.8), rng.uniform(-0.3, 0.3), rng.uniform(2.2, 3.8)])
    scale = rng.uniform(0.85, 1.15)
    speed = speed if speed is not None else rng.uniform(0.05, 0.25)
    t = np.arange(length)[:, None]
    pose = np.repeat(BASE_POSE[None] * scale, length, axis=0)
    wave = np.sin(speed * t + rng.uniform(0, 6.28))
    for arm in ((5, 6, 7, 21, 22), (9, 10, 11, 23, 24)):
        for k, j in enumerate(arm):
            pose[:, j, 1] += 0.12 * (k + 1) * wave[:, 0] * rng.uniform(0.5, 1.0)
            pose[:, j, 2] -= 0.05 * (k + 1) * wave[:, 0]
    pose[:, :, 0] += 0.03 * np.sin(0.03 * t)
    pose += centre[None, None, :]
    pose += rng.normal(0, 0.004, size=pose.shape)
    return quantize(pose)


def quantize(x: np.ndarray) -> np.ndarray:
    """float32 values with 7 significant decimal digits, like the Kinect SDK export."""
    x = np.asarray(x, dtype=np.float64)
    mag = np.floor(np.log10(np.maximum(np.abs(x), 1e-30)))
    step = 10.0 ** (mag - 6)
    return (np.round(x / step) * step).astype(np.float32)


def fmt(v: float) -> str:
    """A string that parses back to the same float32 (7 significant digits if enough)."""
    v = float(v)
    if v != 0 and abs(v) < 1e-4:
        return np.format_float_positional(np.float32(v), unique=True, trim="-")
    s = "%.7g" % v
    return s if np.float32(float(s)) == np.float32(v) else "%.9g" % v


def fmt_many(values: np.ndarray) -> list[str]:
    """``fmt`` for a float32 array, checked in bulk (fast)."""
    flat = np.asarray(values, dtype=np.float32).ravel()
    strs = ["%.7g" % v for v in flat.tolist()]
    back = np.fromstring(" ".join(strs), dtype=np.float64, sep=" ").astype(np.float32)
    odd = np.flatnonzero((back != flat) | ((np.abs(flat) < 1e-4) & (flat != 0)))
    for i in odd.tolist():
        strs[i] = fmt(flat[i])
    return strs


Frame = Sequence[tuple[str, np.ndarray]]   # (body ID, (25, 3) xyz) per body


def skeleton_text(frames: Iterable[Frame], newline: str = "\n", final_newline: bool = True,
                  num_frames: int | None = None) -> str:
    """The ``.skeleton`` text of ``frames`` (each a list of (body ID, xyz) bodies).
    ``num_frames`` overrides the header (to write a truncated file)."""
    frames = list(frames)
    bodies_xyz = [np.asarray(xyz, dtype=np.float32) for bodies in frames for _, xyz in bodies]
    strs = iter(fmt_many(np.concatenate([b.ravel() for b in bodies_xyz])) if bodies_xyz else [])
    out = [str(len(frames) if num_frames is None else num_frames)]
    for bodies in frames:
        out.append(str(len(bodies)))
        for body_id, xyz in bodies:
            out.append(f"{body_id} 0 1 1 1 1 0 0.02764709 0.05745083 2")
            out.append(str(len(xyz)))
            for j in range(len(xyz)):
                out.append(f"{next(strs)} {next(strs)} {next(strs)} {277.419 + j:.3f} 191.8218 "
                           "1036.233 519.1677 -0.2059419 0.05349901 0.9692109 -0.1239193 2")
    text = newline.join(out)
    return text + newline if final_newline else text


def write_skeleton(path: str | Path, frames: Iterable[Frame], **kw) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="ascii", newline="") as fh:
        fh.write(skeleton_text(frames, **kw))
    return path


def frames_from_tracks(num_frames: int, tracks: Sequence[tuple[str, int, np.ndarray]],
                       empty: Iterable[int] = ()) -> list[list[tuple[str, np.ndarray]]]:
    """Frames from tracks ``(body ID, first frame, (n, 25, 3))``; ``empty`` frames get no
    body. Within a frame bodies appear in track order."""
    empty = set(empty)
    frames: list[list[tuple[str, np.ndarray]]] = [[] for _ in range(num_frames)]
    for body_id, start, xyz in tracks:
        for k in range(len(xyz)):
            t = start + k
            if 0 <= t < num_frames and t not in empty:
                frames[t].append((body_id, xyz[k]))
    return frames


def random_ntu_frames(rng: np.random.Generator, length: int | None = None,
                      two_bodies: bool | None = None) -> list[list[tuple[str, np.ndarray]]]:
    """A plausible NTU sample: one or two actors, sometimes a short noisy extra track."""
    length = length or int(rng.integers(40, 120))
    two = rng.random() < 0.3 if two_bodies is None else two_bodies
    base = 72057594037900000 + int(rng.integers(0, 99999))
    tracks = [(str(base), 0, synth_body(length, rng, centre=[-0.4, 0.0, 3.0] if two else None))]
    if two:
        tracks.append((str(base + 1), 0, synth_body(length, rng, centre=[0.5, 0.0, 3.2])))
    if rng.random() < 0.15:
        start = int(rng.integers(0, max(1, length - 8)))
        tracks.append((str(base + 7), start, synth_body(min(8, length - start), rng)))
    return frames_from_tracks(length, tracks)


def write_pku_skeleton(path: str | Path, rows: np.ndarray, newline: str = "\n",
                       extra_columns: int = 0) -> Path:
    """One line per frame with the 150 values (plus ``extra_columns`` zeros)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tail = " 0" * extra_columns
    rows = np.asarray(rows, np.float32)
    strs = fmt_many(rows) if rows.size else []
    width = rows.shape[1] if rows.ndim == 2 else 0
    lines = [" ".join(strs[i * width:(i + 1) * width]) + tail for i in range(len(rows))]
    with open(path, "w", encoding="ascii", newline="") as fh:
        fh.write(newline.join(lines) + newline)
    return path


def write_pku_labels(path: str | Path, rows: Sequence[Sequence[int]], newline: str = "\n",
                     trailing_comma: bool = False) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tail = "," if trailing_comma else ""
    with open(path, "w", encoding="ascii", newline="") as fh:
        fh.write(newline.join(",".join(str(int(v)) for v in r) + tail for r in rows) + newline)
    return path


def write_pku_split(path: str | Path, train: Sequence[str], test: Sequence[str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("Training videos: \n" + ", ".join(train) + "\nValidataion videos: \n"
                    + ", ".join(test) + "\n", encoding="ascii")
    return path


def random_pku_video(rng: np.random.Generator, num_frames: int, num_clips: int,
                     num_classes: int = 51) -> tuple[np.ndarray, list[list[int]]]:
    """(num_frames, 150) rows and label rows (action, start, end, confidence) of
    non-overlapping clips; the second body is present in about a third of the clips."""
    rows = np.zeros((num_frames, 150), dtype=np.float32)
    labels = []
    edges = np.linspace(1, num_frames + 1, num_clips + 1).astype(int)
    for k in range(num_clips):
        s, e = int(edges[k]) + 2, int(edges[k + 1]) - 3
        n = e - s + 1
        rows[s - 1: e, :75] = synth_body(n, rng).reshape(n, 75)
        if rng.random() < 0.33:
            rows[s - 1: e, 75:] = synth_body(n, rng).reshape(n, 75)
        labels.append([int(rng.integers(1, num_classes + 1)), s, e, int(rng.integers(1, 3))])
    return rows, labels

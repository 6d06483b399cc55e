"""Fixed-length resampling of (3, T, 25, 2) arrays (DATA_FORMATS.md §3.2, §3.5, §4.4).

* ``motion_processor``: CrossCLR/AimCLR/SMIE 50-frame (and Flora/STAR PKU 64-frame)
  processing: coordinates relative to joint 20, the first ``L`` frames resized with
  half-pixel linear interpolation (``L`` = number of frames whose slot-0 SpineBase is
  non-zero), per-frame rotation about the y axis aligning the shoulders with +x.
* ``crop_resize``: STAR/Neuron 64-frame NTU input, made deterministic: the valid frames
  (optionally centre-cropped to a ratio) resized to 64 frames.
* ``centre_crop_pad``: PKU 300-frame clip arrays.
"""
from __future__ import annotations

from typing import Literal

import numpy as np

from .ntu_select import SampleSkipped


def resize_time(x: np.ndarray, out_len: int) -> np.ndarray:
    """Resize axis 1 of ``x`` (C, L, ...) to ``out_len`` samples with half-pixel linear
    interpolation (OpenCV INTER_LINEAR / torch ``align_corners=False``), float32."""
    length = x.shape[1]
    s = (np.arange(out_len, dtype=np.float64) + 0.5) * (length / out_len) - 0.5
    np.clip(s, 0, length - 1, out=s)
    i0 = np.floor(s).astype(np.int64)
    i1 = np.minimum(i0 + 1, length - 1)
    w = (s - i0).astype(np.float32)
    shape = (1, out_len) + (1,) * (x.ndim - 2)
    w = w.reshape(shape)
    return (x[:, i0] * (np.float32(1) - w) + x[:, i1] * w).astype(np.float32)


def motion_processor(x: np.ndarray, out_len: int,
                     window: Literal["reference", "fixed"] = "reference",
                     name: str = "") -> np.ndarray:
    """(3, T, 25, 2) float32 -> (3, out_len, 25, 2) float32 (see module docstring).

    ``window="reference"`` takes the first ``L`` frames (leading empty frames are kept and
    as many trailing valid frames are cut, as the reference does); ``"fixed"`` takes the
    span from the first to the last valid frame.
    """
    x = np.asarray(x, dtype=np.float32)
    valid = (np.abs(x[0, :, 0, 0]) + np.abs(x[1, :, 0, 0]) + np.abs(x[2, :, 0, 0])) != 0
    count = int(valid.sum())
    if count == 0:
        raise SampleSkipped("zero_length", f"{name}: body slot 0 is empty in every frame "
                            "(no valid frame to resample)")
    if window == "reference":
        part = x[:, :count]
    else:
        idx = np.flatnonzero(valid)
        part = x[:, idx[0]: idx[-1] + 1]
    rel = part - part[:, :, 20:21, :]          # per frame and body, relative to joint 20
    res = resize_time(rel, out_len).astype(np.float64)
    vx = res[0, :, 8, :] - res[0, :, 4, :]          # (T', M)
    vz = res[2, :, 8, :] - res[2, :, 4, :]
    norm = np.sqrt(vx * vx + vz * vz)
    theta = np.arccos(np.clip(vx / (norm + 1e-4), -1.0, 1.0))
    flip = vz.sum(axis=0) >= 0                       # per body slot
    theta = np.where(flip[None, :], -theta, theta)
    c, s = np.cos(theta)[:, None, :], np.sin(theta)[:, None, :]   # (T', 1, M)
    out = np.empty_like(res)
    out[0] = c * res[0] - s * res[2]
    out[1] = res[1]
    out[2] = s * res[0] + c * res[2]
    return out.astype(np.float32)


def crop_resize(x: np.ndarray, out_len: int = 64, ratio: float = 1.0, name: str = "") -> np.ndarray:
    """STAR/Neuron ``valid_crop_resize`` with a fixed ratio ``p``: ``n`` = number of frames
    whose values are not all zero (assumed a prefix, as in CTR-GCN arrays); with ``p < 1``
    ``int((1 - p) * n / 2)`` frames are removed at each end; the rest is resized."""
    x = np.asarray(x, dtype=np.float32)
    n = int((x.sum(axis=(0, 2, 3)) != 0).sum())
    if n == 0:
        raise SampleSkipped("zero_length", f"{name}: every frame is zero (nothing to resize)")
    bias = int((1 - ratio) * n / 2) if ratio < 1 else 0
    part = x[:, bias: n - bias]
    if part.shape[1] == 0:
        part = x[:, :n]
    return resize_time(part, out_len)


def centre_crop_pad(rows: np.ndarray, out_len: int = 300) -> np.ndarray:
    """PKU clip rows (L, 150) -> (3, out_len, 25, 2): longer clips are centre-cropped
    (``(L - out_len) // 2`` frames dropped at the start), shorter ones zero-padded."""
    length = len(rows)
    if length > out_len:
        start = (length - out_len) // 2
        rows = rows[start: start + out_len]
        length = out_len
    out = np.zeros((out_len, 150), dtype=np.float32)
    out[:length] = rows
    return np.ascontiguousarray(out.reshape(out_len, 2, 25, 3).transpose(3, 0, 2, 1))

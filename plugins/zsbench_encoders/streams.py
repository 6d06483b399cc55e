"""Input streams of the four-stream Shift-GCN: joint, bone, joint motion, bone motion.

All functions take joint sequences shaped (N, C, T, V, M) (numpy arrays or torch tensors)
and return the same shape and type:

* bone (Shift-GCN ``gen_bone_data.py``): ``bone[..., v1, :] = joint[..., v1, :] -
  joint[..., v2, :]`` for the 25 NTU pairs; the SpineShoulder bone (21, 21) is zero;
* motion (``gen_motion_data.py``): ``m[:, :, t] = x[:, :, t + 1] - x[:, :, t]``, last frame 0.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from zsbench.api import ZsbenchError
from zsbench.nn.graph import NUM_JOINTS, bone_parents

STREAMS: tuple[str, ...] = ("joint", "bone", "joint_motion", "bone_motion")
_PARENTS = bone_parents()


def _check(x: Any) -> None:
    if x.ndim != 5 or x.shape[3] != NUM_JOINTS:
        raise ZsbenchError(f"streams expect (N, C, T, {NUM_JOINTS}, M) joint data, "
                           f"got shape {tuple(x.shape)}")


def to_bone(x: Any) -> Any:
    """Bone vectors ``joint[v] - joint[parent[v]]`` (zero for the centre joint)."""
    _check(x)
    if isinstance(x, np.ndarray):
        return x - x[:, :, :, _PARENTS, :]
    import torch

    idx = torch.as_tensor(_PARENTS, device=x.device)
    return x - x.index_select(3, idx)


def to_motion(x: Any) -> Any:
    """Frame differences ``x[t + 1] - x[t]``; the last frame is zero."""
    _check(x)
    if isinstance(x, np.ndarray):
        out = np.zeros_like(x)
    else:
        import torch

        out = torch.zeros_like(x)
    out[:, :, :-1] = x[:, :, 1:] - x[:, :, :-1]
    return out


def to_stream(x: Any, stream: str) -> Any:
    """Turn joint data into the named stream (``joint`` returns ``x`` itself)."""
    if stream == "joint":
        _check(x)
        return x
    if stream == "bone":
        return to_bone(x)
    if stream == "joint_motion":
        return to_motion(x)
    if stream == "bone_motion":
        return to_motion(to_bone(x))
    raise ZsbenchError(f"unknown stream {stream!r}; known: {', '.join(STREAMS)}")

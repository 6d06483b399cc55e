"""Turn compositions into joint trajectories: pose channels per body, forward kinematics,
placement of the second person, camera views, noise and zero padding."""
from __future__ import annotations

import numpy as np

from .primitives import (PARTNER_BODY, PRIMITIVES, Motion, apply_primitive, finish_pose,
                         rest_pose)
from .skeleton import NUM_JOINTS, pitch_matrix, yaw_matrix

BODY_SLOTS = ("right_arm", "left_arm", "legs", "torso")
# hands, hand tips and thumbs are tracked less precisely than the trunk (Kinect)
_NOISE_WEIGHT = np.ones(NUM_JOINTS)
_NOISE_WEIGHT[[7, 11, 21, 22, 23, 24]] = 1.8
_NOISE_WEIGHT[[6, 10, 15, 19]] = 1.3


def body_codes(comps: list[dict[str, str]]) -> np.ndarray:
    """(K, 4) primitive index per body slot for the performer of each class."""
    return np.array([[PRIMITIVES[s].index(c[s]) for s in BODY_SLOTS] for c in comps])


def partner_codes(comps: list[dict[str, str]]) -> np.ndarray:
    """(K, 4) primitive index per body slot for the second person (neutral if none)."""
    rows = []
    for c in comps:
        body = PARTNER_BODY.get(c["partner"], {})
        rows.append([PRIMITIVES[s].index(body[s]) if s in body else 0 for s in BODY_SLOTS])
    return np.array(rows)


def pose_angles(codes: np.ndarray, s: np.ndarray, tempo: np.ndarray, amp: np.ndarray,
                offset: np.ndarray) -> dict[str, np.ndarray]:
    """Pose channels (n, T) for bodies whose slot primitives are ``codes`` (n, 4).
    ``amp`` and ``offset`` are (n, 4), one per slot; arms are written first because the
    leg and torso primitives add to the arm and torso channels."""
    n, t = s.shape
    pose = rest_pose(n, t)
    for si, slot in enumerate(BODY_SLOTS):
        for pi, name in enumerate(PRIMITIVES[slot]):
            rows = np.flatnonzero(codes[:, si] == pi)
            if rows.size == 0:
                continue
            m = Motion(pose, rows, s[rows], tempo[rows, None], amp[rows, si, None],
                       offset[rows, si, None])
            apply_primitive(slot, name, m)
    finish_pose(pose)
    return pose


def action_phase(n: int, frames: int, lengths: np.ndarray, warp: np.ndarray,
                 idle: np.ndarray) -> np.ndarray:
    """(n, T) action phase in [0, 1] for sequences of ``lengths`` frames: a short idle
    period at both ends (``idle`` (n, 2), fractions) and a monotone time warp
    (``warp`` in (-1, 1)) that makes the action speed up or slow down."""
    t = np.arange(frames)[None, :]
    u = np.clip(t / np.maximum(lengths[:, None] - 1, 1), 0.0, 1.0)
    s = np.clip((u - idle[:, :1]) / (1.0 - idle[:, :1] - idle[:, 1:]), 0.0, 1.0)
    return s + warp[:, None] * np.sin(2 * np.pi * s) / (2 * np.pi)


def place(joints: np.ndarray, yaw_deg: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Rotate bodies (n, T, 25, 3) to face ``yaw_deg`` and move them by ``offset`` (n, 3)."""
    rot = yaw_matrix(np.deg2rad(yaw_deg))  # (n, 3, 3)
    return np.einsum("nij,ntvj->ntvi", rot, joints) + offset[:, None, None, :]


def view(world: np.ndarray, cam_yaw_deg: np.ndarray, pitch_deg: np.ndarray) -> np.ndarray:
    """Camera-space coordinates of world points (n, T, V, M, 3): the camera turned by
    ``cam_yaw_deg`` about the vertical axis and tilted by ``pitch_deg``."""
    rot = pitch_matrix(np.deg2rad(pitch_deg)) @ yaw_matrix(np.deg2rad(-cam_yaw_deg))
    return np.einsum("nij,ntvmj->ntvmi", rot, world)


def finish(world: np.ndarray, lengths: np.ndarray, two_person: np.ndarray,
           noise_std: float, rng: np.random.Generator) -> np.ndarray:
    """Add joint noise, zero the absent second body and the padded frames, and return
    float32 (n, 3, T, 25, 2)."""
    n, t = world.shape[:2]
    out = world.astype(np.float32)
    if noise_std > 0:
        noise = rng.standard_normal(out.shape, dtype=np.float32)
        out += noise * (noise_std * _NOISE_WEIGHT).astype(np.float32)[None, None, :, None, None]
    valid = np.arange(t)[None, :] < lengths[:, None]
    out *= valid[:, :, None, None, None]
    out[~two_person, :, :, 1, :] = 0.0
    return np.ascontiguousarray(out.transpose(0, 4, 1, 2, 3))

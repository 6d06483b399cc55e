"""The NTU 25-joint skeleton: layout, per-subject bone lengths and forward kinematics.

Body frame (before the camera transform): x = the performer's right, y = up,
-z = the performer's forward direction (a person facing the camera looks along -z, as in
Kinect camera space). Units are metres. Everything is vectorised over (n, T).
"""
from __future__ import annotations

import numpy as np

NUM_JOINTS = 25

JOINT_NAMES = (
    "base of spine", "middle of spine", "neck", "head",
    "left shoulder", "left elbow", "left wrist", "left hand",
    "right shoulder", "right elbow", "right wrist", "right hand",
    "left hip", "left knee", "left ankle", "left foot",
    "right hip", "right knee", "right ankle", "right foot",
    "spine shoulder", "left hand tip", "left thumb", "right hand tip", "right thumb",
)

# (child, parent), 0-based: the ST-GCN 'ntu-rgb+d' bones (DATA_FORMATS.md section 1.4).
BONES = (
    (0, 1), (1, 20), (2, 20), (3, 2), (4, 20), (5, 4), (6, 5), (7, 6), (8, 20), (9, 8),
    (10, 9), (11, 10), (12, 0), (13, 12), (14, 13), (15, 14), (16, 0), (17, 16), (18, 17),
    (19, 18), (21, 22), (22, 7), (23, 24), (24, 11),
)

RIGHT = np.array([1.0, 0.0, 0.0])
UP = np.array([0.0, 1.0, 0.0])
FORWARD = np.array([0.0, 0.0, -1.0])

# Segment lengths of an average adult (metres) and the proportion group each belongs to.
SEGMENTS = {
    "spine_low": (0.27, "torso"), "spine_up": (0.24, "torso"), "neck": (0.07, "torso"),
    "head": (0.14, "torso"), "shoulder_w": (0.17, "width"), "shoulder_drop": (0.04, "torso"),
    "upper_arm": (0.27, "arm"), "forearm": (0.25, "arm"), "hand": (0.08, "arm"),
    "hand_tip": (0.07, "arm"), "thumb": (0.045, "arm"), "hip_w": (0.08, "width"),
    "hip_drop": (0.05, "torso"), "thigh": (0.42, "leg"), "shin": (0.40, "leg"),
    "foot": (0.12, "leg"),
}
SEGMENT_NAMES = tuple(SEGMENTS)
_GROUPS = ("torso", "width", "arm", "leg")


def subject_segments(num_subjects: int, rng: np.random.Generator) -> np.ndarray:
    """(num_subjects, len(SEGMENTS)) segment lengths: a global scale times a per-group
    proportion, so subjects differ both in size and in build."""
    scale = np.clip(rng.normal(1.0, 0.07, num_subjects), 0.85, 1.15)
    ratio = np.clip(rng.normal(1.0, 0.05, (num_subjects, len(_GROUPS))), 0.88, 1.12)
    base = np.array([length for length, _ in SEGMENTS.values()])
    group = np.array([_GROUPS.index(g) for _, g in SEGMENTS.values()])
    return base[None, :] * scale[:, None] * ratio[:, group]


def _rot_x(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1),
                     np.stack([z, s, c], -1)], -2)


def _rot_y(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1),
                     np.stack([-s, z, c], -1)], -2)


def _rot_z(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1),
                     np.stack([z, z, o], -1)], -2)


def yaw_matrix(angle: np.ndarray) -> np.ndarray:
    """Rotation about the vertical axis; positive turns forward (-z) towards the right (+x)."""
    return _rot_y(-np.asarray(angle, dtype=np.float64))


def pitch_matrix(angle: np.ndarray) -> np.ndarray:
    """Rotation about the right axis; positive tips up (+y) towards forward (-z)."""
    return _rot_x(-np.asarray(angle, dtype=np.float64))


def roll_matrix(angle: np.ndarray) -> np.ndarray:
    """Rotation about the forward axis; positive tips up (+y) towards the right (+x)."""
    return _rot_z(-np.asarray(angle, dtype=np.float64))


def limb_direction(theta: np.ndarray, phi: np.ndarray, side: float) -> np.ndarray:
    """Unit vector of a limb segment (radians). theta: angle from hanging straight down
    (0 = down, pi/2 = horizontal, pi = straight up); phi: azimuth from lateral-outwards
    (0) towards forward (pi/2); ``side`` is +1 for the right, -1 for the left limb."""
    st = np.sin(theta)
    return (st * np.cos(phi) * side)[..., None] * RIGHT + (-np.cos(theta))[..., None] * UP \
        + (st * np.sin(phi))[..., None] * FORWARD


def _apply(rot: np.ndarray, vec: np.ndarray) -> np.ndarray:
    return np.einsum("ntij,ntj->nti", rot, vec)


def _perpendicular(d: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """A unit vector perpendicular to ``d``: ``first`` projected out of d, or ``second``
    where ``first`` is nearly parallel to d."""
    a = first - np.sum(first * d, -1, keepdims=True) * d
    b = second - np.sum(second * d, -1, keepdims=True) * d
    na = np.linalg.norm(a, axis=-1, keepdims=True)
    nb = np.linalg.norm(b, axis=-1, keepdims=True)
    out = np.where(na > 0.3, a / np.maximum(na, 1e-9), b / np.maximum(nb, 1e-9))
    return out


def forward_kinematics(pose: dict[str, np.ndarray], seg: np.ndarray) -> np.ndarray:
    """Joint positions (n, T, 25, 3) in the body frame, feet on the ground (y = 0 at the
    lowest ankle minus its height), from pose angles in degrees (arrays (n, T)) and
    segment lengths ``seg`` (n, len(SEGMENTS))."""
    n, t = pose["bow"].shape
    rad = {k: np.deg2rad(v) for k, v in pose.items() if k != "lift"}
    L = {name: seg[:, i][:, None, None] for i, name in enumerate(SEGMENT_NAMES)}
    upper = yaw_matrix(rad["twist"]) @ roll_matrix(rad["lean"]) @ pitch_matrix(rad["bow"])
    head_rot = upper @ pitch_matrix(rad["nod"])
    up_t = _apply(upper, np.broadcast_to(UP, (n, t, 3)))
    right_t = _apply(upper, np.broadcast_to(RIGHT, (n, t, 3)))
    fwd_t = _apply(upper, np.broadcast_to(FORWARD, (n, t, 3)))
    j = np.zeros((n, t, NUM_JOINTS, 3))
    j[:, :, 1] = up_t * L["spine_low"]
    j[:, :, 20] = j[:, :, 1] + up_t * L["spine_up"]
    j[:, :, 2] = j[:, :, 20] + up_t * L["neck"]
    j[:, :, 3] = j[:, :, 2] + _apply(head_rot, np.broadcast_to(UP, (n, t, 3))) * L["head"]
    for side, sgn, (sh, el, wr, ha, tip, th) in (("l", -1.0, (4, 5, 6, 7, 21, 22)),
                                                 ("r", 1.0, (8, 9, 10, 11, 23, 24))):
        j[:, :, sh] = j[:, :, 20] + sgn * right_t * L["shoulder_w"] - up_t * L["shoulder_drop"]
        d_up = _apply(upper, limb_direction(rad[f"{side}ua_th"], rad[f"{side}ua_ph"], sgn))
        d_fa = _apply(upper, limb_direction(rad[f"{side}fa_th"], rad[f"{side}fa_ph"], sgn))
        j[:, :, el] = j[:, :, sh] + d_up * L["upper_arm"]
        j[:, :, wr] = j[:, :, el] + d_fa * L["forearm"]
        j[:, :, ha] = j[:, :, wr] + d_fa * L["hand"]
        j[:, :, tip] = j[:, :, ha] + d_fa * L["hand_tip"]
        palm = _perpendicular(d_fa, fwd_t, up_t)
        j[:, :, th] = j[:, :, ha] + d_fa * (0.4 * L["thumb"]) + palm * L["thumb"]
    fwd = np.broadcast_to(FORWARD, (n, t, 3))
    for side, sgn, (hip, knee, ankle, foot) in (("l", -1.0, (12, 13, 14, 15)),
                                                ("r", 1.0, (16, 17, 18, 19))):
        j[:, :, hip] = sgn * RIGHT * L["hip_w"] - UP * L["hip_drop"]
        # legs move in the sagittal plane: signed angles, positive = forward
        d_th = limb_direction(rad[f"{side}th"], np.full((n, t), np.pi / 2), sgn)
        d_sh = limb_direction(rad[f"{side}sh"], np.full((n, t), np.pi / 2), sgn)
        j[:, :, knee] = j[:, :, hip] + d_th * L["thigh"]
        j[:, :, ankle] = j[:, :, knee] + d_sh * L["shin"]
        toe = _perpendicular(d_sh, fwd, UP)
        toe = toe + 0.7 * fwd
        toe /= np.linalg.norm(toe, axis=-1, keepdims=True)
        j[:, :, foot] = j[:, :, ankle] + toe * L["foot"] - UP * (0.3 * L["foot"])
    # stance: the lowest ankle stays on the ground; "lift" raises the whole body (jumps)
    ground = np.minimum(j[:, :, 14, 1], j[:, :, 18, 1])
    j[..., 1] -= ground[..., None]
    j[..., 1] += pose["lift"][..., None]
    return j

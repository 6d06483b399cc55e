"""Body-part motion primitives as smooth joint-angle trajectories.

A class is a composition: one primitive per slot (right arm, left arm, legs, torso) plus
an optional partner primitive (a second person). Each primitive writes the pose channels
of its body part (angles in degrees, see ``skeleton.forward_kinematics``) for the rows of
the samples that use it, as a function of the action phase ``s`` in [0, 1].
"""
from __future__ import annotations

from typing import Callable

import numpy as np

SLOTS = ("right_arm", "left_arm", "legs", "torso", "partner")
ARM_PRIMITIVES = ("hold", "raise", "wave", "punch", "circle", "reach_floor", "touch_head")
PRIMITIVES: dict[str, tuple[str, ...]] = {
    "right_arm": ARM_PRIMITIVES,
    "left_arm": ARM_PRIMITIVES,
    "legs": ("stand", "squat", "kick", "step", "jump"),
    "torso": ("upright", "bow", "twist", "lean", "nod"),
    "partner": ("none", "still", "wave", "bow", "raise_both"),
}
NEUTRAL = {"right_arm": "hold", "left_arm": "hold", "legs": "stand", "torso": "upright",
           "partner": "none"}
# what the second person's body does for each partner primitive
PARTNER_BODY: dict[str, dict[str, str]] = {
    "still": {},
    "wave": {"right_arm": "wave"},
    "bow": {"torso": "bow"},
    "raise_both": {"right_arm": "raise", "left_arm": "raise"},
}

POSE_CHANNELS = ("bow", "lean", "twist", "nod", "lift",
                 "lua_th", "lua_ph", "lfa_th", "lfa_ph", "rua_th", "rua_ph", "rfa_th", "rfa_ph",
                 "lth", "lsh", "rth", "rsh")
REST = {"lua_th": 8.0, "lua_ph": 0.0, "lfa_th": 12.0, "lfa_ph": 30.0,
        "rua_th": 8.0, "rua_ph": 0.0, "rfa_th": 12.0, "rfa_ph": 30.0,
        "lth": 2.0, "lsh": -2.0, "rth": 2.0, "rsh": -2.0}


def primitive_id(slot: str, name: str) -> str:
    return f"{slot}:{name}"


def rest_pose(n: int, t: int) -> dict[str, np.ndarray]:
    return {c: np.full((n, t), REST.get(c, 0.0)) for c in POSE_CHANNELS}


def smoothstep(a: float, b: float, x: np.ndarray) -> np.ndarray:
    u = np.clip((x - a) / (b - a), 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


def envelope(s: np.ndarray) -> np.ndarray:
    """0 at the start, a plateau of 1 in the middle, back to 0 at the end."""
    return smoothstep(0.0, 0.22, s) * (1.0 - smoothstep(0.78, 1.0, s))


def _lerp(a, b, w):
    return a + (b - a) * w


class Motion:
    """Arguments shared by every primitive: the rows it applies to, their phase ``s``
    (n, T), tempo (cycles multiplier, (n, 1)), amplitude (n, 1) and a random phase
    offset (n, 1)."""

    def __init__(self, pose, rows, s, tempo, amp, offset):
        self.pose, self.rows, self.s = pose, rows, s
        self.tempo, self.amp, self.offset = tempo, amp, offset
        self.env = envelope(s)

    def osc(self, cycles: float) -> np.ndarray:
        return np.sin(2 * np.pi * cycles * self.tempo * self.s + self.offset)

    def set(self, channel: str, value: np.ndarray) -> None:
        self.pose[channel][self.rows] = value

    def add(self, channel: str, value: np.ndarray) -> None:
        self.pose[channel][self.rows] += value

    def arm(self, side: str, ua: tuple, fa: tuple) -> None:
        """Blend the arm of ``side`` ('l'/'r') from rest to the target angles
        (upper arm theta, phi; forearm theta, phi) with the envelope."""
        e = self.env
        scale = 1.0 + 0.15 * (self.amp - 1.0)  # a mild, anatomically safe excursion change
        for key, (th, ph) in (("ua", ua), ("fa", fa)):
            self.set(f"{side}{key}_th", _lerp(REST[f"{side}{key}_th"], th * scale, e))
            self.set(f"{side}{key}_ph", _lerp(REST[f"{side}{key}_ph"], ph, e))


# ---------------------------------------------------------------------------- arms
def arm_hold(m: Motion, side: str) -> None:
    m.add(f"{side}ua_th", 3.0 * np.sin(np.pi * m.s + m.offset))


def arm_raise(m: Motion, side: str) -> None:
    m.arm(side, (165.0, 50.0), (172.0, 50.0))


def arm_wave(m: Motion, side: str) -> None:
    swing = 28.0 * m.amp * m.osc(3.0)
    m.arm(side, (140.0, 20.0), (165.0 + swing, 10.0))


def arm_punch(m: Motion, side: str) -> None:
    p = (0.5 + 0.5 * np.sin(2 * np.pi * 2.0 * m.tempo * m.s - np.pi / 2)) ** 2
    m.arm(side, (_lerp(40.0, 86.0, p), _lerp(-60.0, 86.0, p)), (_lerp(95.0, 88.0, p), 90.0))


def arm_circle(m: Motion, side: str) -> None:
    ang = 2 * np.pi * 2.0 * m.tempo * m.s + m.offset
    th = 80.0 + 24.0 * m.amp * np.sin(ang)
    ph = 70.0 + 26.0 * m.amp * np.cos(ang)
    m.arm(side, (th, ph), (th + 6.0, ph))


def arm_reach_floor(m: Motion, side: str) -> None:
    m.arm(side, (45.0, 90.0), (50.0, 90.0))
    m.add("bow", 45.0 * m.amp * m.env)


def arm_touch_head(m: Motion, side: str) -> None:
    rub = 8.0 * m.osc(2.0)
    m.arm(side, (140.0, 20.0), (-115.0 + rub, -15.0))


# ---------------------------------------------------------------------------- legs
def legs_stand(m: Motion) -> None:
    m.add("lean", 1.5 * np.sin(np.pi * m.s + m.offset))


def legs_squat(m: Motion) -> None:
    q = m.env * m.amp
    for side in "lr":
        m.set(f"{side}th", _lerp(REST[f"{side}th"], 85.0, q))
        m.set(f"{side}sh", _lerp(REST[f"{side}sh"], -35.0, q))
    m.add("bow", 18.0 * q)


def legs_kick(m: Motion) -> None:
    """Right-leg front kick: the knee lifts, the shin snaps forward, the leg returns."""
    centre = 0.5 + 0.05 * np.tanh(m.offset)
    lift = np.exp(-(((m.s - centre) / 0.14) ** 2)) * m.amp
    snap = np.exp(-(((m.s - centre - 0.03) / 0.07) ** 2))
    m.set("rth", _lerp(REST["rth"], 80.0, lift))
    m.set("rsh", _lerp(REST["rsh"], -5.0, lift) + 80.0 * snap * lift)
    m.add("bow", -8.0 * lift)


def legs_step(m: Motion) -> None:
    # the left knee always rises first (the phase texts say so)
    wave = np.sin(2 * np.pi * 2.0 * m.tempo * m.s) * m.env * m.amp
    for side, w in (("l", np.maximum(wave, 0.0)), ("r", np.maximum(-wave, 0.0))):
        m.set(f"{side}th", _lerp(REST[f"{side}th"], 50.0, w))
        m.set(f"{side}sh", _lerp(REST[f"{side}sh"], -12.0, w))
        m.add("lua_th" if side == "r" else "rua_th", 10.0 * w)


def legs_jump(m: Motion) -> None:
    take_off, land = 0.38, 0.62
    crouch = np.exp(-(((m.s - take_off + 0.08) / 0.07) ** 2)) \
        + np.exp(-(((m.s - land - 0.08) / 0.07) ** 2))
    flight = np.clip((m.s - take_off) / (land - take_off), 0.0, 1.0)
    height = 0.28 * m.amp * np.sin(np.pi * flight)
    for side in "lr":
        m.set(f"{side}th", _lerp(REST[f"{side}th"], 50.0, crouch))
        m.set(f"{side}sh", _lerp(REST[f"{side}sh"], -30.0, crouch))
    m.add("bow", 15.0 * crouch)
    m.set("lift", height)
    for side in "lr":  # arms swing up during the flight
        m.add(f"{side}ua_th", 35.0 * np.sin(np.pi * flight))


# ---------------------------------------------------------------------------- torso
def torso_upright(m: Motion) -> None:
    m.add("nod", 2.0 * np.sin(np.pi * m.s + m.offset))


def torso_bow(m: Motion) -> None:
    m.add("bow", 50.0 * m.amp * m.env)
    m.add("nod", 10.0 * m.env)


def torso_twist(m: Motion) -> None:
    m.add("twist", 35.0 * m.amp * m.env * m.osc(1.5))


def torso_lean(m: Motion) -> None:
    m.add("lean", 22.0 * m.amp * m.env * m.osc(1.5))


def torso_nod(m: Motion) -> None:
    m.add("nod", 28.0 * m.amp * m.env * (0.5 - 0.5 * np.cos(2 * np.pi * 3.0 * m.tempo * m.s)))


ARM_FUNCS: dict[str, Callable[[Motion, str], None]] = {
    "hold": arm_hold, "raise": arm_raise, "wave": arm_wave, "punch": arm_punch,
    "circle": arm_circle, "reach_floor": arm_reach_floor, "touch_head": arm_touch_head,
}
BODY_FUNCS: dict[str, dict[str, Callable[[Motion], None]]] = {
    "legs": {"stand": legs_stand, "squat": legs_squat, "kick": legs_kick, "step": legs_step,
             "jump": legs_jump},
    "torso": {"upright": torso_upright, "bow": torso_bow, "twist": torso_twist,
              "lean": torso_lean, "nod": torso_nod},
}


def apply_primitive(slot: str, name: str, m: Motion) -> None:
    """Write primitive ``name`` of ``slot`` into ``m.pose`` for ``m.rows``."""
    if slot in ("right_arm", "left_arm"):
        ARM_FUNCS[name](m, "r" if slot == "right_arm" else "l")
    else:
        BODY_FUNCS[slot][name](m)


def finish_pose(pose: dict[str, np.ndarray]) -> None:
    """Keep the summed torso angles in an anatomically plausible range."""
    np.clip(pose["bow"], -20.0, 85.0, out=pose["bow"])
    np.clip(pose["nod"], -30.0, 45.0, out=pose["nod"])

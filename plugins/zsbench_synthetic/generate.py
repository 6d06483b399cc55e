"""Generate the synthetic dataset: class compositions, texts, a recording schedule
(subject, setup, replication, three simultaneous camera views per performance) and the
skeleton sequences. Deterministic from ``SyntheticConfig.seed``; pure numpy."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .classes import Composition, class_name, select_classes
from .config import SyntheticConfig
from .render import (action_phase, body_codes, finish, partner_codes, place, pose_angles,
                     view)
from .skeleton import FORWARD, RIGHT, forward_kinematics, subject_segments, yaw_matrix
from .texts import class_texts, neuron_texts

GENERATOR_VERSION = "zsbench-synthetic/1"
NUM_CAMERAS = 3


@dataclass
class SyntheticData:
    """Generated arrays (per sample: 1-based ``subject``, ``camera``, ``setup``,
    ``replication``; 0-based ``performance``: the three camera views of one performance
    share it) and per-class information."""

    data: np.ndarray            # (N, 3, T, 25, 2) float32
    labels: np.ndarray          # (N,) int64, 0-based class index
    subject: np.ndarray
    camera: np.ndarray
    setup: np.ndarray
    replication: np.ndarray
    performance: np.ndarray
    lengths: np.ndarray         # (N,) frames before the zero padding
    class_names: list[str]
    class_primitives: list[Composition]
    texts: dict[str, list[list[str]]]

    @property
    def two_person_classes(self) -> np.ndarray:
        return np.array([c["partner"] != "none" for c in self.class_primitives])


def xsub_train_subjects(num_subjects: int) -> np.ndarray:
    """Subjects of the xsub training part: the first half (rounded up) of the ids."""
    return np.arange(1, (num_subjects + 1) // 2 + 1)


def _schedule(cfg: SyntheticConfig, rng: np.random.Generator):
    """Per performance: class, subject, setup, replication. Within each class the
    repetitions alternate between training and test subjects and between even and odd
    set-ups, so every class appears in both parts of xsub and xset."""
    num_perf = math.ceil(cfg.sequences / NUM_CAMERAS)
    k = cfg.num_classes
    cls = np.arange(num_perf) % k
    rep = np.arange(num_perf) // k
    train = xsub_train_subjects(cfg.num_subjects)
    test = np.arange(len(train) + 1, cfg.num_subjects + 1)
    train_order = np.stack([rng.permutation(train) for _ in range(k)])
    test_order = np.stack([rng.permutation(test) for _ in range(k)])
    subject = np.where(rep % 2 == 0, train_order[cls, (rep // 2) % len(train)],
                       test_order[cls, (rep // 2) % len(test)])
    even = np.arange(2, cfg.num_setups + 1, 2)
    odd = np.arange(1, cfg.num_setups + 1, 2)
    parity = (rep + rep // 2) % 2
    setup = np.where(parity == 0, even[rng.integers(len(even), size=num_perf)],
                     odd[rng.integers(len(odd), size=num_perf)])
    replication = rng.integers(1, 3, size=num_perf)
    return cls, subject, setup, replication


def _performances(cfg, comps, cls, subject, replication, segs, rng):
    """World coordinates (P, T, 25, 2, 3) of every performance, centred like NTU on the
    middle of the spine of the first body in the first frame, and the lengths."""
    num_perf, frames, sv = len(cls), cfg.frames, cfg.speed_variation
    subj_tempo = rng.uniform(0.9, 1.1, cfg.num_subjects)
    subj_amp = rng.uniform(0.85, 1.1, cfg.num_subjects)
    lo = max(2, int(math.ceil(frames * (1.0 - cfg.length_variation))))
    lengths = rng.integers(lo, frames + 1, size=num_perf)
    tempo = rng.uniform(1 - sv, 1 + sv, num_perf) * subj_tempo[subject - 1]
    warp = rng.uniform(-1, 1, num_perf) * min(0.9, 2 * sv)
    idle = rng.uniform(0.0, 0.08, (num_perf, 2))
    amp = rng.uniform(0.85, 1.15, (num_perf, 4)) * subj_amp[subject - 1, None]
    offset = rng.uniform(-np.pi, np.pi, (num_perf, 4))
    facing = np.where(replication == 1, -0.5, 0.5) * cfg.camera_spread_deg \
        + rng.normal(0.0, 8.0, num_perf)
    pair_mask = np.array([comps[c]["partner"] != "none" for c in cls])
    # two people face each other side-on to the cameras, as in NTU's interaction classes
    facing += np.where(pair_mask, rng.choice([-90.0, 90.0], size=num_perf), 0.0)
    s = action_phase(num_perf, frames, lengths, warp, idle)
    first = forward_kinematics(pose_angles(body_codes(comps)[cls], s, tempo, amp, offset),
                               segs[subject - 1])
    world = np.zeros((num_perf, frames, 25, 2, 3))
    world[:, :, :, 0] = place(first, facing, np.zeros((num_perf, 3)))
    pair = np.flatnonzero(pair_mask)
    p_amp = rng.uniform(0.85, 1.15, (num_perf, 4))
    p_offset = rng.uniform(-np.pi, np.pi, (num_perf, 4))
    distance = rng.uniform(0.9, 1.3, num_perf)
    lateral = rng.normal(0.0, 0.1, num_perf)
    if pair.size:
        partner = subject[pair] % cfg.num_subjects  # the next performer (0-based row)
        second = forward_kinematics(
            pose_angles(partner_codes(comps)[cls[pair]], s[pair], tempo[pair], p_amp[pair],
                        p_offset[pair]), segs[partner])
        rot = yaw_matrix(np.deg2rad(facing[pair]))
        where = (rot @ FORWARD) * distance[pair, None] + (rot @ RIGHT) * lateral[pair, None]
        world[pair, :, :, 1] = place(second, facing[pair] + 180.0, where)
    world -= world[:, :1, 1:2, :1, :]
    return world, lengths


def generate(config: SyntheticConfig | None = None) -> SyntheticData:
    """Generate the whole dataset for ``config`` (defaults if None)."""
    cfg = config if config is not None else SyntheticConfig()
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(cfg.seed).spawn(6)]
    r_classes, r_texts, r_subjects, r_schedule, r_motion, r_noise = streams
    comps = select_classes(cfg.num_classes, cfg.two_person_fraction, r_classes)
    texts = class_texts(comps, r_texts)
    # a seventh stream (children 0-5 are the ones above, so nothing else changes)
    r_neuron = np.random.default_rng(np.random.SeedSequence(cfg.seed).spawn(7)[6])
    texts.update(neuron_texts(comps, r_neuron))
    segs = subject_segments(cfg.num_subjects, r_subjects)
    cls, subject, setup, replication = _schedule(cfg, r_schedule)
    world, lengths = _performances(cfg, comps, cls, subject, replication, segs, r_motion)

    n, frames = cfg.sequences, cfg.frames
    perf = np.arange(n) // NUM_CAMERAS
    camera = np.arange(n) % NUM_CAMERAS + 1
    cam_yaw = (camera - 2) * cfg.camera_spread_deg
    pitch = -8.0 + 16.0 * (setup - 1) / max(1, cfg.num_setups - 1)
    two_person = np.array([comps[c]["partner"] != "none" for c in cls])
    data = np.empty((n, 3, frames, 25, 2), dtype=np.float32)
    for c in range(1, NUM_CAMERAS + 1):
        rows = np.flatnonzero(camera == c)
        p = perf[rows]
        data[rows] = finish(view(world[p], cam_yaw[rows], pitch[p]), lengths[p],
                            two_person[p], cfg.noise_std, r_noise)
    return SyntheticData(
        data=data, labels=cls[perf].astype(np.int64), subject=subject[perf].astype(np.int64),
        camera=camera.astype(np.int64), setup=setup[perf].astype(np.int64),
        replication=replication[perf].astype(np.int64), performance=perf.astype(np.int64),
        lengths=lengths[perf].astype(np.int64), class_names=[class_name(c) for c in comps],
        class_primitives=comps, texts=texts)

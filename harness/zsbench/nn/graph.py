"""The NTU RGB+D 25-joint skeleton graph (ST-GCN layout ``'ntu-rgb+d'``).

Numpy only (no torch), so importing it is cheap. Conventions follow ST-GCN's ``Graph``:

* 24 undirected bones plus self-loops; centre joint 20 (0-based, SpineShoulder).
* hop distances on the undirected graph, ``max_hop = 1``, ``dilation = 1``;
* adjacency for hops 0..max_hop set to 1, then column-normalised: ``Â = A · D⁻¹`` with
  ``D_ii = Σ_j A_ji`` (each column sums to 1);
* ``'spatial'`` partition into K = 3 subsets: ``[self-loops, neighbours at the same or a
  larger distance from the centre than the output joint, neighbours nearer the centre]``.
  In ``A[k, j, i]`` ``j`` is the source joint and ``i`` the output joint, so a graph
  convolution is ``y[..., i] = Σ_k Σ_j z[k, ..., j] · A[k, j, i]``.

Parity quirk kept on purpose: as in the official code, distances to the centre come from the
same hop matrix truncated at ``max_hop``, so every joint more than ``max_hop`` hops from the
centre has distance ``inf``; ``inf == inf`` puts all neighbours of such joints into subset 1
and their subset-2 column is empty (mmskeleton issue #367). The encoders used by SMIE,
PGFA and DVTA were trained with this adjacency.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..api import ZsbenchError

NUM_JOINTS = 25
CENTER_JOINT = 20  # SpineShoulder, 0-based

# (child, parent), 0-based; the 24 NTU bones (DATA_FORMATS §1.4).
NTU_EDGES: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 20), (2, 20), (3, 2), (4, 20), (5, 4), (6, 5), (7, 6), (8, 20), (9, 8),
    (10, 9), (11, 10), (12, 0), (13, 12), (14, 13), (15, 14), (16, 0), (17, 16), (18, 17),
    (19, 18), (21, 22), (22, 7), (23, 24), (24, 11),
)

# Bone-stream pairs (v1, v2), 1-based as in Shift-GCN's gen_bone_data.py:
# bone[v1] = joint[v1] - joint[v2]; (21, 21) makes the SpineShoulder bone zero.
NTU_BONE_PAIRS_1BASED: tuple[tuple[int, int], ...] = (
    (1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9),
    (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18),
    (20, 19), (22, 23), (21, 21), (23, 8), (24, 25), (25, 12),
)


def bone_parents() -> np.ndarray:
    """(25,) int64: ``parent[v]`` such that ``bone[v] = joint[v] - joint[parent[v]]``."""
    parent = np.arange(NUM_JOINTS, dtype=np.int64)
    for v1, v2 in NTU_BONE_PAIRS_1BASED:
        parent[v1 - 1] = v2 - 1
    return parent


def hop_distance(num_node: int, edges: Sequence[tuple[int, int]], max_hop: int = 1) -> np.ndarray:
    """(V, V) hop distances on the undirected graph; ``inf`` beyond ``max_hop``."""
    adj = np.zeros((num_node, num_node), dtype=np.int64)
    for i, j in edges:
        if not (0 <= i < num_node and 0 <= j < num_node):
            raise ZsbenchError(f"graph edge ({i}, {j}) outside 0..{num_node - 1}")
        adj[i, j] = adj[j, i] = 1
    np.fill_diagonal(adj, 1)
    dist = np.full((num_node, num_node), np.inf)
    reach = np.eye(num_node, dtype=np.int64)
    # reach after d steps (with self-loops) = every node within d hops; assign the
    # smallest d first by walking d upwards and only filling still-infinite entries.
    for d in range(max_hop + 1):
        if d > 0:
            reach = np.minimum(reach @ adj, 1)
        dist[(reach > 0) & np.isinf(dist)] = d
    return dist


def normalize_digraph(a: np.ndarray) -> np.ndarray:
    """Column normalisation ``A · D⁻¹`` with ``D_ii = Σ_j A_ji`` (zero columns stay zero)."""
    col = a.sum(axis=0)
    inv = np.zeros_like(col, dtype=np.float64)
    nz = col > 0
    inv[nz] = 1.0 / col[nz]
    return a @ np.diag(inv)


def spatial_partition(num_node: int, edges: Sequence[tuple[int, int]], center: int,
                      max_hop: int = 1, dilation: int = 1) -> np.ndarray:
    """ST-GCN's ``'spatial'`` strategy: a (K, V, V) float32 stack, K = 1 + 2 · (number of
    hops h in 1..max_hop taken with step ``dilation``); K = 3 for the defaults.

    For hop 0 the subset is the self-loops; for each hop h ≥ 1 two subsets: entries
    ``[j, i]`` at distance h whose source ``j`` is at the same or a larger distance from the
    centre than ``i`` ("root" + "close"), and those whose source is nearer ("further").
    """
    hop = hop_distance(num_node, edges, max_hop)
    valid = range(0, max_hop + 1, dilation)
    adjacency = np.zeros((num_node, num_node))
    for h in valid:
        adjacency[hop == h] = 1
    norm = normalize_digraph(adjacency)
    dc = hop[:, center]  # distance of every joint to the centre (inf beyond max_hop)
    dc_j, dc_i = dc[:, None], dc[None, :]  # broadcast to [j, i]: source, output joint
    subsets = []
    for h in valid:
        at_h = hop == h
        root = np.where(at_h & (dc_j == dc_i), norm, 0.0)
        close = np.where(at_h & (dc_j > dc_i), norm, 0.0)
        further = np.where(at_h & (dc_j < dc_i), norm, 0.0)
        if h == 0:
            subsets.append(root)
        else:
            subsets.append(root + close)
            subsets.append(further)
    return np.stack(subsets).astype(np.float32)


class Graph:
    """The skeleton graph of a layout; ``A`` is the (K, V, V) partitioned adjacency."""

    def __init__(self, layout: str = "ntu-rgb+d", strategy: str = "spatial",
                 max_hop: int = 1, dilation: int = 1) -> None:
        if layout not in ("ntu-rgb+d", "ntu25"):
            raise ZsbenchError(f"unknown skeleton layout {layout!r}; known: 'ntu-rgb+d'")
        if strategy != "spatial":
            raise ZsbenchError(f"unknown partition strategy {strategy!r}; known: 'spatial'")
        if max_hop < 1 or dilation < 1:
            raise ZsbenchError("max_hop and dilation must be >= 1")
        self.layout = "ntu-rgb+d"
        self.strategy = strategy
        self.num_node = NUM_JOINTS
        self.center = CENTER_JOINT
        self.edges = NTU_EDGES
        self.hop_dis = hop_distance(self.num_node, self.edges, max_hop)
        self.A = spatial_partition(self.num_node, self.edges, self.center, max_hop, dilation)

    def __repr__(self) -> str:
        return f"Graph(layout={self.layout!r}, strategy={self.strategy!r}, A={self.A.shape})"


def ntu_adjacency() -> np.ndarray:
    """The (3, 25, 25) float32 spatial-partition adjacency of the NTU graph."""
    return Graph().A

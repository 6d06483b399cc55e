"""Shared neural-network building blocks (graph data is numpy only; torch modules live in
plugins and import torch themselves)."""
from __future__ import annotations

from .graph import (CENTER_JOINT, NTU_BONE_PAIRS_1BASED, NTU_EDGES, NUM_JOINTS, Graph,
                    bone_parents, hop_distance, normalize_digraph, ntu_adjacency,
                    spatial_partition)

__all__ = [
    "CENTER_JOINT", "NTU_BONE_PAIRS_1BASED", "NTU_EDGES", "NUM_JOINTS", "Graph", "bone_parents",
    "hop_distance", "normalize_digraph", "ntu_adjacency", "spatial_partition",
]

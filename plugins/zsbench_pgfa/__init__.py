"""PGFA method plugin for zsbench (Zhou et al., IEEE TIP 2025)."""

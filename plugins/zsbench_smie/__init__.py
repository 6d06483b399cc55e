"""SMIE method plugin for zsbench (Zhou et al., ACM MM 2023)."""

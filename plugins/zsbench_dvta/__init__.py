"""DVTA method plugin for zsbench (Kuang et al., Pattern Recognition 2026)."""
